"""A cancel is never lost: whatever state the delivery is in when it arrives, nothing is sent after it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.channels.base import PermanentProviderError, TransientProviderError
from apps.notifications.delivery.sending import delivery_send
from apps.notifications.delivery.sweep import deliveries_sweep
from apps.notifications.intake.services import notification_cancel
from apps.notifications.models import AttemptOutcome, Delivery, DeliveryStatus
from tests.notifications.factories import DeliveryFactory

pytestmark = pytest.mark.django_db


def cancel(delivery: Delivery):
    notification = delivery.notification
    return notification_cancel(project=notification.project, notification_id=notification.id)


def cancelled_while_sending_then(answer):
    """A script step: the cancel arrives while the provider is busy, then the provider answers."""

    def step(message):
        [summary] = cancel(Delivery.objects.get(id=message.delivery_id)).deliveries.all()
        # The cancel answers honestly: still being sent, the cancel recorded.
        assert summary.status == DeliveryStatus.SENDING and summary.cancel_requested_at is not None
        if answer is not None:
            raise answer

    return step


def send(delivery: Delivery):
    outcome = delivery_send(delivery_id=str(delivery.id))
    delivery.refresh_from_db()
    return outcome


def test_a_transient_error_after_a_cancel_ends_cancelled_and_schedules_no_retry(scripted):
    scripted.script.append(cancelled_while_sending_then(TransientProviderError("timed out", code="timeout")))
    delivery = DeliveryFactory()

    outcome = send(delivery)

    assert delivery.status == DeliveryStatus.CANCELLED
    assert outcome.status == DeliveryStatus.CANCELLED and outcome.retry_in is None
    assert delivery.next_attempt_at is None and delivery.recheck_at is None
    # The attempt is history all the same.
    assert [(a.outcome, a.error_code) for a in delivery.attempts.all()] == [(AttemptOutcome.TRANSIENT_ERROR, "timeout")]
    # A countdown message arriving later finds nothing to claim.
    assert send(delivery) is None
    assert scripted.accepted == []


def test_a_transient_error_on_the_last_attempt_after_a_cancel_ends_cancelled_not_dead(scripted):
    scripted.script.append(cancelled_while_sending_then(TransientProviderError("timed out", code="timeout")))
    delivery = DeliveryFactory(budget_attempts=2)  # the claim makes it 3 of 3

    send(delivery)

    assert delivery.status == DeliveryStatus.CANCELLED


def test_a_permanent_error_after_a_cancel_ends_cancelled(scripted):
    scripted.script.append(cancelled_while_sending_then(PermanentProviderError("bad address", code="553")))
    delivery = DeliveryFactory()

    send(delivery)

    assert delivery.status == DeliveryStatus.CANCELLED
    assert delivery.last_error_code == "553"


def test_an_attempt_that_reached_the_provider_after_a_cancel_is_sent_and_says_the_cancel_came_late(scripted, api, project):
    scripted.script.append(cancelled_while_sending_then(None))
    delivery = DeliveryFactory(notification__project=project)

    outcome = send(delivery)

    assert outcome.status == DeliveryStatus.SENT
    assert delivery.status == DeliveryStatus.SENT and delivery.cancel_requested_at is not None
    body = api.get(f"/api/v1/notifications/{delivery.notification_id}").json()
    [shown] = body["deliveries"]
    assert shown["status"] == "sent" and shown["cancel_requested_at"] is not None
    assert body["status"] == "sent"


def test_the_sweep_never_requeues_a_delivery_cancelled_while_its_worker_died():
    delivery = DeliveryFactory(status=DeliveryStatus.SENDING, attempt_count=1, budget_attempts=1,
                               recheck_at=timezone.now() - timedelta(seconds=1))
    cancel(delivery)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENDING

    result = deliveries_sweep()

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.CANCELLED and delivery.recheck_at is None
    assert result.cancelled == 1 and result.requeued == 0
    assert [a.outcome for a in delivery.attempts.all()] == [AttemptOutcome.WORKER_LOST]


@pytest.mark.parametrize("status", [DeliveryStatus.PENDING, DeliveryStatus.QUEUED, DeliveryStatus.RETRYING])
def test_a_delivery_not_being_sent_is_cancelled_at_once_and_its_message_does_nothing(scripted, status):
    delivery = DeliveryFactory(status=status, next_attempt_at=timezone.now(), recheck_at=timezone.now())

    [summary] = cancel(delivery).deliveries.all()

    assert summary.status == DeliveryStatus.CANCELLED
    assert send(delivery) is None
    assert delivery.status == DeliveryStatus.CANCELLED and delivery.recheck_at is None
    assert scripted.accepted == []


def test_a_cancel_changes_nothing_already_final():
    delivery = DeliveryFactory(status=DeliveryStatus.SENT)

    [summary] = cancel(delivery).deliveries.all()

    assert summary.status == DeliveryStatus.SENT and summary.cancel_requested_at is None

