"""A burst of one-delivery messages (single POSTs) waiting in the email queue is sent in batches,
not one task each, and every delivery still goes out exactly once."""

import re

import pytest

from apps.notifications.intake.services import NotificationRequest, notifications_create
from apps.notifications.models import Delivery, DeliveryStatus
from apps.notifications.queues import queue_name
from celery_app import app
from tests.e2e.conftest import queue_depth
from tests.support.outages import database_closed
from tests.support.processes import wait_until
from tests.templates.factories import TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BURST = 30
QUEUE = queue_name("email")
TAKEN = re.compile(r"(\d+) waiting sends of notifications\.email taken into one batch")


def test_a_burst_of_single_sends_is_claimed_in_fewer_tasks_than_deliveries(project, worker, smtp):
    TemplateVersionFactory(template__project=project, template__key="burst",
                           channels={"email": {"subject": "Burst {{ n }}", "text": "Number {{ n }}"}})
    users = [RecipientFactory(project=project, external_id=f"burst-{n}", email=f"burst-{n}@example.com")
             for n in range(BURST)]
    log_start = len(worker.log())
    # The worker stops taking from the queue while the burst arrives, as a busy one would.
    assert app.control.cancel_consumer(QUEUE, reply=True, timeout=5)
    try:
        for n, user in enumerate(users):  # one request, one message, as single POSTs publish them
            notifications_create(project=project, requests=[
                NotificationRequest(to=user.external_id, template_key="burst", data={"n": n})])
        # Ready messages only: a message the worker holds unacknowledged (an earlier test's
        # countdown retry) would otherwise count, and the consumer come back before the whole
        # burst is queued, to send its tail one task each.
        wait_until(lambda: queue_depth(QUEUE, ready_only=True) >= BURST, timeout=10,
                   message="the burst to be queued")
    finally:
        assert app.control.add_consumer(QUEUE, reply=True, timeout=5)

    deliveries = Delivery.objects.filter(notification__recipient__in=users)
    wait_until(lambda: deliveries.filter(status=DeliveryStatus.SENT).count() == BURST, timeout=60,
               message="every delivery of the burst to be sent")
    taken = sum(int(count) for count in TAKEN.findall(worker.log()[log_start:]))
    tasks = BURST - taken
    print(f"\n{BURST} single sends ran as {tasks} tasks")
    assert tasks <= BURST // 2
    for n, user in enumerate(users):
        [message] = smtp.received_for(user.email)
        assert message["Subject"] == f"Burst {n}"
    assert {tuple(d.attempts.values_list("outcome", flat=True)) for d in deliveries} == {("sent",)}


def test_sends_taken_by_a_task_that_met_a_database_outage_go_back_and_are_sent_once(project, worker, smtp):
    TemplateVersionFactory(template__project=project, template__key="burst-outage",
                           channels={"email": {"subject": "Again {{ n }}", "text": "Number {{ n }}"}})
    users = [RecipientFactory(project=project, external_id=f"outage-{n}", email=f"outage-{n}@example.com")
             for n in range(10)]
    log_start = len(worker.log())
    assert app.control.cancel_consumer(QUEUE, reply=True, timeout=5)
    try:
        for n, user in enumerate(users):
            notifications_create(project=project, requests=[
                NotificationRequest(to=user.external_id, template_key="burst-outage", data={"n": n})])
        wait_until(lambda: queue_depth(QUEUE, ready_only=True) >= len(users), timeout=10,
                   message="the burst to be queued")
        with database_closed():
            assert app.control.add_consumer(QUEUE, reply=True, timeout=5)
            wait_until(lambda: "database unavailable" in worker.log()[log_start:], timeout=30,
                       message="the worker to meet the outage")
            # A task took the waiting sends, then could not claim them: it must hand them back.
            assert TAKEN.search(worker.log()[log_start:])
    finally:
        app.control.add_consumer(QUEUE, reply=True, timeout=5)

    deliveries = Delivery.objects.filter(notification__recipient__in=users)
    wait_until(lambda: deliveries.filter(status=DeliveryStatus.SENT).count() == len(users), timeout=60,
               message="every delivery to be sent after the outage")
    for user in users:
        assert len(smtp.received_for(user.email)) == 1
    assert {tuple(d.attempts.values_list("outcome", flat=True)) for d in deliveries} == {("sent",)}
