"""The web process's background publisher: requests hand it their committed deliveries, it
gathers them for a short window and publishes them in batches on one connection and marks each batch published with one UPDATE; a
full queue makes the request publish its own, an exit flushes, and a crash leaves the rows to the
sweep (their unpublished deadline still short)."""

import threading
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.notifications.delivery.sweep import deliveries_sweep
from apps.notifications.models import Delivery
from apps.notifications.outbox import deliveries as delivery_outbox
from apps.notifications.outbox.deliveries import deliveries_publish, deliveries_publish_on_commit, delivery_message
from apps.notifications.outbox.publisher import BackgroundPublisher
from tests.notifications.factories import DeliveryFactory

pytestmark = pytest.mark.django_db(transaction=True)


class HeldPublish:
    """The real deliveries_publish, held at its first call until released: what gathers meanwhile
    shows how the publisher batches. Records each call's delivery ids."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.first_call = threading.Event()
        self.release = threading.Event()

    def __call__(self, messages):
        self.calls.append([m.delivery_id for m in messages])
        self.first_call.set()
        self.release.wait(10)
        return deliveries_publish(messages)


def _queued(private_queue, count: int) -> list[Delivery]:
    now = timezone.now()
    return [DeliveryFactory(channel=private_queue.channel, recheck_at=delivery_outbox.queued_recheck_at(now))
            for _ in range(count)]


def _message(delivery):
    return delivery_message(delivery, priority="normal")


def published(delivery) -> bool:
    return Delivery.objects.get(id=delivery.id).recheck_at > timezone.now() + timezone.timedelta(minutes=5)


@pytest.fixture
def held():
    return HeldPublish()


@pytest.fixture
def publisher(held):
    publisher = BackgroundPublisher(held).start()
    yield publisher
    held.release.set()
    publisher.stop()


def test_what_gathers_while_a_batch_waits_for_its_confirms_goes_out_as_one_batch(private_queue, publisher, held):
    first, *rest = _queued(private_queue, 4)
    assert publisher.offer([_message(first)])
    assert held.first_call.wait(5)
    for delivery in rest:
        assert publisher.offer([_message(delivery)])
    held.release.set()
    publisher.stop()

    assert held.calls == [[str(first.id)], [str(d.id) for d in rest]]
    assert all(published(d) for d in [first, *rest])
    assert sorted(delivery_id for delivery_id, _ in private_queue.drain()) == sorted(str(d.id) for d in [first, *rest])



def test_commits_arriving_within_the_gathering_window_go_out_in_one_round(private_queue):
    rounds: list[list[str]] = []

    def publish(messages):
        rounds.append([m.delivery_id for m in messages])
        return deliveries_publish(messages)

    publisher = BackgroundPublisher(publish, gather_seconds=2).start()
    first, second, late = _queued(private_queue, 3)
    try:
        publisher.offer([_message(first)])
        time.sleep(0.1)  # another request commits while the round is still gathering
        publisher.offer([_message(second)])
        deadline = time.monotonic() + 10
        while not rounds and time.monotonic() < deadline:  # the window closes, the round goes
            time.sleep(0.05)
        publisher.offer([_message(late)])
    finally:
        publisher.stop()

    assert rounds == [[str(first.id), str(second.id)], [str(late.id)]]
    assert all(published(d) for d in [first, second, late])

def test_a_batch_is_marked_published_with_one_update(private_queue):
    deliveries = _queued(private_queue, 5)
    with CaptureQueriesContext(connection) as queries:
        assert deliveries_publish([_message(d) for d in deliveries]) == 5
    updates = [q for q in queries.captured_queries if 'UPDATE "notifications_delivery"' in q["sql"]]
    assert len(updates) == 1
    assert all(published(d) for d in deliveries)


def test_a_request_finding_the_queue_full_publishes_its_own(private_queue, held, monkeypatch):
    publisher = BackgroundPublisher(held, capacity=1).start()
    monkeypatch.setattr(delivery_outbox, "_background_publisher", publisher)
    taken, waiting, overflow = _queued(private_queue, 3)
    try:
        assert publisher.offer([_message(taken)])
        assert held.first_call.wait(5)  # the thread holds `taken`, the queue is empty again
        assert publisher.offer([_message(waiting)])  # the one place in the queue
        assert not publisher.offer([_message(overflow)])

        deliveries_publish_on_commit([_message(overflow)])  # outside a transaction: runs at once

        assert published(overflow)  # by the request itself, while the thread is still held
        assert not published(waiting)
    finally:
        held.release.set()
        publisher.stop()
    assert published(waiting)


def test_exit_publishes_what_is_still_queued(private_queue, publisher, held):
    first, *rest = _queued(private_queue, 3)
    publisher.offer([_message(first)])
    assert held.first_call.wait(5)
    publisher.offer([_message(d) for d in rest])
    threading.Timer(0.2, held.release.set).start()

    publisher.stop(timeout=10)  # what atexit runs

    assert not publisher.running
    assert all(published(d) for d in [first, *rest])


def test_what_a_crash_loses_from_the_queue_the_sweep_publishes(private_queue, publisher, held, settings):
    settings.NOTIFIER_UNPUBLISHED_TIMEOUT_SECONDS = 1
    first, lost = _queued(private_queue, 2)
    publisher.offer([_message(first)])
    assert held.first_call.wait(5)
    publisher.offer([_message(lost)])
    # The process dies here: `lost` existed only in its memory. Its row still carries the short
    # deadline of a delivery nobody confirmed.
    assert Delivery.objects.get(id=lost.id).recheck_at <= timezone.now() + timezone.timedelta(seconds=1)
    assert not published(lost)
    time.sleep(1.1)

    deliveries_sweep()

    assert str(lost.id) in [delivery_id for delivery_id, _ in private_queue.drain()]


def test_a_forked_process_publishes_inline_rather_than_into_its_parents_queue(private_queue, monkeypatch):
    publisher = BackgroundPublisher(deliveries_publish).start()
    publisher.pid = -1  # what a child forked after the start sees: the thread is its parent's
    monkeypatch.setattr(delivery_outbox, "_background_publisher", publisher)
    [delivery] = _queued(private_queue, 1)
    try:
        deliveries_publish_on_commit([_message(delivery)])
        assert published(delivery)
    finally:
        publisher.stop()
