"""Retention as deployed: beat schedules it, a worker on the maintenance queue runs it, and what is
past the period disappears from the API while the rest stays. Beat and worker are this module's
own, on a vhost of their own, with the run every second."""

from datetime import timedelta
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.utils import timezone

from apps.notifications.models import Delivery, DeliveryStatus, Notification
from apps.notifications.queues import MAINTENANCE_QUEUE
from tests.notifications.factories import DeliveryAttemptFactory, DeliveryFactory
from tests.support.processes import celery_beat, celery_worker, wait_until
from tests.support.services import rabbitmq_vhost_reset, rabbitmqctl

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def retention_processes(e2e_env, process_logs):
    vhost = urlparse(settings.CELERY_BROKER_URL).path.lstrip("/") + "_retention"
    rabbitmq_vhost_reset(vhost)
    env = {**e2e_env, "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
           "NOTIFIER_RETENTION_INTERVAL_SECONDS": "1", "NOTIFIER_RETENTION_BATCH_SIZE": "4"}
    try:
        with celery_worker(env, process_logs, queues=MAINTENANCE_QUEUE) as worker, celery_beat(env, process_logs):
            yield worker
    finally:
        rabbitmqctl("delete_vhost", vhost, check=False)


def _sent(project, *, age_days: int) -> Delivery:
    then = timezone.now() - timedelta(days=age_days)
    delivery = DeliveryFactory(notification__project=project, status=DeliveryStatus.SENT, status_changed_at=then,
                               recheck_at=None)
    DeliveryAttemptFactory(delivery=delivery, number=1, outcome="sent")
    Notification.objects.filter(pk=delivery.notification_id).update(created_at=then)
    return delivery


@pytest.mark.timeout(120)  # up to 60 s for beat's purge
def test_beat_purges_what_is_past_the_period_and_the_api_stops_showing_it(retention_processes, http, project):
    old = [_sent(project, age_days=31) for _ in range(10)]
    recent = _sent(project, age_days=29)

    wait_until(lambda: not Delivery.objects.filter(pk__in=[d.pk for d in old]).exists(), timeout=60,
               message="beat's retention run to delete the old deliveries")

    assert http.get(f"/api/v1/notifications/{old[0].notification_id}").status_code == 404
    assert http.get(f"/api/v1/notifications/{recent.notification_id}").status_code == 200
    # The worker on the maintenance queue ran it, and logs what it deleted when the run ends: after
    # its last batch, and its other tables, so a little after the deliveries were gone.
    wait_until(lambda: "retention: {'rows': {" in retention_processes.log(), timeout=30,
               message="the maintenance worker's log of the retention run")
