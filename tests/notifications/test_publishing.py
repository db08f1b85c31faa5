"""Publishing through a broker that stops answering: a confirm that timed out must not be taken,
when it finally arrives, for the confirm of the next message."""

import time
from urllib.parse import urlparse

import pytest
from django.utils import timezone

from apps.notifications.models import Delivery
from apps.notifications.outbox import deliveries as delivery_outbox
from apps.notifications.outbox.deliveries import deliveries_publish, delivery_message
from tests.fakes.tcp_proxy import HoldingProxy
from tests.notifications.factories import DeliveryFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_through_proxy(settings):
    """This process publishes to RabbitMQ through a proxy the test can hold."""
    from celery_app import app

    broker = urlparse(settings.CELERY_BROKER_URL)
    original_url, original_write_url = app.conf.broker_url, app.conf.broker_write_url
    with HoldingProxy((broker.hostname, broker.port or 5672)) as proxy:
        proxied = broker._replace(netloc=f"{broker.username}:{broker.password}@127.0.0.1:{proxy.port}").geturl()
        app.conf.broker_url = app.conf.broker_write_url = proxied
        app._pool = app.amqp._producer_pool = None  # pools are built from the URL on first use
        try:
            yield proxy
        finally:
            proxy.release()
            app.conf.broker_url, app.conf.broker_write_url = original_url, original_write_url
            app._pool = app.amqp._producer_pool = None
    delivery_outbox._publish_paused_until = 0.0


def published(delivery) -> bool:
    """False when the publisher handed the delivery to the sweep (recheck_at brought to now)."""
    return Delivery.objects.get(id=delivery.id).recheck_at > timezone.now() + timezone.timedelta(minutes=5)


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_connection_whose_confirm_timed_out_is_not_used_again(broker_through_proxy, private_queue, settings):
    settings.NOTIFIER_PUBLISH_CONFIRM_TIMEOUT_SECONDS = 0.5
    proxy = broker_through_proxy
    first, unconfirmed, next_one = (DeliveryFactory(channel=private_queue.channel) for _ in range(3))
    assert deliveries_publish([delivery_message(first, priority="normal")]) == 1

    proxy.hold()  # a memory alarm: publishes block, no confirm comes (kombu's one retry too)
    assert deliveries_publish([delivery_message(unconfirmed, priority="normal")]) == 0
    assert not published(unconfirmed)
    proxy.release()  # the alarm clears: the held publish goes in, and its confirm comes, late
    time.sleep(1)
    proxy.hold()  # and another alarm
    delivery_outbox._publish_paused_until = 0.0

    # On the connection that waited, the late confirm would be read as this message's: counted
    # published while RabbitMQ has not even read it. On a fresh one, nothing confirms it.
    assert deliveries_publish([delivery_message(next_one, priority="normal")]) == 0
    assert not published(next_one)


def test_a_delivery_is_presumed_unpublished_until_the_broker_confirms_it(private_queue, settings):
    """Committed `queued`, a delivery's deadline is the short unpublished one: a process that dies
    before publishing leaves it to the next sweeps, not to the queued timeout. The broker's
    confirm moves it out to the queued timeout, the time a backlog may hold a message."""
    delivery = DeliveryFactory(channel=private_queue.channel, recheck_at=delivery_outbox.queued_recheck_at(timezone.now()))
    assert delivery.recheck_at <= timezone.now() + timezone.timedelta(seconds=settings.NOTIFIER_UNPUBLISHED_TIMEOUT_SECONDS)

    assert deliveries_publish([delivery_message(delivery, priority="normal")]) == 1

    assert published(delivery)
    assert [delivery_id for delivery_id, _ in private_queue.drain()] == [str(delivery.id)]


def test_a_confirm_does_not_move_a_delivery_a_worker_already_claimed(private_queue):
    delivery = DeliveryFactory(channel=private_queue.channel, status="sending",
                               recheck_at=timezone.now() + timezone.timedelta(seconds=30))

    assert deliveries_publish([delivery_message(delivery, priority="normal")]) == 1

    assert Delivery.objects.get(id=delivery.id).recheck_at == delivery.recheck_at
