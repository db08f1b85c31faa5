"""The ASGI edge: request bodies are limited before Django reads them.

Django's ASGI handler reads a whole body (spooling it to disk) before any middleware, view or
authentication runs, so a size check in Django comes after the bytes have been taken: an
unauthenticated caller announcing 300 MB, or streaming a chunked body without end, could fill
the disk. Here the limit applies while the body arrives, to every caller.

A refusal must also be readable. Most clients (Python's urllib and requests among them) send the
whole body before they read: closing the connection with the body still arriving resets it, and
the client sees a broken pipe instead of the 413. So, as nginx lingers, the rest of a body that is
not far over its limit is read and thrown away before the connection closes; a body far over it (a
300 MB upload) is not worth reading, and its connection closes at once.
"""

import asyncio
import collections
import contextvars
import json
import queue
import threading

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import JsonResponse
from django.urls import set_script_prefix

from apps.core.api import error_body
from apps.core.limits import request_body_limit, request_too_large_message

# How much of a refused body is read and thrown away (past its limit), and for how long at most,
# so that a client sending before reading gets the 413. Beyond either, the connection is closed.
REFUSED_BODY_DRAIN_BYTES = 4 * 1024 * 1024
REFUSED_BODY_DRAIN_SECONDS = 5.0


class RequestBodyLimitMiddleware:
    """Answer 413 (the error envelope) as soon as a body is known to be over its path's limit:
    at once when `Content-Length` says so, or when the bytes received pass it (chunked bodies,
    or a client sending more than it announced). Nothing of the body reaches Django; what the
    client still sends is drained up to a bound (see the module docstring), then the connection
    is closed."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = request_body_limit(path=scope["path"])
        declared = _content_length(_header(scope, b"content-length"))
        if declared > limit:
            drain = declared - limit <= REFUSED_BODY_DRAIN_BYTES and _sends_without_asking(scope)
            return await _refuse(send, receive, limit, drain_bytes=declared if drain else 0)

        received = 0
        response_started = refused = False

        async def limited_receive():
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not response_started and not refused:
                        refused = True
                        await _send_too_large(send, limit, more_body=True)
                    # Django stops reading as if the client had gone; nothing reaches a view.
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message):
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)
        if refused:
            # The 413 is written; ending it closes the connection.
            if _sends_without_asking(scope):
                await _drain(receive, budget=REFUSED_BODY_DRAIN_BYTES)
            await send({"type": "http.response.body", "body": b"", "more_body": False})


class EnvelopeASGIHandler(ASGIHandler):
    """Django's handler, answering the requests it cannot even build with the error envelope
    instead of its plain-text pages (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, a path that is not
    UTF-8), and running the middleware and the view in one thread per request.

    Django's own ASGI chain ends in an async handler: with any sync-only middleware in the list
    (RateLimitHeadersMiddleware, WhiteNoise), a request hopped from its thread back to the event
    loop and into the thread again for the view, two hand-overs of a few hundred microseconds of
    CPU each on a loaded machine. Built as under WSGI, the chain and our sync views run where the
    request's thread already is; the inbox stream's async view is started from that thread and
    streams from the event loop as before (docs/performance.md).

    That thread is one of the `NOTIFIER_WEB_THREADS` kept for the process's life (RequestThreads),
    not a new one per request as Django's handler starts; a request finding them all busy waits
    for one on the event loop.
    """

    def __init__(self):
        super().__init__()
        self.threads = RequestThreads(size=settings.NOTIFIER_WEB_THREADS)
        self.never_waiting_threads = RequestThreads(size=NEVER_WAITING_THREADS_KEPT)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        path = scope["path"]
        if path in LONG_LIVED_PATHS:
            threads = thread = None
        elif path in NEVER_WAITING_PATHS:
            threads = self.never_waiting_threads
            thread = threads.take_if_free()
        else:
            threads = self.threads
            thread = await threads.take()
        if thread is None:
            async with ThreadSensitiveContext():  # Django's way: a thread of the request's own
                await self.handle(scope, receive, send)
            return
        try:
            await self._handle_in_one_hand_over(thread, scope, receive, send)
        finally:
            threads.give(thread)

    async def _handle_in_one_hand_over(self, thread, scope, receive, send):
        """Django's `handle`, with everything sync of a request run in one go on its thread.

        Django's `handle` hands a request to its thread three times (request_started, the chain,
        the response's close) and runs the view as a task raced against a second task listening
        for the client's disconnect. A sync view cannot be stopped when its client goes anyway (it
        runs to its end, as under WSGI), so here the body is read on the event loop, the thread
        runs request_started, the chain and the close, and the loop writes the answer. The close
        (request_finished, which hands the connection back to the pool) now comes before the
        bytes are written rather than after. A streaming response is iterated on the loop and
        closed after it, on the request's thread, as Django does.
        """
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        response = await thread.run(self._respond, scope, body_file)
        await self.send_response(response, send)
        if response.streaming:
            await thread.run(response.close)

    def _respond(self, scope, body_file):
        """The request's answer, on its thread: request_started, the request built, the chain,
        and (but for a streaming answer) the close.

        The body is closed here, by the thread that reads it: a request whose task is cancelled (at
        shutdown) while its thread runs must not have it closed under the view by the event loop.
        """
        try:
            set_script_prefix(get_script_prefix(scope))
            signals.request_started.send(sender=self.__class__, scope=scope)
            request, response = self.create_request(scope, body_file)
            if request is not None:
                response = self.get_response(request)
                response._handler_class = self.__class__
            if not response.streaming:
                response.close()
            return response
        finally:
            body_file.close()

    async def get_response_async(self, request):
        # Only Django's own `handle` (the long-lived paths) comes here: the chain is sync, built as
        # under WSGI, and runs on the request's thread.
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)

    def load_middleware(self, is_async=False):
        # The chain built as under WSGI (ASGIHandler asks for an async one): it runs on the
        # request's thread, entered once (_respond, or get_response_async for the long-lived paths).
        super().load_middleware(is_async=False)

    def create_request(self, scope, body_file):
        request, error_response = super().create_request(scope, body_file)
        if error_response is not None and error_response.status_code == 413:
            error_response = JsonResponse(error_body("request_too_large", "The request body is too large."), status=413)
        elif error_response is not None:
            error_response = JsonResponse(
                error_body("malformed_request", "The request could not be read (bad encoding)."),
                status=error_response.status_code,
            )
        return request, error_response


# Requests that last as long as their client stays (the inbox's event stream): each gets a thread of
# its own, as under Django's handler, rather than holding one of RequestThreads for hours.
LONG_LIVED_PATHS = frozenset({"/api/v1/inbox/stream"})
# Requests that must be answered even while every request thread is held (by requests waiting out
# the database pool's timeout in an outage, say): an orchestrator would otherwise take a slow
# liveness answer for a dead process and restart it, and the metrics would go dark when they are
# wanted most. They run on threads kept apart from the requests', or on one of their own when
# more than NEVER_WAITING_THREADS_KEPT run at once (a thread started per request cost a probe ~0.4
# ms of CPU more: docs/performance.md, "Requests a web process runs at once").
NEVER_WAITING_PATHS = frozenset({"/health/live", "/health/ready", "/metrics"})
NEVER_WAITING_THREADS_KEPT = 64


class RequestThread:
    """A thread kept for the process's life, running the sync part of one request at a time.

    The hand-over is a queue's put one way and `call_soon_threadsafe` the other, where asgiref's
    `sync_to_async` under a ThreadSensitiveContext chained a concurrent future to an asyncio one
    through a thread pool's work queue, shielded the wait, and copied every context variable back
    to the event loop after each call: 7% of a single POST's instructions in the process
    (docs/performance.md, "The hand-over to the request's thread"). What this gives up is nothing
    the request path uses: no code of a request's sync part calls `async_to_sync` (it would still
    work, on an event loop of its own).

    Each call runs in a copy of the caller's context, so what a request sets in context variables
    (its correlation id, asgiref's Local storage) never reaches the thread's next request. Calls
    run one after another in the order given: a request whose wait is cancelled (its task
    cancelled at shutdown) still runs to its end before the next request's call starts.
    """

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="request", daemon=True).start()

    def run(self, function, *args) -> asyncio.Future:
        """`function(*args)` on this thread; the returned future has its result or its exception."""
        loop = asyncio.get_running_loop()
        answer = loop.create_future()
        self._calls.put((loop, answer, contextvars.copy_context(), function, args))
        return answer

    def _serve(self) -> None:
        while True:
            loop, answer, context, function, args = self._calls.get()
            try:
                outcome = (context.run(function, *args), None)
            except BaseException as error:  # handed to the awaiting request, which raises it
                outcome = (None, error)
            try:
                loop.call_soon_threadsafe(_settle, answer, *outcome)
            except RuntimeError:  # the loop was closed meanwhile: nobody is waiting for the answer
                pass


def _settle(answer: asyncio.Future, result, error: BaseException | None) -> None:
    if answer.cancelled():
        return
    if error is None:
        answer.set_result(result)
    else:
        answer.set_exception(error)


class RequestThreads:
    """The threads that run requests' sync code (request_started, the middleware chain and the
    view, the response's close and request_finished), one request at a time each, kept across
    requests: at most `size` requests of a process run at once, and the others wait their turn
    on the event loop, where waiting costs nothing.

    Why a bound: every running request's thread wants the one GIL. With 16 requests at once in a
    process (32 clients on two), each POST cost ~21 voluntary context switches, threads woken to
    find the GIL taken; with 4, ~16, ~6% less web CPU a POST and a paced p99 of 26-33 ms where it
    was 30-74 (docs/performance.md, "Requests a web process runs at once"). The CPU still has
    work while a request waits on the database: its thread lets the GIL go for each round trip,
    and the other running requests take it.

    Why reuse is safe (Django's ASGI handler starts a thread per request; a threaded WSGI server
    reuses them, as here):
    - a request holds its thread from its first sync call to its last (`take` to `give`), a
      thread is given to one request at a time, and it runs its calls one after another: two
      requests' code never interleave on one thread, even when a request's task is cancelled
      while its call runs;
    - Django's database connections are per thread. A request takes a connection from the
      process's pool at its first query and gives it back at request_finished (Django closes a
      pooled connection by returning it), which runs on the same thread, in the response's close,
      or in `handle` when the client went away. A thread between requests holds none; should a
      request end without request_finished (an error escaping the handler), request_started of
      the thread's next request closes what it left (with the pool CONN_MAX_AGE is 0: every
      connection is then obsolete). Transactions never span two requests: `atomic` blocks end
      inside the view.
    Threads are started as requests first need them. Only the event loop's thread calls `take`,
    `take_if_free` and `give`: no lock.
    """

    def __init__(self, *, size: int) -> None:
        self._idle: list[RequestThread] = []
        self._unstarted = size
        self._waiting: collections.deque[asyncio.Future] = collections.deque()

    async def take(self) -> RequestThread:
        """A free thread, or the first one given back after the requests already waiting."""
        thread = None if self._waiting else self.take_if_free()
        if thread is not None:
            return thread
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            return await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed a thread just as the wait was cancelled
                self.give(turn.result())
            raise

    def take_if_free(self) -> RequestThread | None:
        if self._idle:
            return self._idle.pop()
        if self._unstarted:
            self._unstarted -= 1
            return RequestThread()
        return None

    def give(self, thread: RequestThread) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():  # not cancelled meanwhile
                turn.set_result(thread)
                return
        self._idle.append(thread)


def _header(scope, name: bytes) -> bytes:
    for header, value in scope.get("headers", ()):
        if header == name:
            return value
    return b""


def _content_length(value: bytes) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0  # the server refuses a malformed Content-Length itself


def _sends_without_asking(scope) -> bool:
    """False for a client that waits for `100 Continue` before its body: it sends nothing more
    after the 413, and the server would answer it `100 Continue` if the body were read."""
    return _header(scope, b"expect").lower() != b"100-continue"


async def _refuse(send, receive, limit: int, *, drain_bytes: int) -> None:
    """The 413, then up to `drain_bytes` of the body read and dropped before the connection closes."""
    await _send_too_large(send, limit, more_body=bool(drain_bytes))
    if drain_bytes:
        await _drain(receive, budget=drain_bytes)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _drain(receive, *, budget: int) -> None:
    """Read and drop the request's body until it ends, `budget` bytes pass, or time runs out.

    The response is written but not ended meanwhile: the server closes the connection when it
    ends (`Connection: close`), and reads no more of the body after that."""
    try:
        async with asyncio.timeout(REFUSED_BODY_DRAIN_SECONDS):
            while budget > 0:
                message = await receive()
                if message["type"] != "http.request":
                    return
                budget -= len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
    except TimeoutError:
        pass


async def _send_too_large(send, limit: int, *, more_body: bool = False) -> None:
    body = json.dumps(error_body("request_too_large", request_too_large_message(limit))).encode()
    await send({
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            # The unread rest of the body cannot be told from a next request: close the connection.
            (b"connection", b"close"),
        ],
    })
    # With `more_body`, the whole answer is on the wire; the empty end follows the drain.
    await send({"type": "http.response.body", "body": body, "more_body": more_body})
