"""Migration operations shared by the apps."""

from django.db import migrations


class AddIndexConcurrentlyOnPostgreSQL(migrations.AddIndex):
    """AddIndex that does not lock out writes on PostgreSQL (CREATE INDEX CONCURRENTLY): a table of
    millions of rows would otherwise refuse the API's and the workers' writes while the index
    builds. Plain AddIndex elsewhere (the embedded SQLite). The migration must be `atomic = False`."""

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


class AlterFieldDropIndexConcurrentlyOnPostgreSQL(migrations.AlterField):
    """AlterField for a field that loses its own index (`db_index=True` → False) and changes in no
    other way. On PostgreSQL the index, and a text column's `_like` twin, go with DROP INDEX
    CONCURRENTLY: a plain DROP INDEX waits for every transaction using the table while it holds a
    lock that queues the API's and the workers' writes behind it. Plain AlterField elsewhere (the
    embedded SQLite). The migration must be `atomic = False`."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        column = model._meta.get_field(self.name).column
        # The indexes on this column alone that Django made for db_index (the model's named
        # Meta indexes and any unique constraint stay).
        names = schema_editor._constraint_names(model, [column], index=True, unique=False,
                                                exclude={index.name for index in model._meta.indexes})
        for name in names:
            schema_editor.execute(schema_editor._delete_index_sql(model, name, concurrently=True))

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        field = model._meta.get_field(self.name)
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field], concurrently=True))
        db_type = field.db_type(connection=schema_editor.connection) or ""
        for prefix, opclass in (("varchar", "varchar_pattern_ops"), ("text", "text_pattern_ops")):
            if db_type.startswith(prefix):  # what Django adds for LIKE outside the C locale
                schema_editor.execute(schema_editor._create_index_sql(
                    model, fields=[field], suffix="_like", opclasses=[opclass], concurrently=True))
