"""Celery tasks: thin, given ids only, named explicitly (queues.py) so a rename never strands queued messages."""

import contextlib
import logging

from celery import shared_task
from celery.exceptions import Reject
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from apps.channels.shares import project_share
from apps.core.ids import uuid_or_none
from apps.notifications.delivery.deferral import delivery_send_lease
from apps.notifications.delivery.sending import DatabaseUnavailable, deliveries_send
from apps.notifications.delivery.statistics import delivery_tables_statistics_refresh
from apps.notifications.delivery.sweep import deliveries_sweep
from apps.notifications.delivery.waiting_sends import TakenSends, waiting_sends_taken
from apps.notifications.intake.broadcasts import (
    broadcast_fan_out,
    broadcast_record_error,
    broadcasts_resume_stale,
)
from apps.notifications.outbox.deliveries import deliveries_mark_unpublished, deliveries_publish_alone, delivery_retry_publish
from apps.notifications.outbox.status_events import status_events_mark_unpublished, status_events_publish
from apps.notifications.queues import (
    TASK_BROADCAST_FAN_OUT,
    TASK_BROADCASTS_RESUME,
    TASK_DELIVERIES_SEND_BATCH,
    TASK_DELIVERIES_SWEEP,
    TASK_DELIVERY_SEND,
    TASK_STATISTICS_REFRESH,
    TASK_STATUS_WEBHOOK_SEND,
    TASK_STATUS_WEBHOOKS_SWEEP,
    queue_channel,
)
from apps.notifications.status_webhooks.posting import status_events_send, status_events_sweep

logger = logging.getLogger(__name__)

_SEND_OPTIONS = {"bind": True, "acks_late": True, "reject_on_worker_lost": True, "max_retries": None}


@shared_task(name=TASK_DELIVERY_SEND, **_SEND_OPTIONS)
def delivery_send_task(self, delivery_id: str) -> None:
    """Send one delivery, with the one-delivery messages waiting behind it on a channel that
    sends in batches (a burst of single POSTs: see delivery/waiting_sends.py)."""
    queue = (self.request.delivery_info or {}).get("routing_key") or ""
    if not queue or not isinstance(delivery_id, str):
        _send(self, [delivery_id])
        return
    with waiting_sends_taken(queue=queue, delivery_id=delivery_id) as taken:
        _send(self, [delivery_id], taken=taken)


@shared_task(name=TASK_DELIVERIES_SEND_BATCH, **_SEND_OPTIONS)
def deliveries_send_task(self, delivery_ids: list[str]) -> None:
    """Send several deliveries of one channel: one claim, one connection, one write for all."""
    _send(self, delivery_ids if isinstance(delivery_ids, list) else [delivery_ids])


def _send(task, delivery_ids: list[str], *, taken: TakenSends | None = None) -> None:
    """Safe to receive twice: only one worker can claim a delivery.

    acks_late + reject_on_worker_lost: a worker killed mid-task hands the message back to the
    broker. That cannot loop: the deliveries are `sending` by then, so the redelivered message
    claims nothing and is acknowledged; the sweep takes them back after their deadline.

    The retry count is bounded by each delivery's attempt budget in the database, not by
    Celery. A retry is a countdown message of its own; the sweep covers its loss.
    """
    try:
        with _project_share_lease(task, delivery_ids) as defer_by:
            if defer_by is not None:
                # Its project has its share of the channel's workers busy: not claimed, so no
                # attempt is spent, and no worker waits for it (see delivery/deferral.py).
                _defer(task, delivery_ids[0], countdown=defer_by)
                return
            result = deliveries_send(delivery_ids=[*delivery_ids, *(taken.delivery_ids if taken else ())])
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
    if taken is not None:
        taken.settle(unknown=result.unknown)  # recorded: their messages are done with
    unknown = [delivery_id for delivery_id in result.unknown if delivery_id in delivery_ids]
    if unknown:
        _reject_unknown(task, delivery_ids, unknown)


def _project_share_lease(task, delivery_ids: list[str]):
    """The project's send lease, for a one-delivery message on a channel that bounds shares.

    The channel is read from the queue the message came from, so email and the other channels
    never pay the lookup; a message with no routing key (run in-process) is looked up.
    """
    queue = (task.request.delivery_info or {}).get("routing_key") or ""
    channel = queue_channel(queue)
    if len(delivery_ids) != 1 or (channel and not project_share(channel)):
        return contextlib.nullcontext(None)
    return delivery_send_lease(delivery_id=delivery_ids[0], deferrals=task.request.retries)


def _defer(task, delivery_id: str, *, countdown: float) -> None:
    try:
        raise task.retry(countdown=countdown, confirm_timeout=settings.NOTIFIER_PUBLISH_CONFIRM_TIMEOUT_SECONDS)
    except Reject:
        # Celery rejects the message into the dead-letter queue when it cannot publish the
        # retry. The delivery is still `queued`; bringing its recheck_at forward lets the sweep
        # publish it, so the message is acknowledged instead: the broker's dead-letter queue
        # keeps only messages nothing else can recover.
        logger.warning("could not publish the deferral of delivery %s; the sweep will", delivery_id)
        deliveries_mark_unpublished(delivery_ids=[delivery_id])


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


@shared_task(name=TASK_DELIVERIES_SWEEP, ignore_result=False)
def deliveries_sweep_task() -> dict:
    """Republish deliveries that are due or whose message or worker was lost (see delivery/sweep.py)."""
    return deliveries_sweep().as_dict()


@shared_task(name=TASK_STATISTICS_REFRESH, ignore_result=False)
def statistics_refresh_task() -> list[str]:
    """Analyse the notification and delivery tables that have grown fast (see delivery/statistics.py)."""
    return delivery_tables_statistics_refresh()


@shared_task(name=TASK_BROADCAST_FAN_OUT, acks_late=True, reject_on_worker_lost=True)
def broadcast_fan_out_task(broadcast_id: str) -> None:
    """Create a broadcast's notifications batch by batch (see intake/broadcasts.py).

    Safe to receive twice or after a crash: every batch continues from the cursor committed with
    the one before. acks_late + reject_on_worker_lost: a killed worker hands the message back.
    """
    if uuid_or_none(broadcast_id) is None:
        logger.error("broadcast fan-out for a malformed id %r ignored", broadcast_id)
        return
    try:
        broadcast_fan_out(broadcast_id=broadcast_id)
    except Exception as exc:
        # Acknowledged either way; the sweep retries a few times, then the broadcast is `failed`.
        logger.exception("fan-out of broadcast %s failed", broadcast_id)
        broadcast_record_error(broadcast_id=broadcast_id, error=exc)


@shared_task(name=TASK_BROADCASTS_RESUME, ignore_result=False)
def broadcasts_resume_task() -> int:
    """Republish broadcast fan-outs whose heartbeat went stale (a lost message or worker)."""
    return broadcasts_resume_stale()


@shared_task(name=TASK_STATUS_WEBHOOK_SEND, **_SEND_OPTIONS)
def status_webhook_send_task(self, event_ids: list[str]) -> None:
    """Post status webhook events, up to 100 of one project (see status_webhooks/posting.py). Safe to receive
    twice: only one run claims an event; a lost or failed message is found by the status webhook sweep."""
    try:
        posted = status_events_send(event_ids=event_ids if isinstance(event_ids, list) else [event_ids],
                                    deferrals=self.request.retries)
    except (OperationalError, InterfaceError) as exc:
        # Claimed or not, the rows know: a claimed event comes back through the sweep's deadline.
        connection.close_if_unusable_or_obsolete()
        logger.warning("database unavailable (%s); status webhook events left to the sweep", exc)
        return
    for event_id, project_id, countdown in posted.retries:
        status_events_publish([(event_id, project_id)], countdown=countdown)
    if posted.handed_back:
        status_events_publish(posted.handed_back)
    if posted.deferred:
        deferred = [event_id for event_id, _ in posted.deferred]
        try:
            raise self.retry(args=[deferred], countdown=posted.defer_by,
                             confirm_timeout=settings.NOTIFIER_PUBLISH_CONFIRM_TIMEOUT_SECONDS)
        except Reject:
            status_events_mark_unpublished(event_ids=deferred)


@shared_task(name=TASK_STATUS_WEBHOOKS_SWEEP, ignore_result=False)
def status_webhooks_sweep_task() -> int:
    """Publish again the status webhook events whose message or worker was lost, or whose retry is due."""
    return status_events_sweep()
