"""The sweep: whatever was lost on the way (a message, a worker, a countdown) is taken back."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from kombu import Queue

from apps.notifications.delivery.sweep import deliveries_sweep
from apps.notifications.models import AttemptOutcome, Delivery, DeliveryStatus
from apps.notifications.outbox import deliveries as delivery_outbox
from apps.notifications.outbox.deliveries import PRIORITY_LEVELS
from tests.notifications.conftest import MAX_ATTEMPTS
from tests.notifications.factories import DeliveryFactory, NotificationFactory


def ago(**kwargs):
    return timezone.now() - timedelta(**kwargs)


@pytest.mark.django_db
class TestWhatTheSweepTakesBack:
    def test_an_idle_sweep_is_one_query(self, outbox, django_assert_max_num_queries):
        DeliveryFactory(status=DeliveryStatus.SENT, recheck_at=None)
        DeliveryFactory()  # queued, deadline ahead

        with django_assert_max_num_queries(3) as queries:  # the SELECT, inside its savepoint
            result = deliveries_sweep()

        assert result.requeued == result.worker_lost == result.dead == 0
        assert sum(1 for q in queries.captured_queries if q["sql"].startswith("SELECT")) == 1

    def test_a_queued_delivery_whose_message_was_lost_is_published_again(
        self, outbox, settings, django_capture_on_commit_callbacks
    ):
        delivery = DeliveryFactory(recheck_at=ago(seconds=1), status_changed_at=ago(seconds=1))

        with django_capture_on_commit_callbacks() as published:
            assert deliveries_sweep().requeued == 1

        delivery.refresh_from_db()
        assert len(published) == 1
        assert delivery.status == DeliveryStatus.QUEUED
        assert delivery.recheck_at >= timezone.now() + timedelta(seconds=settings.NOTIFIER_QUEUED_TIMEOUT_SECONDS - 5)

    def test_a_long_queued_delivery_waits_longer_each_time(self, outbox, settings):
        # Queued for an hour (a backlog, or an outage): the next check is an hour away, capped.
        settings.NOTIFIER_QUEUED_TIMEOUT_SECONDS = 60
        delivery = DeliveryFactory(recheck_at=ago(seconds=1), status_changed_at=ago(minutes=5))
        old = DeliveryFactory(recheck_at=ago(seconds=1), status_changed_at=ago(hours=12))  # under the max age

        deliveries_sweep()

        delivery.refresh_from_db()
        old.refresh_from_db()
        assert timedelta(minutes=4) < delivery.recheck_at - timezone.now() <= timedelta(minutes=5, seconds=5)
        assert timedelta(minutes=7) < old.recheck_at - timezone.now() <= timedelta(minutes=8)

    def test_a_delivery_whose_worker_died_counts_a_lost_attempt_and_is_queued_again(self, outbox):
        delivery = DeliveryFactory(status=DeliveryStatus.SENDING, attempt_count=2, budget_attempts=2,
                                   recheck_at=ago(seconds=1), status_changed_at=ago(minutes=3))

        result = deliveries_sweep()

        delivery.refresh_from_db()
        assert (result.worker_lost, result.requeued) == (1, 1)
        assert delivery.status == DeliveryStatus.QUEUED
        [attempt] = delivery.attempts.all()
        assert (attempt.number, attempt.outcome) == (2, AttemptOutcome.WORKER_LOST)

    def test_a_lost_worker_on_the_last_attempt_makes_the_delivery_dead(self, outbox):
        delivery = DeliveryFactory(status=DeliveryStatus.SENDING, attempt_count=MAX_ATTEMPTS,
                                   budget_attempts=MAX_ATTEMPTS, recheck_at=ago(seconds=1))

        assert deliveries_sweep().dead == 1

        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.DEAD and delivery.last_error_code == "worker_lost"
        assert delivery.recheck_at is None

    @pytest.mark.parametrize("status", [DeliveryStatus.RETRYING, DeliveryStatus.PENDING])
    def test_a_due_retry_or_scheduled_send_is_queued(self, outbox, status):
        delivery = DeliveryFactory(status=status, next_attempt_at=ago(seconds=1), recheck_at=ago(seconds=1))

        assert deliveries_sweep().requeued == 1

        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.QUEUED

    @pytest.mark.parametrize("status", ["queued", "sending", "retrying", "pending"])
    def test_nothing_is_touched_before_its_deadline(self, outbox, status):
        delivery = DeliveryFactory(status=status, recheck_at=timezone.now() + timedelta(seconds=30))

        assert deliveries_sweep().requeued == 0

        delivery.refresh_from_db()
        assert delivery.status == status and not delivery.attempts.exists()

    @pytest.mark.parametrize("status", ["sent", "failed", "dead", "cancelled", "skipped"])
    def test_final_deliveries_are_never_touched(self, outbox, status):
        DeliveryFactory(status=status, recheck_at=ago(hours=1))  # a stale deadline left behind

        assert deliveries_sweep().requeued == 0

    @pytest.mark.parametrize("batch_size", [1, 100])
    def test_a_channel_no_longer_enabled_does_not_stop_the_sweep_for_the_others(self, outbox, batch_size):
        # SMS is enabled only with Twilio credentials; here it is not (the outbox settings name
        # email alone). Its delivery comes first (the oldest deadline), every run.
        sms = DeliveryFactory(channel="sms", status=DeliveryStatus.SENDING, attempt_count=1, budget_attempts=1,
                              recheck_at=ago(minutes=5), status_changed_at=ago(minutes=8))
        push = DeliveryFactory(channel="push", status=DeliveryStatus.RETRYING, recheck_at=ago(minutes=4))
        email = DeliveryFactory(recheck_at=ago(seconds=1), status_changed_at=ago(seconds=1))

        result = deliveries_sweep(batch_size=batch_size)

        for delivery in (sms, push, email):
            delivery.refresh_from_db()
        assert email.status == DeliveryStatus.QUEUED and email.recheck_at > timezone.now()
        assert (result.requeued, result.dead, result.worker_lost) == (1, 2, 1)
        for delivery in (sms, push):
            assert delivery.status == DeliveryStatus.DEAD and delivery.recheck_at is None
            assert delivery.last_error_code == "channel_disabled"
            assert f"The {delivery.channel} channel is not enabled" in delivery.last_error
        # The attempt the sms worker was making is still recorded: its outcome is unknown.
        assert [(a.outcome, a.error_code) for a in sms.attempts.all()] == [(AttemptOutcome.WORKER_LOST, "worker_lost")]

    def test_a_batch_costs_the_same_few_queries_however_many_deliveries_it_holds(
        self, outbox, django_assert_max_num_queries
    ):
        queued = [DeliveryFactory(recheck_at=ago(seconds=1), status_changed_at=ago(minutes=n)) for n in range(40)]
        for status in (DeliveryStatus.RETRYING, DeliveryStatus.PENDING, DeliveryStatus.SENDING):
            DeliveryFactory.create_batch(5, status=status, attempt_count=1, budget_attempts=1, recheck_at=ago(seconds=1))
        DeliveryFactory.create_batch(5, status=DeliveryStatus.SENDING, attempt_count=MAX_ATTEMPTS,
                                     budget_attempts=MAX_ATTEMPTS, recheck_at=ago(seconds=1))
        DeliveryFactory.create_batch(5, channel="sms", recheck_at=ago(seconds=1))  # not enabled here

        # The SELECT, the lost attempts, one UPDATE per outcome (dead twice over, queued again,
        # still queued), inside the batch's savepoint: not one query per delivery.
        with django_assert_max_num_queries(8):
            result = deliveries_sweep()

        assert (result.requeued, result.worker_lost, result.dead) == (55, 10, 10)
        assert all(d.recheck_at > timezone.now() for d in Delivery.objects.filter(id__in=[q.id for q in queued]))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pause_seconds", [0, 30])
def test_a_run_whose_publishing_fails_takes_each_delivery_once(settings, pause_seconds):
    """A failed publish brings its deliveries' deadline to now, for the next run: the same run
    must not take them again in its next batch (nor, while publishing is paused, take more)."""
    from celery_app import app

    channel = "sweeprefused"
    settings.NOTIFIER_CHANNELS = {channel: {"BACKEND": "apps.channels.backends.locmem.OutboxBackend"}}
    settings.NOTIFIER_PUBLISH_PAUSE_SECONDS = pause_seconds
    deliveries = [DeliveryFactory(channel=channel, recheck_at=ago(seconds=10 - n), status_changed_at=ago(hours=1))
                  for n in range(3)]
    # The queue exists with other arguments than Celery declares: RabbitMQ refuses every publish.
    with app.connection_for_write() as connection:
        Queue(f"notifications.{channel}", queue_arguments={"x-max-length": 1})(connection.default_channel).declare()
    delivery_outbox._publish_paused_until = 0.0
    try:
        result = deliveries_sweep(batch_size=2)
    finally:
        delivery_outbox._publish_paused_until = 0.0
        with app.connection_for_write() as connection:
            Queue(f"notifications.{channel}")(connection.default_channel).delete()

    # Paused after the first failure, the run stops there; without a pause it goes on to the
    # third delivery, once.
    assert result.requeued == (3 if pause_seconds == 0 else 2)
    for delivery in deliveries:
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.QUEUED
    # Whatever it took is due for the next run, which publishes it once the broker takes it.
    assert all(d.recheck_at <= timezone.now() for d in deliveries[:result.requeued])


@pytest.mark.django_db(transaction=True)
def test_sweeps_running_at_once_share_the_work_without_waiting_or_publishing_twice(private_queue):
    """Two sweeps (two beats, or a slow run overlapping the next): each overdue delivery is taken
    by exactly one, and the second does not wait for the first's rows (SKIP LOCKED)."""
    for _ in range(3):
        outcome = _two_sweeps_at_once(private_queue)
        if outcome is not None:
            break
    else:
        pytest.fail("another sweeper took the deliveries first, three times")
    deliveries, (first, second, second_waited), published = outcome

    assert not second_waited, "the second sweep waited for the first one's rows"
    assert first.requeued == 10 and second.requeued <= 20
    # Each published once, whoever took it (in a full run, the e2e beat's sweeps take part too).
    assert sorted(delivery_id for delivery_id, _ in published) == sorted(str(d.id) for d in deliveries)
    assert (str(deliveries[0].id), PRIORITY_LEVELS["high"]) in published
    assert set(Delivery.objects.filter(id__in=[d.id for d in deliveries]).values_list("status", flat=True)) == {
        DeliveryStatus.QUEUED}


def _two_sweeps_at_once(private_queue):
    """The first sweep takes 10 rows and holds them; the second runs meanwhile. None if another
    sweeper (a beat of the same run) got to the rows before the first one."""
    deliveries = [
        DeliveryFactory(notification=NotificationFactory(priority="high" if n == 0 else "normal"),
                        channel=private_queue.channel, recheck_at=timezone.now() + timedelta(hours=1),
                        status_changed_at=ago(minutes=1))
        for n in range(30)
    ]
    first_holds_its_rows, release_first = threading.Event(), threading.Event()
    results = {}

    def first_sweep():
        try:
            with transaction.atomic():  # keeps its rows locked until released
                results["first"] = deliveries_sweep(batch_size=10, max_batches=1)
                first_holds_its_rows.set()
                release_first.wait(timeout=30)
        finally:
            first_holds_its_rows.set()
            connection.close()

    def second_sweep():
        try:
            results["second"] = deliveries_sweep(batch_size=100)
        finally:
            connection.close()

    first, second = threading.Thread(target=first_sweep), threading.Thread(target=second_sweep)
    Delivery.objects.filter(id__in=[d.id for d in deliveries]).update(recheck_at=ago(seconds=1))
    first.start()
    assert first_holds_its_rows.wait(timeout=10)
    second.start()
    second.join(timeout=10)
    second_waited = second.is_alive()
    release_first.set()
    first.join(timeout=10)
    second.join(timeout=10)
    published = private_queue.drain()
    if results["first"].requeued < 10:
        return None
    return deliveries, (results["first"], results["second"], second_waited), published
