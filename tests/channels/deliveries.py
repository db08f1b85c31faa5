"""Deliveries for backend tests: the rows a worker would hand a channel backend."""

from django.utils import timezone

from apps.notifications.models import Delivery, DeliveryStatus, Notification
from apps.users.models import Recipient
from tests.templates.factories import TemplateVersionFactory


def delivery_for(recipient: Recipient, channel: str, parts: dict) -> Delivery:
    """A delivery on `channel` of a notification to `recipient`, as claimed by a worker (`sending`)."""
    version = TemplateVersionFactory(template__project=recipient.project, channels={channel: parts})
    notification = Notification.objects.create(
        project=recipient.project, recipient=recipient, to=recipient.external_id,
        template=version.template, template_version=version,
    )
    return Delivery.objects.create(
        notification=notification, channel=channel, status=DeliveryStatus.SENDING,
        status_changed_at=timezone.now(), attempt_count=1, budget_attempts=1,
    )
