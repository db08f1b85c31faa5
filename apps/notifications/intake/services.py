import contextlib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.channels.registry import channel_held_by_quiet_hours, channel_missing_contact_reason, channel_names
from apps.core.correlation import correlation_id_get
from apps.core.exceptions import ApplicationError, Conflict, NotFound
from apps.core.instances import instance_new
from apps.core.rows import where_in_together
from apps.core.rows_insert import rows_insert_together
from apps.notifications.intake.caps import CapPlan, caps_apply
from apps.notifications.intake.contacts import contact_points
from apps.notifications.intake.selectors import notification_get, notification_status
from apps.notifications.models import (
    ACTIVE_STATUSES,
    SENT_STATUSES,
    Broadcast,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Notification,
)
from apps.notifications.outbox.deliveries import deliveries_publish_on_commit, delivery_message, queued_recheck_at
from apps.notifications.outbox.status_events import StatusChange, status_change, status_events_record, status_hooked
from apps.notifications.workflow_hooks import WorkflowIntake, workflow_hooks, workflow_runs_start, workflows_resolve
from apps.projects.models import Project
from apps.projects.policy import frequency_caps_of
from apps.projects.selectors import category_is_critical
from apps.templates.selectors import TEMPLATE_VERSIONS_NEWEST, template_version_for_locale, template_versions_pinned
from apps.templates.services import (
    missing_variables_error,
    template_version_missing_variables,
    template_version_unknown,
)
from apps.users.models import Recipient
from apps.users.preferences import channel_declined_reason, quiet_hours_release_at
from apps.users.selectors import RECIPIENTS_FIND


def request_fingerprint(body: dict) -> str:
    """A stable hash of a request body: the same JSON in any key order gives the same fingerprint."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


@dataclass(frozen=True)
class NotificationRequest:
    """One notification to create: the fields of `POST /notifications`, validated."""

    to: str
    template_key: str
    data: dict = field(default_factory=dict)
    channels: list[str] | None = None
    category: str = ""
    priority: str = "normal"
    send_at: datetime | None = None
    idempotency_key: str = ""
    fingerprint: str = ""
    template_version: int | None = None  # pinned: this version, whatever the user's locale
    # A workflow's key instead of a template's: its run decides the channels, one step at a time
    # (apps.workflows, through workflow_hooks); `template_key` is then the workflow's template.
    workflow_key: str = ""


@dataclass
class NotificationAccepted:
    """A notification as the API answers for it: created now, or the first one for its idempotency key."""

    notification: Notification
    deliveries: list[Delivery]
    created: bool

    @property
    def id(self):
        return self.notification.id

    @property
    def status(self) -> str:
        return notification_status([d.status for d in self.deliveries])


NotificationOutcome = NotificationAccepted | ApplicationError


def notifications_create(
    *,
    project: Project,
    requests: Sequence[NotificationRequest],
    recipients: dict[str, Recipient] | None = None,
    broadcast: Broadcast | None = None,
) -> list[NotificationOutcome]:
    """Store the notifications, each with one delivery per channel, and queue them once committed.

    One outcome per request, in order: accepted, or the error that request alone gets (`unknown_user`,
    `idempotency_key_reused`, ...); one request's error never stops the others. However many requests,
    it costs a fixed handful of queries: the users with the templates' versions, the INSERT of the
    notifications and their deliveries (one statement for a few, apps/core/rows_insert.py), and
    one publish of everything queued. An idempotency
    key costs nothing more unless it was used before: the unique index refuses the insert, and only
    then are the keys looked up. `recipients` (by external id) skips loading users the caller has.
    """
    outcomes: list[NotificationOutcome | None] = [None] * len(requests)
    workflows = workflows_resolve(project=project, requests=requests, outcomes=outcomes)
    requests = [replace(r, template_key=workflows[r.workflow_key].template_key) if r.workflow_key in workflows else r
                for r in requests]
    versions_read = (TEMPLATE_VERSIONS_NEWEST, [project.pk], [r.template_key for r in requests])
    if recipients is None:  # the users with the templates' newest versions: one statement, one round trip
        recipients, versions = where_in_together((RECIPIENTS_FIND, [project.pk], [r.to for r in requests]), versions_read)
    else:
        [versions] = where_in_together(versions_read)
    pinned = template_versions_pinned(project=project, pins=[(r.template_key, r.template_version) for r in requests
                                                             if r.template_version is not None])
    now = timezone.now()
    planned: dict[int, CapPlan] = {}
    repeats: dict[int, int] = {}  # a key seen earlier in the same call: index -> index of its first use
    first_use: dict[str, int] = {}
    for index, request in enumerate(requests):
        if outcomes[index] is not None:
            continue
        if request.idempotency_key in first_use:
            repeats[index] = first_use[request.idempotency_key]
            continue
        if request.idempotency_key:
            first_use[request.idempotency_key] = index
        try:
            planned[index] = _notification_plan(
                project=project, request=request, recipient=recipients.get(request.to),
                versions=versions.get(request.template_key, []), pinned=pinned, broadcast=broadcast, now=now,
                workflow=workflows.get(request.workflow_key),
            )
        except ApplicationError as error:
            outcomes[index] = error
    _notifications_insert(project=project, requests=requests, planned=planned, outcomes=outcomes, now=now)
    for index, first in repeats.items():
        if requests[index].fingerprint != requests[first].fingerprint:
            outcomes[index] = idempotency_key_reused()
        else:
            outcomes[index] = outcomes[first]
    return outcomes


def _notification_plan(*, project, request: NotificationRequest, recipient: Recipient | None,
                       versions: list, pinned: dict, broadcast, now: datetime,
                       workflow: WorkflowIntake | None = None) -> CapPlan:
    if recipient is None:
        raise ApplicationError("unknown_user", f"No user with id {request.to!r}; create it with PUT /api/v1/users/{{id}}.",
                               details={"to": request.to})
    if not versions:
        raise ApplicationError("unknown_template", f"No template with key {request.template_key!r}.",
                               details={"template": request.template_key})
    if request.template_version is not None:
        version = pinned.get((request.template_key, request.template_version))
        if version is None:
            raise template_version_unknown(key=request.template_key, version=request.template_version)
    else:
        version = template_version_for_locale(versions, locale=recipient.locale, default_locale=project.default_locale)

    wanted = ([c for c in workflow.channels if c in version.channels] if workflow is not None
              else channels_to_send(requested=request.channels, template_channels=list(version.channels)))
    contacts = contact_points(recipient=recipient, project=project)
    skip_reasons = {c: channel_missing_contact_reason(channel=c, contacts=contacts) for c in wanted}
    if all(skip_reasons.values()):
        raise ApplicationError("no_deliverable_channel", "The user cannot be reached on any of these channels.",
                               details={c: reason for c, reason in skip_reasons.items()})
    # The data must fill the parts of the channels the user can be reached on (those are rendered
    # whatever their preferences say later: a caller's missing field shows on every user alike).
    reachable = [c for c in wanted if not skip_reasons[c]]
    provided = dict.fromkeys(workflow.provides if workflow is not None else ())  # a digest's events, event_count
    missing = template_version_missing_variables(version=version, channels=reachable, data={**provided, **request.data})
    if missing:
        raise missing_variables_error(missing)
    # Preferences come after reachability: a request that can reach nobody is the caller's mistake
    # (422); what the user declined is accepted and accounted for, `skipped` with the reason.
    critical = category_is_critical(project=project, category=request.category)
    for channel in wanted:
        skip_reasons[channel] = skip_reasons[channel] or channel_declined_reason(
            recipient=recipient, channel=channel, category=request.category, critical=critical
        )

    scheduled = request.send_at is not None and request.send_at > now
    due = request.send_at if scheduled else now
    notification = instance_new(
        Notification, project=project, recipient=recipient, to=request.to, template=version.template,
        template_version=version,
        data=request.data, category=request.category, priority=request.priority, send_at=request.send_at,
        idempotency_key=request.idempotency_key, request_fingerprint=request.fingerprint, broadcast=broadcast,
        workflow_key=request.workflow_key,
        correlation_id=broadcast.correlation_id if broadcast is not None else correlation_id_get(),
    )
    if workflow is not None:  # its run's steps create the deliveries when due (notification_delivery_add)
        return CapPlan(notification=notification, due=due, uncapped=[], deliveries=[])
    deliveries = [
        _delivery_new(
            notification, channel, skip_reasons[channel], now=now, send_at=request.send_at if scheduled else None,
            quiet_until=quiet_hours_release_at(recipient=recipient, priority=request.priority, moment=due)
            if channel_held_by_quiet_hours(channel) else None,
        )
        for channel in wanted
    ]
    return CapPlan(notification=notification, due=due, uncapped=deliveries, deliveries=deliveries)


# A key can be taken again between our lookup and our next insert (a concurrent request with it):
# each round settles at least one key for good, and a few rounds cover any realistic race.
_MAX_INSERT_ROUNDS = 3


def _notifications_insert(*, project, requests, planned: dict[int, CapPlan], outcomes: list, now) -> None:
    """INSERT the planned notifications and deliveries, all or none; publish after commit.

    The frequency caps are decided in that transaction, with the users' rows locked (caps.py).

    A unique-index conflict on an idempotency key rolls the batch back; the keys already taken are
    then answered from their first notification (or a 409 for another body) and the rest inserted
    again.
    """
    for _ in range(_MAX_INSERT_ROUNDS):
        if not planned:
            return
        keyed = any(requests[index].idempotency_key for index in planned)
        started_runs = [(plan.notification, requests[index].workflow_key) for index, plan in planned.items()
                        if requests[index].workflow_key]
        # A savepoint only where a conflict is expected and recovered from (keys): without one,
        # the insert costs no SAVEPOINT/RELEASE round trips inside an outer transaction. No
        # transaction at all where the rows are all there is to write (no caps to decide under
        # lock, no workflow run, no status event): their one statement commits them together.
        rows_alone = not (frequency_caps_of(project) or started_runs or status_hooked(project)
                          or (keyed and transaction.get_connection().in_atomic_block))
        try:
            with contextlib.nullcontext() if rows_alone else transaction.atomic(savepoint=keyed):
                caps_apply(project=project, plans=planned.values(), now=now)
                deliveries = [d for p in planned.values() for d in p.deliveries]
                rows_insert_together([(Notification, [p.notification for p in planned.values()]),
                                      (Delivery, deliveries)])
                workflow_runs_start(project=project, started=started_runs)
                if status_hooked(project):
                    status_events_record(new_deliveries=True, changes=[
                        status_change(d) for d in deliveries if d.status == DeliveryStatus.SKIPPED
                    ])
                deliveries_publish_on_commit([
                    delivery_message(d, priority=d.notification.priority)
                    for d in deliveries if d.status == DeliveryStatus.QUEUED
                ])
        except IntegrityError:
            if not keyed or not _settle_taken_keys(project=project, requests=requests, planned=planned,
                                                   outcomes=outcomes):
                raise
            continue
        for index, plan in planned.items():
            outcomes[index] = NotificationAccepted(plan.notification, plan.deliveries, created=True)
        return
    raise IntegrityError("idempotency keys kept being taken concurrently")


def _settle_taken_keys(*, project, requests, planned: dict[int, CapPlan], outcomes: list) -> bool:
    """Answer the planned requests whose key is already stored; False if none was (another conflict)."""
    keys = {requests[index].idempotency_key: index for index in planned if requests[index].idempotency_key}
    existing = {n.idempotency_key: n for n in Notification.objects.filter(project=project, idempotency_key__in=keys)}
    if not existing:
        return False
    deliveries = _deliveries_by_notification([n.id for n in existing.values()])
    for key, notification in existing.items():
        index = keys[key]
        del planned[index]
        if notification.request_fingerprint != requests[index].fingerprint:
            outcomes[index] = idempotency_key_reused()
        else:
            outcomes[index] = NotificationAccepted(notification, deliveries.get(notification.id, []), created=False)
    return True


def _deliveries_by_notification(notification_ids: list) -> dict:
    by_notification: dict = {}
    for delivery in Delivery.objects.filter(notification_id__in=notification_ids).order_by("created_at", "channel"):
        by_notification.setdefault(delivery.notification_id, []).append(delivery)
    return by_notification


def idempotency_key_reused() -> Conflict:
    return Conflict("idempotency_key_reused", "This Idempotency-Key was already used with a different request body.")


def channels_to_send(*, requested: list[str] | None, template_channels: list[str]) -> list[str]:
    available = channel_names()
    if not requested:
        channels = [c for c in template_channels if c in available]
        if not channels:
            raise ApplicationError("no_deliverable_channel", "The template has no part for any enabled channel.",
                                   details={"template_channels": template_channels, "enabled": available})
        return channels
    errors = {}
    for channel in requested:
        if channel not in available:
            errors[channel] = "This channel is not enabled on this server."
        elif channel not in template_channels:
            errors[channel] = "The template has no part for this channel."
    if errors:
        raise ApplicationError("channel_unavailable", "Some requested channels cannot be used.", details=errors)
    return list(dict.fromkeys(requested))


def _delivery_new(notification: Notification, channel: str, skip_reason: str, *, now, send_at, quiet_until) -> Delivery:
    if skip_reason:
        return instance_new(Delivery, notification=notification, channel=channel, status=DeliveryStatus.SKIPPED,
                            skip_reason=skip_reason, status_changed_at=now)
    if quiet_until is not None:
        return instance_new(Delivery, notification=notification, channel=channel, status=DeliveryStatus.PENDING,
                            status_changed_at=now, next_attempt_at=quiet_until, recheck_at=quiet_until,
                            hold_reason="held by the user's quiet hours")
    if send_at is not None:
        return instance_new(Delivery, notification=notification, channel=channel, status=DeliveryStatus.PENDING,
                            status_changed_at=now, next_attempt_at=send_at, recheck_at=send_at)
    return instance_new(Delivery, notification=notification, channel=channel, status=DeliveryStatus.QUEUED,
                        status_changed_at=now, recheck_at=queued_recheck_at(now))


def notification_cancel(*, project: Project, notification_id) -> Notification:
    """Cancel the notification's active deliveries and return the notification as it now stands.

    `pending`, `queued` and `retrying` deliveries are `cancelled` at once. A `sending` one has a
    worker talking to its provider, which a cancel cannot reach: the cancel is recorded on it
    (`cancel_requested_at`) and its worker ends it `cancelled`, or `sent` if that attempt got
    through; nothing is retried after it. One UPDATE does both, so a delivery moving between
    `sending` and `retrying` meanwhile is caught either way. Another project's notification is a
    404, as everywhere.
    """
    if not Notification.objects.filter(project=project, id=notification_id).exists():
        raise NotFound("No such notification.")
    if (hooks := workflow_hooks()) is not None:
        # First: once the run is stopped no step creates a delivery, so the cancel below gets them all.
        hooks.notification_cancel(notification_id=notification_id)
    deliveries_cancel(project=project, deliveries=Delivery.objects.filter(notification_id=notification_id))
    notifications_cap_release(notifications=Notification.objects.filter(id=notification_id))
    return notification_get(project=project, notification_id=notification_id)


def notifications_cap_release(*, notifications: QuerySet[Notification]) -> int:
    """After a cancel: those of `notifications` of which nothing reached the user (or is being
    sent) no longer take a frequency cap's slot. Returns how many gave theirs back."""
    return notifications.filter(cap_counted_at__isnull=False).exclude(
        deliveries__status__in=(*SENT_STATUSES, DeliveryStatus.SENDING)
    ).update(cap_counted_at=None)


def deliveries_cancel(*, deliveries: QuerySet[Delivery], project: Project | None = None) -> int:
    """Cancel these deliveries where they still move; return how many were active.

    One UPDATE, so a delivery changing state at this moment is caught either way: one not being
    sent is `cancelled` now; one being sent keeps `sending` with the cancel recorded
    (`cancel_requested_at`), and its worker ends it `cancelled` unless that very attempt reached
    the provider (delivery/sending.py), and never retries it.

    `project`, when all the deliveries are of one, saves work for a project without status
    webhooks. Otherwise the active deliveries are locked first, so the status webhook events
    written with the UPDATE name exactly the deliveries it cancelled and the status each left.
    """
    now = timezone.now()
    sending = Q(status=DeliveryStatus.SENDING)
    cancel = {
        "status": Case(When(sending, then=F("status")), default=Value(DeliveryStatus.CANCELLED)),
        "status_changed_at": Case(When(sending, then=F("status_changed_at")), default=Value(now)),
        "recheck_at": Case(When(sending, then=F("recheck_at")), default=None),
        "next_attempt_at": Case(When(sending, then=F("next_attempt_at")), default=None),
        "cancel_requested_at": Coalesce(F("cancel_requested_at"), Value(now)),
    }
    if project is not None and not status_hooked(project):
        return deliveries.filter(status__in=ACTIVE_STATUSES).update(**cancel)
    with transaction.atomic():
        active = list(deliveries.filter(status__in=ACTIVE_STATUSES).select_for_update(of=("self",))
                      .values_list("id", "status", "notification__project_id", "notification__project__status_webhook_url"))
        count = Delivery.objects.filter(id__in=[row[0] for row in active]).update(**cancel)
        status_events_record(changes=[
            StatusChange(delivery_id=delivery_id, project_id=project_id, status=DeliveryStatus.CANCELLED,
                         occurred_at=now, previous_status=status)
            for delivery_id, status, project_id, status_webhook_url in active
            if status != DeliveryStatus.SENDING and status_webhook_url
        ])
    return count


@transaction.atomic
def notifications_erase_recipient_data(*, recipient) -> int:
    """Scrub a user's personal data from the delivery log before the user is erased.

    The notifications' `data` and the providers' messages (which quote addresses, e.g. Twilio's
    "The 'To' number +1… is not valid") go; statuses, codes and timings stay for operators.
    Returns how many notifications were scrubbed.
    """
    notifications = Notification.objects.filter(recipient=recipient)
    deliveries = Delivery.objects.filter(notification__recipient=recipient)
    DeliveryAttempt.objects.filter(delivery__in=deliveries).update(error_message="", provider_response={})
    deliveries.update(last_error="")
    return notifications.update(data={})
