"""The console's search by a user's email or phone; built concurrently on PostgreSQL."""

from django.db import migrations, models

from apps.core.migration_operations import AddIndexConcurrentlyOnPostgreSQL


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ('recipients', '0004_unsubscribes'),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgreSQL(
            model_name='recipient',
            index=models.Index(fields=['email'], name='recipient_email'),
        ),
        AddIndexConcurrentlyOnPostgreSQL(
            model_name='recipient',
            index=models.Index(fields=['phone'], name='recipient_phone'),
        ),
    ]
