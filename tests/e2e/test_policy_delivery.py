"""Policy and timing through the real processes: the API, RabbitMQ, Celery workers, beat's sweep
and a real SMTP server. Frequency caps defer (and skip) what is over them, critical categories
reach users who declined them, scheduled sends wait for their time, a cancel stops a scheduled or
a retrying send, and a `high` notification overtakes a `low` burst on RabbitMQ's priorities."""

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.utils.dateparse import parse_datetime

from tests.e2e.clients import Api
from tests.e2e.conftest import notification_when_final
from tests.support.processes import celery_worker, wait_until, web_server
from tests.support.services import rabbitmq_vhost_reset

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TEMPLATE = {"channels": {"email": {"subject": "{{ subject }}", "text": "Hello"}}}


def user_and_template(http, external_id: str = "ada") -> str:
    address = f"{external_id}@example.com"
    assert http.put(f"/api/v1/users/{external_id}", json={"email": address}).status_code in (200, 201)
    assert http.put("/api/v1/templates/note", json=TEMPLATE).status_code == 201
    return address


def post(http, **body) -> dict:
    response = http.post("/api/v1/notifications", json={"to": "ada", "template": "note", **body})
    assert response.status_code == 202, response.text
    return response.json()


def arrival(smtp, subject: str) -> float | None:
    """When the message with this subject reached the SMTP server (time.time()), or None."""
    return next((m.received_at for m in smtp.received if m.message["Subject"] == subject), None)


@pytest.mark.timeout(120)  # a 6 s window, then up to 60 s for the sweep to release it
def test_over_the_cap_the_last_notification_waits_for_the_window_then_is_sent(http, worker, beat, smtp):
    """Two per 6 s window: the third is `pending` with the reason, and reaches the SMTP server
    only once the first has left the window (released by the sweep)."""
    user_and_template(http)
    caps = [{"category": "promo", "limit": 2, "window": "6s"}]
    assert http.patch("/api/v1/project", json={"frequency_caps": caps}).status_code == 200

    posted_at = time.time()
    sent = [post(http, category="promo", data={"subject": f"promo {n}"}) for n in range(3)]

    assert [d["status"] for n in sent for d in n["deliveries"]] == ["queued", "queued", "pending"]
    held = sent[2]["deliveries"][0]
    assert held["hold_reason"] == "held by the frequency cap (at most 2 'promo' notifications per 6 s)"
    release_at = parse_datetime(
        http.get(f"/api/v1/notifications/{sent[2]['id']}").json()["deliveries"][0]["next_attempt_at"]
    ).timestamp()
    assert release_at >= posted_at + 6  # a window after the first was accepted

    final = notification_when_final(http, sent[2]["id"], timeout=60)

    assert final["status"] == "sent"
    assert arrival(smtp, "promo 0") and arrival(smtp, "promo 1")
    assert arrival(smtp, "promo 2") >= release_at  # not before the window allowed it
    assert final["deliveries"][0]["hold_reason"] == held["hold_reason"]  # why it went out late


def test_over_a_skip_cap_nothing_is_sent_and_the_response_says_why(http, worker, smtp):
    user_and_template(http)
    caps = [{"category": "*", "limit": 1, "window": "1h", "over_cap": "skip"}]
    assert http.patch("/api/v1/project", json={"frequency_caps": caps}).status_code == 200

    first = post(http, data={"subject": "first"})
    second = post(http, data={"subject": "second"})

    assert second["status"] == "skipped"
    assert second["deliveries"][0]["skip_reason"] == "frequency cap: at most 1 notifications per 3600 s"
    assert notification_when_final(http, first["id"])["status"] == "sent"
    assert [m["Subject"] for m in smtp.messages] == ["first"]


def test_a_critical_category_reaches_a_user_who_declined_it(http, worker, smtp):
    user_and_template(http)
    assert http.patch("/api/v1/project", json={"critical_categories": ["security"]}).status_code == 200
    preferences = {"channels": {"email": False}, "categories": {"security": {"email": False}}}
    assert http.put("/api/v1/users/ada/preferences", json=preferences).status_code == 200

    code = post(http, category="security", data={"subject": "your code"})
    newsletter = post(http, category="news", data={"subject": "newsletter"})

    assert newsletter["deliveries"][0]["skip_reason"] == "the user turned email off"
    assert notification_when_final(http, code["id"])["status"] == "sent"
    assert [m["Subject"] for m in smtp.messages] == ["your code"]
    assert http.get("/api/v1/users/ada/preferences").json()["critical_categories"] == ["security"]


def test_a_scheduled_send_waits_for_its_time_and_not_a_moment_less(http, worker, beat, smtp):
    user_and_template(http)
    send_at = datetime.now(UTC) + timedelta(seconds=10)

    created = post(http, send_at=send_at.isoformat(), data={"subject": "later"})

    assert created["status"] == "pending"
    assert [d["status"] for d in created["deliveries"]] == ["pending"]
    time.sleep(max(0.0, send_at.timestamp() - time.time() - 2))
    assert arrival(smtp, "later") is None
    assert http.get(f"/api/v1/notifications/{created['id']}").json()["status"] == "pending"
    final = notification_when_final(http, created["id"], timeout=40)
    assert final["status"] == "sent"
    assert arrival(smtp, "later") >= send_at.timestamp()


def test_a_cancelled_scheduled_send_never_goes_out(http, worker, beat, smtp):
    user_and_template(http)
    send_at = datetime.now(UTC) + timedelta(seconds=3)
    created = post(http, send_at=send_at.isoformat(), data={"subject": "cancelled"})

    cancelled = http.post(f"/api/v1/notifications/{created['id']}/cancel")

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    time.sleep(max(0.0, send_at.timestamp() - time.time()) + 4)  # past its time and a few sweeps
    assert smtp.messages == []
    assert http.get(f"/api/v1/notifications/{created['id']}").json()["deliveries"][0]["status"] == "cancelled"


def test_a_cancelled_retrying_send_is_not_retried(http, worker, beat, smtp):
    """The SMTP server answers 451 (try later): the delivery is `retrying`; after the cancel the
    server takes mail again, and still nothing arrives."""
    user_and_template(http)
    smtp.fail_next(1000, code=451)
    created = post(http, data={"subject": "retried"})
    detail = f"/api/v1/notifications/{created['id']}"
    wait_until(lambda: http.get(detail).json()["deliveries"][0]["status"] == "retrying", timeout=30,
               interval=0.05, message="the delivery to be retrying")

    body = http.post(f"{detail}/cancel").json()
    smtp.reset()  # from now on the server would take it

    assert body["deliveries"][0]["status"] in ("cancelled", "sending")  # a worker may be mid-attempt
    final = notification_when_final(http, created["id"], timeout=30)
    attempts = len(final["deliveries"][0]["attempts"])
    time.sleep(6)  # longer than the longest backoff (4 s) and a few sweeps
    after = http.get(detail).json()["deliveries"][0]
    assert after["status"] == "cancelled"
    assert len(after["attempts"]) == attempts
    assert smtp.messages == []


# --- Priorities ----------------------------------------------------------------------------------

BURST = 3000
BULK_ITEMS = 1000


@pytest.fixture
def priority_cluster(e2e_env, process_logs):
    """A web process on a vhost of its own, with no worker yet: the session's worker and sweep
    cannot take the burst (its deliveries are not presumed lost for 10 minutes either)."""
    vhost = urlparse(settings.CELERY_BROKER_URL).path.lstrip("/") + "_priority"
    rabbitmq_vhost_reset(vhost)
    env = {**e2e_env, "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
           "NOTIFIER_QUEUED_TIMEOUT_SECONDS": "600"}
    server, url = web_server(env, process_logs)
    with server:
        yield env, url


@pytest.mark.timeout(600)  # a burst behind a slow mail server: up to 240 + 300 s
def test_a_high_notification_overtakes_a_low_burst(priority_cluster, api_key, smtp_server, smtp, process_logs):
    """What this measures: 3,000 `low` emails are accepted through the bulk API (60 broker
    messages of 50); a worker (2 processes, prefetch multiplier 1, as the Procfile's) starts on
    them; as soon as the first of them reaches the SMTP server, one `high` email is posted. The
    SMTP server takes 20 ms a message, so the burst lasts about 30 s. Counted: how many of the
    burst reach the SMTP server before the high one. It must be under 10% (300): the high one
    waits only for the batches already running (at most 2 x 50) and those sent while it was
    being posted, not for the 2,900 queued before it."""
    env, url = priority_cluster
    http = Api(url, api_key.raw_key)
    assert http.put("/api/v1/users/crowd", json={"email": "crowd@example.com"}).status_code == 201
    assert http.put("/api/v1/users/vip", json={"email": "vip@example.com"}).status_code == 201
    assert http.put("/api/v1/templates/note", json=TEMPLATE).status_code == 201
    for start in range(0, BURST, BULK_ITEMS):
        items = [{"to": "crowd", "template": "note", "priority": "low", "data": {"subject": f"low {n}"}}
                 for n in range(start, start + BULK_ITEMS)]
        response = http.post("/api/v1/notifications/bulk", json={"notifications": items}, timeout=120)
        assert response.status_code == 200
        assert all(r["deliveries"][0]["status"] == "queued" for r in response.json()["results"])

    smtp_server.latency = 0.02
    try:
        with celery_worker(env, process_logs, concurrency=2, queues="notifications.email"):
            wait_until(lambda: smtp.received, timeout=60, interval=0.02, message="the burst to start arriving")
            response = http.post("/api/v1/notifications", json={
                "to": "vip", "template": "note", "priority": "high", "data": {"subject": "high"}})
            assert response.status_code == 202
            # Long enough for the whole burst: without priorities the high one comes last, and the
            # count below says so rather than a timeout.
            wait_until(lambda: arrival(smtp, "high"), timeout=240, interval=0.05, message="the high one to arrive")
            subjects = [m.message["Subject"] for m in smtp.received]
            lows_before_high = subjects.index("high")
            smtp_server.latency = 0.0  # the rest of the burst, fast, so the test ends clean
            wait_until(lambda: len(smtp.received) >= BURST + 1, timeout=300, interval=0.5,
                       message="the whole burst to arrive")
    finally:
        smtp_server.latency = 0.0
        http.close()

    print(f"low emails at the SMTP server before the high one: {lows_before_high} of {BURST}")
    assert lows_before_high < BURST // 10
    assert len(smtp.received) == BURST + 1  # nothing lost or sent twice on the way
