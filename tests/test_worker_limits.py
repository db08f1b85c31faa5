"""What a worker holds unacknowledged can never outlast RabbitMQ's consumer_timeout."""

import socket

import pytest
from django.conf import settings

from celery_app import eta_task_limit
from tests.support.processes import celery_worker, process_env


@pytest.mark.parametrize("concurrency", [1, 2, 8, 16, 64])
def test_a_full_worker_runs_every_message_it_holds_within_the_consumer_timeout(concurrency):
    limit = eta_task_limit(
        concurrency=concurrency,
        task_time_limit=settings.NOTIFIER_SEND_TIME_LIMIT_SECONDS,
        max_countdown=settings.NOTIFIER_MAX_COUNTDOWN_SECONDS,
        consumer_timeout=settings.NOTIFIER_BROKER_CONSUMER_TIMEOUT_SECONDS,
    )
    # The last message held waits for its countdown, then for all held before it, each running
    # for the whole time limit, `concurrency` at a time.
    worst_wait = settings.NOTIFIER_MAX_COUNTDOWN_SECONDS + limit * settings.NOTIFIER_SEND_TIME_LIMIT_SECONDS / concurrency
    assert worst_wait < settings.NOTIFIER_BROKER_CONSUMER_TIMEOUT_SECONDS
    # ... and the limit does not stop the worker prefetching what its pool runs at once.
    assert limit >= concurrency * settings.CELERY_WORKER_PREFETCH_MULTIPLIER


def test_the_limit_follows_slow_tasks_and_short_timeouts():
    assert eta_task_limit(concurrency=16, task_time_limit=120, max_countdown=300, consumer_timeout=1800) == 140
    assert eta_task_limit(concurrency=16, task_time_limit=600, max_countdown=300, consumer_timeout=1800) == 28
    assert eta_task_limit(concurrency=2, task_time_limit=120, max_countdown=300, consumer_timeout=600) == 2
    assert eta_task_limit(concurrency=1, task_time_limit=120, max_countdown=500, consumer_timeout=600) == 1


@pytest.mark.e2e
def test_a_worker_sizes_its_limit_from_the_concurrency_it_runs_with(tmp_path):
    from celery_app import app

    with celery_worker(process_env(), tmp_path, concurrency=3, queues="notifications.pipeline-limits") as worker:
        name = worker.name
        conf = app.control.inspect(destination=[f"{name}@{socket.gethostname()}"], timeout=10).conf()
    [worker_conf] = conf.values()
    assert worker_conf["worker_eta_task_limit"] == eta_task_limit(
        concurrency=3,
        task_time_limit=settings.NOTIFIER_SEND_TIME_LIMIT_SECONDS,
        max_countdown=settings.NOTIFIER_MAX_COUNTDOWN_SECONDS,
        consumer_timeout=settings.NOTIFIER_BROKER_CONSUMER_TIMEOUT_SECONDS,
    )
