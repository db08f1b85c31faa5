"""A restartable HTTP server on loopback: the part every HTTP fake shares."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many worker connections, or send_each's thread pool, at once


class LoopbackHttpServer:
    """Serves `_handler_class()` on 127.0.0.1 and a free port, in a daemon thread.

    The port is bound at construction, so URLs are known before `start()`. `stop()` closes the
    socket (connections are refused, as in a provider outage) and `start()` binds the same port
    again; what a subclass recorded stays. Use as a context manager, or call start() and stop().
    """

    thread_name = "fake-http"

    def __init__(self) -> None:
        self._httpd: _Server | None = _Server(("127.0.0.1", 0), self._handler_class())
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

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

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
