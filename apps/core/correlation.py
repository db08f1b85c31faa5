"""The correlation id: one id that follows a request through every task, attempt and log line.

An API request takes the caller's `X-Request-ID` when it is sane (1-128 characters of letters,
digits and `._:-`), or gets a new one; the response returns it in `X-Request-ID`. While the request
runs, and while a worker handles anything the request caused, the id is bound to the current
context: every log line carries it (apps/core/logs.py), and a notification created then stores it
(`Notification.correlation_id`), so workers, the sweep and status webhooks name the same id
hours later. Celery tasks carry it in a message header (celery_app.py).
"""

import contextlib
import contextvars
import logging
import re
import time
import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

HEADER = "X-Request-ID"
MAX_LENGTH = 128
_SANE = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_LENGTH}}}")

_current: contextvars.ContextVar[str] = contextvars.ContextVar("notifier_correlation_id", default="")

logger = logging.getLogger("notifier.request")


def correlation_id_get() -> str:
    """The id bound to the current context, or "" outside any request or task."""
    return _current.get()


def correlation_id_new() -> str:
    return uuid.uuid4().hex


def correlation_id_clean(value: str | None) -> str:
    """`value` if it is a sane id from a caller, else a new one (never an error: the id is ours)."""
    value = (value or "").strip()
    return value if _SANE.fullmatch(value) else correlation_id_new()


@contextlib.contextmanager
def correlation_bound(value: str):
    """Bind `value` for the duration of the block (a task, one delivery's send)."""
    token = _current.set(value or "")
    try:
        yield value
    finally:
        _current.reset(token)


def correlation_bind(value: str) -> contextvars.Token:
    return _current.set(value or "")


def correlation_unbind(token: contextvars.Token) -> None:
    _current.reset(token)


class CorrelationIdMiddleware:
    """Bind the request's id, return it in `X-Request-ID`, and log one line per request.

    First in the middleware list, so that every other middleware's log lines carry the id too.
    Sync and async (like Django's own): the inbox stream's async view must not be forced into a
    thread by one sync-only middleware.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        value, started = self._begin(request)
        with correlation_bound(value):
            return self._end(request, self.get_response(request), value, started)

    async def _acall(self, request):
        value, started = self._begin(request)
        with correlation_bound(value):
            return self._end(request, await self.get_response(request), value, started)

    @staticmethod
    def _begin(request) -> tuple[str, float]:
        value = correlation_id_clean(request.headers.get(HEADER))
        request.correlation_id = value
        return value, time.monotonic()

    @staticmethod
    def _end(request, response, value: str, started: float):
        response[HEADER] = value
        # A stream (the inbox) is logged as it opens: its length is the connection's.
        logger.info("%s %s %s", request.method, request.path, response.status_code, extra={
            "method": request.method, "path": request.path, "status": response.status_code,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        })
        return response
