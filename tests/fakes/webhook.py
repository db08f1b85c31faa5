"""A real HTTP server receiving webhooks, for tests: it records each request and answers from a
script, the way real receivers fail (5xx, 429 with Retry-After, 410, a redirect, a hang)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from tests.fakes.loopback import FakeHttpHandler, LoopbackHttpServer


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str = '{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering: longer than the client's timeout is a hang
    # Seconds between the bytes of the answer, status line included: each read gets a byte well
    # within any read timeout, while the whole answer takes as long as the receiver likes.
    drip: float = 0.0


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float  # time.time()

    def json(self):
        return json.loads(self.body)


class _Handler(FakeHttpHandler):
    fake: WebhookReceiver

    def answer_post(self, body: bytes) -> None:
        request = ReceivedRequest(path=self.path, headers=dict(self.headers), body=body, received_at=time.time())
        reply = self.fake._next_reply(request)
        time.sleep(reply.delay)
        payload = reply.body.encode()
        if reply.drip:
            self._drip(reply, payload)
            return
        try:
            self.send_response(reply.status)
            for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout test)

    def _drip(self, reply: Reply, payload: bytes) -> None:
        head = f"HTTP/1.1 {reply.status} OK\r\nContent-Type: application/json\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in reply.headers.items())
        answer = (head + f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload
        self.close_connection = True
        try:
            for index in range(len(answer)):
                self.wfile.write(answer[index:index + 1])
                self.wfile.flush()
                time.sleep(reply.drip)
        except OSError:
            pass  # the client cut it off (the deadline test)


class WebhookReceiver(LoopbackHttpServer):
    """`with WebhookReceiver() as receiver:` serves on 127.0.0.1; `receiver.url` is the hook address."""

    thread_name = "webhook-receiver"
    handler = _Handler

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request received, oldest first (a copy)."""
        return self.recorded

    def reply_with(self, *replies: Reply) -> None:
        """Answer the next requests with these, in order; then 200 again."""
        for reply in replies:
            self._script_next(1, reply)

    def wait_for_requests(self, count: int, timeout: float = 10) -> list[ReceivedRequest]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"received {len(self.requests)} webhook requests, expected {count}")
            time.sleep(0.02)
        return self.requests

    def _next_reply(self, request: ReceivedRequest) -> Reply:
        return self._take_attempt(request) or Reply()
