import hashlib
import json
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When, prefetch_related_objects
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.channels.contacts import missing_contact_reason
from apps.channels.registry import channel_names
from apps.core.exceptions import ApplicationError, Conflict, NotFound
from apps.notifications.dispatch import deliveries_publish_on_commit, delivery_message, queued_recheck_at
from apps.notifications.models import ACTIVE_STATUSES, Delivery, DeliveryAttempt, DeliveryStatus, Notification
from apps.notifications.selectors import notification_get
from apps.projects.models import Project
from apps.templates.selectors import template_version_current
from apps.users.preferences import channel_declined_reason, quiet_hours_release_at
from apps.users.selectors import recipient_find


def request_fingerprint(body: dict) -> str:
    """A stable hash of a request body: the same JSON in any key order gives the same fingerprint."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def notification_create(
    *,
    project: Project,
    to: str,
    template_key: str,
    data: dict,
    channels: list[str] | None = None,
    category: str = "",
    priority: str = "normal",
    send_at: datetime | None = None,
    idempotency_key: str = "",
    fingerprint: str = "",
) -> tuple[Notification, bool]:
    """Store the notification with one delivery per channel and queue them once committed.

    Returns (notification, created). With an idempotency key already used for the same request,
    the first notification comes back (created=False); used for another request, it is a 409.
    """
    if idempotency_key:
        existing = _notification_for_idempotency_key(project, idempotency_key, fingerprint)
        if existing is not None:
            return _with_deliveries(existing), False

    recipient = recipient_find(project=project, external_id=to)
    if recipient is None:
        raise ApplicationError("unknown_user", f"No user with id {to!r}; create it with PUT /api/v1/users/{{id}}.",
                               details={"to": to})
    version = template_version_current(project=project, key=template_key, locale=recipient.locale)
    if version is None:
        raise ApplicationError("unknown_template", f"No template with key {template_key!r}.",
                               details={"template": template_key})

    wanted = _channels_to_send(requested=channels, template_channels=list(version.channels))
    skip_reasons = {c: missing_contact_reason(channel=c, recipient=recipient, project=project) for c in wanted}
    if all(skip_reasons.values()):
        raise ApplicationError("no_deliverable_channel", "The user cannot be reached on any of these channels.",
                               details={c: reason for c, reason in skip_reasons.items()})
    # Preferences come after reachability: a request that can reach nobody is the caller's mistake
    # (422); what the user declined is accepted and accounted for, `skipped` with the reason.
    for channel in wanted:
        skip_reasons[channel] = skip_reasons[channel] or channel_declined_reason(
            recipient=recipient, channel=channel, category=category
        )

    now = timezone.now()
    scheduled = send_at is not None and send_at > now
    due = send_at if scheduled else now
    notification = Notification(
        project=project, recipient=recipient, to=to, template=version.template, template_version=version,
        data=data, category=category, priority=priority, send_at=send_at,
        idempotency_key=idempotency_key or "", request_fingerprint=fingerprint,
    )
    deliveries = [
        _delivery_new(
            notification, channel, skip_reasons[channel], now=now, send_at=send_at if scheduled else None,
            quiet_until=quiet_hours_release_at(recipient=recipient, channel=channel, priority=priority, moment=due),
        )
        for channel in wanted
    ]
    try:
        with transaction.atomic():
            notification.save()
            Delivery.objects.bulk_create(deliveries)
            deliveries_publish_on_commit(
                [delivery_message(d, priority=priority) for d in deliveries if d.status == DeliveryStatus.QUEUED]
            )
    except IntegrityError:
        if idempotency_key:  # a concurrent request with the same key won the race
            existing = _notification_for_idempotency_key(project, idempotency_key, fingerprint)
            if existing is not None:
                return _with_deliveries(existing), False
        raise
    return _with_deliveries(notification), True


def _with_deliveries(notification: Notification) -> Notification:
    # The caller answers with the deliveries and a status summed up from them: load them once.
    prefetch_related_objects([notification], "deliveries")
    return notification


def _notification_for_idempotency_key(project, idempotency_key: str, fingerprint: str) -> Notification | None:
    existing = Notification.objects.filter(project=project, idempotency_key=idempotency_key).first()
    if existing is not None and existing.request_fingerprint != fingerprint:
        raise Conflict("idempotency_key_reused",
                       "This Idempotency-Key was already used with a different request body.")
    return existing


def _channels_to_send(*, requested: list[str] | None, template_channels: list[str]) -> list[str]:
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
        return Delivery(notification=notification, channel=channel, status=DeliveryStatus.SKIPPED,
                        skip_reason=skip_reason, status_changed_at=now)
    if quiet_until is not None:
        return Delivery(notification=notification, channel=channel, status=DeliveryStatus.PENDING,
                        status_changed_at=now, next_attempt_at=quiet_until, recheck_at=quiet_until,
                        hold_reason="held by the user's quiet hours")
    if send_at is not None:
        return Delivery(notification=notification, channel=channel, status=DeliveryStatus.PENDING,
                        status_changed_at=now, next_attempt_at=send_at, recheck_at=send_at)
    return Delivery(notification=notification, channel=channel, status=DeliveryStatus.QUEUED,
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
    now = timezone.now()
    sending = Q(status=DeliveryStatus.SENDING)
    Delivery.objects.filter(notification_id=notification_id, status__in=ACTIVE_STATUSES).update(
        status=Case(When(sending, then=F("status")), default=Value(DeliveryStatus.CANCELLED)),
        status_changed_at=Case(When(sending, then=F("status_changed_at")), default=Value(now)),
        recheck_at=Case(When(sending, then=F("recheck_at")), default=None),
        next_attempt_at=Case(When(sending, then=F("next_attempt_at")), default=None),
        cancel_requested_at=Coalesce(F("cancel_requested_at"), Value(now)),
    )
    return notification_get(project=project, notification_id=notification_id)


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
