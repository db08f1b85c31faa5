import uuid
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.db.backends.signals import connection_created
from django.dispatch import receiver
from rest_framework.test import APIClient

from tests.support.services import TEST_VHOST_PREFIX, rabbitmq_vhost_reset, unreachable_services

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


def pytest_sessionstart(session):
    db = settings.DATABASES["default"]
    database_url = f"postgres://{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
    problems = unreachable_services(database_url, settings.CELERY_BROKER_URL)
    if problems:
        pytest.exit("The suite needs real services on localhost:\n  " + "\n  ".join(problems), returncode=3)
    vhost = urlparse(settings.CELERY_BROKER_URL).path.lstrip("/")
    if vhost.startswith(TEST_VHOST_PREFIX):  # only ever wipe a vhost the suite owns
        rabbitmq_vhost_reset(vhost)


@pytest.hookimpl(trylast=True)  # after pytest-django's own ordering, which it keeps
def pytest_collection_modifyitems(items):
    """End-to-end tests run last. Their worker and beat processes live until the session ends, and
    beat's sweep takes every due delivery in the shared test database: a test that commits
    deliveries after them could see those rows sent or marked dead by a process it never started."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


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
