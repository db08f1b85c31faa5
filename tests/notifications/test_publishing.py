"""Publishing through a broker that stops answering: a confirm that timed out must not be taken,
when it finally arrives, for the confirm of the next message. And a round of messages, confirmed
together: all of it published and marked, or all of it left to the sweep."""

import json
import re
import threading
import time
import uuid
from urllib.parse import urlparse

import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.notifications.models import Delivery
from apps.notifications.outbox import deliveries as delivery_outbox
from apps.notifications.outbox.deliveries import deliveries_publish, delivery_message
from apps.notifications.queues import PRIORITY_LEVELS
from tests.fakes.tcp_proxy import HoldingProxy
from tests.notifications.factories import DeliveryFactory
from tests.support.services import rabbitmqctl

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


def test_a_round_of_many_messages_is_confirmed_and_marked_together(private_queue):
    """One wait for RabbitMQ's confirms of the whole round (outbox/confirms.py): every message on
    its queue, every delivery marked published, priorities kept."""
    deliveries = DeliveryFactory.create_batch(25, channel=private_queue.channel)
    messages = [delivery_message(d, priority="high" if n % 5 == 0 else "normal") for n, d in enumerate(deliveries)]

    assert deliveries_publish(messages) == 25

    assert all(published(d) for d in deliveries)
    taken = private_queue.drain()
    assert sorted(delivery_id for delivery_id, _ in taken) == sorted(str(d.id) for d in deliveries)
    assert {priority for delivery_id, priority in taken if delivery_id == str(deliveries[0].id)} == {
        PRIORITY_LEVELS["high"]}


@pytest.fixture
def queue_refusing_past_one_message(private_queue, rabbitmq_vhost):
    """RabbitMQ itself refuses (nacks) every message past the first on the private queue: a policy
    of `max-length` 1 with `reject-publish`, as an operator's length limit would."""
    policy = "notifier-test-reject-publish"
    rabbitmqctl("set_policy", "-p", rabbitmq_vhost, policy, f"^{re.escape(private_queue.name)}$",
                json.dumps({"max-length": 1, "overflow": "reject-publish"}), "--apply-to", "queues")
    try:
        deadline = time.monotonic() + 30
        while policy not in rabbitmqctl("list_queues", "-p", rabbitmq_vhost, "name", "policy").stdout:
            assert time.monotonic() < deadline, "the policy never applied"
            time.sleep(0.2)
        yield private_queue
    finally:
        rabbitmqctl("clear_policy", "-p", rabbitmq_vhost, policy, check=False)
        delivery_outbox._publish_paused_until = 0.0


def test_a_round_rabbitmq_refuses_part_of_is_left_whole_to_the_sweep(queue_refusing_past_one_message):
    deliveries = DeliveryFactory.create_batch(3, channel=queue_refusing_past_one_message.channel)

    assert deliveries_publish([delivery_message(d, priority="normal") for d in deliveries]) == 0

    # The round failed as a whole: each delivery is the sweep's now, the one RabbitMQ took too
    # (published again, it costs a spare message, which the claim ignores).
    assert not any(published(d) for d in deliveries)
    for delivery in deliveries:
        assert Delivery.objects.get(id=delivery.id).recheck_at <= timezone.now()


def test_the_mark_takes_its_rows_in_key_order_as_a_claim_does_so_the_two_never_deadlock(private_queue):
    """A worker's claim locks its rows in key order. A mark that locked them in another order (the
    order they were published, or where they lie in the table) would hold the second and wait for
    the first while the claim holds the first and waits for the second: PostgreSQL would abort one
    of them. The second in key order is written first here, and the mark is left no plan but a
    bitmap scan, which finds rows in table order."""
    deadline = delivery_outbox.queued_recheck_at(timezone.now())
    second = DeliveryFactory(id=uuid.UUID(int=2), channel=private_queue.channel, recheck_at=deadline)
    first = DeliveryFactory(id=uuid.UUID(int=1), channel=private_queue.channel, recheck_at=deadline)

    def mark_in_publish_order():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET enable_indexscan = off")
            delivery_outbox.deliveries_mark_published(delivery_ids=[str(second.pk), str(first.pk)])
        finally:
            connection.close()

    marking = threading.Thread(target=mark_in_publish_order)
    with transaction.atomic():  # the claim, row by row in key order
        Delivery.objects.select_for_update().get(pk=first.pk)
        marking.start()
        wait_deadline = time.monotonic() + 10
        with connection.cursor() as cursor:
            while not cursor.execute("SELECT 1 FROM pg_locks WHERE NOT granted").fetchall():
                assert time.monotonic() < wait_deadline, "the mark never waited for the claim's row"
                time.sleep(0.05)
        Delivery.objects.select_for_update().get(pk=second.pk)
    marking.join(timeout=30)

    assert published(first) and published(second)
