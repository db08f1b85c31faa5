"""Posting status webhook events (the outbox of outbox/status_events.py) to the project's status_webhook_url.

A message on notifications.status_webhook carries up to 100 events of one project; its task posts
them one after the other, each the way a delivery is sent: claimed with one conditional UPDATE (a
duplicate message claims nothing), posted signed like the webhook channel
(apps/channels/signed_post.py), and its outcome recorded on the row. A receiver
that fails with a timeout, a connection error, 408/425/429 or a 5xx is tried again with the
deliveries' backoff (honouring Retry-After) up to NOTIFIER_STATUS_WEBHOOK_MAX_ATTEMPTS, then the
event is `dead`; any other 4xx, or an address not allowed, makes it `failed` at once. Both stay
in the admin, where an operator replays them.

Delivery is at least once: a post the receiver took but whose answer was lost is posted again,
with the same event id (`webhook-id`, and X-Notifier-Event-Id) for the receiver to drop the repeat.

Fairness: each post first takes a lease of its project's share (apps/channels/shares.py); one
over the share is deferred without being claimed, so a receiver that hangs holds at most that
many workers and the other projects' events go on.

The sweep (a beat task) takes back events past their `recheck_at`: a publish that failed, a
message the broker lost, a countdown retry that never came back, a worker killed mid-post.
"""

import json
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.channels.base import PermanentProviderError, ProviderError, TransientProviderError
from apps.channels.headers import DELIVERY_ID_HEADER
from apps.channels.shares import STATUS_WEBHOOK_SHARE, project_send_lease
from apps.channels.signed_post import STATUS_WEBHOOK_PURPOSE, SignedPoster, signed_headers
from apps.core.audit import audit_record
from apps.core.ids import uuids_split
from apps.notifications.delivery.recording import retry_delay
from apps.notifications.models import ACTIVE_EVENT_STATUSES, StatusEvent, StatusEventStatus
from apps.notifications.outbox.status_events import status_events_publish_on_commit
from apps.projects.selectors import project_webhook_secrets

logger = logging.getLogger(__name__)

EVENT_TYPE = "delivery.status_changed"
EVENT_ID_HEADER = "X-Notifier-Event-Id"
REQUEST_ID_HEADER = "X-Request-ID"
USER_AGENT = "Notifier-StatusWebhook/1"
REPLAYABLE_EVENT_STATUSES = (StatusEventStatus.FAILED, StatusEventStatus.DEAD)
# A countdown message is timed by the worker's clock: it may arrive a little early.
_CLOCK_SKEW = timedelta(seconds=1)
_SWEEP_BATCH_SIZE = 500
_SWEEP_MAX_BATCHES = 20

_poster: SignedPoster | None = None


@dataclass
class EventsPosted:
    """What one run of the task did, and what it leaves to schedule."""

    statuses: dict[str, str] = field(default_factory=dict)  # event id → its status, for those claimed
    retries: list[tuple[str, int, float]] = field(default_factory=list)  # (event id, project id, countdown)
    # Not tried: the project's share was taken, or its receiver just failed. Publish again after defer_by.
    deferred: list[tuple[str, int]] = field(default_factory=list)
    defer_by: float | None = None
    # Not tried for want of time in this run: publish again now.
    handed_back: list[tuple[str, int]] = field(default_factory=list)


def _poster_get() -> SignedPoster:
    global _poster
    if _poster is None:
        total = settings.NOTIFIER_STATUS_WEBHOOK_TIMEOUT_SECONDS
        _poster = SignedPoster(what="status webhook", url_field="status_webhook_url",
                               connect_timeout=min(5.0, total), read_timeout=total, total_timeout=total)
    return _poster


def status_events_send(*, event_ids: Iterable[str], deferrals: int = 0) -> EventsPosted:
    """Post each due event among `event_ids` that nobody else is posting, one after the other, and
    record each outcome. `deferrals`: how often this message was deferred already.

    Each project's events are posted under one lease of its share. Once its receiver fails with
    a transient error, the project's remaining events are not tried now (they would meet the same
    receiver): they are deferred. A run starts no post past half the task's time limit; what is
    left is handed back to be published again.
    """
    result = EventsPosted()
    ids, malformed = uuids_split(event_ids)
    for raw in malformed:
        logger.error("status webhook message for a malformed id %r dropped", raw)
    projects = {str(event_id): project_id for event_id, project_id
                in StatusEvent.objects.filter(id__in=ids).values_list("id", "project_id")}
    stop_at = time.monotonic() + settings.NOTIFIER_SEND_TIME_LIMIT_SECONDS / 2
    by_project: dict[int, list[str]] = {}
    for event_id in ids:
        if event_id in projects:  # an event deleted with its project since is dropped
            by_project.setdefault(projects[event_id], []).append(event_id)
    for project_id, group in by_project.items():
        with project_send_lease(channel=STATUS_WEBHOOK_SHARE, project_id=project_id) as leased:
            if not leased:
                result.deferred += [(event_id, project_id) for event_id in group]
                continue
            for index, event_id in enumerate(group):
                if time.monotonic() > stop_at:
                    result.handed_back += [(i, project_id) for i in group[index:]]
                    break
                posted = _send_one(event_id, result)
                if posted in (StatusEventStatus.RETRYING, StatusEventStatus.DEAD):
                    result.deferred += [(i, project_id) for i in group[index + 1:]]
                    break
    if result.deferred:
        wait = min(settings.NOTIFIER_SHARE_DEFER_SECONDS * 2 ** min(deferrals, 16), settings.NOTIFIER_SHARE_DEFER_MAX_SECONDS)
        result.defer_by = random.uniform(wait / 2, wait)  # deferred posts of one project spread out
    return result


def _send_one(event_id: str, result: EventsPosted) -> str | None:
    event = _claim(event_id)
    if event is None:
        return None
    try:
        answer = _post(event)
    except ProviderError as error:
        status, retry_in = _record_error(event, error)
        if retry_in is not None:
            result.retries.append((event_id, event.project_id, retry_in))
    except SoftTimeLimitExceeded:
        raise  # the task's time is up: the event stays `sending`, for the sweep to take back
    except Exception as exc:
        # A bug of ours, not the receiver's answer: failed, for an operator to replay after the fix.
        logger.exception("status webhook event %s: internal error", event_id)
        status, _ = _record_error(event, PermanentProviderError(f"{type(exc).__name__}: {exc}", code="internal_error"))
    else:
        status = _record_sent(event, answer)
    result.statuses[event_id] = status
    return status


def _claim(event_id: str) -> StatusEvent | None:
    now = timezone.now()
    claimed = StatusEvent.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + _CLOCK_SKEW),
        id=event_id, status__in=(StatusEventStatus.PENDING, StatusEventStatus.RETRYING),
    ).update(
        status=StatusEventStatus.SENDING, attempts=F("attempts") + 1,
        recheck_at=now + timedelta(seconds=settings.NOTIFIER_SENDING_TIMEOUT_SECONDS),
    )
    if not claimed:
        return None
    return StatusEvent.objects.select_related("project", "delivery__notification").get(id=event_id)


def status_event_body(event: StatusEvent) -> dict:
    """The JSON a receiver gets (docs/api.md, "Status webhooks")."""
    delivery = event.delivery
    notification = delivery.notification
    return {
        "id": str(event.id),
        "type": EVENT_TYPE,
        "sequence": event.sequence,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "delivery_id": str(delivery.id),
        "notification_id": str(notification.id),
        "channel": delivery.channel,
        "status": event.delivery_status,
        "previous_status": event.previous_status or None,
        "error_code": event.error_code or None,
        "skip_reason": event.skip_reason or None,
        "to": notification.to,
        "correlation_id": notification.correlation_id or None,
    }


def _post(event: StatusEvent) -> dict:
    project = event.project
    if not project.status_webhook_url:
        raise PermanentProviderError("The project has no status_webhook_url any more.", code="not_configured")
    if not project.webhook_secret:
        raise PermanentProviderError("The project has no webhook_secret to sign status webhooks with; set one "
                                     "(PATCH /api/v1/project) and replay the event.", code="webhook_secret_missing")
    body_fields = status_event_body(event)
    body = json.dumps(body_fields, separators=(",", ":"), ensure_ascii=False).encode()
    headers = signed_headers(secrets=project_webhook_secrets(project=project), purpose=STATUS_WEBHOOK_PURPOSE,
                             message_id=str(event.id), body=body, user_agent=USER_AGENT)
    headers[EVENT_ID_HEADER] = str(event.id)
    headers[DELIVERY_ID_HEADER] = body_fields["delivery_id"]
    if body_fields["correlation_id"]:
        headers[REQUEST_ID_HEADER] = body_fields["correlation_id"]
    return _poster_get().post(project.status_webhook_url, body=body, headers=headers)


def _still_ours(event: StatusEvent):
    # The claim holds while the row is `sending` under this attempt: the sweep may have taken it back.
    return StatusEvent.objects.filter(id=event.id, status=StatusEventStatus.SENDING, attempts=event.attempts)


def _record_sent(event: StatusEvent, answer: dict) -> str:
    _still_ours(event).update(status=StatusEventStatus.SENT, sent_at=timezone.now(), next_attempt_at=None,
                              recheck_at=None, last_error_code="", last_error="")
    return StatusEventStatus.SENT


def _record_error(event: StatusEvent, error: ProviderError) -> tuple[str, float | None]:
    """Record a failed post; return the event's status and the countdown of its retry, if any."""
    fields = {"last_error_code": error.code[:100], "last_error": error.message, "next_attempt_at": None,
              "recheck_at": None}
    retry_in = None
    if not isinstance(error, TransientProviderError):
        status = StatusEventStatus.FAILED
    elif event.attempts >= settings.NOTIFIER_STATUS_WEBHOOK_MAX_ATTEMPTS:
        status = StatusEventStatus.DEAD
    else:
        status = StatusEventStatus.RETRYING
        delay = retry_delay(attempt=event.attempts, retry_after=error.retry_after)
        next_attempt_at = timezone.now() + timedelta(seconds=delay)
        by_countdown = delay <= settings.NOTIFIER_MAX_COUNTDOWN_SECONDS
        # A wait too long for a countdown message is the sweep's to publish when due.
        fields.update(next_attempt_at=next_attempt_at, recheck_at=next_attempt_at + timedelta(
            seconds=settings.NOTIFIER_RETRY_GRACE_SECONDS if by_countdown else 0))
        retry_in = delay if by_countdown else None
    recorded = _still_ours(event).update(status=status, **fields)
    level = logging.INFO if status == StatusEventStatus.RETRYING else logging.WARNING
    logger.log(level, "status webhook event %s of project %s: %s (%s), now %s", event.id, event.project_id,
               error.code, error.message, status)
    return status, (retry_in if recorded else None)


def status_events_sweep() -> int:
    """Publish again the events past their recheck_at; return how many. Batches under SKIP LOCKED,
    so several sweeps share the work."""
    total = 0
    for _ in range(_SWEEP_MAX_BATCHES):
        taken = _sweep_batch()
        total += taken
        if taken < _SWEEP_BATCH_SIZE:
            break
    if total:
        logger.info("status webhook sweep: %d events published again", total)
    return total


@transaction.atomic
def _sweep_batch() -> int:
    now = timezone.now()
    overdue = list(
        StatusEvent.objects.select_for_update(skip_locked=True)
        .filter(status__in=ACTIVE_EVENT_STATUSES, recheck_at__lte=now)
        .order_by("recheck_at").values_list("id", "project_id", "status", "attempts")[:_SWEEP_BATCH_SIZE]
    )
    if not overdue:
        return 0
    # A worker died mid-post: that attempt counts, as for a delivery.
    lost = [(event_id, attempts) for event_id, _, status, attempts in overdue if status == StatusEventStatus.SENDING]
    exhausted = {event_id for event_id, attempts in lost if attempts >= settings.NOTIFIER_STATUS_WEBHOOK_MAX_ATTEMPTS}
    StatusEvent.objects.filter(id__in=exhausted).update(
        status=StatusEventStatus.DEAD, recheck_at=None, next_attempt_at=None, last_error_code="worker_lost",
        last_error="The worker stopped while posting; attempts exhausted.")
    StatusEvent.objects.filter(id__in=[event_id for event_id, _ in lost if event_id not in exhausted]).update(
        status=StatusEventStatus.RETRYING, next_attempt_at=None, last_error_code="worker_lost",
        last_error="The worker stopped while posting; the outcome is unknown.")
    again = [(event_id, project_id) for event_id, project_id, _, _ in overdue if event_id not in exhausted]
    StatusEvent.objects.filter(id__in=[event_id for event_id, _ in again]).update(
        recheck_at=now + timedelta(seconds=settings.NOTIFIER_QUEUED_TIMEOUT_SECONDS))
    status_events_publish_on_commit(again)
    return len(overdue)


@transaction.atomic
def status_events_replay(*, event_ids: Iterable, actor=None, actor_label: str = "") -> int:
    """Post failed or dead events again with a fresh attempt budget; return how many.

    Anything else among the ids (sent, or already replayed) is left alone. The operator (`actor`, an
    admin user, or `actor_label`) is recorded in the audit log with the change.
    """
    events = list(
        StatusEvent.objects.select_for_update()
        .filter(id__in=list(event_ids), status__in=REPLAYABLE_EVENT_STATUSES).values_list("id", "project_id")
    )
    StatusEvent.objects.filter(id__in=[event_id for event_id, _ in events]).update(
        status=StatusEventStatus.PENDING, attempts=0, next_attempt_at=None,
        recheck_at=timezone.now() + timedelta(seconds=settings.NOTIFIER_QUEUED_TIMEOUT_SECONDS),
    )
    status_events_publish_on_commit(events)
    audit_record(action="status_events.replay", target="notifications.statusevent", count=len(events), actor=actor,
                 actor_label=actor_label, ids=[event_id for event_id, _ in events])
    if events:
        logger.info("status webhook events replayed: %s", ", ".join(str(event_id) for event_id, _ in events))
    return len(events)
