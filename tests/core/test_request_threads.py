"""The ASGI handler runs requests on threads it keeps (apps/core/asgi.py, RequestThreads): each
request still gets a thread to itself, and gives its database connection back when it ends."""

import asyncio
import threading

import pytest
from django.db import connections

from apps.core.asgi import EnvelopeASGIHandler
from tests.projects.factories import ApiKeyFactory
from tests.support.asgi import asgi_request
from tests.support.processes import wait_until
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db(transaction=True)  # the handler's threads read what the test wrote


async def _get(app, path: str, api_key: str) -> int:
    return await asgi_request(app, method="GET", path=path, headers=[(b"authorization", f"Api-Key {api_key}".encode())])


def _connections_lent() -> int:
    stats = connections["default"].pool.get_stats()
    return stats["pool_size"] - stats["pool_available"]


def _assert_connections_lent(count: int) -> None:
    """The pool counts a connection it is still opening (growing) in its size before it is
    available: give a growth started during the requests a moment to finish before counting."""
    wait_until(lambda: _connections_lent() == count, timeout=5, message=f"{count} connections lent")


def test_requests_reuse_the_handlers_threads_and_hold_no_connection_after_them(settings):
    settings.NOTIFIER_WEB_THREADS = 2
    api_key = ApiKeyFactory()
    RecipientFactory(project=api_key.project, external_id="ada")
    app = EnvelopeASGIHandler()
    connections["default"].pool.open()  # its worker threads started before the count (a no-op if open)
    lent, threads = _connections_lent(), threading.active_count()

    async def one_after_another():
        return [await _get(app, "/api/v1/users/ada", api_key.raw_key) for _ in range(20)]

    assert asyncio.run(one_after_another()) == [200] * 20
    assert threading.active_count() <= threads + 2  # the handler's two threads, not one a request
    _assert_connections_lent(lent)

    async def more_at_once_than_threads():
        return await asyncio.gather(*(_get(app, "/api/v1/users/ada", api_key.raw_key) for _ in range(8)))

    # The six requests beyond the two threads each get a thread of their own, as before: none waits.
    assert asyncio.run(more_at_once_than_threads()) == [200] * 8
    _assert_connections_lent(lent)
