"""The inbox live stream as a browser uses it: EventSource on one web process, notifications
created through another, sent by a worker; then the same on the embedded default (no Redis).

Heartbeats are long (30 s) on the processes whose latency is measured, so an event arriving
within a second can only have been pushed, not found by a heartbeat's catch-up read.
"""

import shutil
import subprocess
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis
import requests
from django.conf import settings
from django.test import override_settings

from apps.inbox.live import wake_socket_dir
from apps.inbox.tokens import inbox_token_issue
from apps.users.models import Recipient
from tests.e2e.clients import IN_APP_TEMPLATE, Api, EventStream, notify, user_with_token
from tests.e2e.conftest import E2E_SETTINGS
from tests.support.processes import BIN, REPO_ROOT, celery_worker, free_port, process_env, wait_until, web_server
from tests.support.services import rabbitmq_vhost_reset, redis_url_for_run

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The requirement: a user sees an in-app message within a second of it existing.
MAX_LATENCY_SECONDS = 1.0


# --- Processes -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def redis_cluster(e2e_env, process_logs):
    """Two web processes and a worker sharing Redis, on a vhost of their own (so no other
    worker of this session takes their in-app deliveries)."""
    vhost = urlparse(settings.CELERY_BROKER_URL).path.lstrip("/") + "_stream"
    rabbitmq_vhost_reset(vhost)
    prefix = f"notifier-test-{uuid.uuid4().hex[:8]}:"
    env = {**e2e_env, "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
           "REDIS_URL": redis_url_for_run(), "NOTIFIER_INBOX_CHANNEL_PREFIX": prefix,
           "NOTIFIER_INBOX_HEARTBEAT_SECONDS": "30"}
    # A and B run several processes behind their port, as the Procfile's web does.
    web_a, url_a = web_server(env, process_logs, processes=2)
    # Web B beats fast, for the heartbeat test; it serves the API calls, whose latency is not measured.
    web_b, url_b = web_server({**env, "NOTIFIER_INBOX_HEARTBEAT_SECONDS": "0.5"}, process_logs, processes=2)
    # Web C has lost Redis (nothing listens on its port): it must get by on heartbeat reads.
    web_c, url_c = web_server({**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
                               "NOTIFIER_INBOX_HEARTBEAT_SECONDS": "0.5"}, process_logs)
    with celery_worker(env, process_logs, queues="notifications.in_app"), web_a, web_b, web_c:
        yield {"a": url_a, "b": url_b, "c": url_c, "web_a": web_a, "prefix": prefix, "redis_url": env["REDIS_URL"]}


@pytest.fixture
def cluster(redis_cluster, api_key):
    redis_cluster["api_b"] = Api(redis_cluster["b"], api_key.raw_key)
    return redis_cluster


def inbox(base_url: str, token: str) -> list[dict]:
    response = requests.get(f"{base_url}/api/v1/inbox", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def seconds_since(iso: str, moment: float) -> float:
    return moment - datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# --- With Redis: two web processes ---------------------------------------------------------------

def test_a_user_on_one_web_process_sees_a_message_created_through_another_within_a_second(cluster, record_property):
    api = cluster["api_b"]
    assert api.put("/api/v1/templates/news", json=IN_APP_TEMPLATE).status_code == 201
    token = user_with_token(api, "ada")
    stream = EventStream(f"{cluster['a']}/api/v1/inbox/stream", token=token)
    try:
        assert stream.status_code == 200
        assert stream.response.headers["Content-Type"].startswith("text/event-stream")
        stream.wait_connected()

        figures = []
        for n in range(3):
            posted_at = notify(api, "ada", f"Order {n} shipped", n)
            event = stream.next_event()
            assert event.event == "message"
            assert event.data["title"] == f"Order {n} shipped"
            assert event.data["body"] == "Hello ada" and event.data["url"] == f"/n/{n}"
            assert event.data["read"] is False
            assert event.id == str(event.data["id"])
            figures.append((seconds_since(event.data["created_at"], event.received_at), event.received_at - posted_at))
    finally:
        stream.close()

    record_property("latency_from_message_created_s", [round(f[0], 3) for f in figures])
    record_property("latency_from_api_post_s", [round(f[1], 3) for f in figures])
    print(f"\nstream latency (from message creation, from POST): {[(round(a, 3), round(b, 3)) for a, b in figures]}")
    assert all(latency < MAX_LATENCY_SECONDS for latency, _ in figures), figures
    assert [m["title"] for m in inbox(cluster["b"], token)] == [f"Order {n} shipped" for n in (2, 1, 0)]


def test_reconnecting_with_last_event_id_returns_exactly_what_was_missed(cluster):
    api = cluster["api_b"]
    api.put("/api/v1/templates/news", json=IN_APP_TEMPLATE)
    token = user_with_token(api, "ada")
    ada_id = Recipient.objects.get(external_id="ada", project__api_keys__isnull=False).id
    stream_url = f"{cluster['a']}/api/v1/inbox/stream"

    # EventSource's first connection: the token in the query string.
    stream = EventStream(stream_url, token=token, via_query=True)
    stream.wait_connected()
    notify(api, "ada", "seen")
    seen = stream.next_event()
    stream.close()
    # The closed connection leaves nothing behind in the web process.
    cluster["web_a"].wait_for_log(f"inbox stream closed for user {ada_id}; 0 open in this process", timeout=10)

    notify(api, "ada", "missed 1")
    notify(api, "ada", "missed 2")
    wait_until(lambda: len(inbox(cluster["b"], token)) == 3, timeout=15, message="the missed messages to be stored")

    # EventSource reconnecting: the Last-Event-ID header with the last id it saw.
    stream = EventStream(stream_url, token=token, last_event_id=seen.id)
    try:
        missed = [stream.next_event(timeout=5), stream.next_event(timeout=5)]
        assert [e.data["title"] for e in missed] == ["missed 1", "missed 2"]
        assert int(seen.id) < int(missed[0].id) < int(missed[1].id)
        # Then it goes on live, with nothing repeated in between.
        notify(api, "ada", "live again")
        assert stream.next_event().data["title"] == "live again"
        assert stream.pending_events() == []
    finally:
        stream.close()

    # ?last_event_id= works the same for clients that cannot set headers.
    stream = EventStream(f"{stream_url}?last_event_id={missed[0].id}", token=token)
    try:
        assert [stream.next_event(timeout=5).data["title"] for _ in range(2)] == ["missed 2", "live again"]
    finally:
        stream.close()


def test_a_stream_shows_only_its_own_users_messages_and_refuses_bad_tokens(cluster):
    api = cluster["api_b"]
    api.put("/api/v1/templates/news", json=IN_APP_TEMPLATE)
    ada_token = user_with_token(api, "ada")
    bob_token = user_with_token(api, "bob")
    stream_url = f"{cluster['a']}/api/v1/inbox/stream"

    bob_stream = EventStream(stream_url, token=bob_token)
    try:
        bob_stream.wait_connected()
        notify(api, "ada", "for ada only")
        wait_until(lambda: inbox(cluster["b"], ada_token), timeout=15, message="ada's message to be stored")
        notify(api, "bob", "for bob")
        assert bob_stream.next_event().data["title"] == "for bob"
        assert bob_stream.pending_events() == []
    finally:
        bob_stream.close()

    ada = Recipient.objects.get(external_id="ada", project__api_keys__isnull=False)
    expired, _ = inbox_token_issue(recipient=ada, ttl_seconds=-1)
    assert api.delete("/api/v1/users/bob").status_code == 204
    refused = {
        "no token": {},
        "the project's API key": {"Authorization": api.headers["Authorization"]},
        "a forged token": {"Authorization": f"Bearer {ada_token[:-4]}AAAA"},
        "an expired token": {"Authorization": f"Bearer {expired}"},
        "a deleted user's token": {"Authorization": f"Bearer {bob_token}"},
    }
    for what, headers in refused.items():
        response = requests.get(stream_url, headers=headers, timeout=10)
        assert response.status_code == 401, what
        assert response.headers["WWW-Authenticate"] == "Bearer", what
    body = requests.get(stream_url, params={"token": expired}, timeout=10).json()
    assert body["error"]["code"] == "authentication_failed" and "expired" in body["error"]["message"]


def test_erasing_a_user_ends_their_open_stream_at_once(cluster):
    api = cluster["api_b"]
    token = user_with_token(api, "ada")
    # Web A's heartbeat is 30 s: an end within seconds can only come from the erasure's wake-up.
    stream = EventStream(f"{cluster['a']}/api/v1/inbox/stream", token=token)
    try:
        stream.wait_connected()
        assert api.delete("/api/v1/users/ada").status_code == 204
        # 12 s leaves a loaded machine its margin and is still far inside the 30 s heartbeat.
        assert stream.wait_ended(timeout=12), "the stream stayed open after its user was erased"
    finally:
        stream.close()


def test_an_idle_stream_sends_heartbeats_and_one_redis_connection_serves_a_process(cluster):
    api = cluster["api_b"]
    token = user_with_token(api, "ada")
    streams = [EventStream(f"{cluster['b']}/api/v1/inbox/stream", token=token) for _ in range(3)]
    try:
        for stream in streams:
            stream.wait_connected()
            assert stream.retry_ms == 3000
        wait_until(lambda: all(s.comments.count("ping") >= 2 for s in streams), timeout=5, message="heartbeats")
        client = redis.Redis.from_url(cluster["redis_url"])
        listeners = [c for c in client.client_list() if c["name"].startswith(cluster["prefix"])]
        client.close()
        # One subscriber connection per process, not one per stream: web A (earlier tests) and web B
        # run two processes each.
        assert 1 <= len(listeners) <= 4, listeners
    finally:
        for stream in streams:
            stream.close()


def test_a_web_process_that_lost_redis_still_delivers_at_its_heartbeat(cluster):
    api = cluster["api_b"]
    api.put("/api/v1/templates/news", json=IN_APP_TEMPLATE)
    token = user_with_token(api, "ada")
    stream = EventStream(f"{cluster['c']}/api/v1/inbox/stream", token=token)
    try:
        stream.wait_connected()
        posted_at = notify(api, "ada", "despite the outage")
        event = stream.next_event(timeout=10)
    finally:
        stream.close()
    assert event.data["title"] == "despite the outage"
    assert event.received_at - posted_at < 5  # the worker's pickup plus one 0.5 s heartbeat, with room


# --- The embedded default: SQLite, the filesystem broker, no Redis ------------------------------

@pytest.fixture(scope="module")
def embedded(process_logs):
    # A short folder: the wake-up sockets live under the temp dir, but keep every path small anyway.
    data_dir = tempfile.mkdtemp(prefix="ntf-")
    env = process_env(**E2E_SETTINGS, DATABASE_URL=f"sqlite:///{data_dir}/notifier.sqlite3",
                      CELERY_BROKER_URL="filesystem://", NOTIFIER_DATA_DIR=data_dir, REDIS_URL="",
                      NOTIFIER_INBOX_HEARTBEAT_SECONDS="30")
    manage = [str(BIN / "python"), "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=REPO_ROOT, env=env, check=True, capture_output=True,
                   timeout=300)
    api_key = subprocess.run([*manage, "create_api_key", "embedded"], cwd=REPO_ROOT, env=env, check=True,
                             capture_output=True, text=True, timeout=60).stdout.strip()
    web_a, url_a = web_server(env, process_logs, processes=2)
    web_b, url_b = web_server(env, process_logs, processes=2)
    try:
        with celery_worker(env, process_logs, concurrency=1), web_a, web_b:
            yield {"a": url_a, "api_b": Api(url_b, api_key)}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        with override_settings(VAR_DIR=Path(data_dir)):
            shutil.rmtree(wake_socket_dir(), ignore_errors=True)


@pytest.mark.timeout(400)  # migrates a fresh SQLite database (up to 300 s) first
def test_the_stream_works_on_the_embedded_default_across_processes(embedded, record_property):
    api = embedded["api_b"]
    assert api.put("/api/v1/templates/news", json=IN_APP_TEMPLATE).status_code == 201
    token = user_with_token(api, "ada")
    stream_url = f"{embedded['a']}/api/v1/inbox/stream"

    stream = EventStream(stream_url, token=token, via_query=True)
    try:
        stream.wait_connected()
        notify(api, "ada", "first")
        first = stream.next_event(timeout=30)
        latency = seconds_since(first.data["created_at"], first.received_at)
    finally:
        stream.close()
    record_property("embedded_latency_from_message_created_s", round(latency, 3))
    print(f"\nembedded stream latency from message creation: {latency:.3f}s")
    assert first.data["title"] == "first"
    assert latency < MAX_LATENCY_SECONDS

    notify(api, "ada", "missed")
    wait_until(lambda: len(inbox(embedded["a"], token)) == 2, timeout=30, message="the missed message")
    stream = EventStream(stream_url, token=token, last_event_id=first.id)
    try:
        assert stream.next_event(timeout=5).data["title"] == "missed"
        notify(api, "ada", "live")
        assert stream.next_event(timeout=30).data["title"] == "live"
    finally:
        stream.close()
