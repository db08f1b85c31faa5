"""The Celery application: `celery -A celery_app worker|beat|flower`.

Configuration comes from Django settings (the CELERY_* names), so web and workers share one source.
"""

import os
from pathlib import Path

from celery import Celery
from celery.beat import PersistentScheduler
from celery.signals import celeryd_after_setup, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifier.settings.dev")

app = Celery("notifier")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
def database_pool_for_worker(sender, instance, conf, **kwargs) -> None:
    """Fit the connection pool, sized for a web process, to this worker (before its pool children fork).

    A worker waits at most NOTIFIER_WORKER_DB_POOL_TIMEOUT_SECONDS for a connection: when the
    database refuses connections, a send gives up before the task's soft time limit and its
    message is tried again a few seconds later (tasks.py), instead of dying on the time limit.
    A threads worker's tasks also share one pool: it gets a connection per task running at once,
    or sends would queue for one. The capacity check counts a worker at its concurrency.
    """
    from django.conf import settings
    from django.db import connections

    connection = connections["default"]
    pool_options = connection.settings_dict.get("OPTIONS", {}).get("pool")
    if not isinstance(pool_options, dict):
        return
    pool_options["timeout"] = min(pool_options.get("timeout", 30.0), settings.NOTIFIER_WORKER_DB_POOL_TIMEOUT_SECONDS)
    threads = instance.pool_cls.__module__ == "celery.concurrency.thread"
    if threads and isinstance(instance.concurrency, int):
        pool_options["max_size"] = max(pool_options.get("max_size", 0), instance.concurrency)
    connection.close()
    connection.close_pool()  # a pool made before now has the old options; the next query makes a new one
