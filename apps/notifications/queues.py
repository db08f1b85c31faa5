"""The one home of the broker's queue and task names: settings, the publisher, the sweep and the
`dlq` command all read them here, so a message can never go to a queue declared differently.

A channel's queue, `notifications.<channel>`, carries sends; RabbitMQ dead-letters what a worker
rejects there to `notifications.<channel>.dead` through the dead-letter exchange. Queue arguments
are sticky in RabbitMQ (redeclaring with other ones fails), so they are fixed here once: that
exchange, and three priority levels.

Imported by the settings: nothing here may import Django models or settings.
"""

import logging
from collections.abc import Iterable

from kombu import Connection, Exchange, Queue

logger = logging.getLogger(__name__)

EXCHANGE = "notifications"
DEAD_LETTER_EXCHANGE = "notifications.dlx"
MAX_PRIORITY = 3
# RabbitMQ priorities (below MAX_PRIORITY): higher goes first.
PRIORITY_LEVELS = {"high": 2, "normal": 1, "low": 0}

_QUEUE_PREFIX = "notifications."
_DEAD_SUFFIX = ".dead"
MAINTENANCE_QUEUE = "notifications.maintenance"
BROADCAST_QUEUE = "notifications.broadcast"  # the default of NOTIFIER_BROADCAST_QUEUE
# Status webhooks (the project's status_webhook_url), apart from sends: a receiver that hangs
# there never delays a notification, and the other way round.
STATUS_WEBHOOK_QUEUE = "notifications.status_webhook"
# Workflow runs moving to their next step (apps.workflows): short database work, apart from sends.
WORKFLOW_QUEUE = "notifications.workflow"

# Task names are part of the messages in the queues: renaming one strands what is queued.
TASK_DELIVERY_SEND = "notifier.deliveries.send"
TASK_DELIVERIES_SEND_BATCH = "notifier.deliveries.send_batch"
TASK_DELIVERIES_SWEEP = "notifier.deliveries.sweep"
TASK_STATISTICS_REFRESH = "notifier.statistics.refresh"
TASK_BROADCAST_FAN_OUT = "notifier.broadcasts.fan_out"
TASK_BROADCASTS_RESUME = "notifier.broadcasts.resume"
TASK_RETENTION_PURGE = "notifier.retention.purge"
TASK_STATUS_WEBHOOK_SEND = "notifier.status_webhooks.send"
TASK_STATUS_WEBHOOKS_SWEEP = "notifier.status_webhooks.sweep"
TASK_WORKFLOW_RUN_ADVANCE = "notifier.workflows.advance"
TASK_WORKFLOW_RUNS_SCAN = "notifier.workflows.scan"


def queue_name(channel: str) -> str:
    return f"{_QUEUE_PREFIX}{channel}"


def dead_letter_queue_name(channel: str) -> str:
    return f"{queue_name(channel)}{_DEAD_SUFFIX}"


def queue_channel(queue: str) -> str:
    """The channel a queue carries ("" for a message with no queue, run in-process)."""
    return queue.removeprefix(_QUEUE_PREFIX)


def dead_letter_origin(dead_letter_queue: str) -> str:
    return dead_letter_queue.removesuffix(_DEAD_SUFFIX)


def celery_queues(*, channels: Iterable[str], broadcast_queue: str) -> list[Queue]:
    """The queues workers consume (CELERY_TASK_QUEUES)."""
    exchange = Exchange(EXCHANGE, type="direct", durable=True)
    arguments = {"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE, "x-max-priority": MAX_PRIORITY}
    return [
        Queue(queue_name(channel), exchange, routing_key=queue_name(channel), durable=True, queue_arguments=arguments)
        for channel in channels
    ] + [
        Queue(MAINTENANCE_QUEUE, exchange, routing_key=MAINTENANCE_QUEUE),
        # Broadcast fan-outs run for seconds to minutes: on their own queue, they never hold up the sweep.
        Queue(broadcast_queue, exchange, routing_key=broadcast_queue, durable=True),
        # No dead-letter exchange: the outbox rows are the truth, and their sweep recovers any loss.
        Queue(STATUS_WEBHOOK_QUEUE, exchange, routing_key=STATUS_WEBHOOK_QUEUE, durable=True),
        # No dead-letter exchange either: a run's row holds its due time, and the scan finds it.
        Queue(WORKFLOW_QUEUE, exchange, routing_key=WORKFLOW_QUEUE, durable=True),
    ]


def dead_letter_queues(*, channels: Iterable[str]) -> list[Queue]:
    """What the broker dead-letters (rejected, undecodable), one queue per channel, kept until an
    operator looks (`manage.py dlq`). Declared when a worker starts, never consumed by one."""
    exchange = Exchange(DEAD_LETTER_EXCHANGE, type="direct", durable=True)
    return [
        Queue(dead_letter_queue_name(channel), exchange, routing_key=queue_name(channel), durable=True)
        for channel in channels
    ]


def celery_task_routes(*, broadcast_queue: str) -> dict:
    """Sends are published to their channel queue explicitly (outbox/deliveries.py); periodic work goes to maintenance."""
    return {
        TASK_DELIVERIES_SWEEP: {"queue": MAINTENANCE_QUEUE},
        TASK_STATISTICS_REFRESH: {"queue": MAINTENANCE_QUEUE},
        TASK_BROADCASTS_RESUME: {"queue": MAINTENANCE_QUEUE},
        TASK_RETENTION_PURGE: {"queue": MAINTENANCE_QUEUE},
        TASK_BROADCAST_FAN_OUT: {"queue": broadcast_queue},
        TASK_STATUS_WEBHOOKS_SWEEP: {"queue": MAINTENANCE_QUEUE},
        TASK_STATUS_WEBHOOK_SEND: {"queue": STATUS_WEBHOOK_QUEUE},
        TASK_WORKFLOW_RUN_ADVANCE: {"queue": WORKFLOW_QUEUE},
        # On the workflow queue too: a busy maintenance queue must not delay a wait that is due.
        TASK_WORKFLOW_RUNS_SCAN: {"queue": WORKFLOW_QUEUE},
    }


def queue_depths(
    names: Iterable[str], *, broker_url: str, transport_options: dict, timeout: float
) -> dict[str, int | None] | None:
    """Messages (ready and unacknowledged) in each named queue, None for a queue not declared yet.

    Read with passive declares, which create nothing, on one short-lived connection whose every
    wait is bounded by `timeout`: a broker that is down or silent gives None, so the dashboard
    says "unavailable" and a metrics scrape still answers, neither hangs.
    """
    options = {**transport_options, "connect_timeout": timeout, "read_timeout": timeout, "write_timeout": timeout}
    try:
        with Connection(broker_url, connect_timeout=timeout, heartbeat=0, transport_options=options) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
            return {name: _depth(connection, name) for name in names}
    except Exception as exc:  # the broker's errors vary by transport; any of them means "no answer"
        logger.warning("queue depths: the broker did not answer: %s: %s", type(exc).__name__, exc)
        return None


def _depth(connection, name: str) -> int | None:
    # A channel per queue: a passive declare of a missing queue closes the channel it runs on.
    channel = connection.channel()
    try:
        return channel.queue_declare(queue=name, passive=True).message_count
    except connection.channel_errors:
        return None
    finally:
        try:
            channel.close()
        except connection.connection_errors + connection.channel_errors:
            pass
