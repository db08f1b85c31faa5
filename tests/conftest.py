import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.db.backends.signals import connection_created
from django.dispatch import receiver
from rest_framework.test import APIClient

from tests.support.services import (
    TEST_VHOST_PREFIX,
    broker_vhost_open,
    rabbitmq_vhost_reset,
    rabbitmqctl,
    unreachable_services,
)

# The fake providers' fixtures (smtp, twilio, fcm, receiver and their session servers), shared by the
# channel, pipeline and end-to-end tests.
pytest_plugins = ["tests.fakes.fixtures"]


@receiver(connection_created)
def _let_the_other_side_of_a_deadlock_give_way(sender, connection, **kwargs):
    """A transactional test ends by truncating every table while the end-to-end workers and beat
    may be reading two of them: a deadlock, in which PostgreSQL aborts whichever side looked for one
    first (after `deadlock_timeout`). The suite's side waits longer, so the worker's query is the
    one aborted (the product retries it) and the test's teardown goes through."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET deadlock_timeout = '10s'")


# --- Services: checked, and the broker's vhost prepared, only when a collected test needs them ---------
# A run of pure unit tests neither waits for nor touches PostgreSQL or RabbitMQ; a run whose tests
# need one stops at once, naming the service that is down and how to start it.

E2E_DIR = Path(__file__).resolve().parent / "e2e"


def needs_database(item) -> bool:
    return item.get_closest_marker("django_db") is not None or "django_db_setup" in item.fixturenames


def needs_broker(item) -> bool:
    """End-to-end tests, transactional ones (their commits publish), and those that ask for the vhost."""
    marker = item.get_closest_marker("django_db")
    transactional = (marker is not None and marker.kwargs.get("transaction")) or "transactional_db" in item.fixturenames
    return bool(item.get_closest_marker("e2e") or transactional or "rabbitmq_vhost" in item.fixturenames)


@pytest.hookimpl(trylast=True)  # after pytest-django's own ordering, which it keeps
def pytest_collection_modifyitems(items):
    """Every test under tests/e2e is an end-to-end test, and they run last. Their worker and beat
    processes live until the session ends, and beat's sweep takes every due delivery in the shared
    test database: a test that commits deliveries after them could see those rows sent or marked
    dead by a process it never started."""
    for item in items:
        if E2E_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)
        if needs_broker(item) and "rabbitmq_vhost" not in item.fixturenames:
            item.fixturenames.append("rabbitmq_vhost")  # set up before the test, once per session
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


def pytest_collection_finish(session):
    database = any(needs_database(item) for item in session.items)
    broker = any(needs_broker(item) for item in session.items)
    if not (database or broker):
        return
    db = settings.DATABASES["default"]
    database_url = f"postgres://{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}" if database else ""
    problems = unreachable_services(database_url, settings.CELERY_BROKER_URL if broker else "")
    if problems:
        pytest.exit("These tests need real services on localhost:\n  " + "\n  ".join(problems), returncode=3)


@pytest.fixture(scope="session")
def rabbitmq_vhost(request):
    """This run's RabbitMQ vhost, ready. A session with end-to-end tests starts it empty (no stale
    messages for the workers, no queue declared with old arguments); any other session reuses it
    when it exists, which spares the three slow rabbitmqctl calls."""
    vhost = urlparse(settings.CELERY_BROKER_URL).path.lstrip("/")
    if not vhost.startswith(TEST_VHOST_PREFIX):  # only ever wipe a vhost the suite owns
        return vhost
    e2e = any(item.get_closest_marker("e2e") for item in request.session.items)
    if e2e or not broker_vhost_open(settings.CELERY_BROKER_URL):
        # The node is shared by every run on this machine, and another run's outage test may have
        # stopped it for a few seconds: wait for it rather than fail every test that needs it.
        rabbitmqctl("await_startup", check=False)
        rabbitmq_vhost_reset(vhost)
    return vhost


@pytest.fixture(autouse=True)
def _metrics_read_afresh():
    """The scrape-time collectors' cache lives as long as the process: each test's scrape reads anew."""
    from apps.core.metrics import metrics_cache_clear

    metrics_cache_clear()


@pytest.fixture
def redis_for_run(settings):
    """Settings pointing at this run's Redis database, under a key prefix of this test's own (no
    lease or bucket left by another test), with the Redis-failure pause cleared around the test."""
    from apps.core.redis import redis_pause_reset
    from tests.support.services import redis_url_for_run

    settings.REDIS_URL = redis_url_for_run()
    settings.NOTIFIER_INBOX_CHANNEL_PREFIX = f"notifier-test-{uuid.uuid4().hex[:8]}:"
    redis_pause_reset()
    yield settings
    redis_pause_reset()


@pytest.fixture
def api_key(db):
    from tests.projects.factories import ApiKeyFactory

    return ApiKeyFactory()


@pytest.fixture
def project(api_key):
    return api_key.project


@pytest.fixture
def api(api_key) -> APIClient:
    """An API client authenticated with a key of `project`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key.raw_key}")
    return client
