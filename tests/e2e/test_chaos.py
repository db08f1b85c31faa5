"""Chaos: thousands of notifications while workers are SIGKILLed and RabbitMQ restarts, with a
mail server refusing a fifth of them transiently. Every one must end final and reach the mail
server; duplicates are counted, and each must fall in the one documented window.

Notifications are created with the in-process service, not over HTTP: what is under test is the
pipeline after "accepted", and the service reaches 2,000 in seconds where HTTP takes minutes on
two cores (the API's own path through an outage is test_broker_outage.py).
"""

import time
from collections import Counter
from contextlib import ExitStack

import pytest

from apps.channels.backends.email import DELIVERY_ID_HEADER
from apps.notifications.intake.services import NotificationRequest, notifications_create
from apps.notifications.models import ACTIVE_STATUSES, AttemptOutcome, Delivery, DeliveryAttempt
from tests.e2e.conftest import queue_depth
from tests.support.processes import celery_worker, wait_until
from tests.templates.factories import TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

TOTAL = 2000
USERS = 100
WORKERS, CONCURRENCY = 2, 3


@pytest.mark.timeout(600)  # 2,000 sends through kills and a broker restart: up to 240 s to drain
def test_every_notification_ends_final_and_reaches_the_mail_server_through_kills_and_a_broker_restart(
    project, e2e_env, process_logs, beat, smtp, rabbitmq
):
    users = [RecipientFactory(project=project, external_id=f"c{n}", email=f"c{n}@example.com") for n in range(USERS)]
    TemplateVersionFactory(template__project=project, template__key="chaos",
                           channels={"email": {"subject": "Chaos {{ n }}", "text": "n={{ n }}"}})
    smtp.set_failure_rate(0.2, 451, seed=20)
    created = 0

    def create(count: int) -> None:
        nonlocal created
        for n in range(created, created + count):
            request = NotificationRequest(to=users[n % USERS].external_id, template_key="chaos", data={"n": n})
            notifications_create(project=project, requests=[request])
        created += count

    started = time.monotonic()
    events = []
    with ExitStack() as processes:
        workers = [processes.enter_context(celery_worker(e2e_env, process_logs, concurrency=CONCURRENCY))
                   for _ in range(WORKERS)]

        def kill_a_worker(index: int) -> None:
            sending = Delivery.objects.filter(status="sending").count()
            workers[index].kill()  # SIGKILL to the whole process group: the worker and its children
            events.append(f"{time.monotonic() - started:5.1f}s SIGKILL {workers[index].name} ({sending} sending)")
            workers[index] = processes.enter_context(celery_worker(e2e_env, process_logs, concurrency=CONCURRENCY))

        create(800)
        kill_a_worker(0)
        create(500)
        rabbitmq.stop()
        events.append(f"{time.monotonic() - started:5.1f}s RabbitMQ stopped")
        try:
            create(200)  # accepted while the broker is down: left to the sweep
        finally:
            rabbitmq.start()
        events.append(f"{time.monotonic() - started:5.1f}s RabbitMQ started")
        create(TOTAL - created - 300)
        kill_a_worker(1)
        create(300)
        events.append(f"{time.monotonic() - started:5.1f}s all {created} created")

        deliveries = Delivery.objects.all()
        wait_until(lambda: not deliveries.filter(status__in=ACTIVE_STATUSES).exists(), timeout=240, interval=1,
                   message="every delivery to reach a final state")
        events.append(f"{time.monotonic() - started:5.1f}s all final")
        # Spare messages (redelivered, or published again by the sweep) are acknowledged as no-ops.
        wait_until(lambda: queue_depth("notifications.email") == 0, timeout=60, message="the email queue to drain")

    statuses = Counter(deliveries.values_list("status", flat=True))
    received = Counter(message[DELIVERY_ID_HEADER] for message in smtp.messages)
    duplicates = {delivery_id: count - 1 for delivery_id, count in received.items() if count > 1}
    outcomes = Counter(DeliveryAttempt.objects.values_list("outcome", flat=True))
    lost = set(DeliveryAttempt.objects.filter(outcome=AttemptOutcome.WORKER_LOST).values_list("delivery_id", flat=True))
    print("\nchaos:", *events, sep="\n  ")
    print(f"  deliveries {dict(statuses)}; attempts {dict(outcomes)}; SMTP transactions {smtp.attempts}")
    print(f"  duplicates: {sum(duplicates.values())} ({len(duplicates)} deliveries), all after a worker_lost attempt")

    assert deliveries.count() == TOTAL
    assert statuses == {"sent": TOTAL}
    assert set(received) == {str(d) for d in deliveries.values_list("id", flat=True)}
    # The one window for a duplicate: the provider accepted, then the worker died before
    # recording it. Any duplicate must be a delivery whose attempt was recorded as lost.
    assert {str(d) for d in lost} >= set(duplicates), duplicates
    assert sum(duplicates.values()) <= len(lost)
    assert queue_depth("notifications.email.dead") == 0  # the broker dead-lettered nothing
