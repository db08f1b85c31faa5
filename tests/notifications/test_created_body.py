"""The 202 body written out is the JSON NotificationCreatedSerializer writes, byte for byte."""

import uuid

import pytest
from rest_framework.renderers import JSONRenderer

from apps.notifications.api.serializers import NotificationCreatedSerializer, notification_created_body
from apps.notifications.intake.services import NotificationAccepted
from apps.notifications.models import Delivery, DeliveryStatus, Notification


def delivery(**fields) -> Delivery:
    return Delivery(id=uuid.uuid4(), **fields)


@pytest.mark.parametrize("deliveries", [
    [],
    [delivery(channel="email")],
    [delivery(channel="email", status=DeliveryStatus.QUEUED),
     delivery(channel="sms", status=DeliveryStatus.SKIPPED, skip_reason="opted_out"),
     delivery(channel="push", status="held", hold_reason="quiet hours until 07:00 — Europe/Paris")],
    [delivery(channel="in_app", status="sent"), delivery(channel="webhook", status="cancelled")],
])
def test_it_is_the_serializers_json(deliveries):
    accepted = NotificationAccepted(notification=Notification(id=uuid.uuid4()), deliveries=deliveries, created=True)
    render = JSONRenderer().render

    assert render(notification_created_body(accepted)) == render(NotificationCreatedSerializer(accepted).data)
