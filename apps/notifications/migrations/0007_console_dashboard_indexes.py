"""Indexes for the operators' dashboard (apps/notifications/stats.py).

On PostgreSQL they are built CONCURRENTLY: the delivery table may hold millions of rows, and a
plain CREATE INDEX would block every write to it (the API and the workers) while it builds.
"""

from django.db import migrations, models


class AddIndexConcurrentlyOnPostgreSQL(migrations.AddIndex):
    """AddIndex, without locking out writes on PostgreSQL; plain elsewhere (the embedded SQLite)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index, concurrently=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index, concurrently=True)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ('notifications', '0006_broadcasts'),
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
    ]
