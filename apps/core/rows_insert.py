"""Inserting new rows of one model in one statement, without bulk_create's cost per value: a few
rows as one INSERT, many as PostgreSQL's COPY.

bulk_create passes every value of every row through its field (`pre_save`, `get_db_prep_save`)
and then through psycopg's quoting of an UNNEST array: for a batch of 1,000 notifications and
their deliveries that was most of the CPU of creating them (docs/performance.md, "The fan-out,
one change at a time"). Instances built by our own code already hold values of the types the
columns take, so the plain fields are copied as they stand; any other field (JSON, or a field
class not listed here) is prepared by Django exactly as bulk_create prepares it. auto_now(_add)
date-times are all set to one moment per statement (bulk_create asks the clock once per row, which
with the settings lookup behind each call cost more than the rest of the row's preparation). What
the caller sees is what bulk_create gives: the instances saved (`_state`), their dates set, the same exceptions
(a unique or NOT NULL violation is an IntegrityError) and the statement in Django's query log and
its execute wrappers (the bench's statement counter).

COPY costs more round trips than an INSERT (the statement, then the rows, then the end): for the
single POST's one notification and one delivery, an INSERT was cheaper in CPU and in time (a row
in ~140 µs of CPU and 0.45 ms against ~170 µs and 0.5-1.1 ms), so up to SMALL_BATCH_ROWS rows go
as one INSERT with the same prepared values.

Only for models whose primary key is set by Python (a UUID default): neither statement returns
anything here, so a key the database generates could not be read back. Elsewhere (SQLite,
`make run`), bulk_create.
"""

import contextlib
import functools
from collections.abc import Sequence
from typing import NamedTuple

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.utils import timezone

# The field classes whose values psycopg takes as they stand (str, int, bool, UUID, datetime, a
# related row's key): Django's preparation of them changes nothing for values of those types.
_AS_THEY_STAND = frozenset({
    models.CharField, models.TextField, models.UUIDField, models.IntegerField, models.BigIntegerField,
    models.PositiveIntegerField, models.PositiveSmallIntegerField, models.SmallIntegerField,
    models.BooleanField, models.DateTimeField, models.ForeignKey,
})


# At most this many rows go as one INSERT; more as COPY.
SMALL_BATCH_ROWS = 10


def rows_insert(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """INSERT `objs` (new instances of `model`, each with its primary key set) in one statement."""
    if not objs:
        return
    db = connections[DEFAULT_DB_ALIAS]
    plan = _insert_plan(model, db.vendor)
    if plan is None:
        model._base_manager.bulk_create(objs)
        return
    rows = []
    now = timezone.now()  # what auto_now(_add) gives every row: one statement, one moment
    for obj in objs:
        if obj.pk is None:
            raise ValueError(f"rows_insert needs each {model.__name__} to have its primary key set")
        for attname in plan.stamped:
            setattr(obj, attname, now)
        row = [getattr(obj, name) for name in plan.attnames]
        for index, field in plan.prepared:
            row[index] = field.get_db_prep_save(field.pre_save(obj, True), db)
        rows.append(row)
    if len(rows) <= SMALL_BATCH_ROWS:
        values = ", ".join([plan.values_row] * len(rows))
        with db.cursor() as cursor:
            cursor.execute(f"{plan.insert_sql} {values}", [value for row in rows for value in row])
    else:
        _copy(db, plan.copy_sql, rows)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = db.alias


class _InsertPlan(NamedTuple):
    copy_sql: str
    insert_sql: str  # up to VALUES; each row then adds `values_row`
    values_row: str
    attnames: list[str]  # every concrete field's attribute, in the statement's column order
    prepared: list[tuple[int, models.Field]]  # the fields whose values Django prepares, by column
    stamped: list[str]  # auto_now(_add) date-times: set to the statement's moment


@functools.cache
def _insert_plan(model: type[models.Model], vendor: str) -> _InsertPlan | None:
    """The model's statements and what each row needs, worked out once per process (a single POST
    inserts one row of each model: working them out cost more than the row). None where
    bulk_create must insert instead: not PostgreSQL, or a DEFAULT only the database knows."""
    fields = model._meta.concrete_fields
    if vendor != "postgresql" or any(f.has_db_default() and not f.has_default() for f in fields):
        return None
    stamped = [f for f in fields if type(f) is models.DateTimeField and (f.auto_now or f.auto_now_add)]
    prepared = [(index, f) for index, f in enumerate(fields) if f not in stamped and (
        type(f) not in _AS_THEY_STAND or getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False))]
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    table, columns = quote(model._meta.db_table), ", ".join(quote(f.column) for f in fields)
    return _InsertPlan(copy_sql=f"COPY {table} ({columns}) FROM STDIN", insert_sql=f"INSERT INTO {table} ({columns}) VALUES",
                       values_row=f"({', '.join(['%s'] * len(fields))})", attnames=[f.attname for f in fields],
                       prepared=prepared, stamped=[f.attname for f in stamped])


def _copy(db, sql: str, rows: list[list]) -> None:
    """Run the COPY as Django runs a statement: through the connection's execute wrappers, into
    its query log when that is kept, with the driver's errors as Django's."""

    def copy_rows(sql, params, many, context):
        db.validate_no_broken_transaction()
        with db.wrap_database_errors, context["cursor"].cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)

    with db.cursor() as cursor:
        executor = copy_rows
        for wrapper in reversed(db.execute_wrappers):
            executor = functools.partial(wrapper, executor)
        logged = cursor.debug_sql(sql) if db.queries_logged else contextlib.nullcontext()
        with logged:
            executor(sql, None, False, {"connection": db, "cursor": cursor})
