"""The Celery application: `celery -A celery_app worker|beat|flower`.

Configuration comes from Django settings (the CELERY_* names), so web and workers share one source.
"""

import gc
import math
import os
from pathlib import Path

from celery import Celery
from celery.beat import PersistentScheduler
from celery.signals import (
    before_task_publish,
    celeryd_after_setup,
    import_modules,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_process_shutdown,
    worker_ready,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifier.settings.dev")


@import_modules.connect(dispatch_uid="notifier-metrics-folder")
def metrics_folder_for_worker_and_beat(**kwargs) -> None:
    # A worker or beat is starting (Celery's loader imports the task modules; web processes and
    # the test suite, which only publish, never get here). Connected before the app exists, so
    # before the Django fix-up's own receiver runs django.setup(), which creates the metrics; and
    # in the worker's main process, so its pool children inherit the folder when they fork.
    from apps.core.metrics_folder import metrics_folder_use

    metrics_folder_use()


app = Celery("notifier")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# The header that carries the correlation id of whatever published a task (an API request, or a
# task working for one). Not AMQP's `correlation_id` property, which Celery sets to the task id.
CORRELATION_HEADER = "notifier_correlation_id"


@setup_logging.connect
def logging_from_settings(**kwargs) -> None:
    # Connected, this stops Celery configuring logging its own way: workers and beat then write
    # the same lines as the web process (JSON in production, masked, with the correlation id).
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@before_task_publish.connect
def correlation_id_to_message(headers=None, **kwargs) -> None:
    from apps.core.correlation import correlation_id_get

    correlation_id = correlation_id_get()
    if correlation_id and headers is not None:
        headers.setdefault(CORRELATION_HEADER, correlation_id)


_task_tokens: dict[str, object] = {}


@task_prerun.connect
def correlation_id_from_message(task_id=None, task=None, **kwargs) -> None:
    from apps.core.correlation import correlation_bind

    _task_tokens[task_id] = correlation_bind(getattr(task.request, CORRELATION_HEADER, None) or "")


@task_postrun.connect
def correlation_id_unbind(task_id=None, **kwargs) -> None:
    from apps.core.correlation import correlation_unbind

    token = _task_tokens.pop(task_id, None)
    if token is not None:
        correlation_unbind(token)


@worker_process_shutdown.connect
def metrics_process_dead(pid=None, **kwargs) -> None:
    # prometheus_client's multiprocess mode: a pool child that exits takes its live gauges with
    # it; its counters and histograms stay in the folder and keep counting in the totals.
    from prometheus_client import multiprocess

    from apps.core.metrics_folder import metrics_folder_in_use

    folder = metrics_folder_in_use()
    if folder:
        multiprocess.mark_process_dead(pid or os.getpid(), folder)


@worker_ready.connect
def declare_dead_letter_queues(sender, **kwargs) -> None:
    # The channel queues name a dead-letter exchange; its queues must exist before the broker
    # dead-letters anything, or RabbitMQ drops it.
    from django.conf import settings

    with sender.app.connection_for_write() as connection:
        for queue in settings.NOTIFIER_DEAD_LETTER_QUEUES:
            queue(connection.default_channel).declare()


class ScheduleFolderScheduler(PersistentScheduler):
    """Celery's file-backed beat scheduler, creating its file's folder first: beat alone writes
    there, and the settings create no folder when imported (CELERY_BEAT_SCHEDULER)."""

    def setup_schedule(self) -> None:
        from apps.core.apps import state_dirs_create

        state_dirs_create(dirs=[Path(self.schedule_filename).parent])
        super().setup_schedule()


def eta_task_limit(*, concurrency: int, task_time_limit: float, max_countdown: float, consumer_timeout: float) -> int:
    """How many messages one worker may hold unacknowledged so none outlasts RabbitMQ's consumer_timeout.

    A held message waits at most for its countdown, then for every message held before it to
    run: at worst each for the task's hard time limit, `concurrency` at a time. A quarter of the
    timeout is kept as a margin. Celery's worker_eta_task_limit caps the worker's whole prefetch
    (ready and countdown messages); past it, further messages stay in RabbitMQ, where no
    timeout applies.
    """
    room = consumer_timeout * 0.75 - max_countdown
    return max(1, int(concurrency * room // task_time_limit))


@celeryd_after_setup.connect
def size_held_messages(sender, instance, conf, **kwargs) -> None:
    # Sized from the concurrency this worker really runs with (--concurrency may override the
    # setting), before its consumer starts and reads the limit.
    from django.conf import settings

    if not isinstance(instance.concurrency, int):
        return  # "auto": Celery sizes the pool later; the setting's default concurrency is unknown here
    conf.worker_eta_task_limit = eta_task_limit(
        concurrency=instance.concurrency,
        task_time_limit=settings.NOTIFIER_SEND_TIME_LIMIT_SECONDS,
        max_countdown=settings.NOTIFIER_MAX_COUNTDOWN_SECONDS,
        consumer_timeout=settings.NOTIFIER_BROKER_CONSUMER_TIMEOUT_SECONDS,
    )


@celeryd_after_setup.connect
def send_path_compiled(**kwargs) -> None:
    # Before the pool children fork, and before the freeze below: what each child's first sends
    # would compile, each send thread on its own, is compiled once here (docs/performance.md,
    # "The email check compiled before the fork").
    from apps.channels.backends.email import email_address_check_compiled

    email_address_check_compiled()


@celeryd_after_setup.connect
def startup_objects_frozen(**kwargs) -> None:
    # Right before the pool children fork (gc.freeze's documented use): what is loaded by now
    # lives as long as the worker. Frozen, a child's full collection no longer walks it (tens of
    # milliseconds each), nor writes to its pages, which the children then keep sharing.
    gc.freeze()


@celeryd_after_setup.connect
def database_pool_for_worker(sender, instance, conf, **kwargs) -> None:
    """Fit the database connection, set up for a web process, to this worker (before its pool children fork).

    A prefork child runs one task at a time in one thread, so it needs one connection, and keeps
    it from task to task (`database_connection_per_child`): a plain persistent connection, not
    the web's pool, whose background threads and spare connections a single-threaded child has
    no use for. A threads worker's tasks share one pool: it gets a connection per task running at
    once, or sends would queue for one. The capacity check counts a worker at its concurrency.

    Either way a worker waits at most NOTIFIER_WORKER_DB_POOL_TIMEOUT_SECONDS for a connection:
    when the database refuses connections, a send gives up before the task's soft time limit and
    its message is tried again a few seconds later (tasks.py), instead of dying on the time limit.
    """
    from django.conf import settings
    from django.db import connections

    connection = connections["default"]
    options = connection.settings_dict.get("OPTIONS", {})
    pool_options = options.get("pool")
    if not isinstance(pool_options, dict):
        return
    timeout = settings.NOTIFIER_WORKER_DB_POOL_TIMEOUT_SECONDS
    connection.close()
    connection.close_pool()  # a pool made before now has the old options; the next query makes a new one
    if instance.pool_cls.__module__ == "celery.concurrency.prefork":
        del options["pool"]
        options["connect_timeout"] = max(2, math.ceil(timeout))  # libpq's minimum is 2 s
        connection.settings_dict["CONN_MAX_AGE"] = settings.NOTIFIER_WORKER_DB_CONN_MAX_AGE_SECONDS
        connection.settings_dict["CONN_HEALTH_CHECKS"] = True
        return
    pool_options["timeout"] = min(pool_options.get("timeout", 30.0), timeout)
    threads = instance.pool_cls.__module__ == "celery.concurrency.thread"
    if threads and isinstance(instance.concurrency, int):
        pool_options["max_size"] = max(pool_options.get("max_size", 0), instance.concurrency)


@task_prerun.connect
@task_postrun.connect
def database_connection_per_child(task=None, **kwargs) -> None:
    """Keep a task's database connection for the next one, unless it is broken, old or mid-transaction.

    What Django does between two requests (close_old_connections), done between two tasks; Celery's
    fixup no longer closes it after each (CELERY_DB_REUSE_MAX). Safe to share between the tasks of
    a prefork child because it runs one task at a time, on one thread: no two tasks ever hold the
    connection at once. What one task leaves, the next does not inherit:
    - a transaction: every transaction is an `atomic` block, which commits or rolls back as the
      task leaves it; a connection still outside autocommit (a block cut short in a way that
      skipped that) is closed here, which rolls it back on the server;
    - a broken connection (a database restart, an outage ending every session): after a task
      whose queries failed, it is checked here and closed if unusable; otherwise the next task's
      first query checks it first (CONN_HEALTH_CHECKS, one `SELECT 1` per task) and reconnects;
    - an old one: closed past NOTIFIER_WORKER_DB_CONN_MAX_AGE_SECONDS (CONN_MAX_AGE).
    With the pool (a threads worker, the web's settings) it hands the connection back to the pool
    instead, as Celery's fixup did. Eager tasks (run inside the caller) are left alone.
    """
    from django.db import close_old_connections

    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()
