"""The claim: the deliveries a worker takes, moved to `sending` and loaded with what sending reads.

Only deliveries still queued/retrying and due are taken: only one worker can move a given
delivery out of those, so a redelivered or duplicate message finds nothing to claim, and a retry
not yet due is left to its own countdown message. Every time in the claim is the database's
(`Now()`): the sending deadline is compared by the sweep, maybe on another host, and the claim
time the deliveries come back with is the batch's clock (DbClock).

On PostgreSQL the claim and the load are one statement, written once per process
(apps/core/rows.py): the UPDATE … RETURNING in a WITH, joined to each delivery's notification,
user, project, template and version. Built by the ORM it was two statements a batch, each
compiled again (the load a six-table join), and the ORM's instances for each row: a quarter of the
worker's CPU (docs/performance.md, "The worker's CPU per delivery"). SQLite (`make run`) has no
UPDATE inside a WITH, so there the ORM's two statements remain.
"""

import functools
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Now
from django.db.models.sql import UpdateQuery
from psycopg.types.datetime import TimestamptzLoader

from apps.core.prepared import prepared_cursor
from apps.core.rows import JoinedColumns, ModelColumns
from apps.notifications.models import CLAIMABLE_STATUSES, Delivery, DeliveryStatus, Notification
from apps.projects.models import Project
from apps.templates.models import Template, TemplateVersion
from apps.users.models import Recipient

# A countdown message is timed by the worker's clock, the claim by the database's: a message
# may arrive a little before its time by the database's.
_CLOCK_SKEW = timedelta(seconds=1)


def deliveries_claim_load(delivery_ids: Sequence[str]) -> list[Delivery]:
    """Claim the claimable deliveries among `delivery_ids` and return them, each with its
    notification and the notification's user (None once erased), project, template and version
    attached. The claim and the load are one transaction (on PostgreSQL, one statement): if the
    database fails either, nothing stays claimed."""
    if not delivery_ids:
        return []
    if connections[router.db_for_write(Delivery)].vendor == "postgresql":
        return _claimed_in_one_statement(delivery_ids)
    return _claimed_by_the_orm(delivery_ids)


_CLAIMED = JoinedColumns(
    ModelColumns(Delivery, "d"), ModelColumns(Notification, "n"), ModelColumns(Recipient, "r"),
    ModelColumns(Project, "p"), ModelColumns(Template, "t"), ModelColumns(TemplateVersion, "v"),
    shared=(Project, Template, TemplateVersion),  # read, never written, by sending
)


def _claimed_in_one_statement(delivery_ids: Sequence[str]) -> list[Delivery]:
    # One statement is a transaction of its own: no BEGIN and COMMIT round trips around it
    # (0.1 to 0.2 ms of the worker's CPU a claim). Once it has returned, turning the rows into
    # instances touches the database no more: a failure there is a bug, and what it leaves
    # `sending` the sweep takes back, as after a worker killed mid-batch.
    #
    # The connection itself, not django.db.connection: each attribute read through that proxy
    # looks the connection up again, and loading a row reads several.
    using = router.db_for_write(Delivery)
    connection = connections[using]
    params = [DeliveryStatus.SENDING, timedelta(seconds=settings.NOTIFIER_SENDING_TIMEOUT_SECONDS),
              list(delivery_ids), *CLAIMABLE_STATUSES, _CLOCK_SKEW]
    # Prepared once this connection has sent it a few times (apps/core/prepared.py): PostgreSQL
    # planned the six-table join on every claim, 0.45-0.5 ms, ten times what running it took for
    # a claim of a few. Its text is the same for any number of deliveries (one array parameter).
    with prepared_cursor(connection) as cursor:
        if settings.USE_TZ:
            # psycopg's own timestamp loader, in C, for this statement's nine timestamps a row:
            # Django's (for USE_TZ = False's naive times) parses each in Python. Either gives the
            # instant in the connection's time zone, which Django sets to its own.
            cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        cursor.execute(_claim_sql(using), params)
        rows = cursor.fetchall()
    claimed = []
    for delivery, notification, recipient, project, template, version in _CLAIMED.load_rows(connection, rows):
        # What select_related("notification__recipient", ...) leaves: reading them costs no query.
        Delivery.notification.field.set_cached_value(delivery, notification)
        Notification.recipient.field.set_cached_value(notification, recipient)
        Notification.project.field.set_cached_value(notification, project)
        Notification.template.field.set_cached_value(notification, template)
        Notification.template_version.field.set_cached_value(notification, version)
        claimed.append(delivery)
    return claimed


@functools.cache
def _claim_sql(using: str) -> str:
    """The claim as one statement: the UPDATE the ORM builds for `_claimed_by_the_orm` (its
    `Now()` is STATEMENT_TIMESTAMP() on PostgreSQL), returning every column of the claimed rows,
    then those rows joined as select_related joins them."""
    connection = connections[using]
    quote = connection.ops.quote_name

    def column(model, name: str) -> str:
        return quote(model._meta.get_field(name).column)

    def pk(model) -> str:
        return quote(model._meta.pk.column)

    delivery, now = _CLAIMED.columns[0], "STATEMENT_TIMESTAMP()"
    statuses = ", ".join(["%s"] * len(CLAIMABLE_STATUSES))
    attempt_count, budget_attempts = column(Delivery, "attempt_count"), column(Delivery, "budget_attempts")
    next_attempt_at = column(Delivery, "next_attempt_at")
    notification_column = functools.partial(column, Notification)
    return (
        f"WITH claimed AS (UPDATE {delivery.table(connection)}"
        f" SET {column(Delivery, 'status')} = %s, {column(Delivery, 'status_changed_at')} = {now},"
        f" {attempt_count} = d.{attempt_count} + 1, {budget_attempts} = d.{budget_attempts} + 1,"
        f" {column(Delivery, 'recheck_at')} = {now} + %s"
        # coalesce (the column is never null): found by the key's index alone, as the publisher's
        # mark is (outbox/deliveries.py, _mark_published_sql), however long the queues have grown.
        f" WHERE d.{pk(Delivery)} = ANY(%s::uuid[]) AND coalesce(d.{column(Delivery, 'status')}, '') IN ({statuses})"
        f" AND (d.{next_attempt_at} IS NULL OR d.{next_attempt_at} <= {now} + %s)"
        f" RETURNING {delivery.sql(connection)})"
        f" SELECT {_CLAIMED.sql(connection)} FROM claimed d"
        f" INNER JOIN {_CLAIMED.columns[1].table(connection)} ON d.{column(Delivery, 'notification')} = n.{pk(Notification)}"
        f" LEFT OUTER JOIN {_CLAIMED.columns[2].table(connection)} ON n.{notification_column('recipient')} = r.{pk(Recipient)}"
        f" INNER JOIN {_CLAIMED.columns[3].table(connection)} ON n.{notification_column('project')} = p.{pk(Project)}"
        f" INNER JOIN {_CLAIMED.columns[4].table(connection)} ON n.{notification_column('template')} = t.{pk(Template)}"
        f" INNER JOIN {_CLAIMED.columns[5].table(connection)}"
        f" ON n.{notification_column('template_version')} = v.{pk(TemplateVersion)}"
    )


def _claimed_by_the_orm(delivery_ids: Sequence[str]) -> list[Delivery]:
    """The claim as the ORM builds it for the database in use: the conditional UPDATE with
    RETURNING added, then the claimed rows loaded with select_related."""
    now = Now()
    sending_deadline = ExpressionWrapper(
        now + Value(timedelta(seconds=settings.NOTIFIER_SENDING_TIMEOUT_SECONDS)), output_field=DateTimeField()
    )
    due = ExpressionWrapper(now + Value(_CLOCK_SKEW), output_field=DateTimeField())
    claimable = Delivery.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=due),
        id__in=delivery_ids,
        status__in=CLAIMABLE_STATUSES,
    )
    query = claimable.query.chain(UpdateQuery)
    query.add_update_values({
        "status": DeliveryStatus.SENDING,
        "status_changed_at": now,
        "attempt_count": F("attempt_count") + 1,
        "budget_attempts": F("budget_attempts") + 1,
        "recheck_at": sending_deadline,
    })
    compiler = query.get_compiler(claimable.db)
    compiler.pre_sql_setup()
    sql, params = compiler.as_sql()
    connection = connections[claimable.db]
    with transaction.atomic(using=claimable.db), connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {connection.ops.quote_name(Delivery._meta.pk.column)}", params)
        claimed_ids = [row[0] for row in cursor.fetchall()]
        if not claimed_ids:
            return []
        return list(
            Delivery.objects.select_related(
                "notification__recipient", "notification__project", "notification__template",
                "notification__template_version",
            ).filter(id__in=claimed_ids)
        )
