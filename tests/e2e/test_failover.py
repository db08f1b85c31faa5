"""Provider failover on the real stack: web, a worker (two pool processes sharing the circuits in
Redis) and beat, started from the documented variables only: EMAIL_URL names an SMTP server that
refuses connections (nothing listens on its port), EMAIL_FAILOVER_URLS a second one; the circuit
breakers keep their defaults. The processes get a vhost of their own, so the session's worker
cannot take their mail."""

import time
import uuid
from urllib.parse import urlparse

import pytest
from django.conf import settings

from apps.channels.backends.email import DELIVERY_ID_HEADER
from tests.e2e.clients import Api
from tests.e2e.conftest import notification_when_final
from tests.fakes.smtp import FakeSmtpServer
from tests.support.processes import celery_beat, celery_worker, free_port, wait_until, web_server
from tests.support.services import rabbitmq_vhost_reset, redis_url_for_run

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

EMAILS = 30
TEMPLATE = {"channels": {"email": {"subject": "Failover {{ n }}", "text": "n={{ n }}"}}}


@pytest.fixture(scope="module")
def mail_servers():
    first_port = free_port()  # refused until the test starts a server there
    with FakeSmtpServer() as second:
        servers = {"first_port": first_port, "second": second}
        yield servers
        if servers.get("first"):
            servers["first"].stop()


@pytest.fixture(scope="module")
def failover_stack(e2e_env, process_logs, mail_servers):
    vhost = urlparse(settings.CELERY_BROKER_URL).path.lstrip("/") + "_failover"
    rabbitmq_vhost_reset(vhost)
    env = {**e2e_env, "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
           "EMAIL_URL": f"smtp://127.0.0.1:{mail_servers['first_port']}",
           "EMAIL_FAILOVER_URLS": mail_servers["second"].url,
           "REDIS_URL": redis_url_for_run(),
           "NOTIFIER_INBOX_CHANNEL_PREFIX": f"notifier-test-{uuid.uuid4().hex[:8]}:"}
    web, url = web_server(env, process_logs, processes=1)
    with web, celery_worker(env, process_logs, concurrency=2), celery_beat(env, process_logs):
        yield url


def circuit_state(http: Api, provider: str) -> str | None:
    prefix = f'notifier_provider_circuit_state{{channel="email",provider="{provider}"}} '
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(prefix):
            return line[len(prefix):]
    return None


@pytest.mark.timeout(300)  # up to 60 s to fail over, then up to 150 s for mail to return to the first server
def test_mail_fails_over_to_the_second_server_and_returns_to_the_first_when_it_recovers(
    failover_stack, mail_servers, api_key
):
    http = Api(failover_stack, api_key.raw_key)
    second: FakeSmtpServer = mail_servers["second"]
    first_name = f"smtp:127.0.0.1:{mail_servers['first_port']}"
    second_name = f"smtp:127.0.0.1:{second.port}"
    assert http.put("/api/v1/templates/failover", json=TEMPLATE).status_code == 201
    for n in range(EMAILS):
        assert http.put(f"/api/v1/users/f{n}", json={"email": f"f{n}@example.com"}).status_code == 201

    started = time.monotonic()
    ids = []
    for n in range(EMAILS):
        response = http.post("/api/v1/notifications", json={"to": f"f{n}", "template": "failover", "data": {"n": n}})
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    wait_until(lambda: len(second.received) >= EMAILS, timeout=60 - (time.monotonic() - started), interval=0.1,
               message=f"{EMAILS} emails at the second server")

    # Each exactly once, through the second server, and the attempt log says so.
    notifications = [notification_when_final(http, notification_id) for notification_id in ids]
    delivery_ids = [n["deliveries"][0]["id"] for n in notifications]
    time.sleep(2)  # a duplicate would have arrived by now
    assert sorted(m[DELIVERY_ID_HEADER] for m in second.messages) == sorted(delivery_ids)
    assert {n["status"] for n in notifications} == {"sent"}
    attempts = [a for n in notifications for a in n["deliveries"][0]["attempts"]]
    assert {(a["outcome"], a["provider"]) for a in attempts} == {("sent", second_name)}
    passed_over = {(p["provider"], p["error_code"]) for a in attempts for p in a["passed_over"]}
    assert passed_over == {(first_name, "connection"), (first_name, "circuit_open")}
    assert circuit_state(http, first_name) == "2.0"  # open
    assert circuit_state(http, second_name) == "0.0"

    # The first server comes back: within 150 s new mail goes to it again.
    first = FakeSmtpServer(port=mail_servers["first_port"])
    first.start()
    mail_servers["first"] = first
    back_at, n = time.monotonic(), EMAILS
    while not first.received:
        assert time.monotonic() - back_at < 150, "no mail reached the recovered first server within 150 s"
        response = http.post("/api/v1/notifications", json={"to": "f0", "template": "failover", "data": {"n": n}})
        assert response.status_code == 202, response.text
        n += 1
        time.sleep(2)
    last = http.post("/api/v1/notifications", json={"to": "f1", "template": "failover", "data": {"n": "last"}}).json()
    delivery = notification_when_final(http, last["id"])["deliveries"][0]
    assert [(a["outcome"], a["provider"], a["passed_over"]) for a in delivery["attempts"]] == [("sent", first_name, [])]
    assert [m["Subject"] for m in first.messages][-1] == "Failover last"
    assert circuit_state(http, first_name) == "0.0"  # closed
