"""The watchdog that makes "accepted" mean "will reach a final state".

Every active delivery carries `recheck_at`: the moment by which something should have moved it.
The sweep (a beat task) takes the deliveries past it and puts them back on their queue:
- `pending` whose time has come (scheduled sends);
- `queued` whose message never reached a worker (publish failed, broker lost it);
- `retrying` whose countdown message never came back, or whose wait was too long for one;
- `sending` whose worker died mid-send: the attempt is recorded as lost and counts (and the
  delivery ends `cancelled` if a cancel came meanwhile).
Any of them on a channel no longer enabled ends `dead` (`channel_disabled`) instead, so one
channel turned off never stops the sweep for the others.

Rows are locked with SKIP LOCKED, so several sweeps at once share the work instead of publishing
twice, and the partial index on active deliveries keeps an idle sweep to one cheap query.

A `queued` delivery past its deadline may be lost, or only waiting behind a long backlog: the
sweep cannot tell. It publishes again (a spare message is harmless: only one claim wins), and
waits as long again as the delivery has already been queued before the next try, so a backlog
of hours costs a handful of spare messages per delivery, not one per deadline.
"""

import logging
from collections import Counter as Tally
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, DurationField, Expression, ExpressionWrapper, F, Value
from django.db.models.functions import Greatest, Least, Now

from apps.channels.registry import ChannelDisabled, channel_enabled, max_attempts
from apps.notifications.metrics import sweep_observe
from apps.notifications.models import ACTIVE_STATUSES, AttemptOutcome, Delivery, DeliveryAttempt, DeliveryStatus
from apps.notifications.outbox.deliveries import (
    deliveries_publish_on_commit,
    delivery_message,
    publishing_paused,
    queued_recheck_at,
)
from apps.notifications.outbox.status_events import StatusChange, status_events_record, status_hooked
from apps.notifications.queues import queue_name
from apps.notifications.workflow_hooks import deliveries_settled

logger = logging.getLogger(__name__)

# A sweep run stops after this many batches so one run never outlives its beat interval by much.
_MAX_BATCHES_PER_RUN = 20
# A long-queued delivery is published again at most this many queued timeouts apart.
_MAX_QUEUED_WAIT_FACTOR = 8


@dataclass
class SweepResult:
    requeued: int = 0
    worker_lost: int = 0
    dead: int = 0
    cancelled: int = 0
    # For /metrics: deliveries the run ended, by (channel, status), and lost attempts by channel.
    ended_by_channel: Tally = field(default_factory=Tally, repr=False)
    lost_by_channel: Tally = field(default_factory=Tally, repr=False)

    def as_dict(self) -> dict:
        return {"requeued": self.requeued, "worker_lost": self.worker_lost, "dead": self.dead,
                "cancelled": self.cancelled}


def deliveries_sweep(*, batch_size: int | None = None, max_batches: int = _MAX_BATCHES_PER_RUN) -> SweepResult:
    """Take back what is overdue now, batch by batch; each delivery at most once per run.

    Only deliveries overdue when the run starts are taken: a publish that fails moves its
    deliveries' recheck_at to the moment of failure, and the run must not take them again in
    its next batch (they are the next run's). After such a failure publishing is paused in this
    process, so the run stops there rather than taking more deliveries it cannot publish.
    """
    batch_size = batch_size or settings.NOTIFIER_SWEEP_BATCH_SIZE
    result = SweepResult()
    overdue_at = None  # the database's time when the first batch was read
    for _ in range(max_batches):
        taken, overdue_at = _sweep_batch(overdue_at=overdue_at, batch_size=batch_size, result=result)
        if taken < batch_size or publishing_paused():
            break
    if result.requeued or result.dead or result.cancelled:
        logger.info("sweep: %s", result.as_dict())
    sweep_observe(result)
    return result


@transaction.atomic
def _sweep_batch(*, overdue_at: datetime | None, batch_size: int, result: SweepResult) -> tuple[int, datetime | None]:
    """Take one batch: a fixed handful of queries, however many deliveries it holds.

    Deadlines are compared with the database's clock (Now()), not this host's: a beat on a host
    running fast must not take back a send still within its deadline. Each row read carries
    that time, so reading it costs no query of its own.
    """
    overdue = list(
        Delivery.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("notification__project")
        .annotate(db_now=Now())
        .filter(status__in=ACTIVE_STATUSES, recheck_at__lte=overdue_at or Now())
        .order_by("recheck_at")[:batch_size]
    )
    if not overdue:
        return 0, overdue_at
    now = overdue[0].db_now

    lost = [d for d in overdue if d.status == DeliveryStatus.SENDING]
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            delivery=d, number=d.attempt_count, started_at=d.status_changed_at, outcome=AttemptOutcome.WORKER_LOST,
            error_code="worker_lost", error_message="The worker stopped while sending; the outcome is unknown.",
        )
        for d in lost
    )
    result.worker_lost += len(lost)
    result.lost_by_channel.update(d.channel for d in lost)

    # A cancel came while it was being sent: whatever that attempt did, nothing more is sent.
    cancelled = [d.id for d in lost if d.cancel_requested_at is not None]
    Delivery.objects.filter(id__in=cancelled).update(
        status=DeliveryStatus.CANCELLED, status_changed_at=now, recheck_at=None, next_attempt_at=None
    )
    result.cancelled += len(cancelled)
    ended = set(cancelled)

    # A channel turned off (SMS or push without credentials) cannot send these, but nothing is
    # wrong with them: dead, to be replayed once it is configured again.
    dead: dict = {}  # delivery id → its error code
    for channel in {d.channel for d in overdue if not channel_enabled(d.channel)}:
        ids = [d.id for d in overdue if d.channel == channel and d.id not in ended]
        _make_dead(ids, now=now, code=ChannelDisabled.code, message=ChannelDisabled(channel).message, dead=dead)
    exhausted = [d.id for d in lost if d.id not in ended | set(dead) and d.budget_attempts >= max_attempts(d.channel)]
    _make_dead(exhausted, now=now, code="worker_lost", message="The worker stopped while sending; attempts exhausted.",
               dead=dead)
    _end_unconsumed(overdue, ended=ended | set(dead), now=now, dead=dead)
    result.dead += len(dead)
    ended |= set(dead)
    channels = {d.id: d.channel for d in overdue}
    result.ended_by_channel.update((channels[i], DeliveryStatus.CANCELLED) for i in cancelled)
    result.ended_by_channel.update((channels[i], DeliveryStatus.DEAD) for i in dead)

    _status_events(overdue, cancelled=set(cancelled), dead=dead, now=now)
    deliveries_settled([d.notification_id for d in overdue if d.id in ended and d.notification.workflow_key])

    requeue = [d for d in overdue if d.id not in ended]
    Delivery.objects.filter(id__in=[d.id for d in requeue if d.status != DeliveryStatus.QUEUED]).update(
        status=DeliveryStatus.QUEUED, status_changed_at=now, recheck_at=queued_recheck_at(now)
    )
    Delivery.objects.filter(id__in=[d.id for d in requeue if d.status == DeliveryStatus.QUEUED]).update(
        recheck_at=_queued_again_recheck_at(now)
    )
    deliveries_publish_on_commit([delivery_message(d, priority=d.notification.priority) for d in requeue])
    result.requeued += len(requeue)
    return len(overdue), overdue_at or now


def _status_events(overdue: list[Delivery], *, cancelled: set, dead: dict, now: datetime) -> None:
    """The status webhook events of what this batch ended, in its transaction."""
    status_events_record(changes=[
        StatusChange(delivery_id=d.id, project_id=d.notification.project_id, occurred_at=now,
                     status=DeliveryStatus.CANCELLED if d.id in cancelled else DeliveryStatus.DEAD,
                     previous_status=d.status, error_code=dead.get(d.id, ""))
        for d in overdue if (d.id in cancelled or d.id in dead) and status_hooked(d.notification.project)
    ])


def _end_unconsumed(overdue: list[Delivery], *, ended: set, now: datetime, dead: dict) -> None:
    """Queued deliveries no worker has taken for NOTIFIER_QUEUED_MAX_AGE_SECONDS end `dead`.

    Most likely nothing consumes their channel's queue (a worker started with -Q leaving it
    out): publishing them again every few hours would never end, and nobody would be told.
    """
    max_age = timedelta(seconds=settings.NOTIFIER_QUEUED_MAX_AGE_SECONDS)
    for channel in {d.channel for d in overdue}:
        stale = [d.id for d in overdue if d.channel == channel and d.id not in ended
                 and d.status == DeliveryStatus.QUEUED and now - d.status_changed_at > max_age]
        _make_dead(stale, now=now, code="not_consumed", message=(
            f"No worker took it from the {queue_name(channel)} queue within {max_age}: is a worker "
            "consuming that queue? Replay it once one is."
        ), dead=dead)


def _make_dead(ids: list, *, now: datetime, code: str, message: str, dead: dict) -> None:
    """End these deliveries `dead` with the code and message; note each in `dead` (id → code)."""
    if ids:
        Delivery.objects.filter(id__in=ids).update(
            status=DeliveryStatus.DEAD, status_changed_at=now, recheck_at=None, next_attempt_at=None,
            last_error_code=code, last_error=message,
        )
        dead.update(dict.fromkeys(ids, code))


def _queued_again_recheck_at(now: datetime) -> Expression:
    """now + the time the delivery has been queued (status_changed_at is when it was first
    queued), at least one queued timeout and at most _MAX_QUEUED_WAIT_FACTOR of them.

    One expression for the whole batch instead of an UPDATE per row. Portable: on SQLite, Django
    computes the datetime difference in microseconds, MAX/MIN compare those integers, and adding
    them to a datetime gives its usual text form.
    """
    timeout = timedelta(seconds=settings.NOTIFIER_QUEUED_TIMEOUT_SECONDS)
    queued_for = ExpressionWrapper(Value(now) - F("status_changed_at"), output_field=DurationField())
    wait = Least(Greatest(queued_for, Value(timeout)), Value(timeout * _MAX_QUEUED_WAIT_FACTOR))
    return ExpressionWrapper(Value(now) + wait, output_field=DateTimeField())
