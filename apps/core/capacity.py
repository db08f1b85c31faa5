"""How many PostgreSQL connections the deployment's processes may hold, and how many the server allows.

The arithmetic behind docs/operations.md's "Capacity: database connections" and the system check in apps/core/checks.py:

    web processes x pool max size  +  worker processes x worker concurrency  +  beat  +  flower
    +  a reserve for operators (psql, manage.py commands, migrations)

against what the server lets this role open on this database: `max_connections` less the slots
kept for superusers, and the database's and role's own CONNECTION LIMIT when they have one.
"""

import os
from dataclasses import dataclass

from django.conf import settings
from django.db import connections

# beat and flower hold at most one connection each (flower none today; counted so it may).
_BEAT_CONNECTIONS = 1
_FLOWER_CONNECTIONS = 1


def cores() -> int:
    """The cores this process may run on: what `nproc` prints, and the web's default process count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_concurrency() -> int:
    """A worker's pool size as Celery will read it: the setting, else the environment, else one per core."""
    value = getattr(settings, "CELERY_WORKER_CONCURRENCY", None) or os.environ.get("CELERY_WORKER_CONCURRENCY")
    return int(value) if value else cores()


@dataclass(frozen=True)
class ConnectionDemand:
    web: int
    workers: int
    beat: int
    flower: int
    reserve: int

    @property
    def total(self) -> int:
        return self.web + self.workers + self.beat + self.flower + self.reserve

    def explain(self) -> str:
        return (f"{settings.NOTIFIER_WEB_CONCURRENCY} web processes x {settings.NOTIFIER_DB_POOL_MAX_SIZE} pooled = {self.web}, "
                f"{settings.NOTIFIER_CELERY_WORKERS} worker processes x concurrency {worker_concurrency()} = {self.workers}, "
                f"beat {self.beat}, flower {self.flower}, reserve {self.reserve}: {self.total}")


def database_connections_needed() -> ConnectionDemand:
    # A prefork child (or a thread of a threads pool) runs one task at a time and holds at most
    # one connection while it does.
    return ConnectionDemand(
        # Without the pool (NOTIFIER_DB_POOL=false, behind PgBouncer) nothing bounds a web
        # process; the same figure is the share it is given.
        web=settings.NOTIFIER_WEB_CONCURRENCY * settings.NOTIFIER_DB_POOL_MAX_SIZE,
        workers=settings.NOTIFIER_CELERY_WORKERS * worker_concurrency(),
        beat=_BEAT_CONNECTIONS,
        flower=_FLOWER_CONNECTIONS,
        reserve=settings.NOTIFIER_DB_RESERVED_CONNECTIONS,
    )


@dataclass(frozen=True)
class ConnectionLimit:
    connections: int
    source: str


def database_connection_limit(*, alias: str = "default") -> ConnectionLimit:
    """What the server lets this role open on this database. Raises DatabaseError when unreachable."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            """
            SELECT current_setting('max_connections')::int,
                   current_setting('superuser_reserved_connections')::int,
                   coalesce(current_setting('reserved_connections', true)::int, 0),
                   (SELECT datconnlimit FROM pg_database WHERE datname = current_database()),
                   (SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user)
            """
        )
        max_connections, superuser_reserved, reserved, database_limit, role_limit = cursor.fetchone()
    limits = [(max_connections - superuser_reserved - reserved,
               f"max_connections {max_connections} - {superuser_reserved + reserved} reserved")]
    if database_limit >= 0:
        limits.append((database_limit, f"the database's CONNECTION LIMIT {database_limit}"))
    if role_limit >= 0:
        limits.append((role_limit, f"the role's CONNECTION LIMIT {role_limit}"))
    return ConnectionLimit(*min(limits))
