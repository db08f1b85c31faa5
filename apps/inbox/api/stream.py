"""GET /api/v1/inbox/stream: Server-Sent Events, one `message` event per new inbox message.

An async view (the web process is ASGI), so an open stream costs a coroutine, not a thread. It
authenticates once, sends what came after Last-Event-ID from the database, then sleeps until
apps/inbox/live.py wakes it, with a comment line as heartbeat so proxies keep the connection.
The stream ends when the token expires: the browser reconnects, is refused, and the app asks
its backend for a new token. It also ends when its user is erased (recipient_erase wakes it),
and the reconnection is refused the same way.
"""

import asyncio
import functools
import json

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils import timezone

from apps.core.api import error_body
from apps.inbox.api.serializers import InboxMessageSerializer
from apps.inbox.authentication import KEYWORD, bearer_token
from apps.inbox.live import hub_get
from apps.inbox.selectors import inbox_latest_id, inbox_messages_after, inbox_owner_exists
from apps.inbox.tokens import InboxAccess, InvalidInboxToken, inbox_token_authenticate

# Messages read from the database at a time when a stream catches up.
_BATCH_SIZE = 100
# What a refused stream is told to wait before trying again (429 Retry-After).
_RETRY_AFTER_SECONDS = 10


async def inbox_stream(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return JsonResponse(error_body("method_not_allowed", f'Method "{request.method}" not allowed.'), status=405)
    # Browsers' EventSource cannot set headers, hence ?token=. It then appears in access logs:
    # one more reason for tokens to be short-lived.
    token = bearer_token(request.headers.get("Authorization", "")) or request.GET.get("token", "")
    if not token:
        return _unauthorized("not_authenticated", "Authentication credentials were not provided.")
    try:
        access = await _read(inbox_token_authenticate, token=token)
    except InvalidInboxToken as exc:
        return _unauthorized("authentication_failed", str(exc))

    raw_last_id = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id") or ""
    if raw_last_id and not (raw_last_id.isascii() and raw_last_id.isdigit()):
        return JsonResponse(
            error_body("invalid", "Last-Event-ID must be the id of an event this stream sent.",
                       {"last_event_id": [raw_last_id[:100]]}),
            status=400,
        )
    hub = hub_get()
    recipient_id = access.recipient.id
    refused_by = hub.stream_admit(recipient_id)
    if refused_by:
        return _too_many_streams(refused_by)
    response = StreamingHttpResponse(
        _events(access=access, last_id=int(raw_last_id) if raw_last_id else None), content_type="text/event-stream"
    )
    # Released when Django closes the response, which it does however the stream ends: the
    # generator's own cleanup would not run for a client gone before its first event.
    response._resource_closers.append(functools.partial(hub.stream_release, recipient_id))
    response["Cache-Control"] = "no-cache, no-store"
    response["X-Accel-Buffering"] = "no"  # nginx would otherwise hold events back in its buffer
    return response


def _too_many_streams(refused_by: str) -> JsonResponse:
    if refused_by == "user":
        limit = settings.NOTIFIER_INBOX_STREAMS_PER_USER
        message = f"This user has {limit} live streams open already; close one (another tab, device) first."
    else:
        limit = settings.NOTIFIER_INBOX_STREAMS_PER_PROCESS
        message = "This server has as many live streams open as it serves; try again shortly."
    response = JsonResponse(error_body("too_many_streams", message, {"limit": limit, "per": refused_by}), status=429)
    response["Retry-After"] = str(_RETRY_AFTER_SECONDS)
    return response


def _unauthorized(code: str, message: str) -> JsonResponse:
    response = JsonResponse(error_body(code, message), status=401)
    response["WWW-Authenticate"] = KEYWORD
    return response


async def _events(*, access: InboxAccess, last_id: int | None):
    recipient_id = access.recipient.id
    heartbeat = settings.NOTIFIER_INBOX_HEARTBEAT_SECONDS
    # Listening starts before the first read, so nothing committed in between can be missed.
    async with hub_get().listen(recipient_id) as news:
        yield f"retry: {settings.NOTIFIER_INBOX_STREAM_RETRY_MS}\n\n"
        if last_id is None:
            last_id = await _read(inbox_latest_id, recipient_id=recipient_id)
        woken = False
        while True:
            news.clear()
            sent = 0
            while True:
                batch = await _read(inbox_messages_after, recipient_id=recipient_id, after_id=last_id, limit=_BATCH_SIZE)
                for message in batch:
                    yield _event(message)
                    last_id = message.id
                sent += len(batch)
                if len(batch) < _BATCH_SIZE:
                    break
            # Woken with nothing to send: the user may have been erased (which wakes their
            # streams); asked only then, so a stream costs no extra read per heartbeat.
            if woken and not sent and not await _read(inbox_owner_exists, recipient_id=recipient_id):
                return
            remaining = (access.expires_at - timezone.now()).total_seconds()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(news.wait(), timeout=min(heartbeat, remaining))
                woken = True
            except TimeoutError:
                woken = False
                yield ": ping\n\n"


def _event(message) -> str:
    # json.dumps escapes newlines, so the data is always one line.
    data = json.dumps(InboxMessageSerializer(message).data, separators=(",", ":"))
    return f"id: {message.id}\nevent: message\ndata: {data}\n\n"


async def _read(function, **kwargs):
    """Run a database read for a stream on the shared thread pool.

    Not Django's default (one thread per request): a stream is a request that lasts for hours,
    and its own thread would hold a database connection all that time. The connection goes back
    (to the process's connection pool) after each read, so idle executor threads hold none.
    """

    def read():
        close_old_connections()
        try:
            return function(**kwargs)
        finally:
            close_old_connections()

    return await sync_to_async(read, thread_sensitive=False)()
