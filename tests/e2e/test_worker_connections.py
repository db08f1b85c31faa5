"""A prefork worker's child keeps its database connection from task to task, and replaces it when
the database ended it.

Counted with PostgreSQL's own tally of sessions opened on this run's database
(pg_stat_database.sessions): a child that opened a connection per task would add one per send.
"""

import time

import pytest
from django.db import connection

from apps.notifications.intake.services import NotificationRequest, notifications_create
from apps.notifications.models import Delivery, DeliveryStatus
from tests.support.outages import database_closed
from tests.support.processes import wait_until
from tests.templates.factories import TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SENDS = 12


def _sessions_opened() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def _send_one(project, user) -> Delivery:
    [accepted] = notifications_create(project=project,
                                      requests=[NotificationRequest(to=user.external_id, template_key="conn")])
    delivery = Delivery.objects.get(notification=accepted.notification)
    wait_until(lambda: Delivery.objects.filter(id=delivery.id, status=DeliveryStatus.SENT).exists(), timeout=30,
               message="the delivery to be sent")
    return delivery


def test_a_worker_child_reuses_its_connection_and_replaces_one_the_database_ended(project, worker, smtp):
    user = RecipientFactory(project=project, external_id="conn-reuse", email="conn-reuse@example.com")
    TemplateVersionFactory(template__project=project, template__key="conn",
                           channels={"email": {"subject": "Hi", "text": "One connection per child."}})
    for _ in range(2):  # the worker's two children may each open theirs now
        _send_one(project, user)
    time.sleep(1)
    before = _sessions_opened()

    for _ in range(SENDS):  # one at a time: every send is a task of its own
        _send_one(project, user)
    time.sleep(1)  # a closed session is counted as it ends; give the last one time to
    opened = _sessions_opened() - before
    print(f"\n{opened} sessions opened for {SENDS} sends")
    assert opened <= 2  # at most the children's first connections, counted late; not one per send

    # The database ends every session (as a restart does): the next task reconnects by itself,
    # with no attempt lost to the dead connection.
    with database_closed():
        pass
    log_start = len(worker.log())
    started = time.monotonic()
    delivery = _send_one(project, user)
    assert time.monotonic() - started < 10
    assert list(delivery.attempts.values_list("outcome", flat=True)) == ["sent"]
    assert "database unavailable" not in worker.log()[log_start:]
