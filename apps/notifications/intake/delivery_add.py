"""One more channel for a notification already accepted: a workflow's channel step.

The same rules as at intake (services.py), read now rather than when the notification came in:
the user's contact point and preferences, the project's critical categories, quiet hours, and
the frequency caps (a notification takes one cap slot, with its first delivery that counts).
"""

from datetime import datetime

from django.db import transaction

from apps.channels.registry import channel_held_by_quiet_hours, channel_missing_contact_reason
from apps.notifications.intake.caps import CapPlan, caps_apply
from apps.notifications.intake.contacts import contact_points
from apps.notifications.intake.services import _delivery_new
from apps.notifications.models import Delivery, DeliveryStatus, Notification
from apps.notifications.outbox.deliveries import deliveries_publish_on_commit, delivery_message
from apps.notifications.outbox.status_events import status_change, status_events_record, status_hooked
from apps.projects.selectors import category_is_critical
from apps.users.preferences import channel_declined_reason, quiet_hours_release_at


def notification_delivery_add(*, notification: Notification, channel: str, now: datetime) -> Delivery:
    """Create the notification's delivery on `channel` and publish it once the caller's
    transaction commits. Must run inside that transaction, with the run (or whatever orders the
    caller's steps) locked: the unique (notification, channel) constraint refuses a second one.
    """
    assert transaction.get_connection().in_atomic_block, "call inside the step's transaction"
    project = notification.project
    recipient = notification.recipient
    if recipient is None:
        skip_reason = "the user was erased"
    elif channel not in notification.template_version.channels:
        skip_reason = "the template has no part for this channel"
    else:
        critical = category_is_critical(project=project, category=notification.category)
        skip_reason = channel_missing_contact_reason(
            channel=channel, contacts=contact_points(recipient=recipient, project=project),
        ) or channel_declined_reason(recipient=recipient, channel=channel, category=notification.category,
                                     critical=critical)
    quiet_until = None
    if not skip_reason and channel_held_by_quiet_hours(channel):
        quiet_until = quiet_hours_release_at(recipient=recipient, priority=notification.priority, moment=now)
    delivery = _delivery_new(notification, channel, skip_reason, now=now, send_at=None, quiet_until=quiet_until)
    if notification.cap_counted_at is None and recipient is not None:
        plan = CapPlan(notification=notification, due=now, uncapped=[delivery], deliveries=[delivery])
        caps_apply(project=project, plans=[plan], now=now)
        delivery = plan.deliveries[0]
        if notification.cap_counted_at is not None:
            Notification.objects.filter(id=notification.id).update(cap_counted_at=notification.cap_counted_at)
    delivery.save(force_insert=True)
    if delivery.status == DeliveryStatus.SKIPPED and status_hooked(project):
        status_events_record(new_deliveries=True, changes=[status_change(delivery)])
    if delivery.status == DeliveryStatus.QUEUED:
        deliveries_publish_on_commit([delivery_message(delivery, priority=notification.priority)])
    return delivery
