"""Hostile and slow webhook receivers against real workers: a project's share of the workers,
and a cancel that arrives while its webhook is being sent."""

import itertools
import time
import uuid
from urllib.parse import urlparse

import pytest
from django.conf import settings

from apps.notifications.models import Delivery
from tests.e2e.clients import Api
from tests.e2e.conftest import notification_when_final
from tests.fakes.webhook import Reply, WebhookReceiver
from tests.projects.factories import ApiKeyFactory
from tests.support.processes import celery_worker, web_server
from tests.support.services import rabbitmq_vhost_reset, redis_url_for_run

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "whsec_e2e_hostile"
TEMPLATE = {"channels": {"webhook": {"event": "invoice.paid", "invoice": "{{ invoice }}"}}}
# How long project A's receiver hangs on each request (within the total deadline).
HANG_SECONDS = 8.0


@pytest.fixture(scope="module")
def receivers():
    with WebhookReceiver() as hanging, WebhookReceiver() as prompt:
        yield hanging, prompt


@pytest.fixture(scope="module")
def shared_workers(e2e_env, process_logs):
    """Three webhook worker processes and a web process on a vhost of their own, with Redis, and
    a share of one send in flight per project."""
    vhost = urlparse(settings.CELERY_BROKER_URL).path.lstrip("/") + "_shares"
    rabbitmq_vhost_reset(vhost)
    env = {**e2e_env, "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
           "REDIS_URL": redis_url_for_run(), "NOTIFIER_INBOX_CHANNEL_PREFIX": f"notifier-test-{uuid.uuid4().hex[:8]}:",
           "NOTIFIER_WEBHOOK_PROJECT_MAX_CONCURRENCY": "1",
           "NOTIFIER_SHARE_DEFER_SECONDS": "0.5", "NOTIFIER_SHARE_DEFER_MAX_SECONDS": "2",
           "NOTIFIER_WEBHOOK_READ_TIMEOUT_SECONDS": "20", "NOTIFIER_WEBHOOK_TOTAL_TIMEOUT_SECONDS": "20",
           "NOTIFIER_SEND_TIME_LIMIT_SECONDS": "40", "NOTIFIER_SENDING_TIMEOUT_SECONDS": "60"}
    web, base_url = web_server(env, process_logs)
    with celery_worker(env, process_logs, concurrency=3, queues="notifications.webhook"), web:
        yield base_url


def project_api(base_url: str, receiver: WebhookReceiver) -> Api:
    api = Api(base_url, ApiKeyFactory().raw_key)
    assert api.patch("/api/v1/project", json={"webhook_url": receiver.url, "webhook_secret": SECRET}).status_code == 200
    assert api.put("/api/v1/users/acme", json={"name": "Acme"}).status_code == 201
    assert api.put("/api/v1/templates/invoice-paid", json=TEMPLATE).status_code == 201
    return api


def post_invoice_paid(api, invoice: str) -> str:
    response = api.post("/api/v1/notifications", json={"to": "acme", "template": "invoice-paid", "data": {"invoice": invoice}})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_a_project_whose_receiver_hangs_delays_only_its_own_webhooks(shared_workers, receivers, record_property):
    hanging, prompt = receivers
    hanging.reset()
    prompt.reset()
    api_a, api_b = project_api(shared_workers, hanging), project_api(shared_workers, prompt)
    hanging.reply_with(*[Reply(200, delay=HANG_SECONDS)] * 3)

    a_ids = [post_invoice_paid(api_a, f"A-{n}") for n in range(3)]
    hanging.wait_for_requests(1, timeout=15)
    time.sleep(1)  # A's other two reach the workers meanwhile, and are deferred
    posted_at = time.time()
    b_id = post_invoice_paid(api_b, "B-1")

    [b_request] = prompt.wait_for_requests(1, timeout=3 * HANG_SECONDS)
    record_property("b_latency_s", round(b_request.received_at - posted_at, 3))
    print(f"\nproject B's webhook, while A's receiver hangs: {b_request.received_at - posted_at:.3f}s after its POST")
    # Three workers: without a share, A's three hanging sends would hold them all and B would wait
    # for the first to end (8 s). The bound leaves room for a loaded machine.
    assert b_request.received_at - posted_at < HANG_SECONDS / 2
    assert len(hanging.requests) == 1, "A held more than its share of the workers"
    assert notification_when_final(api_b, b_id)["status"] == "sent"

    # A's webhooks all go out, one at a time, each in one attempt: a deferral spends none.
    for notification_id in a_ids:
        notification = notification_when_final(api_a, notification_id, timeout=6 * HANG_SECONDS)
        [delivery] = notification["deliveries"]
        assert [a["outcome"] for a in delivery["attempts"]] == ["sent"]
    starts = sorted(r.received_at for r in hanging.requests)
    assert len(starts) == 3
    assert all(later - earlier >= HANG_SECONDS * 0.9 for earlier, later in itertools.pairwise(starts))


# --- Cancel while sending (the session's worker and web process) -------------------------------------

@pytest.fixture
def receiver(receivers, http):
    stalling, _ = receivers
    stalling.reset()
    assert http.patch("/api/v1/project", json={"webhook_url": stalling.url, "webhook_secret": SECRET}).status_code == 200
    assert http.put("/api/v1/users/acme", json={"name": "Acme"}).status_code == 201
    assert http.put("/api/v1/templates/invoice-paid", json=TEMPLATE).status_code == 201
    yield stalling
    stalling.reset()


def cancel_while_sending(http, receiver) -> tuple[str, dict]:
    notification_id = post_invoice_paid(http, "INV-9")
    receiver.wait_for_requests(1, timeout=15)  # the worker is waiting for the receiver now
    response = http.post(f"/api/v1/notifications/{notification_id}/cancel")
    assert response.status_code == 200, response.text
    return notification_id, response.json()


def test_a_cancel_during_a_send_that_then_fails_ends_cancelled_and_nothing_is_retried(http, worker, beat, receiver):
    receiver.reply_with(Reply(503, delay=3))  # stalls, then an error that would be retried

    notification_id, cancelled = cancel_while_sending(http, receiver)

    # The cancel answers honestly: that delivery is still being sent, and the cancel is recorded.
    [delivery] = cancelled["deliveries"]
    assert delivery["status"] == "sending" and delivery["cancel_requested_at"] is not None
    notification = notification_when_final(http, notification_id)
    assert notification["status"] == "cancelled"
    [delivery] = notification["deliveries"]
    assert [(a["outcome"], a["error_code"]) for a in delivery["attempts"]] == [("transient_error", "503")]
    # Nothing comes back later: no countdown retry, no sweep (which runs every second here).
    time.sleep(4)
    assert len(receiver.requests) == 1
    assert Delivery.objects.get(id=delivery["id"]).status == "cancelled"


def test_a_cancel_during_a_send_that_reaches_the_receiver_reads_sent_and_says_so(http, worker, receiver):
    receiver.reply_with(Reply(200, delay=2))

    notification_id, _ = cancel_while_sending(http, receiver)

    notification = notification_when_final(http, notification_id)
    [delivery] = notification["deliveries"]
    assert delivery["status"] == "sent" and delivery["cancel_requested_at"] is not None
    assert len(receiver.requests) == 1
