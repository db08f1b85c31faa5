"""An API key's rate holds across web processes: two started from the Procfile's `web` line, on
two ports (so each request's process is known), counting in the same Redis."""

import uuid

import pytest

from tests.e2e.clients import Api
from tests.support.processes import web_server
from tests.support.services import redis_url_for_run

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

RATE = 6


@pytest.fixture(scope="module")
def two_web_processes(e2e_env, process_logs):
    env = {**e2e_env, "REDIS_URL": redis_url_for_run(),
           "NOTIFIER_INBOX_CHANNEL_PREFIX": f"notifier-test-{uuid.uuid4().hex[:8]}:"}
    first, first_url = web_server(env, process_logs, processes=1)
    second, second_url = web_server(env, process_logs, processes=1)
    with first, second:
        yield first_url, second_url


@pytest.fixture
def clients(two_web_processes, api_key):
    api_key.project.api_rate_limit = f"{RATE}/h"
    api_key.project.save(update_fields=["api_rate_limit"])
    sessions = [Api(url, api_key.raw_key) for url in two_web_processes]
    yield sessions
    for session in sessions:
        session.close()


def test_the_limit_is_shared_by_both_processes(clients):
    first, second = clients
    answers = [(first if n % 2 else second).get("/api/v1/project") for n in range(RATE)]
    assert [a.status_code for a in answers] == [200] * RATE

    for process in (first, second):
        refused = process.get("/api/v1/project")
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) > 0


def test_a_bulk_on_one_process_counts_per_notification_on_the_other(clients):
    first, second = clients
    bulk = first.post("/api/v1/notifications/bulk",
                      json={"notifications": [{"to": "nobody", "template": "none"}] * (RATE - 2)})
    assert bulk.status_code == 200, bulk.text

    assert [second.get("/api/v1/project").status_code for _ in range(3)] == [200, 200, 429]
