"""The database going away under a worker: what it had not claimed is tried again within seconds
of the database's return, not left to the sweep's queued deadline.

The outage is this run's own test database refusing new connections (ALLOW_CONNECTIONS false)
with every other session on it ended; the test's own connection stays, so it can create the
notification meanwhile and watch. Nothing outside this run's database is touched.
"""

import time

import pytest

from apps.notifications.intake.services import NotificationRequest, notifications_create
from apps.notifications.models import Delivery, DeliveryStatus
from tests.support.outages import database_closed
from tests.support.processes import wait_until
from tests.templates.factories import TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.timeout(120)  # a database stopped and started, with two waits of up to 30 s
def test_a_claim_that_met_a_database_outage_is_sent_within_seconds_of_its_return(project, worker, smtp):
    user = RecipientFactory(project=project, external_id="db-outage", email="db-outage@example.com")
    TemplateVersionFactory(template__project=project, template__key="outage",
                           channels={"email": {"subject": "Back", "text": "The database is back."}})
    log_start = len(worker.log())

    with database_closed():
        [accepted] = notifications_create(
            project=project, requests=[NotificationRequest(to=user.external_id, template_key="outage")]
        )
        notification = accepted.notification
        wait_until(lambda: "database unavailable" in worker.log()[log_start:], timeout=30,
                   message="the worker to meet the outage")
        time.sleep(1)
    reopened = time.monotonic()

    delivery = Delivery.objects.get(notification=notification)
    wait_until(lambda: Delivery.objects.filter(id=delivery.id, status=DeliveryStatus.SENT).exists(), timeout=30,
               message="the delivery to be sent")
    took = time.monotonic() - reopened
    print(f"\nsent {took:.1f}s after the database came back")
    # The sweep would only publish it again after the queued deadline (20 s in these tests).
    assert took < 12
    assert [m["To"] for m in smtp.messages] == ["db-outage@example.com"]
    assert list(Delivery.objects.get(id=delivery.id).attempts.values_list("outcome", flat=True)) == ["sent"]
