"""What an operator sees of real work: /metrics counting what the worker processes did, and their
JSON log lines, masked, carrying the correlation id of the API request that started it.

The metrics are read from a host started as a deployment starts it: the Procfile's `web` and
`worker` lines, production settings, and only the documented variables (no metrics folder among
them: the default must bring the worker's pool children and the web processes together)."""

import json
import os
import secrets
import uuid
from urllib.parse import urlparse

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.clients import Api
from tests.e2e.conftest import notification_when_final
from tests.support.processes import (
    BIN,
    ServiceProcess,
    free_port,
    procfile_command,
    test_database_url,
    web_server,
)
from tests.support.services import rabbitmqctl, redis_url_for_run

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCRAPE_TOKEN = secrets.token_urlsafe(24)

TEMPLATE = {"channels": {"email": {"subject": "Hello {{ name }}", "text": "Hi"}}}


@pytest.fixture(scope="module")
def production_host(django_db_setup, django_db_blocker, rabbitmq_vhost, smtp_server, process_logs):
    """The Procfile's `web` (two processes) and `worker` lines under production settings, with the
    environment a deployment has: the documented variables, nothing of the suite's. A vhost of
    their own, so that no other worker of the session takes their messages."""
    vhost = f"{rabbitmq_vhost}_production"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    port = free_port()
    with django_db_blocker.unblock():
        database_url = test_database_url()
    env = {name: os.environ[name] for name in ("HOME", "LANG", "TMPDIR") if name in os.environ}
    env.update(
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        DJANGO_SETTINGS_MODULE="notifier.settings.prod",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=urlparse(settings.CELERY_BROKER_URL)._replace(path=f"/{vhost}").geturl(),
        REDIS_URL=redis_url_for_run(),
        EMAIL_URL=smtp_server.url,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        NOTIFIER_METRICS_TOKEN=SCRAPE_TOKEN,
    )
    assert "PROMETHEUS_MULTIPROC_DIR" not in env
    worker = ServiceProcess("production-worker", ["/bin/sh", "-c", procfile_command("worker")], env, process_logs,
                            ready_text=" ready.")
    web, base_url = web_server(env, process_logs, processes=2, port=port)
    try:
        with worker, web:
            yield base_url
    finally:
        rabbitmqctl("delete_vhost", vhost, check=False)


@pytest.fixture
def production_api(production_host, api_key):
    session = Api(production_host, api_key.raw_key)
    yield session
    session.close()


def scrape(http) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics, keyed by (sample name, sorted labels)."""
    response = http.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def delta(before: dict, after: dict, name: str, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def send(http, to: str, **headers) -> str:
    response = http.post("/api/v1/notifications", json={"to": to, "template": "hello", "data": {"name": to}},
                         headers=headers)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_production_metrics_are_closed_to_a_scrape_without_the_token(production_host):
    response = Api(production_host).get("/metrics")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_metrics_count_what_the_worker_processes_did(production_api, smtp):
    http = production_api
    assert http.put("/api/v1/templates/hello", json=TEMPLATE).status_code == 201
    for name in ("ada", "bob", "cy"):
        assert http.put(f"/api/v1/users/{name}", json={"email": f"{name}@example.com"}).status_code == 201
    smtp.reject_recipient("bob@example.com", 550, "5.1.1 mailbox unavailable")
    before = scrape(http)

    # One at a time, so the scripted failures meet the notification they are meant for.
    smtp.fail_next(1, 451, "4.3.0 try again later")
    assert notification_when_final(http, send(http, "cy"))["status"] == "sent"  # transient, then sent
    assert notification_when_final(http, send(http, "ada"))["status"] == "sent"
    assert notification_when_final(http, send(http, "bob"))["status"] == "failed"  # permanent

    after = scrape(http)
    assert delta(before, after, "notifier_deliveries_total", channel="email", status="sent") == 2
    assert delta(before, after, "notifier_deliveries_total", channel="email", status="failed") == 1
    assert delta(before, after, "notifier_delivery_attempts_total", channel="email", outcome="sent") == 2
    assert delta(before, after, "notifier_delivery_attempts_total", channel="email", outcome="transient_error") == 1
    assert delta(before, after, "notifier_delivery_attempts_total", channel="email", outcome="permanent_error") == 1
    assert delta(before, after, "notifier_delivery_retries_total", channel="email") == 1
    assert delta(before, after, "notifier_delivery_latency_seconds_count", channel="email") == 2
    assert delta(before, after, "notifier_provider_call_seconds_count", channel="email") == 4
    # The accepted→sent latency of the retried one includes its backoff (0.5 s at least here).
    assert delta(before, after, "notifier_delivery_latency_seconds_sum", channel="email") >= 0.25
    # Read at scrape time: the broker answered, and the dead-letter queue of record has no email.
    assert after[("notifier_broker_up", ())] == 1
    assert ("notifier_queue_messages", (("queue", "notifications.email"),)) in after
    assert after[("notifier_dead_letters", (("channel", "email"),))] == 0
    # The HTTP defaults are still there, counted by the web process.
    assert any(name == "django_http_requests_total_by_method_total" for name, _ in after)


def test_sweep_runs_are_counted(http, worker, beat):
    before = scrape(http)
    from tests.support.processes import wait_until

    wait_until(lambda: delta(before, scrape(http), "notifier_sweep_runs_total") >= 2, timeout=30,
               message="two sweep runs to be counted")


def test_one_correlation_id_follows_a_notification_from_the_request_to_the_worker_log(http, worker, smtp):
    assert http.put("/api/v1/templates/hello", json=TEMPLATE).status_code == 201
    assert http.put("/api/v1/users/grace", json={"email": "grace@example.com", "phone": "+15551234567"}).status_code == 201
    # Real servers name the address they refuse: the log must not.
    smtp.reject_recipient("grace@example.com", 550, "5.1.1 <grace@example.com>: Recipient address rejected")
    request_id = f"checkout-{uuid.uuid4().hex[:12]}"

    response = http.post("/api/v1/notifications", json={"to": "grace", "template": "hello", "data": {"name": "G"}},
                         headers={"X-Request-ID": request_id})
    assert response.status_code == 202
    assert response.headers["X-Request-ID"] == request_id
    assert notification_when_final(http, response.json()["id"])["status"] == "failed"

    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    ours = [line for line in lines if line.get("correlation_id") == request_id]
    failed = [line for line in ours if line.get("outcome") == "permanent_error"]
    assert failed, f"no worker line with correlation id {request_id}"
    assert failed[0]["delivery_id"] and failed[0]["level"] == "WARNING"
    assert "g***@example.com" in failed[0]["message"]
    log = worker.log()
    assert "grace@example.com" not in log and "+15551234567" not in log


def test_an_insane_request_id_is_replaced_and_one_is_made_when_none_is_given(http):
    made = http.get("/api/v1/templates").headers["X-Request-ID"]
    assert made and len(made) <= 128
    replaced = http.get("/api/v1/templates", headers={"X-Request-ID": "a b\"<script>" + "x" * 200}).headers
    assert replaced["X-Request-ID"] != made and "<" not in replaced["X-Request-ID"]
    assert len(replaced["X-Request-ID"]) <= 128
