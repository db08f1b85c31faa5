"""System checks: a deployment that would exhaust PostgreSQL's connections refuses to start.

The limit is NOTIFIER_DB_MAX_CONNECTIONS when set, checked by every `manage.py` command and at
every Celery worker's start. Otherwise it is read from the server itself (`SHOW max_connections`
and friends), which only database checks may do: `manage.py migrate`, `manage.py check --database
default` and the web process's start (Procfile). The server's figure cannot drift from the truth,
so it is the default; the setting is for servers shared with other applications (set it to this
deployment's share) or sitting behind a pooler (set it to the pooler's client limit).
"""

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError, connections

from apps.core.capacity import ConnectionLimit, database_connection_limit, database_connections_needed

_HINT = ("Lower WEB_CONCURRENCY, NOTIFIER_DB_POOL_MAX_SIZE or the workers' concurrency, or raise the server's "
         "max_connections; docs/operations.md, \"Capacity: database connections\", has the arithmetic.")


@register()
def database_connections_setting_check(app_configs, **kwargs) -> list[CheckMessage]:
    if settings.NOTIFIER_DB_MAX_CONNECTIONS is None:
        return []
    limit = ConnectionLimit(settings.NOTIFIER_DB_MAX_CONNECTIONS, "NOTIFIER_DB_MAX_CONNECTIONS")
    return _compare(limit)


@register(Tags.database)
def database_connections_server_check(app_configs, databases=None, **kwargs) -> list[CheckMessage]:
    if settings.NOTIFIER_DB_MAX_CONNECTIONS is not None or "default" not in (databases or ()):
        return []
    if connections["default"].vendor != "postgresql":
        return []  # SQLite (embedded mode) has no connection limit
    try:
        limit = database_connection_limit(alias="default")
    except DatabaseError as exc:
        return [Warning(f"Could not read the database's connection limit: {exc}".strip(), id="notifier.W050",
                        hint="Set NOTIFIER_DB_MAX_CONNECTIONS to check the configuration without the server.")]
    return _compare(limit)


def _compare(limit: ConnectionLimit) -> list[CheckMessage]:
    needed = database_connections_needed()
    if needed.total <= limit.connections:
        return []
    return [Error(f"The processes may open {needed.total} PostgreSQL connections ({needed.explain()}), "
                  f"more than the {limit.connections} allowed ({limit.source}).", hint=_HINT, id="notifier.E050")]
