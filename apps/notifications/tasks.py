"""Celery tasks: thin, given ids only, named explicitly so a rename never strands queued messages."""

import logging

from celery import shared_task
from celery.exceptions import Reject
from django.conf import settings

from apps.notifications.dispatch import deliveries_publish_alone, delivery_retry_publish
from apps.notifications.sending import DatabaseUnavailable, deliveries_send
from apps.notifications.sweep import deliveries_sweep

logger = logging.getLogger(__name__)

_SEND_OPTIONS = {"bind": True, "acks_late": True, "reject_on_worker_lost": True, "max_retries": None}


@shared_task(name="notifier.deliveries.send", **_SEND_OPTIONS)
def delivery_send_task(self, delivery_id: str) -> None:
    """Send one delivery (the channels that do not batch, and messages from before batching)."""
    _send(self, [delivery_id])


@shared_task(name="notifier.deliveries.send_batch", **_SEND_OPTIONS)
def deliveries_send_task(self, delivery_ids: list[str]) -> None:
    """Send several deliveries of one channel: one claim, one connection, one write for all."""
    _send(self, delivery_ids if isinstance(delivery_ids, list) else [delivery_ids])


def _send(task, delivery_ids: list[str]) -> None:
    """Safe to receive twice: only one worker can claim a delivery.

    acks_late + reject_on_worker_lost: a worker killed mid-task hands the message back to the
    broker. That cannot loop: the deliveries are `sending` by then, so the redelivered message
    claims nothing and is acknowledged; the sweep takes them back after their deadline.

    The retry count is bounded by each delivery's attempt budget in the database, not by
    Celery. A retry is a countdown message of its own; the sweep covers its loss.
    """
    try:
        result = deliveries_send(delivery_ids=delivery_ids)
    except DatabaseUnavailable as exc:
        # Nothing was claimed, so nothing was sent: try the same message again in a few seconds
        # rather than leave it to the sweep's queued deadline (an exception would only be acked).
        countdown = min(settings.NOTIFIER_DATABASE_RETRY_SECONDS * 2 ** task.request.retries,
                        settings.NOTIFIER_DATABASE_RETRY_MAX_SECONDS)
        logger.warning("database unavailable (%s); %d deliveries tried again in %.0fs", exc, len(delivery_ids),
                       countdown)
        try:
            raise task.retry(countdown=countdown, confirm_timeout=settings.NOTIFIER_PUBLISH_CONFIRM_TIMEOUT_SECONDS)
        except Reject:
            # The broker would not take the retry either: hand this message back instead.
            raise Reject("database and broker unavailable", requeue=True) from exc
    for delivery, countdown in result.retries:
        delivery_retry_publish(delivery=delivery, countdown=countdown)
    if result.unknown:
        _reject_unknown(task, delivery_ids, result.unknown)


def _reject_unknown(task, delivery_ids: list[str], unknown: list[str]) -> None:
    """Send ids that name no delivery to the broker's dead-letter queue, one message each.

    Not requeued: with acks_late the broker dead-letters a rejected message to
    notifications.<channel>.dead. A batch's other deliveries were sent, so its unknown ids go
    back to the queue alone first, where they are rejected in turn: an operator then replays or
    discards each by its id (`manage.py dlq`). If that publish fails, the whole batch is
    rejected instead; replaying it finds the others claimed.
    """
    if len(delivery_ids) > 1:
        info = task.request.delivery_info or {}
        if deliveries_publish_alone(delivery_ids=unknown, queue=info.get("routing_key", ""),
                                    priority=info.get("priority")):
            return
    raise Reject(f"no delivery {', '.join(unknown)}", requeue=False)


@shared_task(name="notifier.deliveries.sweep", ignore_result=False)
def deliveries_sweep_task() -> dict:
    """Republish deliveries that are due or whose message or worker was lost (see sweep.py)."""
    return deliveries_sweep().as_dict()
