"""A restartable HTTP server on loopback: the part every HTTP fake shares."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from tests.fakes.base import FakeServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many worker connections, or send_each's thread pool, at once


class FakeHttpHandler(BaseHTTPRequestHandler):
    """A fake's request handler: `self.fake` is the server object it answers for; a subclass
    answers a POST's body in `answer_post`."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' pooled sessions and real receivers expect
    fake: ClassVar[LoopbackHttpServer]

    def do_POST(self) -> None:
        if self.server is not self.fake._httpd:
            # A keep-alive connection from before stop(): drop it, as a restarted provider would.
            self.close_connection = True
            return
        self.answer_post(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def answer_post(self, body: bytes) -> None:
        raise NotImplementedError

    def reply_json(
        self, status: int, payload: Any, headers: dict[str, str] | None = None, *, content_type: str = "application/json"
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging."""


class LoopbackHttpServer(FakeServer):
    """Serves `handler` on 127.0.0.1 and a free port, in a daemon thread.

    The port is bound at construction, so URLs are known before `start()`. `stop()` closes the
    socket (connections are refused, as in a provider outage) and `start()` binds the same port
    again; what was recorded stays. Use as a context manager, or call start() and stop().
    """

    thread_name = "fake-http"
    handler: type[FakeHttpHandler]

    def __init__(self) -> None:
        super().__init__()
        self._httpd: _Server | None = _Server(("127.0.0.1", 0), self._handler_class())
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _handler_class(self) -> type[FakeHttpHandler]:
        return type(self.handler.__name__, (self.handler,), {"fake": self})

    def start(self) -> None:
        if self._httpd is None:
            self._httpd = _Server(("127.0.0.1", self.port), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is None:
            return
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()
        self._httpd = None
