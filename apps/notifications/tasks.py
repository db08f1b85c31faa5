"""Celery tasks: thin, given ids only, named explicitly so a rename never strands queued messages."""

import logging

from celery import shared_task
from celery.exceptions import Reject
from django.conf import settings

from apps.notifications.broadcasts import (
    broadcast_fan_out,
    broadcast_id_valid,
    broadcast_record_error,
    broadcasts_resume_stale,
)
from apps.notifications.deferral import delivery_send_lease
from apps.notifications.dispatch import deliveries_mark_unpublished
from apps.notifications.sending import NoSuchDelivery, delivery_send
from apps.notifications.sweep import deliveries_sweep

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="notifier.deliveries.send", acks_late=True, reject_on_worker_lost=True, max_retries=None)
def delivery_send_task(self, delivery_id: str) -> None:
    """Send one delivery. Safe to receive twice: only one worker can claim a delivery.

    acks_late + reject_on_worker_lost: a worker killed mid-task hands the message back to the
    broker. That cannot loop: the delivery is `sending` by then, so the redelivered message is
    not claimable and is acknowledged; the sweep takes the delivery back after its deadline.

    The retry count is bounded by the delivery's attempt budget in the database, not by Celery.
    A retry goes back to the same queue as a countdown message; the sweep covers its loss.
    """
    try:
        with delivery_send_lease(delivery_id=delivery_id, deferrals=self.request.retries) as defer_by:
            if defer_by is not None:
                # Its project has its share of the channel's workers busy: not claimed, so no
                # attempt is spent, and no worker waits for it (see deferral.py).
                _retry(self, delivery_id, countdown=defer_by)
                return
            outcome = delivery_send(delivery_id=delivery_id)
    except NoSuchDelivery as exc:
        # Not requeued: with acks_late the broker dead-letters it to notifications.<channel>.dead.
        raise Reject(str(exc), requeue=False) from exc
    if outcome is not None and outcome.retry_in is not None:
        _retry(self, delivery_id, countdown=outcome.retry_in)


def _retry(task, delivery_id: str, *, countdown: float) -> None:
    try:
        raise task.retry(countdown=countdown, confirm_timeout=settings.NOTIFIER_PUBLISH_CONFIRM_TIMEOUT_SECONDS)
    except Reject:
        # Celery rejects the message into the dead-letter queue when it cannot publish the
        # retry. The row already says when to try again and the sweep publishes it then
        # (recheck_at, brought forward for a queued one), so the message is acknowledged
        # instead: the broker's dead-letter queue keeps only messages nothing else can recover.
        logger.warning("could not publish the retry of delivery %s; the sweep will", delivery_id)
        deliveries_mark_unpublished(delivery_ids=[delivery_id])


@shared_task(name="notifier.deliveries.sweep", ignore_result=False)
def deliveries_sweep_task() -> dict:
    """Republish deliveries that are due or whose message or worker was lost (see sweep.py)."""
    return deliveries_sweep().as_dict()


@shared_task(name="notifier.broadcasts.fan_out", acks_late=True, reject_on_worker_lost=True)
def broadcast_fan_out_task(broadcast_id: str) -> None:
    """Create a broadcast's notifications batch by batch (see broadcasts.py).

    Safe to receive twice or after a crash: every batch continues from the cursor committed with
    the one before. acks_late + reject_on_worker_lost: a killed worker hands the message back.
    """
    if not broadcast_id_valid(broadcast_id):
        logger.error("broadcast fan-out for a malformed id %r ignored", broadcast_id)
        return
    try:
        broadcast_fan_out(broadcast_id=broadcast_id)
    except Exception as exc:
        # Acknowledged either way; the sweep retries a few times, then the broadcast is `failed`.
        logger.exception("fan-out of broadcast %s failed", broadcast_id)
        broadcast_record_error(broadcast_id=broadcast_id, error=exc)


@shared_task(name="notifier.broadcasts.resume", ignore_result=False)
def broadcasts_resume_task() -> int:
    """Republish broadcast fan-outs whose heartbeat went stale (a lost message or worker)."""
    return broadcasts_resume_stale()
