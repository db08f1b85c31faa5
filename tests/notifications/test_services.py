"""Getting accepted notifications onto the broker: after commit, once each, or left to the sweep."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from kombu import Queue

from apps.notifications.intake.services import NotificationRequest, notifications_create
from apps.notifications.models import Delivery, DeliveryStatus
from apps.notifications.outbox import deliveries as delivery_outbox
from apps.notifications.outbox.deliveries import PRIORITY_LEVELS, deliveries_publish, delivery_message
from tests.notifications.factories import DeliveryFactory
from tests.templates.factories import TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _publishing_not_paused():
    delivery_outbox._publish_paused_until = 0.0
    yield
    delivery_outbox._publish_paused_until = 0.0


@pytest.fixture
def private_channel_template(private_queue, project):
    channel = private_queue.channel
    RecipientFactory(project=project, external_id="ada")
    TemplateVersionFactory(template__project=project, template__key="welcome",
                           channels={channel: {"title": "Hi {{ name }}"}})
    return channel


def test_each_accepted_delivery_is_published_once_after_commit_with_its_priority(
    private_queue, private_channel_template, project
):
    [accepted] = notifications_create(
        project=project, requests=[NotificationRequest(to="ada", template_key="welcome", priority="high")]
    )

    [delivery] = accepted.notification.deliveries.all()
    assert accepted.created and delivery.channel == private_queue.channel
    assert private_queue.drain() == [(str(delivery.id), PRIORITY_LEVELS["high"])]


def test_a_publish_the_broker_refuses_is_left_to_the_sweep_and_publishing_pauses(private_queue, settings):
    # The queue exists with other arguments than ours: RabbitMQ refuses our declaration
    # (PRECONDITION_FAILED), as it would a publish under many other broker-side failures.
    from celery_app import app

    settings.NOTIFIER_PUBLISH_PAUSE_SECONDS = 30
    refused = DeliveryFactory(channel="refused", recheck_at=timezone.now() + timedelta(minutes=15))
    later = DeliveryFactory(channel=private_queue.channel, recheck_at=timezone.now() + timedelta(minutes=15))
    with app.connection_for_write() as connection:
        Queue("notifications.refused", queue_arguments={"x-max-length": 1})(connection.default_channel).declare()
    try:
        started = time.monotonic()
        assert deliveries_publish([delivery_message(refused, priority="normal")]) == 0
        assert time.monotonic() - started < 5
        # While paused, nothing is tried: the API does not wait on a failing broker.
        assert deliveries_publish([delivery_message(later, priority="normal")]) == 0
    finally:
        with app.connection_for_write() as connection:
            Queue("notifications.refused")(connection.default_channel).delete()

    for delivery in (refused, later):
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.QUEUED
        assert delivery.recheck_at <= timezone.now()  # the next sweep publishes it
    assert private_queue.drain() == []

    delivery_outbox._publish_paused_until = 0.0
    assert deliveries_publish([delivery_message(later, priority="normal")]) == 1
    assert private_queue.drain() == [(str(later.id), PRIORITY_LEVELS["normal"])]
    assert Delivery.objects.count() == 2
