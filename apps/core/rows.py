"""Model instances from a hand-written SELECT, loaded as the ORM loads them.

For the few reads on a hot path (a single `POST /notifications` makes two, run together as one
statement by `where_in_together`; a worker's claim one a batch,
apps/notifications/delivery/claim.py), building the query through the ORM costs more CPU than
the rest of the read: a filter, an annotation or a subquery is resolved, aliased and compiled
again on every call, about 1 ms of a request's CPU for two statements. Here the SQL is written
once, its column list taken from the model, and each row goes through the same converters (a JSON
column decoded, SQLite's dates parsed) as an ORM row, and becomes an instance as `Model.from_db`
makes one (apps/core/instances.py), so the instances are the ones the ORM would give.
"""

from collections.abc import Callable, Iterable

from django.db import connections, router
from django.db.models import Model

from apps.core.instances import instance_positional
from apps.core.prepared import prepared_cursor


class ModelColumns:
    """Every concrete column of `model`, selected from the table aliased `alias`.

    `sql(connection)` is the quoted column list for a SELECT; `load(connection, values)` turns that
    many values of a row into an instance. What depends on the database backend (quoting, the
    converters) is worked out once per connection alias.
    """

    def __init__(self, model: type[Model], alias: str) -> None:
        self.model = model
        self.alias = alias
        self.fields = tuple(model._meta.concrete_fields)
        self.count = len(self.fields)
        self._by_alias: dict[str, tuple[str, tuple]] = {}

    def sql(self, connection) -> str:
        return self._prepared(connection)[0]

    def table(self, connection) -> str:
        """`"table" alias`, for the FROM or a JOIN."""
        return f"{connection.ops.quote_name(self.model._meta.db_table)} {self.alias}"

    def load(self, connection, values):
        for index, converters, expression in self._prepared(connection)[1]:
            value = values[index]
            for converter in converters:
                value = converter(value, expression, connection)
            values[index] = value
        return instance_positional(self.model, values, db=connection.alias)  # Model.from_db's, faster

    def _prepared(self, connection) -> tuple[str, tuple]:
        prepared = self._by_alias.get(connection.alias)
        if prepared is None:
            quote = connection.ops.quote_name
            columns = ", ".join(f"{self.alias}.{quote(field.column)}" for field in self.fields)
            converters = []
            for index, field in enumerate(self.fields):
                # What SQLCompiler.get_converters finds for the same column.
                expression = field.get_col(self.alias)
                found = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
                if found:
                    converters.append((index, tuple(found), expression))
            prepared = self._by_alias[connection.alias] = (columns, tuple(converters))
        return prepared


class JoinedColumns:
    """Several models' columns side by side in one row, as a join selects them.

    `sql(connection)` is the column list, each model's after the one before; `load(connection, row)`
    gives one instance per model, in that order, or None for a model the row has no primary key
    for (an outer join that found nothing), as `select_related` leaves a null relation.
    `load_rows(connection, rows)` loads a statement's rows, building the models in `shared` once
    per primary key.
    """

    def __init__(self, *columns: ModelColumns, shared: tuple[type[Model], ...] = ()) -> None:
        self.columns = columns
        self._slices = []
        start = 0
        for model_columns in columns:
            pk_index = model_columns.fields.index(model_columns.model._meta.pk)
            self._slices.append((model_columns, start, start + model_columns.count, start + pk_index,
                                 model_columns.model in shared))
            start += model_columns.count

    def sql(self, connection) -> str:
        return ", ".join(model_columns.sql(connection) for model_columns in self.columns)

    def load(self, connection, row) -> list:
        return self.load_rows(connection, [row])[0]

    def load_rows(self, connection, rows) -> list[list]:
        """`load` of each row, but the rows that name the same primary key of a model in `shared`
        get one instance of it, as `prefetch_related` gives one to all the objects it attaches it
        to: a claim's deliveries mostly share their project, template and version, whose columns
        (four of them JSON) were decoded again for every row."""
        shared_instances: dict[tuple[int, object], Model] = {}
        loaded = []
        for row in rows:
            instances = []
            for position, (model_columns, start, end, pk, shared) in enumerate(self._slices):
                key = row[pk]
                if key is None:
                    instance = None
                elif not shared:
                    instance = model_columns.load(connection, list(row[start:end]))
                elif (instance := shared_instances.get((position, key))) is None:
                    instance = shared_instances[position, key] = model_columns.load(connection, list(row[start:end]))
                instances.append(instance)
            loaded.append(instances)
        return loaded


class WhereIn:
    """A read written once: `SELECT <columns> <rest>`, where `rest` (`FROM … WHERE … IN (`) ends
    with the list the call's values complete, and what its rows become.

    `columns(alias)` and `rest(alias)` give the SQL for a database alias (cache them: they are
    asked on every call); `width` is how many columns `columns` selects; `result(connection, rows)`
    turns the rows, as lists (for `ModelColumns.load`), into what the selector returns.
    `where_in_together` runs several such reads as one statement.
    """

    def __init__(self, *, model: type[Model], width: int, columns: Callable[[str], str], rest: Callable[[str], str],
                 result: Callable[[object, list[list]], object]) -> None:
        self.model, self.width, self.columns, self.rest, self.result = model, width, columns, rest, result


PREPARED_MOST_ARGUMENTS = 16


def where_in_together(*reads: tuple[WhereIn, list, Iterable]) -> list:
    """Each read's result, for (read, params, values) triples: the distinct `values` complete the
    read's `IN (` list after its `params`. One statement and one round trip for all of them (a
    UNION ALL, each branch's row padded with NULLs where the others' columns are and tagged with
    its read's position); a read without values has no branch and gets the result of no rows, and
    no statement at all is run when none has values. The reads run on the first one's database
    for reads.
    """
    using = router.db_for_read(reads[0][0].model)
    connection = connections[using]
    total = sum(read.width for read, _, _ in reads)
    branches, arguments, offsets = [], [], []
    offset = 0
    for position, (read, params, values) in enumerate(reads):
        values = list(set(values))
        offsets.append(offset)
        if values:
            before, after = "NULL, " * offset, ", NULL" * (total - offset - read.width)
            branches.append(f"SELECT {position}, {before}{read.columns(using)}{after} {read.rest(using)}"
                            + ", ".join(["%s"] * len(values)) + ")")
            arguments += [*params, *values]
        offset += read.width
    rows_by_read: list[list[list]] = [[] for _ in reads]
    if branches:
        # Few values (a single POST's one user and one template): the same statement on every
        # call, worth preparing (apps/core/prepared.py). Many go as Django sends them, written
        # into the text: sent apart, PostgreSQL's protocol takes at most 65,535 parameters.
        prepared = len(arguments) <= PREPARED_MOST_ARGUMENTS
        with prepared_cursor(connection) if prepared else connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(branches), arguments)
            for row in cursor.fetchall():
                start = offsets[row[0]] + 1
                rows_by_read[row[0]].append(list(row[start:start + reads[row[0]][0].width]))
    return [read.result(connection, rows) for (read, _, _), rows in zip(reads, rows_by_read, strict=True)]
