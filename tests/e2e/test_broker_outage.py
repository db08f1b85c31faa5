"""RabbitMQ goes away: the API keeps accepting (the database is the outbox), and what it accepted
goes out once the broker is back, published by the sweep. Stops the shared broker: kept short."""

import time

import pytest
from django.utils import timezone

from apps.notifications.models import Delivery, DeliveryStatus
from tests.support.processes import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

DURING_OUTAGE = 10


@pytest.mark.timeout(300)  # a broker stop and start, then up to 120 s to deliver
def test_the_api_accepts_during_a_broker_outage_and_delivers_after_it(http, worker, beat, smtp, rabbitmq):
    assert http.put("/api/v1/templates/outage", json={"channels": {"email": {"subject": "S", "text": "T"}}}).ok
    for n in range(DURING_OUTAGE + 1):
        assert http.put(f"/api/v1/users/o{n}", json={"email": f"o{n}@example.com"}).ok

    rabbitmq.stop_app()
    try:
        timings, accepted = [], []
        for n in range(DURING_OUTAGE):
            started = time.monotonic()
            response = http.post("/api/v1/notifications", json={"to": f"o{n}", "template": "outage"})
            timings.append(time.monotonic() - started)
            assert response.status_code == 202, response.text
            accepted.append(response.json()["id"])
        # Nothing waits on the dead broker: the first request finds it down, the rest skip it. The
        # bounds are loose on purpose (shared machines): what they catch is a request blocking on
        # connection retries, which takes tens of seconds.
        assert max(timings) < 8 and sorted(timings)[len(timings) // 2] < 2, timings
        deliveries = Delivery.objects.filter(notification_id__in=accepted)
        assert set(deliveries.values_list("status", flat=True)) == {DeliveryStatus.QUEUED}
        # Handed to the sweep: due for publishing at once, not after the unpublished timeout. The
        # web process's publisher thread does this after the 202, so the last one may take a moment.
        wait_until(lambda: not deliveries.filter(recheck_at__gt=timezone.now()).exists(), timeout=5,
                   message="every delivery accepted during the outage to be due for the sweep")
        assert smtp.messages == []
    finally:
        rabbitmq.start_app()

    def all_sent():
        return set(deliveries.values_list("status", flat=True)) == {DeliveryStatus.SENT}

    wait_until(all_sent, timeout=120, interval=0.5, message="the notifications accepted during the outage to be sent")
    assert sorted(m["To"] for m in smtp.messages) == sorted(f"o{n}@example.com" for n in range(DURING_OUTAGE))
    assert beat.process.poll() is None and worker.process.poll() is None  # both rode it out

    # And the web process publishes directly again.
    after = http.post("/api/v1/notifications", json={"to": f"o{DURING_OUTAGE}", "template": "outage"})
    assert after.status_code == 202
    wait_until(lambda: smtp.received_for(f"o{DURING_OUTAGE}@example.com"), timeout=60, message="a send after the outage")
