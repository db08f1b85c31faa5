"""Indexes for the operators' console: the dashboard's windows (apps/notifications/stats.py) and
the search by a user's external id. Built concurrently on PostgreSQL (the delivery table may hold
millions of rows, and a plain CREATE INDEX would block the API's and the workers' writes)."""

from django.db import migrations, models

from apps.core.migration_operations import AddIndexConcurrentlyOnPostgreSQL


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ('notifications', '0010_broadcast_template_version'),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgreSQL(
            model_name='delivery',
            index=models.Index(fields=['created_at', 'channel', 'status'], name='delivery_recent'),
        ),
        AddIndexConcurrentlyOnPostgreSQL(
            model_name='delivery',
            index=models.Index(condition=models.Q(('sent_at__isnull', False)), fields=['sent_at', 'channel', 'created_at'], name='delivery_sent_recent'),
        ),
        AddIndexConcurrentlyOnPostgreSQL(
            model_name='deliveryattempt',
            index=models.Index(fields=['started_at'], name='attempt_recent'),
        ),
        AddIndexConcurrentlyOnPostgreSQL(
            model_name='notification',
            index=models.Index(fields=['to'], name='notification_to'),
        ),
    ]
