"""The worker pipeline for one delivery: claim, send, and what each provider answer leads to."""

import socket
import uuid
from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from apps.channels.base import TransientProviderError
from apps.notifications.delivery.sending import NoSuchDelivery, delivery_send, retry_delay
from apps.notifications.delivery.sweep import deliveries_sweep
from apps.notifications.models import AttemptOutcome, Delivery, DeliveryStatus
from tests.notifications.conftest import MAX_ATTEMPTS
from tests.notifications.factories import DeliveryFactory, NotificationFactory
from tests.templates.factories import EMAIL_PARTS, TemplateVersionFactory

pytestmark = pytest.mark.django_db


def send(delivery: Delivery):
    outcome = delivery_send(delivery_id=str(delivery.id))
    delivery.refresh_from_db()
    return outcome


def attempts(delivery: Delivery) -> list[tuple[str, str]]:
    return [(a.outcome, a.error_code) for a in delivery.attempts.order_by("number")]


def test_a_queued_delivery_is_sent_once_and_recorded(outbox):
    delivery = DeliveryFactory()

    outcome = send(delivery)

    assert outcome.status == DeliveryStatus.SENT
    assert delivery.status == DeliveryStatus.SENT
    assert delivery.recheck_at is None and delivery.sent_at is not None
    assert attempts(delivery) == [(AttemptOutcome.SENT, "")]
    assert [m.delivery_id for m in outbox] == [str(delivery.id)]
    assert outbox[0].content["subject"] == "Hello Ada"


@pytest.mark.parametrize("status", ["sent", "failed", "dead", "cancelled", "sending", "skipped"])
def test_a_message_for_a_delivery_not_claimable_does_nothing(outbox, status):
    delivery = DeliveryFactory(status=status, attempt_count=1)

    assert send(delivery) is None

    assert delivery.status == status and delivery.attempt_count == 1
    assert not delivery.attempts.exists()
    assert outbox == []


def test_a_second_message_for_the_same_delivery_sends_nothing(outbox):
    delivery = DeliveryFactory()

    send(delivery)
    assert send(delivery) is None

    assert len(outbox) == 1
    assert delivery.attempt_count == 1


def test_a_retry_message_arriving_before_its_time_is_left_to_its_own_countdown(outbox):
    delivery = DeliveryFactory(status=DeliveryStatus.RETRYING, next_attempt_at=timezone.now() + timedelta(minutes=1))

    assert send(delivery) is None
    assert delivery.status == DeliveryStatus.RETRYING and outbox == []


@pytest.mark.parametrize("delivery_id", ["not-a-uuid", "", str(uuid.uuid4())])
def test_a_message_naming_no_delivery_is_refused(outbox, delivery_id):
    with pytest.raises(NoSuchDelivery):
        delivery_send(delivery_id=delivery_id)


class TestSmtpAnswers:
    def test_a_4xx_reply_is_retried_with_a_countdown(self, smtp, settings):
        smtp.fail_next(1, 451)
        delivery = DeliveryFactory()

        outcome = send(delivery)

        assert delivery.status == DeliveryStatus.RETRYING
        assert delivery.last_error_code == "451" and "try again later" in delivery.last_error
        assert attempts(delivery) == [(AttemptOutcome.TRANSIENT_ERROR, "451")]
        # A countdown message, short enough to be held by a worker, with the sweep as backstop.
        assert 0 < outcome.retry_in <= settings.NOTIFIER_MAX_COUNTDOWN_SECONDS
        assert delivery.recheck_at == delivery.next_attempt_at + timedelta(seconds=settings.NOTIFIER_RETRY_GRACE_SECONDS)
        assert delivery.attempts.get().next_attempt_at == delivery.next_attempt_at

    def test_the_retry_is_sent_once_due(self, smtp):
        smtp.fail_next(1, 421)
        delivery = DeliveryFactory()
        send(delivery)
        Delivery.objects.filter(id=delivery.id).update(next_attempt_at=timezone.now())

        assert send(delivery).status == DeliveryStatus.SENT

        assert attempts(delivery) == [(AttemptOutcome.TRANSIENT_ERROR, "421"), (AttemptOutcome.SENT, "")]
        [message] = smtp.received_for(delivery.notification.recipient.email)
        assert message["X-Notifier-Delivery-Id"] == str(delivery.id)

    def test_a_mail_taken_whose_reply_was_lost_is_sent_again_with_the_same_message_id(self, smtp, settings):
        """The server took the mail, but its reply came after the client gave up: the retry is a
        duplicate, and both copies carry the delivery's Message-ID so a mail store can drop one."""
        settings.EMAIL_TIMEOUT = 1
        smtp.stall_next(1, 3)
        delivery = DeliveryFactory()

        send(delivery)
        assert delivery.status == DeliveryStatus.RETRYING
        Delivery.objects.filter(id=delivery.id).update(next_attempt_at=timezone.now())
        assert send(delivery).status == DeliveryStatus.SENT

        first, second = smtp.received_for(delivery.notification.recipient.email)
        assert first["Message-ID"] == second["Message-ID"] == f"<{delivery.id}@localhost>"
        assert delivery.provider_message_id == first["Message-ID"]

    def test_a_5xx_reply_fails_at_once_with_the_providers_answer(self, smtp):
        delivery = DeliveryFactory()
        smtp.reject_recipient(delivery.notification.recipient.email, 550, "5.1.1 mailbox unavailable")

        outcome = send(delivery)

        assert outcome.status == delivery.status == DeliveryStatus.FAILED
        assert delivery.last_error_code == "550"
        assert delivery.last_error == "SMTP 550 5.1.1 mailbox unavailable"
        assert attempts(delivery) == [(AttemptOutcome.PERMANENT_ERROR, "550")]
        assert delivery.recheck_at is None

    def test_a_5xx_reply_to_data_fails_too(self, smtp):
        smtp.fail_next(1, 554, "5.7.1 message rejected")
        delivery = DeliveryFactory()

        assert send(delivery).status == DeliveryStatus.FAILED
        assert delivery.last_error_code == "554"

    def test_a_mail_server_that_is_down_is_a_transient_error(self, smtp, settings):
        settings.EMAIL_PORT = _closed_port()
        delivery = DeliveryFactory()

        assert send(delivery).status == DeliveryStatus.RETRYING
        assert delivery.last_error_code == "connection"

    @pytest.mark.parametrize(("email", "code"), [("", "no_address"), ("not an address", "invalid_address")])
    def test_an_address_that_cannot_work_fails_without_a_retry(self, smtp, email, code):
        delivery = DeliveryFactory()
        delivery.notification.recipient.email = email
        delivery.notification.recipient.save()

        assert send(delivery).status == DeliveryStatus.FAILED
        assert delivery.last_error_code == code
        assert smtp.attempts == 0


def test_a_delivery_on_a_channel_no_longer_enabled_ends_dead_to_be_replayed(outbox):
    # Queued for SMS, then SMS was turned off (no Twilio credentials on this server any more).
    delivery = DeliveryFactory(channel="sms")

    outcome = send(delivery)

    assert outcome.status == delivery.status == DeliveryStatus.DEAD
    assert delivery.last_error_code == "channel_disabled"
    assert delivery.last_error.startswith("The sms channel is not enabled on this server")
    assert attempts(delivery) == [(AttemptOutcome.INTERNAL_ERROR, "channel_disabled")]
    assert delivery.recheck_at is None


def test_a_template_that_cannot_render_this_data_fails_without_a_retry(outbox):
    # It compiles, but the filter raises on this data: every retry would render it the same way.
    version = TemplateVersionFactory(channels={"email": {**EMAIL_PARTS, "subject": "{{ code|divisibleby:'x' }}"}})
    delivery = DeliveryFactory(notification=NotificationFactory(template_version=version, project=version.template.project))

    outcome = send(delivery)

    assert outcome.status == delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error_code == "template_error"
    assert delivery.last_error.startswith("The template could not be rendered (email.subject): ")
    assert attempts(delivery) == [(AttemptOutcome.PERMANENT_ERROR, "template_error")]
    assert outbox == []


class TestAttemptBudget:
    def test_the_last_allowed_attempt_failing_transiently_makes_the_delivery_dead(self, smtp):
        smtp.set_failure_rate(1.0, 451)
        delivery = DeliveryFactory()

        for _ in range(MAX_ATTEMPTS):
            Delivery.objects.filter(id=delivery.id).update(next_attempt_at=None)
            outcome = send(delivery)

        assert outcome.status == delivery.status == DeliveryStatus.DEAD
        assert outcome.retry_in is None
        assert [o for o, _ in attempts(delivery)] == [AttemptOutcome.TRANSIENT_ERROR] * MAX_ATTEMPTS
        assert delivery.last_error_code == "451" and delivery.recheck_at is None

    def test_a_replayed_delivery_has_a_fresh_budget_but_keeps_numbering_its_attempts(self, scripted):
        delivery = DeliveryFactory(attempt_count=MAX_ATTEMPTS, budget_attempts=0)
        scripted.script.append(TransientProviderError("busy", code="429"))

        assert send(delivery).status == DeliveryStatus.RETRYING
        assert delivery.attempts.get().number == MAX_ATTEMPTS + 1


class TestLongWaits:
    def test_a_wait_longer_than_a_countdown_may_be_is_left_to_the_sweep(self, scripted, settings):
        scripted.script.append(TransientProviderError("rate limited", code="429", retry_after=3600))
        delivery = DeliveryFactory()

        outcome = send(delivery)

        # No ETA message: it would sit unacknowledged past RabbitMQ's consumer_timeout.
        assert outcome.status == DeliveryStatus.RETRYING and outcome.retry_in is None
        assert delivery.next_attempt_at > timezone.now() + timedelta(minutes=59)
        assert delivery.recheck_at == delivery.next_attempt_at

    def test_a_huge_retry_after_is_capped_and_the_attempt_recorded(self, scripted, settings):
        # 10**12 seconds would overflow the datetime of the next attempt (the send itself worked).
        scripted.script.append(TransientProviderError("rate limited", code="429", retry_after=1e12))
        delivery = DeliveryFactory()

        outcome = send(delivery)

        assert outcome.status == delivery.status == DeliveryStatus.RETRYING
        wait = delivery.next_attempt_at - timezone.now()
        assert timedelta(seconds=settings.NOTIFIER_MAX_RETRY_AFTER_SECONDS - 5) < wait
        assert wait <= timedelta(seconds=settings.NOTIFIER_MAX_RETRY_AFTER_SECONDS)
        assert attempts(delivery) == [(AttemptOutcome.TRANSIENT_ERROR, "429")]

    def test_a_provider_hanging_past_the_soft_time_limit_is_retried(self, scripted):
        scripted.script.append(SoftTimeLimitExceeded())
        delivery = DeliveryFactory()

        assert send(delivery).status == DeliveryStatus.RETRYING
        assert attempts(delivery) == [(AttemptOutcome.TRANSIENT_ERROR, "timeout")]


def test_a_send_that_outlived_its_claim_does_not_overwrite_what_the_sweep_did(scripted, settings):
    # The provider takes longer than the sending deadline: meanwhile the sweep takes the
    # delivery back (as if the worker had died) and queues it again.
    settings.NOTIFIER_SENDING_TIMEOUT_SECONDS = 0
    scripted.script.append(lambda message: deliveries_sweep())
    delivery = DeliveryFactory()

    assert send(delivery) is None

    assert delivery.status == DeliveryStatus.QUEUED
    assert attempts(delivery) == [(AttemptOutcome.WORKER_LOST, "worker_lost")]


class TestRetryDelay:
    def test_delays_grow_with_each_attempt_and_never_shrink(self, settings):
        settings.NOTIFIER_RETRY_BACKOFF_BASE_SECONDS = 1
        settings.NOTIFIER_RETRY_BACKOFF_MAX_SECONDS = 60
        for _ in range(500):
            delays = [retry_delay(attempt=n) for n in range(1, 12)]
            assert delays == sorted(delays)
            assert 0.5 <= delays[0] <= 1 and delays[-1] == 60

    def test_delays_are_jittered(self, settings):
        settings.NOTIFIER_RETRY_BACKOFF_BASE_SECONDS = 1
        assert len({retry_delay(attempt=3) for _ in range(20)}) > 1

    def test_a_providers_retry_after_is_honoured_when_longer(self):
        assert retry_delay(attempt=1, retry_after=120) == 120

    def test_no_retry_after_can_make_the_delay_unbounded_or_invalid(self, settings):
        settings.NOTIFIER_RETRY_BACKOFF_BASE_SECONDS = 1
        settings.NOTIFIER_MAX_RETRY_AFTER_SECONDS = 3600
        assert retry_delay(attempt=1, retry_after=1e12) == retry_delay(attempt=1, retry_after=float("inf")) == 3600
        for nonsense in (float("nan"), float("-inf"), -5):
            assert 0.5 <= retry_delay(attempt=1, retry_after=nonsense) <= 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
