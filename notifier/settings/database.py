"""The database connections a process may hold, and the budget they must fit in (docs/operations.md,
"Capacity: database connections"; checked by apps/core/checks.py). Imported by base.py.
"""

import os

from notifier.settings.environment import env

# Connections one web process may hold (its pool's size).
NOTIFIER_DB_POOL_MAX_SIZE = env.int("NOTIFIER_DB_POOL_MAX_SIZE", default=8)
# The pool checks a connection with a round trip before lending it only if it was last lent
# longer ago than this, or if the server sent something meanwhile (an ended connection's error),
# notifier/postgresql/base.py. 0: a round trip on every lend.
NOTIFIER_DB_POOL_CHECK_AFTER_IDLE_SECONDS = env.float("NOTIFIER_DB_POOL_CHECK_AFTER_IDLE_SECONDS", default=5.0)
# With the pool, psycopg prepares a statement once a connection has sent it this many times, if
# it was sent to be prepared (apps/core/prepared.py: the single POST's read and INSERT, a worker's
# claim and record; a prefork child's own connection keeps these OPTIONS, celery_app.py).
# 0: never. Behind PgBouncer in transaction mode, 0 unless it tracks prepared statements
# (`max_prepared_statements`, 1.21 or later): the next transaction may reach a server connection
# that never prepared it (docs/scaling.md). Without the pool (NOTIFIER_DB_POOL=false), never.
NOTIFIER_DB_PREPARE_THRESHOLD = env.int("NOTIFIER_DB_PREPARE_THRESHOLD", default=5) or None
# Requests a web process runs at once, each on a thread it keeps (apps/core/asgi.py,
# RequestThreads); more wait their turn on the event loop. The health probes and /metrics never
# wait, and the inbox's stream has a thread of its own. An idle thread holds no database connection.
NOTIFIER_WEB_THREADS = env.int("NOTIFIER_WEB_THREADS", default=4)
# A worker's wait for a connection: short, so that while the database refuses connections a send
# gives up well inside the task's time limit and is tried again seconds later (celery_app.py).
NOTIFIER_WORKER_DB_POOL_TIMEOUT_SECONDS = env.float("NOTIFIER_WORKER_DB_POOL_TIMEOUT_SECONDS", default=2.0)
# A prefork worker's child keeps one plain connection across its tasks (celery_app.py,
# database_connection_per_child), replaced after this long so none lives for ever.
NOTIFIER_WORKER_DB_CONN_MAX_AGE_SECONDS = env.int("NOTIFIER_WORKER_DB_CONN_MAX_AGE_SECONDS", default=600)
# Celery's Django fixup closes every database connection before and after each task unless this
# many tasks have run since it last did: a child then opened one connection per task (a new
# PostgreSQL backend each time). Our own task hooks (celery_app.py, database_connection_per_child)
# check the connection instead, as Django does between requests; the fixup still recycles it
# after this many tasks.
CELERY_DB_REUSE_MAX = 10_000
# The connection budget: how many web processes (the Procfile's `web` starts WEB_CONCURRENCY, one
# per core by default) and Celery worker processes the deployment runs, what is kept free for
# operators, and the limit when it should not be read from the server.
NOTIFIER_WEB_CONCURRENCY = env.int(
    "WEB_CONCURRENCY", default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
)
NOTIFIER_CELERY_WORKERS = env.int("NOTIFIER_CELERY_WORKERS", default=1)
NOTIFIER_DB_RESERVED_CONNECTIONS = env.int("NOTIFIER_DB_RESERVED_CONNECTIONS", default=5)
NOTIFIER_DB_MAX_CONNECTIONS = env.int("NOTIFIER_DB_MAX_CONNECTIONS", default=None)
# The Retry-After of the 503 a request gets while the database refuses connections.
NOTIFIER_DB_UNAVAILABLE_RETRY_AFTER_SECONDS = env.int("NOTIFIER_DB_UNAVAILABLE_RETRY_AFTER_SECONDS", default=5)
