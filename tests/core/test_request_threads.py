"""The ASGI handler runs requests on threads it keeps (apps/core/asgi.py, RequestThreads): each
request still gets a thread to itself, gives its database connection back when it ends, and waits
for a free thread when all are running requests; the health probes and /metrics never wait. What
one request leaves on its thread (context variables, an exception, a call still running after its
request was cancelled) does not reach the thread's next request."""

import asyncio
import contextlib
import contextvars
import threading

import pytest
from django.db import connections
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from apps.core.asgi import EnvelopeASGIHandler, RequestThread, RequestThreads
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

    # The six requests beyond the two threads wait their turn, and each is answered.
    assert asyncio.run(more_at_once_than_threads()) == [200] * 8
    assert threading.active_count() <= threads + 2
    _assert_connections_lent(lent)


def test_a_request_waits_for_a_free_thread_while_the_probes_and_metrics_never_wait(settings):
    settings.NOTIFIER_WEB_THREADS = 2
    api_key = ApiKeyFactory()
    RecipientFactory(project=api_key.project, external_id="ada")
    app = EnvelopeASGIHandler()

    async def scenario():
        held = [await app.threads.take(), await app.threads.take()]  # as two long requests would
        waiting = asyncio.create_task(_get(app, "/api/v1/users/ada", api_key.raw_key))
        probes = [await asyncio.wait_for(_get(app, path, api_key.raw_key), timeout=10)
                  for path in ("/health/live", "/metrics")]
        await asyncio.sleep(0.3)
        answered_while_held = waiting.done()
        app.threads.give(held.pop())
        return probes, answered_while_held, await asyncio.wait_for(waiting, timeout=10)

    probes, answered_while_held, status = asyncio.run(scenario())
    assert probes == [200, 200]
    assert not answered_while_held
    assert status == 200


def test_a_request_cancelled_while_waiting_leaves_the_threads_as_they_were():
    threads = RequestThreads(size=2)

    async def scenario():
        held = [await threads.take(), await threads.take()]
        waiting = asyncio.create_task(threads.take())
        await asyncio.sleep(0)
        waiting.cancel()
        for thread in held:
            threads.give(thread)
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return [threads.take_if_free() for _ in range(3)]

    first, second, third = asyncio.run(scenario())
    assert first is not None and second is not None and first is not second
    assert third is None  # two threads, neither lost to the cancelled wait nor started anew


def test_a_request_thread_answers_each_call_in_a_context_of_its_own():
    thread = RequestThread()
    correlation_id = contextvars.ContextVar("correlation_id", default=None)

    async def scenario():
        await thread.run(correlation_id.set, "first request's")
        left_behind = await thread.run(correlation_id.get)
        with pytest.raises(ZeroDivisionError):
            await thread.run(divmod, 1, 0)
        return left_behind, await thread.run(divmod, 7, 2)

    left_behind, answer = asyncio.run(scenario())
    assert left_behind is None  # the next request on the thread does not see the first one's
    assert answer == (3, 1)  # and an exception raised on it did not end the thread


def test_a_call_whose_request_was_cancelled_runs_to_its_end_before_the_threads_next():
    thread = RequestThread()
    started, release = threading.Event(), threading.Event()
    finished = []

    def long_call():
        started.set()
        release.wait(timeout=10)
        finished.append("the cancelled request's")

    async def cancelled_at_shutdown():
        answer = thread.run(long_call)
        await asyncio.to_thread(started.wait, 10)
        answer.cancel()

    asyncio.run(cancelled_at_shutdown())  # its event loop is closed before the call ends
    release.set()

    async def next_request():
        return await asyncio.wait_for(thread.run(finished.copy), timeout=10)

    assert asyncio.run(next_request()) == ["the cancelled request's"]


_view_entered, _view_may_read = threading.Event(), threading.Event()
_bodies_read = []


@csrf_exempt
def _slow_reader(request):
    _view_entered.set()
    _view_may_read.wait(timeout=10)
    _bodies_read.append(request.body)  # read lazily, as a view reads a body when it gets to it
    return HttpResponse("read")


urlpatterns = [path("slow-reader", _slow_reader)]  # this module is the URLconf of the test below


def test_a_request_cancelled_while_its_view_runs_can_still_read_its_body(settings):
    # At shutdown uvicorn cancels the requests still running; their views run on to their end on
    # their threads, and must find the body they were sent.
    settings.ROOT_URLCONF = __name__
    app = EnvelopeASGIHandler()

    async def cancelled_mid_view():
        request = asyncio.create_task(asgi_request(app, method="POST", path="/slow-reader", body=b"the body",
                                                   headers=[(b"content-type", b"text/plain")]))
        await asyncio.to_thread(_view_entered.wait, 10)
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await request
        _view_may_read.set()
        await asyncio.to_thread(wait_until, lambda: _bodies_read, timeout=10, message="the view to read")

    asyncio.run(cancelled_mid_view())
    assert _bodies_read == [b"the body"]
