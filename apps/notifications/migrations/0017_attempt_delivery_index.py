"""One index entry fewer per attempt: the foreign key's own index on `delivery_id` goes, since
`attempt_unique_number` (delivery_id, number) leads with that column and serves the same lookups
(a delivery's attempts, in number order) and the cascade when a delivery is deleted. Every
delivery gets at least one attempt, inserted by the worker that records its send.
Dropped concurrently on PostgreSQL, so the workers' writes go on meanwhile; reversed by building
it again, concurrently."""

from django.db import migrations, models

from apps.core.migration_operations import AlterFieldDropIndexConcurrentlyOnPostgreSQL


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ('notifications', '0016_fewer_indexes'),
    ]

    operations = [
        AlterFieldDropIndexConcurrentlyOnPostgreSQL(
            model_name='deliveryattempt',
            name='delivery',
            field=models.ForeignKey(db_index=False, on_delete=models.deletion.CASCADE, related_name='attempts',
                                    to='notifications.delivery'),
        ),
    ]
