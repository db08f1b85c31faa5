"""Broadcasts: one template to many users, fanned out in the background into one notification each.

`POST /broadcasts` stores a row and publishes its id to `notifications.broadcast`. The fan-out task
works in batches of NOTIFIER_BROADCAST_BATCH_SIZE users; each batch is one transaction that holds
the broadcast's row lock and does a fixed handful of queries: the next users by keyset pagination
(`id > cursor`, or the next slice of the `to` list), the batched notification create (templates,
one INSERT of notifications and one of deliveries), and the row's new cursor, counters and
heartbeat. The batch's deliveries are published once it commits. So:

- memory is one batch, whatever the audience: users are never all loaded, `to` is sliced;
- a worker killed mid-batch loses only that uncommitted batch, which the next run does again from
  the committed cursor (and the unique (broadcast, recipient) index refuses any second notification);
- two runs at once (a message redelivered while the sweep republished it) take turns on the row
  lock and each continues from the cursor the other committed;
- a cancel takes the row lock too: once it commits, no batch follows, and every delivery created
  so far that is not being sent is cancelled;
- the sweep (`broadcasts_resume_stale`) republishes a fan-out whose heartbeat is older than
  NOTIFIER_BROADCAST_STALE_SECONDS: its message or its worker was lost;
- an audience pays the API rate of the key that created it, one per user, batch by batch (a list
  paid when it was posted): a batch the key's bucket cannot pay for is not created, and the run
  stops with its heartbeat set to go stale when the bucket will have refilled, so the sweep
  resumes it then. Paused, never failed; batches are at most the rate's count.

Each user's preferences and contact points apply as for a single notification. A user who gets
nothing (unknown external id, no contact point on any channel asked for, or every channel declined)
is counted in `skipped`: total = created + skipped + failed once the broadcast is completed.
"""

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.correlation import correlation_bound, correlation_id_get
from apps.core.exceptions import ApplicationError, NotFound
from apps.notifications.delivery.statistics import delivery_tables_analyze
from apps.notifications.intake.services import (
    NotificationAccepted,
    NotificationRequest,
    channels_to_send,
    deliveries_cancel,
    idempotency_key_reused,
    notifications_cap_release,
    notifications_create,
)
from apps.notifications.models import Broadcast, BroadcastStatus, Delivery, DeliveryStatus, Notification
from apps.notifications.queues import TASK_BROADCAST_FAN_OUT
from apps.notifications.workflow_hooks import workflows_resolve
from apps.projects.models import ApiKey, Project
from apps.projects.throttling import api_key_take, api_rate_of
from apps.templates.selectors import template_versions_newest, template_versions_pinned
from apps.templates.services import missing_variables_error, template_version_missing_variables, template_version_unknown
from apps.users.selectors import recipients_audience, recipients_find, recipients_with_device_flag

logger = logging.getLogger(__name__)

# A list of users is stored in the broadcast's row and read with every batch: bounded so that stays
# cheap. Larger audiences are what `audience` filters are for.
BROADCAST_MAX_TO = 10_000
UNFINISHED = (BroadcastStatus.PENDING, BroadcastStatus.RUNNING)
# What a fan-out run returns when the key's rate stopped it (the broadcast stays `running`).
PAUSED_BY_RATE = "paused"
# Errors that mean "this user gets nothing", not "something went wrong".
_SKIP_CODES = frozenset({"unknown_user", "no_deliverable_channel"})


def broadcast_create(
    *,
    project: Project,
    template_key: str,
    data: dict,
    template_version: int | None = None,
    channels: list[str] | None = None,
    category: str = "",
    priority: str = "normal",
    send_at: datetime | None = None,
    to: list[str] | None = None,
    audience: dict | None = None,
    idempotency_key: str = "",
    fingerprint: str = "",
    api_key: ApiKey | None = None,
    workflow_key: str = "",
) -> tuple[Broadcast, bool]:
    """Store the broadcast and start its fan-out once committed; return (broadcast, created).

    The template, pinned version, channels and data are checked now, so a broadcast that could
    reach nobody is a 422, not a fan-out that skips or fails everyone: the data must hold every
    variable required by each version the users may get (the pinned one, else the newest in each
    locale). An idempotency key already used returns that broadcast (created=False), or is a 409
    for another body.
    """
    sent_channels, provided = channels, {}
    if workflow_key:
        # Checked as the workflow's template on the workflow's channels; each user's run then takes its steps.
        outcomes: list = [None]
        workflow = workflows_resolve(project=project, requests=[NotificationRequest(to="", template_key="",
                                     workflow_key=workflow_key)], outcomes=outcomes).get(workflow_key)
        if workflow is None:
            raise outcomes[0]
        template_key, sent_channels, provided = workflow.template_key, workflow.channels, dict.fromkeys(workflow.provides)
    newest = template_versions_newest(project=project, keys=[template_key]).get(template_key)
    if not newest:
        raise ApplicationError("unknown_template", f"No template with key {template_key!r}.",
                               details={"template": template_key})
    if template_version is not None:
        pinned = template_versions_pinned(project=project, pins=[(template_key, template_version)])
        if not pinned:
            raise template_version_unknown(key=template_key, version=template_version)
        newest = list(pinned.values())
    template_channels = list(dict.fromkeys(c for version in newest for c in version.channels))
    channels_to_send(requested=sent_channels, template_channels=template_channels)
    missing = sorted({
        name for version in newest
        for name in template_version_missing_variables(
            version=version, channels=sent_channels or list(version.channels), data={**provided, **data})
    })
    if missing:
        raise missing_variables_error(missing)
    if to is not None:
        to = list(dict.fromkeys(to))
    broadcast = Broadcast(
        project=project, template=newest[0].template, template_version=template_version, data=data,
        channels=channels, category=category, workflow_key=workflow_key,
        priority=priority, send_at=send_at, to=to, audience=None if to is not None else audience,
        total=len(to) if to is not None else None, idempotency_key=idempotency_key,
        request_fingerprint=fingerprint, heartbeat_at=timezone.now(), correlation_id=correlation_id_get(),
        api_key=api_key,
    )
    try:
        with transaction.atomic():
            broadcast.save()
            transaction.on_commit(lambda: broadcast_fan_out_publish(broadcast_id=broadcast.id))
    except IntegrityError:
        existing = Broadcast.objects.filter(project=project, idempotency_key=idempotency_key).first()
        if not idempotency_key or existing is None:
            raise
        if existing.request_fingerprint != fingerprint:
            raise idempotency_key_reused() from None
        return existing, False
    return broadcast, True


def broadcast_get(*, project: Project, broadcast_id) -> Broadcast:
    broadcast = Broadcast.objects.select_related("template").defer("to").filter(project=project, id=broadcast_id).first()
    if broadcast is None:
        raise NotFound("No such broadcast.")
    return broadcast


def broadcast_cancel(*, project: Project, broadcast_id) -> Broadcast:
    """Stop the fan-out and cancel every delivery it created that is not being sent yet.

    Also for a completed broadcast: its scheduled or held deliveries are cancelled.
    """
    with transaction.atomic():
        # The row lock waits for a batch in progress, so no batch commits after this.
        broadcast = Broadcast.objects.select_for_update().defer("to").filter(project=project, id=broadcast_id).first()
        if broadcast is None:
            raise NotFound("No such broadcast.")
        if broadcast.status != BroadcastStatus.CANCELLED:
            broadcast.status = BroadcastStatus.CANCELLED
            broadcast.finished_at = timezone.now()
            broadcast.save(update_fields=["status", "finished_at"])
        deliveries_cancel(project=project, deliveries=Delivery.objects.filter(notification__broadcast=broadcast))
        notifications_cap_release(notifications=Notification.objects.filter(broadcast=broadcast))
    return broadcast_get(project=project, broadcast_id=broadcast_id)


def broadcast_fan_out_publish(*, broadcast_id) -> None:
    """Queue the fan-out. Never raises: a lost publish is found by the sweep through the heartbeat."""
    from celery_app import app

    try:
        app.send_task(TASK_BROADCAST_FAN_OUT, args=[str(broadcast_id)], queue=settings.NOTIFIER_BROADCAST_QUEUE,
                      confirm_timeout=settings.NOTIFIER_PUBLISH_CONFIRM_TIMEOUT_SECONDS)
    except Exception:
        logger.exception("could not publish the fan-out of broadcast %s; the sweep will", broadcast_id)


def broadcast_fan_out(*, broadcast_id, batch_size: int | None = None, run_seconds: float | None = None) -> str:
    """Fan out batch by batch until done or cancelled; return the broadcast's status.

    After `run_seconds` (NOTIFIER_BROADCAST_RUN_SECONDS, well under the task's time limit) the run
    hands over to a fresh task, so a broadcast of any size never meets the time limit.
    """
    batch_size = batch_size or settings.NOTIFIER_BROADCAST_BATCH_SIZE
    deadline = time.monotonic() + (run_seconds or settings.NOTIFIER_BROADCAST_RUN_SECONDS)
    # Under the broadcast request's id, also when the sweep resumed the fan-out (no header then).
    correlation_id = Broadcast.objects.filter(id=broadcast_id).values_list("correlation_id", flat=True).first()
    batches = 0
    with correlation_bound(correlation_id or correlation_id_get()):
        while (status := _fan_out_batch(broadcast_id=broadcast_id, batch_size=batch_size)) in UNFINISHED:
            batches += 1
            if time.monotonic() > deadline:
                broadcast_fan_out_publish(broadcast_id=broadcast_id)
                break
        if status == BroadcastStatus.COMPLETED and batches:  # this run completed it
            _statistics_refresh_after(broadcast_id=broadcast_id)
    return status


def _statistics_refresh_after(*, broadcast_id) -> None:
    """ANALYZE the notification and delivery tables after a large fan-out, as PostgreSQL advises
    after a bulk load. Its rows arrive faster than autovacuum analyses them: until it does, the
    planner still believes the table as it was, and the web's and the workers' statements on
    deliveries by id chose to AND the key's lookup with a scan of every `queued` row in the status
    index, 6.2 ms a statement against 0.37 after ANALYZE (docs/performance.md). ANALYZE takes no
    lock that blocks reads or writes; a failure is logged, never the fan-out's."""
    created = Broadcast.objects.filter(id=broadcast_id).values_list("created", flat=True).first() or 0
    if created >= settings.NOTIFIER_BROADCAST_ANALYZE_AFTER:
        delivery_tables_analyze(reason=f"after broadcast {broadcast_id}'s fan-out")


@transaction.atomic
def _fan_out_batch(*, broadcast_id, batch_size: int) -> str:
    broadcast = (
        Broadcast.objects.select_for_update(of=("self",)).select_related("project", "template")
        .filter(id=broadcast_id).first()
    )
    if broadcast is None:
        return "gone"
    if broadcast.status not in UNFINISHED:
        return broadcast.status
    now = timezone.now()
    if broadcast.status == BroadcastStatus.PENDING:
        broadcast.status = BroadcastStatus.RUNNING
        broadcast.started_at = now
        if broadcast.total is None:
            broadcast.total = _audience(broadcast).count()

    rate = api_rate_of(broadcast.project) if broadcast.to is None and broadcast.api_key_id else None
    if rate is not None:
        batch_size = min(batch_size, rate.count)
    external_ids, recipients, cursor = _next_batch(broadcast, batch_size)
    if external_ids and rate is not None:
        take = api_key_take(api_key_id=broadcast.api_key_id, rate=rate, cost=len(external_ids))
        if take is not None and not take.allowed:
            # Stale (for the sweep to resume it) when the bucket holds this batch again.
            broadcast.heartbeat_at = now + timedelta(seconds=take.wait - settings.NOTIFIER_BROADCAST_STALE_SECONDS)
            broadcast.save(update_fields=["status", "started_at", "total", "heartbeat_at"])
            return PAUSED_BY_RATE
    if not external_ids:
        broadcast.status = BroadcastStatus.COMPLETED
        broadcast.finished_at = now
    else:
        requests = [
            NotificationRequest(to=external_id, template_key=broadcast.template.key, workflow_key=broadcast.workflow_key,
                                data=broadcast.data,
                                channels=broadcast.channels, category=broadcast.category,
                                priority=broadcast.priority, send_at=broadcast.send_at,
                                template_version=broadcast.template_version)
            for external_id in external_ids
        ]
        outcomes = notifications_create(project=broadcast.project, requests=requests, recipients=recipients,
                                        broadcast=broadcast)
        for outcome in outcomes:
            if isinstance(outcome, NotificationAccepted):
                # A workflow's run creates its deliveries later: it counts as created.
                if outcome.deliveries and all(d.status == DeliveryStatus.SKIPPED for d in outcome.deliveries):
                    broadcast.skipped += 1
                else:
                    broadcast.created += 1
            elif outcome.code in _SKIP_CODES:
                broadcast.skipped += 1
            else:
                broadcast.failed += 1
                broadcast.last_error = f"{outcome.code}: {outcome.message}"
        broadcast.cursor = cursor
    broadcast.heartbeat_at = now
    broadcast.save(update_fields=["status", "started_at", "finished_at", "total", "created", "skipped", "failed",
                                  "last_error", "cursor", "heartbeat_at"])
    return broadcast.status


def _audience(broadcast: Broadcast):
    audience = broadcast.audience or {}
    return recipients_audience(project=broadcast.project, locale=audience.get("locale", ""),
                               has_channel=audience.get("has_channel", ""))


def _next_batch(broadcast: Broadcast, batch_size: int) -> tuple[list[str], dict, int]:
    """The next batch's external ids, their users by external id, and the cursor after it."""
    if broadcast.to is not None:
        external_ids = broadcast.to[broadcast.cursor:broadcast.cursor + batch_size]
        recipients = recipients_find(project=broadcast.project, external_ids=external_ids)
        return external_ids, recipients, broadcast.cursor + len(external_ids)
    page = list(_audience_page(broadcast, batch_size))
    return [r.external_id for r in page], {r.external_id: r for r in page}, page[-1].id if page else broadcast.cursor


def _audience_page(broadcast: Broadcast, batch_size: int):
    """The audience's next users after the cursor, in id order: read from `recipient_project_keyset`."""
    return recipients_with_device_flag(_audience(broadcast).filter(id__gt=broadcast.cursor).order_by("id"))[:batch_size]


def broadcast_record_error(*, broadcast_id, error: Exception) -> None:
    """A fan-out run failed unexpectedly (its batch rolled back). The sweep tries again once the
    heartbeat is stale; after NOTIFIER_BROADCAST_MAX_ERRORS failures the broadcast is `failed`."""
    with transaction.atomic():
        broadcast = Broadcast.objects.select_for_update().defer("to").filter(id=broadcast_id).first()
        if broadcast is None or broadcast.status not in UNFINISHED:
            return
        broadcast.error_count += 1
        broadcast.last_error = f"{type(error).__name__}: {error}"[:2000]
        if broadcast.error_count >= settings.NOTIFIER_BROADCAST_MAX_ERRORS:
            broadcast.status = BroadcastStatus.FAILED
            broadcast.finished_at = timezone.now()
        broadcast.save(update_fields=["error_count", "last_error", "status", "finished_at"])


def broadcasts_resume_stale(*, limit: int = 100) -> int:
    """Republish unfinished fan-outs that have gone silent; return how many.

    A batch in progress holds its broadcast's row lock and is skipped (it is alive); the heartbeat
    is moved to now so the next sweep waits a full stale period before trying again.
    """
    now = timezone.now()
    with transaction.atomic():
        stale = list(
            Broadcast.objects.select_for_update(skip_locked=True)
            .filter(status__in=UNFINISHED,
                    heartbeat_at__lt=now - timedelta(seconds=settings.NOTIFIER_BROADCAST_STALE_SECONDS))
            .order_by("heartbeat_at").values_list("id", flat=True)[:limit]
        )
        Broadcast.objects.filter(id__in=stale).update(heartbeat_at=now)
        for broadcast_id in stale:
            transaction.on_commit(lambda broadcast_id=broadcast_id: broadcast_fan_out_publish(broadcast_id=broadcast_id))
    if stale:
        logger.info("resumed %d stalled broadcast fan-outs", len(stale))
    return len(stale)

