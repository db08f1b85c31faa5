"""The inbox live stream under pressure: caps on open streams, and a listener whose Redis
connection is killed. One web process (30 s heartbeat, so an event within seconds was pushed)
and an in-app worker share Redis, on a vhost of their own."""

import uuid
from urllib.parse import urlparse

import pytest
import redis
from django.conf import settings

from apps.users.models import Recipient
from tests.e2e.clients import IN_APP_TEMPLATE, Api, EventStream, notify, user_with_token
from tests.support.processes import celery_worker, wait_until, web_server
from tests.support.services import rabbitmq_vhost_reset, redis_url_for_run

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PER_USER, PER_PROCESS = 2, 3


@pytest.fixture(scope="module")
def capped(e2e_env, process_logs):
    vhost = urlparse(settings.CELERY_BROKER_URL).path.lstrip("/") + "_streamcaps"
    rabbitmq_vhost_reset(vhost)
    prefix = f"notifier-test-{uuid.uuid4().hex[:8]}:"
    env = {**e2e_env, "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
           "REDIS_URL": redis_url_for_run(), "NOTIFIER_INBOX_CHANNEL_PREFIX": prefix,
           "NOTIFIER_INBOX_HEARTBEAT_SECONDS": "30",
           "NOTIFIER_INBOX_STREAMS_PER_USER": str(PER_USER), "NOTIFIER_INBOX_STREAMS_PER_PROCESS": str(PER_PROCESS)}
    web, base_url = web_server(env, process_logs)
    with celery_worker(env, process_logs, queues="notifications.in_app"), web:
        yield {"url": base_url, "web": web, "prefix": prefix, "redis_url": env["REDIS_URL"]}


@pytest.fixture
def api(capped, api_key):
    session = Api(capped["url"], api_key.raw_key)
    assert session.put("/api/v1/templates/news", json=IN_APP_TEMPLATE).status_code == 201
    yield session
    session.close()


def open_stream(capped, token: str) -> EventStream:
    return EventStream(f"{capped['url']}/api/v1/inbox/stream", token=token)


def assert_refused(stream: EventStream, per: str, limit: int) -> None:
    assert stream.status_code == 429
    assert int(stream.response.headers["Retry-After"]) > 0
    error = stream.response.json()["error"]
    assert error["code"] == "too_many_streams" and error["details"] == {"limit": limit, "per": per}
    assert error["message"]


def test_open_streams_are_capped_per_user_and_per_process_with_a_clear_429(capped, api):
    ada, bob, cy = (user_with_token(api, name) for name in ("ada", "bob", "cy"))
    opened = []
    try:
        opened += [open_stream(capped, ada) for _ in range(PER_USER)]
        assert [s.status_code for s in opened] == [200] * PER_USER
        assert_refused(open_stream(capped, ada), "user", PER_USER)

        opened.append(open_stream(capped, bob))  # the process's last one
        assert opened[-1].status_code == 200
        assert_refused(open_stream(capped, cy), "process", PER_PROCESS)

        # A closed stream frees its place at once.
        opened.pop(0).close()
        ada_id = Recipient.objects.get(external_id="ada", project__api_keys__isnull=False).id
        capped["web"].wait_for_log(f"inbox stream closed for user {ada_id}", timeout=10)
        again = wait_until(lambda: (s := open_stream(capped, ada)).status_code == 200 and s, timeout=10,
                           message="ada's place to be freed")
        opened.append(again)
        again.wait_connected()
    finally:
        for stream in opened:
            stream.close()


def test_a_stream_still_gets_messages_after_the_listeners_redis_connection_is_killed(capped, api):
    token = user_with_token(api, "ada")
    stream = open_stream(capped, token)
    client = redis.Redis.from_url(capped["redis_url"])
    try:
        stream.wait_connected()
        notify(api, "ada", "before")
        assert stream.next_event(timeout=10).data["title"] == "before"

        [listener] = [c for c in client.client_list() if c["name"].startswith(f"{capped['prefix']}inbox-listener")]
        client.client_kill_filter(_id=listener["id"])
        # The listener connects again (a new connection under the same name).
        wait_until(lambda: [c for c in client.client_list()
                            if c["name"] == listener["name"] and c["id"] != listener["id"]],
                   timeout=15, message="the listener to reconnect")

        notify(api, "ada", "after")
        # Within seconds, well before the 30 s heartbeat: pushed through the new connection.
        assert stream.next_event(timeout=8).data["title"] == "after"
    finally:
        client.close()
        stream.close()
