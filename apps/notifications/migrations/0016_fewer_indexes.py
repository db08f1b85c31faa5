"""Fewer index entries written per delivery. Every write of a delivery row adds an entry to each of
its indexes (each update changes an indexed column, so none is HOT), and a delivery is written
three or four times on its way to `sent`:
- the foreign key's own index on `notification_id` goes: `delivery_one_per_channel`
  (notification_id, channel) leads with that column and serves the same lookups and the cascade;
- `provider_message_id` is only ever looked up by equality (receipts, the console's search), so
  its `_like` twin (for LIKE/startswith) goes, and its index becomes partial: a row gets an id
  only when sent, and the entries for the empty string served nothing.
On notifications, inserted once each, two more go the same way: the foreign key's own index on
`project_id` (`notification_project_recent` leads with it), and the one on `broadcast_id`, whose
every lookup is one broadcast's notifications, which the unique (broadcast_id, recipient_id) index
of broadcast notifications serves; the full one took an entry for every null.
Built and dropped concurrently on PostgreSQL, so the API's and the workers' writes go on meanwhile;
the partial index is built before the full one goes, so the lookups always have one."""

from django.db import migrations, models

from apps.core.migration_operations import (
    AddIndexConcurrentlyOnPostgreSQL,
    AlterFieldDropIndexConcurrentlyOnPostgreSQL,
)


class Migration(migrations.Migration):
    atomic = False  # CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ('notifications', '0015_workflow_keys'),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgreSQL(
            model_name='delivery',
            index=models.Index(condition=models.Q(('provider_message_id', ''), _negated=True),
                               fields=['provider_message_id'], name='delivery_provider_message'),
        ),
        AlterFieldDropIndexConcurrentlyOnPostgreSQL(
            model_name='delivery',
            name='provider_message_id',
            field=models.CharField(blank=True, max_length=255),
        ),
        AlterFieldDropIndexConcurrentlyOnPostgreSQL(
            model_name='delivery',
            name='notification',
            field=models.ForeignKey(db_index=False, on_delete=models.deletion.CASCADE, related_name='deliveries',
                                    to='notifications.notification'),
        ),
        AlterFieldDropIndexConcurrentlyOnPostgreSQL(
            model_name='notification',
            name='project',
            field=models.ForeignKey(db_index=False, on_delete=models.deletion.CASCADE, related_name='notifications',
                                    to='projects.project'),
        ),
        AlterFieldDropIndexConcurrentlyOnPostgreSQL(
            model_name='notification',
            name='broadcast',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=models.deletion.SET_NULL,
                                    related_name='notifications', to='notifications.broadcast'),
        ),
    ]
