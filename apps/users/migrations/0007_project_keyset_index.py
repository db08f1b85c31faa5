"""A broadcast's pages of users, `project_id = … AND id > cursor ORDER BY id LIMIT 1000`, read from
an index on (project_id, id): in order, one page's entries. With the project's own index the planner
had two bad choices once other projects' users sat between one project's: walk the primary key
past every other project's users, or fetch all of this project's users past the cursor and sort
them, on every page. The foreign key's own index goes: this one and the unique (project_id,
external_id) both lead with the column. Built, then dropped, concurrently on PostgreSQL, so the
API's writes go on meanwhile."""

from django.db import migrations, models

from apps.core.migration_operations import AddIndexConcurrentlyOnPostgreSQL, AlterFieldDropIndexConcurrentlyOnPostgreSQL


class Migration(migrations.Migration):
    atomic = False  # CREATE and DROP INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ('recipients', '0006_unsubscribe_once'),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgreSQL(
            model_name='recipient',
            index=models.Index(fields=['project', 'id'], name='recipient_project_keyset'),
        ),
        AlterFieldDropIndexConcurrentlyOnPostgreSQL(
            model_name='recipient',
            name='project',
            field=models.ForeignKey(db_index=False, on_delete=models.deletion.CASCADE, related_name='recipients',
                                    to='projects.project'),
        ),
    ]
