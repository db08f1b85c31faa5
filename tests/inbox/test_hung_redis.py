"""A Redis that accepts connections and never answers must not hold up in-app sends."""

import time

import pytest

from apps.core.redis import redis_pause_reset
from apps.inbox.models import InboxMessage
from apps.notifications.delivery.sending import delivery_send
from apps.notifications.models import DeliveryStatus
from tests.fakes.silent_tcp import SilentTcpServer
from tests.inbox.factories import IN_APP_PARTS
from tests.notifications.factories import queued_delivery
from tests.users.factories import RecipientFactory

# transaction=True: the wake-up is published once the message commits, as in a worker.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hung_redis(settings):
    with SilentTcpServer() as server:
        settings.REDIS_URL = server.redis_url
        redis_pause_reset()
        yield server
    redis_pause_reset()


def test_in_app_sends_go_on_and_are_stored_while_redis_hangs(hung_redis, settings):
    ada = RecipientFactory()
    deliveries = [queued_delivery(recipient=ada, channel="in_app", parts=IN_APP_PARTS) for _ in range(6)]
    started = time.monotonic()

    outcomes = [delivery_send(delivery_id=str(delivery.id)) for delivery in deliveries]

    elapsed = time.monotonic() - started
    assert [outcome.status for outcome in outcomes] == [DeliveryStatus.SENT] * 6
    assert InboxMessage.objects.filter(recipient=ada).count() == 6
    assert hung_redis.connections, "the worker did try Redis"
    # One short timeout (NOTIFIER_REDIS_TIMEOUT_SECONDS), then Redis is left alone for a pause:
    # six sends cost about one timeout, not six. The bound has room for a loaded machine.
    assert settings.NOTIFIER_REDIS_TIMEOUT_SECONDS <= 0.5
    assert elapsed < 4, f"six in-app sends took {elapsed:.1f}s with Redis hung"
