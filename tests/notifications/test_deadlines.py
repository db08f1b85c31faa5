"""Deadlines read the database's clock, and a delivery no worker ever takes ends instead of
being published forever."""

from datetime import timedelta

import pytest
from django.db.models.functions import Now
from django.utils import timezone

from apps.notifications.delivery.sending import delivery_send
from apps.notifications.delivery.sweep import deliveries_sweep
from apps.notifications.models import Delivery, DeliveryStatus
from tests.notifications.factories import DeliveryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def host_clock(monkeypatch):
    """Make this host's wall clock run off by the given time, as on a worker with a drifting clock."""
    real_now = timezone.now

    def set_offset(offset: timedelta) -> None:
        monkeypatch.setattr(timezone, "now", lambda: real_now() + offset)

    return set_offset


def delivery_at(status: str, **deadlines_from_db_now: timedelta) -> Delivery:
    """A delivery whose deadlines are set relative to the database's own clock."""
    delivery = DeliveryFactory(status=status, attempt_count=1, budget_attempts=1)
    Delivery.objects.filter(id=delivery.id).update(
        status_changed_at=Now(), **{name: Now() + offset for name, offset in deadlines_from_db_now.items()}
    )
    return delivery


class TestTheDatabaseClock:
    def test_a_sweep_on_a_host_running_fast_does_not_take_back_a_live_send(self, outbox, host_clock):
        delivery = delivery_at(DeliveryStatus.SENDING, recheck_at=timedelta(minutes=2))
        host_clock(timedelta(minutes=10))

        result = deliveries_sweep()

        delivery.refresh_from_db()
        assert result.worker_lost == 0 and delivery.status == DeliveryStatus.SENDING
        assert not delivery.attempts.exists()

    def test_a_worker_on_a_host_running_fast_does_not_claim_a_retry_before_it_is_due(self, outbox, host_clock):
        delivery = delivery_at(DeliveryStatus.RETRYING, next_attempt_at=timedelta(minutes=2),
                               recheck_at=timedelta(minutes=3))
        host_clock(timedelta(minutes=10))

        assert delivery_send(delivery_id=str(delivery.id)) is None

        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.RETRYING and outbox == []

    def test_a_worker_on_a_host_running_slow_sends_a_due_retry_and_dates_it_by_the_database(
        self, outbox, host_clock
    ):
        delivery = delivery_at(DeliveryStatus.RETRYING, next_attempt_at=-timedelta(seconds=5),
                               recheck_at=timedelta(minutes=1))
        host_clock(-timedelta(minutes=10))

        assert delivery_send(delivery_id=str(delivery.id)).status == DeliveryStatus.SENT

        delivery.refresh_from_db()
        db_now = Delivery.objects.annotate(now=Now()).values_list("now", flat=True).first()
        assert abs(delivery.sent_at - db_now) < timedelta(minutes=1)
        assert abs(delivery.attempts.get().started_at - db_now) < timedelta(minutes=1)


class TestAChannelNoWorkerConsumes:
    def test_a_delivery_queued_past_the_maximum_age_ends_dead_with_the_reason(self, outbox, settings):
        settings.NOTIFIER_QUEUED_MAX_AGE_SECONDS = 3600
        forgotten = delivery_at(DeliveryStatus.QUEUED, recheck_at=-timedelta(seconds=1))
        Delivery.objects.filter(id=forgotten.id).update(status_changed_at=Now() - timedelta(hours=2))
        waiting = delivery_at(DeliveryStatus.QUEUED, recheck_at=-timedelta(seconds=1))
        Delivery.objects.filter(id=waiting.id).update(status_changed_at=Now() - timedelta(minutes=30))

        result = deliveries_sweep()

        forgotten.refresh_from_db()
        waiting.refresh_from_db()
        assert result.dead == 1 and result.requeued == 1
        assert forgotten.status == DeliveryStatus.DEAD and forgotten.last_error_code == "not_consumed"
        assert "notifications.email" in forgotten.last_error and forgotten.recheck_at is None
        assert waiting.status == DeliveryStatus.QUEUED
