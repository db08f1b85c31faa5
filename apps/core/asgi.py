"""The ASGI edge: request bodies are limited before Django reads them.

Django's ASGI handler reads a whole body (spooling it to disk) before any middleware, view or
authentication runs, so a size check in Django comes after the bytes have been taken: an
unauthenticated caller announcing 300 MB, or streaming a chunked body without end, could fill
the disk. Here the limit applies while the body arrives, to every caller.
"""

import json

from django.core.handlers.asgi import ASGIHandler
from django.http import JsonResponse

from apps.core.api import error_body
from apps.core.limits import request_body_limit, request_too_large_message


class RequestBodyLimitMiddleware:
    """Answer 413 (the error envelope) as soon as a body is known to be over its path's limit:
    at once when `Content-Length` says so, or when the bytes received pass it (chunked bodies,
    or a client sending more than it announced). The rest of the body is never read; the
    connection is closed after the answer."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = request_body_limit(path=scope["path"])
        if _declared_length(scope) > limit:
            return await _send_too_large(send, limit)

        received = 0
        response_started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not response_started:
                        await _send_too_large(send, limit)
                    # Django stops reading as if the client had gone; nothing reaches a view.
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message):
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        return await self.app(scope, limited_receive, tracking_send)


class EnvelopeASGIHandler(ASGIHandler):
    """Django's handler, answering the requests it cannot even build with the error envelope
    instead of its plain-text pages (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, a path that is not
    UTF-8)."""

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


def _declared_length(scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0  # the server refuses a malformed Content-Length itself
    return 0


async def _send_too_large(send, limit: int) -> None:
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
    await send({"type": "http.response.body", "body": body})
