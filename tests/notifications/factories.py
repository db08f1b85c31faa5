from datetime import timedelta

import factory
from django.utils import timezone

from apps.notifications.models import Delivery, DeliveryAttempt, DeliveryStatus, Notification
from tests.projects.factories import ProjectFactory
from tests.templates.factories import TemplateVersionFactory
from tests.users.factories import RecipientFactory


class NotificationFactory(factory.django.DjangoModelFactory):
    """A notification of an email template to one user, all in one project."""

    class Meta:
        model = Notification

    project = factory.SubFactory(ProjectFactory)
    recipient = factory.SubFactory(RecipientFactory, project=factory.SelfAttribute("..project"))
    to = factory.LazyAttribute(lambda n: n.recipient.external_id)
    template_version = factory.SubFactory(TemplateVersionFactory, template__project=factory.SelfAttribute("...project"))
    template = factory.LazyAttribute(lambda n: n.template_version.template)
    data = factory.LazyFunction(lambda: {"name": "Ada", "code": "123456"})


class DeliveryFactory(factory.django.DjangoModelFactory):
    """A delivery just queued; pass `status=` and the matching fields for other states."""

    class Meta:
        model = Delivery

    notification = factory.SubFactory(NotificationFactory)
    channel = "email"
    status = DeliveryStatus.QUEUED
    status_changed_at = factory.LazyFunction(timezone.now)
    recheck_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=15))


class DeliveryAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeliveryAttempt

    delivery = factory.SubFactory(DeliveryFactory)
    number = factory.Sequence(lambda n: n + 1)
    started_at = factory.LazyFunction(timezone.now)
    outcome = "transient_error"
    error_code = "451"
    error_message = "SMTP 451 4.3.0 try again later"


def dead_delivery(*, attempts: int = 3, error_code: str = "451", **fields) -> Delivery:
    """A delivery whose attempts ran out, with its attempt history."""
    fields.setdefault("status_changed_at", timezone.now())
    delivery = DeliveryFactory(
        status=DeliveryStatus.DEAD, attempt_count=attempts, budget_attempts=attempts, recheck_at=None,
        last_error_code=error_code, last_error=f"SMTP {error_code} try again later", **fields,
    )
    for number in range(1, attempts + 1):
        DeliveryAttemptFactory(delivery=delivery, number=number, error_code=error_code)
    return delivery


def queued_delivery(*, recipient, channel: str, parts: dict, data: dict | None = None) -> Delivery:
    """A notification for the user with one delivery on the channel, queued as the API leaves it
    (but not published: the test hands the id to the pipeline itself)."""
    return DeliveryFactory(
        channel=channel,
        notification__project=recipient.project,
        notification__recipient=recipient,
        notification__data=data or {},
        notification__template_version__channels={channel: parts},
    )
