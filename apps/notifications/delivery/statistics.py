"""The planner's statistics of the tables every notification writes, kept up as they grow fast.

A worker's claim and the publisher's mark are prepared statements (apps/core/prepared.py), and
PostgreSQL keeps a prepared statement's plan until the table is analysed. Autovacuum analyses a
table once a tenth of it has changed, but looks once a minute (`autovacuum_naptime`): a new
installation's tables can grow tenfold between two looks, and every claim of that minute then runs
the plan of the small table, a sequential scan of the notifications (docs/performance.md, "The
statistics while a scenario fills the tables"). With autovacuum off, the plans of the empty
tables would last for ever.

So, beside autovacuum: every NOTIFIER_SWEEP_INTERVAL_SECONDS, each of these tables that has changed
by more rows than it had when last analysed (and by at least STATISTICS_MIN_CHANGED_ROWS) is
analysed. A table that grows doubles a few times while it is young and almost never after, where
autovacuum's tenth comes first. ANALYZE blocks no reads or writes; it waits for no other ANALYZE
or VACUUM of the table (a second at most), and a failure is logged, never raised.
"""

import logging

from django.db import DatabaseError, connection, transaction

from apps.notifications.models import Delivery, Notification

logger = logging.getLogger(__name__)

STATISTICS_TABLES = (Notification, Delivery)
STATISTICS_MIN_CHANGED_ROWS = 1000

_DOUBLED = """
    SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
    WHERE s.relid = ANY(%s::regclass[]) AND s.n_mod_since_analyze >= greatest(%s, c.reltuples)
"""


def delivery_tables_analyze(*, reason: str) -> None:
    """ANALYZE the notification and delivery tables now (PostgreSQL only)."""
    if connection.vendor == "postgresql":
        _analyze([model._meta.db_table for model in STATISTICS_TABLES], reason=reason)


def delivery_tables_statistics_refresh() -> list[str]:
    """ANALYZE each of the tables that has changed by more rows than it had at its last ANALYZE;
    the tables analysed (none off PostgreSQL)."""
    if connection.vendor != "postgresql":
        return []
    tables = [model._meta.db_table for model in STATISTICS_TABLES]
    with connection.cursor() as cursor:
        cursor.execute(_DOUBLED, [tables, STATISTICS_MIN_CHANGED_ROWS])
        doubled = [row[0] for row in cursor.fetchall()]
    return _analyze(doubled, reason="grown since last analysed") if doubled else []


def _analyze(tables: list[str], *, reason: str) -> list[str]:
    quoted = ", ".join(connection.ops.quote_name(table) for table in tables)
    try:
        # Durable: never inside a caller's transaction, which the SET LOCAL would outlast.
        with transaction.atomic(durable=True), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '1s'")  # autovacuum at work on it: its turn
            cursor.execute(f"ANALYZE {quoted}")
    except DatabaseError as error:
        logger.warning("ANALYZE of %s (%s) failed: %s", quoted, reason, error)
        return []
    logger.info("analysed %s: %s", quoted, reason)
    return tables
