"""A batch's emails several at a time (the channel's SEND_CONCURRENCY): sends overlap on the
provider's wait, and every delivery's attempt is still recorded once, as it happened."""

import signal
import threading
import time

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from apps.channels.registry import send_concurrency
from apps.notifications.delivery.sending import deliveries_send
from apps.notifications.models import AttemptOutcome, Delivery, DeliveryStatus
from tests.fakes.smtp import FakeSmtpServer
from tests.notifications import backends
from tests.notifications.conftest import MAX_ATTEMPTS, smtp_configured
from tests.notifications.factories import DeliveryFactory, NotificationFactory
from tests.projects.factories import ProjectFactory
from tests.templates.factories import TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = "apps.channels.backends.email.DjangoEmailBackend"
SCRIPTED = "tests.notifications.backends.ConcurrentScriptedBackend"


def _channels(settings, backend: str, concurrency: int) -> None:
    settings.NOTIFIER_CHANNELS = {"email": {"BACKEND": backend, "MAX_ATTEMPTS": MAX_ATTEMPTS,
                                            "SEND_CONCURRENCY": concurrency}}


@pytest.fixture
def slow_smtp(settings):
    """The real email backend to a fake SMTP server taking 0.3 s a message, as a slow ESP would."""
    with FakeSmtpServer(latency=0.3) as server:
        yield smtp_configured(settings, server)


def _batch(addresses: list[str]) -> list[Delivery]:
    project = ProjectFactory()
    version = TemplateVersionFactory(template__project=project)
    return [DeliveryFactory(notification=NotificationFactory(
        project=project, template_version=version, recipient=RecipientFactory(project=project, email=address)))
        for address in addresses]


def _attempts(delivery: Delivery) -> list[tuple[str, str]]:
    return [(a.outcome, a.error_code) for a in delivery.attempts.order_by("number")]


def test_a_batchs_emails_wait_on_the_provider_together(settings, slow_smtp):
    _channels(settings, EMAIL, 4)
    deliveries = _batch([f"reader{n}@example.com" for n in range(8)])

    started = time.monotonic()
    result = deliveries_send(delivery_ids=[str(d.id) for d in deliveries])
    elapsed = time.monotonic() - started

    assert {o.status for o in result.outcomes.values()} == {DeliveryStatus.SENT} and len(result.outcomes) == 8
    # One after the other, 8 sends of 0.3 s; four at a time, two rounds of 0.3 s.
    assert elapsed < 1.5
    assert sorted(m.rcpt_tos[0] for m in slow_smtp.received) == [f"reader{n}@example.com" for n in range(8)]


def test_each_email_of_a_concurrent_batch_is_recorded_as_the_server_answered(settings, smtp):
    _channels(settings, EMAIL, 4)
    smtp.reject_recipient("gone@example.com", 550, "5.1.1 mailbox unavailable")
    smtp.reject_recipient("busy@example.com", 451, "4.7.1 try again later")
    addresses = [f"reader{n}@example.com" for n in range(12)]
    addresses[3], addresses[7] = "gone@example.com", "busy@example.com"
    deliveries = _batch(addresses)

    result = deliveries_send(delivery_ids=[str(d.id) for d in deliveries])

    expected = {"gone@example.com": (DeliveryStatus.FAILED, [(AttemptOutcome.PERMANENT_ERROR, "550")]),
                "busy@example.com": (DeliveryStatus.RETRYING, [(AttemptOutcome.TRANSIENT_ERROR, "451")])}
    for delivery in deliveries:
        delivery.refresh_from_db()
        address = delivery.notification.recipient.email
        status, attempts = expected.get(address, (DeliveryStatus.SENT, [(AttemptOutcome.SENT, "")]))
        assert (delivery.status, _attempts(delivery), result.outcomes[str(delivery.id)].status) == (
            status, attempts, status), address
    received = sorted(m.rcpt_tos[0] for m in smtp.received)
    assert received == sorted(a for a in addresses if a not in expected)  # each once


def test_a_send_thread_may_not_use_the_database(settings):
    _channels(settings, SCRIPTED, 2)
    backends.script.clear()
    backends.accepted.clear()
    backends.script.append(lambda message: Delivery.objects.count())
    first, second = _batch(["ada@example.com", "bob@example.com"])

    deliveries_send(delivery_ids=[str(first.id), str(second.id)])

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, _attempts(first)) == (DeliveryStatus.DEAD, [(AttemptOutcome.INTERNAL_ERROR, "internal_error")])
    assert "DatabaseUseOffMainThread" in first.last_error
    assert second.status == DeliveryStatus.SENT


def test_the_soft_time_limit_records_what_was_answered_and_gives_back_what_was_not_begun(settings):
    # Two threads: the first two sends hang (as a provider may), the third and later wait for a
    # thread. The task's soft time limit strikes the main thread (as Celery's signal does).
    _channels(settings, SCRIPTED, 2)
    backends.script.clear()
    backends.accepted.clear()
    release = threading.Event()
    backends.script.extend([lambda message: release.wait(10), lambda message: release.wait(10)])
    deliveries = _batch([f"reader{n}@example.com" for n in range(5)])

    def strike(signum, frame):
        raise SoftTimeLimitExceeded()

    previous = signal.signal(signal.SIGALRM, strike)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        deliveries_send(delivery_ids=[str(d.id) for d in deliveries])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        release.set()

    for delivery in deliveries:
        delivery.refresh_from_db()
    hung, waiting = deliveries[:2], deliveries[2:]
    for delivery in hung:  # may have reached the provider: retried, the attempt counted
        assert (delivery.status, _attempts(delivery)) == (DeliveryStatus.RETRYING,
                                                          [(AttemptOutcome.TRANSIENT_ERROR, "timeout")])
    for delivery in waiting:  # never handed to the provider: queued again, uncounted
        assert (delivery.status, delivery.attempt_count, _attempts(delivery)) == (DeliveryStatus.QUEUED, 0, [])
    # Only the hung sends may reach the provider (once let go): the timeout's documented duplicate.
    assert set(backends.accepted) <= {str(delivery.id) for delivery in hung}


def test_concurrency_is_only_for_backends_that_allow_it(settings):
    _channels(settings, "tests.notifications.backends.ScriptedBackend", 4)
    assert send_concurrency("email") == 1
    _channels(settings, SCRIPTED, 4)
    assert send_concurrency("email") == 4
    _channels(settings, SCRIPTED, 0)
    assert send_concurrency("email") == 1
