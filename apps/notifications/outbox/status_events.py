"""The outbox of status webhooks: events written in the transaction that changes a delivery's status.

Every place that moves a delivery to a reported status (models.REPORTED_STATUSES) calls
`status_events_record` inside its own transaction, after its UPDATE (or INSERT): the event
commits or rolls back with the change, so a receiver never hears of a change that did not
happen, and a change is never left unreported. One INSERT for a whole batch, and nothing at all
for projects without a status_webhook_url (the caller's project row is already loaded).

The events are published after commit (a message carries up to 100 of one project, on
notifications.status_webhook). A publish that fails, or a message the broker loses, leaves the row `pending`: its `recheck_at`
brings it to the status webhook sweep (status_webhooks/posting.py).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.db.models.functions import Now
from django.utils import timezone

from apps.notifications.models import REPORTED_STATUSES, Delivery, StatusEvent, StatusEventStatus
from apps.notifications.outbox.deliveries import publishing_paused
from apps.notifications.queues import STATUS_WEBHOOK_QUEUE, TASK_STATUS_WEBHOOK_SEND
from apps.projects.models import Project

logger = logging.getLogger(__name__)

# Events of one project a message carries (posted one after the other by one task). Its share
# bounds a project's posts in flight anyway, so a large message costs no parallelism; it saves
# publisher confirms (a broadcast's cancel publishes its events from the API request).
EVENTS_PER_MESSAGE = 100


@dataclass(frozen=True)
class StatusChange:
    """One delivery's move to `status`, as its writer knows it."""

    delivery_id: object
    project_id: int
    status: str
    occurred_at: datetime
    previous_status: str = ""
    error_code: str = ""
    skip_reason: str = ""


def status_hooked(project: Project) -> bool:
    """True when the project wants status webhooks: the cheap check before any outbox work."""
    return bool(project.status_webhook_url)


def status_change(delivery: Delivery, *, previous_status: str = "", occurred_at: datetime | None = None) -> StatusChange:
    """The change a delivery object now stands for (its status, error code and skip reason)."""
    return StatusChange(
        delivery_id=delivery.id, project_id=delivery.notification.project_id, status=delivery.status,
        occurred_at=occurred_at or delivery.status_changed_at, previous_status=previous_status,
        error_code=delivery.last_error_code, skip_reason=delivery.skip_reason,
    )


def status_events_record(*, changes: Sequence[StatusChange], new_deliveries: bool = False) -> list[StatusEvent]:
    """Write the outbox rows of the reported changes, in one INSERT; publish them after commit.

    Call inside the transaction that made the changes, with the deliveries' rows locked by it
    (an UPDATE, SELECT … FOR UPDATE or their INSERT): the lock orders the writers of one
    delivery, so each event's sequence follows the last committed one. `new_deliveries`: the
    deliveries were inserted by this transaction, so each event is their first (no lookup).
    The caller passes only changes of projects for which `status_hooked` is true.
    """
    changes = [c for c in changes if c.status in REPORTED_STATUSES]
    if not changes:
        return []
    last: dict = {}
    if not new_deliveries:
        last = dict(
            StatusEvent.objects.filter(delivery_id__in={c.delivery_id for c in changes})
            .values("delivery_id").annotate(last=Max("sequence")).values_list("delivery_id", "last")
        )
    recheck_at = _published_recheck_at()
    events = [
        StatusEvent(
            project_id=change.project_id, delivery_id=change.delivery_id, sequence=last.get(change.delivery_id, 0) + 1,
            delivery_status=change.status, previous_status=change.previous_status, error_code=change.error_code,
            skip_reason=change.skip_reason, occurred_at=change.occurred_at, recheck_at=recheck_at,
        )
        for change in changes
    ]
    StatusEvent.objects.bulk_create(events)
    status_events_publish_on_commit([(event.id, event.project_id) for event in events])
    return events


def _published_recheck_at() -> datetime:
    # When a published event no worker has taken is presumed lost (as for a queued delivery).
    return timezone.now() + timedelta(seconds=settings.NOTIFIER_QUEUED_TIMEOUT_SECONDS)


def status_events_publish_on_commit(events: Sequence[tuple]) -> None:
    """Publish (event id, project id) pairs once the surrounding transaction commits."""
    if events:
        transaction.on_commit(lambda: status_events_publish(events))


def status_event_messages(events: Sequence[tuple]) -> list[list[str]]:
    """Event ids grouped into messages: one project's events, at most EVENTS_PER_MESSAGE each."""
    by_project: dict = {}
    for event_id, project_id in events:
        by_project.setdefault(project_id, []).append(str(event_id))
    return [ids[start:start + EVENTS_PER_MESSAGE] for ids in by_project.values()
            for start in range(0, len(ids), EVENTS_PER_MESSAGE)]


def status_events_publish(events: Sequence[tuple], *, countdown: float | None = None) -> int:
    """Publish the (event id, project id) pairs on one pooled connection; return how many events
    the broker took.

    A message carries up to EVENTS_PER_MESSAGE events of one project: a publisher confirm costs a
    few milliseconds, and a batch of 50 emails would otherwise wait for 50 of them. Never raises:
    the rows are committed. What could not be published is brought forward for the sweep.
    """
    from celery_app import app

    messages = status_event_messages(events)
    if publishing_paused():
        status_events_mark_unpublished(event_ids=[i for ids in messages for i in ids])
        return 0
    published = 0
    try:
        with app.producer_or_acquire() as producer:
            for ids in messages:
                app.send_task(
                    TASK_STATUS_WEBHOOK_SEND, args=[ids], queue=STATUS_WEBHOOK_QUEUE, countdown=countdown,
                    producer=producer, confirm_timeout=settings.NOTIFIER_PUBLISH_CONFIRM_TIMEOUT_SECONDS,
                )
                published += 1
    except Exception:
        unpublished = [i for ids in messages[published:] for i in ids]
        logger.warning("publishing status webhook events failed; %d left to the sweep", len(unpublished),
                       exc_info=True)
        status_events_mark_unpublished(event_ids=unpublished)
    return sum(len(ids) for ids in messages[:published])


def status_events_mark_unpublished(*, event_ids: Sequence[str]) -> None:
    try:
        StatusEvent.objects.filter(
            id__in=event_ids, status__in=(StatusEventStatus.PENDING, StatusEventStatus.RETRYING)
        ).update(recheck_at=Now())
    except Exception:
        # The database is gone too: recheck_at already expires after the queued timeout.
        logger.exception("could not bring %d unpublished status webhook events forward", len(event_ids))
