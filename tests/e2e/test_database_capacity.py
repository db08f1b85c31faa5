"""Database connections under load and during an outage, against the Procfile's `web` line.

The web processes (several, as WEB_CONCURRENCY starts them), a Celery worker and the load
generator (a process of its own) run on a database of this module's own, owned by a role of its
own: PostgreSQL exempts superusers (the suite's `postgres`) from a CONNECTION LIMIT, so the limit
bites only for an ordinary role. Both names derive from NOTIFIER_TEST_RUN.
"""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests
from django.conf import settings

from tests.e2e.conftest import E2E_SETTINGS
from tests.support.processes import REPO_ROOT, celery_worker, process_env, wait_until, web_server
from tests.support.services import TEST_VHOST_PREFIX, rabbitmq_vhost_reset, rabbitmqctl

pytestmark = pytest.mark.e2e

WEB_PROCESSES = 2
POOL_MAX_SIZE = 4
WORKER_CONCURRENCY = 2
# Exactly the budget the system check computes for these processes (web 2 x 4, worker 2, beat 1,
# flower 1, no operator reserve): the web line refuses to start above it.
CONNECTION_LIMIT = WEB_PROCESSES * POOL_MAX_SIZE + WORKER_CONCURRENCY + 2
CLIENTS = 64
REQUESTS = 5 * CLIENTS


def _admin_url(database: str = "postgres") -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{database}"


@pytest.fixture(scope="module")
def admin():
    """A superuser connection to the `postgres` database, outside the database under test."""
    with psycopg.connect(_admin_url(), autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="module")
def stack(admin, smtp_server, process_logs):
    run = os.environ.get("NOTIFIER_TEST_RUN", "")
    name = f"notifier_capacity_{run}" if run else "notifier_capacity"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.execute(f'DROP ROLE IF EXISTS "{name}"')
    admin.execute(f'CREATE ROLE "{name}" LOGIN')
    admin.execute(f'CREATE DATABASE "{name}" OWNER "{name}" CONNECTION LIMIT {CONNECTION_LIMIT}')
    vhost = f"{TEST_VHOST_PREFIX}_{run}_capacity" if run else f"{TEST_VHOST_PREFIX}_capacity"
    rabbitmq_vhost_reset(vhost)
    db = settings.DATABASES["default"]
    env = process_env(
        DATABASE_URL=f"postgres://{name}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}",
        CELERY_BROKER_URL=f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        EMAIL_URL=smtp_server.url,
        NOTIFIER_DB_POOL_MAX_SIZE=POOL_MAX_SIZE,
        NOTIFIER_DB_RESERVED_CONNECTIONS=0,
        CELERY_WORKER_CONCURRENCY=WORKER_CONCURRENCY,
        **E2E_SETTINGS,
    )
    try:
        _manage(env, "migrate", "--noinput")
        api_key = _manage(env, "create_api_key", "capacity").strip()
        server, base_url = web_server(env, process_logs, processes=WEB_PROCESSES)
        with celery_worker(env, process_logs, concurrency=WORKER_CONCURRENCY), server:
            yield {"name": name, "base_url": base_url, "api_key": api_key, "server": server}
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        rabbitmqctl("delete_vhost", vhost, check=False)


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def http(stack) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Api-Key {stack['api_key']}"
    yield session
    session.close()


def _loadgen(stack, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.loadgen", "--base-url", stack["base_url"], "--api-key", stack["api_key"],
         *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=True,
    )
    return json.loads(result.stdout)


def _sent_ids(http, base_url: str) -> set[str]:
    ids, url = set(), f"{base_url}/api/v1/notifications?status=sent&limit=200"
    while url:
        page = http.get(url, timeout=30).json()
        ids.update(item["id"] for item in page["results"])
        url = page["next"]
    return ids


@pytest.mark.timeout(900)  # a load run of up to 600 s, then up to 180 s of sends
def test_64_clients_on_a_connection_limited_database_get_no_5xx_and_every_notification_is_sent(stack, http, smtp):
    result = _loadgen(stack, "--scenario", "notify", "--clients", str(CLIENTS), "--requests", str(REQUESTS),
                      "--users", "40", "--setup", "--ids")

    assert result["statuses"] == {"202": REQUESTS}, (result["errors"], result["latency_ms"])
    assert len(set(result["ids"])) == REQUESTS
    wait_until(lambda: len(smtp.messages) >= REQUESTS, timeout=180, interval=1, message=f"{REQUESTS} mails")
    assert len(smtp.messages) == REQUESTS  # each once
    wait_until(lambda: _sent_ids(http, stack["base_url"]) >= set(result["ids"]), timeout=60, interval=1,
               message="every notification to read sent")
    # Reads too, while the connections are all taken by the pool's bound.
    reads = _loadgen(stack, "--scenario", "get-user", "--clients", str(CLIENTS), "--requests", str(REQUESTS),
                     "--users", "40")
    assert reads["statuses"] == {"200": REQUESTS}, reads["errors"]
    assert "too many" not in stack["server"].log()


@pytest.mark.timeout(300)
def test_connections_the_server_ended_are_replaced_without_an_error(stack, admin, http):
    # The pools lend a connection used moments ago without a round trip to check it
    # (notifier/postgresql/base.py): one PostgreSQL ended in between must still not be lent.
    base_url = stack["base_url"]
    assert http.put(f"{base_url}/api/v1/templates/ended",
                    json={"channels": {"email": {"subject": "Hi", "text": "Hello"}}}).status_code == 201
    assert http.put(f"{base_url}/api/v1/users/ended", json={"email": "ended@example.com"}).status_code == 201

    def post(_):
        return http.post(f"{base_url}/api/v1/notifications", json={"to": "ended", "template": "ended"}, timeout=30)

    with ThreadPoolExecutor(POOL_MAX_SIZE * WEB_PROCESSES) as clients:
        assert {r.status_code for r in clients.map(post, range(40))} == {202}  # every pool holds connections
        ended = admin.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = %s",
                              (stack["name"],)).fetchall()
        assert len(ended) >= WEB_PROCESSES
        answers = list(clients.map(post, range(40)))
    assert [r.status_code for r in answers] == [202] * 40, [r.text for r in answers if r.status_code != 202]


def _refuse_connections(admin, name: str) -> None:
    admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


def _assert_database_unavailable(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_unavailable"
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.timeout(300)  # the database refusing connections, then recovering
def test_while_the_database_refuses_connections_the_api_answers_503_then_recovers(stack, admin, http, smtp):
    base_url = stack["base_url"]
    assert http.put(f"{base_url}/api/v1/templates/outage",
                    json={"channels": {"email": {"subject": "Hi", "text": "Hello"}}}).status_code == 201
    assert http.put(f"{base_url}/api/v1/users/ada", json={"email": "ada@example.com"}).status_code == 201
    token = http.post(f"{base_url}/api/v1/users/ada/token").json()["token"]
    notify = {"to": "ada", "template": "outage"}
    assert http.post(f"{base_url}/api/v1/notifications", json=notify).status_code == 202

    _refuse_connections(admin, stack["name"])
    try:
        # Each waits out the pool's timeout (10 s by default) for a connection, so all at once.
        with ThreadPoolExecutor(4) as pool:
            created, read, stream, ready = pool.map(lambda call: call(), [
                lambda: http.post(f"{base_url}/api/v1/notifications", json=notify, timeout=30),
                lambda: http.get(f"{base_url}/api/v1/users/ada", timeout=30),
                # Outside DRF: the inbox stream's opening read (an async view), answered by the middleware.
                lambda: requests.get(f"{base_url}/api/v1/inbox/stream", params={"token": token}, timeout=30),
                lambda: requests.get(f"{base_url}/health/ready", timeout=30),
            ])
    finally:
        admin.execute(f'ALTER DATABASE "{stack["name"]}" ALLOW_CONNECTIONS true')
    for response in (created, read, stream):
        _assert_database_unavailable(response)
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "unavailable", "broker": "ok"}  # no exception text
    back = time.monotonic()

    def accepted():
        response = http.post(f"{base_url}/api/v1/notifications", json=notify, timeout=30)
        assert response.status_code in (202, 503), response.text
        return response.json() if response.status_code == 202 else None

    created = wait_until(accepted, timeout=60, interval=0.5, message="the API to accept again")
    print(f"accepting again {time.monotonic() - back:.1f}s after the database came back")
    wait_until(lambda: http.get(f"{base_url}/api/v1/notifications/{created['id']}").json()["status"] == "sent",
               timeout=60, message="the notification accepted after the outage to be sent")
    assert "Traceback" not in stack["server"].log()  # answered, not crashed
