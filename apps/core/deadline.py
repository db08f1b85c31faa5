"""A total deadline for one HTTP request: connecting, sending, the answer's headers and its body.

requests' timeouts bound each socket operation, not the request: a receiver answering one byte
every 2 s never trips a 3 s read timeout, and holds the worker for as long as it likes to drip.
Inside `request_deadline(seconds)`, a timer shuts down the sockets of the connections the request
uses once the time is up. That wakes a blocked read at once, in whatever phase (TLS handshake,
status line, headers, body): the request fails as a broken connection, and `expired` tells the
caller why.

Connections are watched through the connection classes of the pools (`deadline_pools`), so it
works for a fresh connection and for one reused from the session's pool alike. Outside a
`request_deadline` block those classes behave as urllib3's own.
"""

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

from urllib3 import poolmanager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager

_current = threading.local()


class RequestDeadline:
    """The deadline of the request being made in this thread; `expired` once it has passed."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._ends_at = time.monotonic() + seconds
        self._connections: list[HTTPConnection] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return max(self._ends_at - time.monotonic(), 0.0)

    def watch(self, connection: HTTPConnection) -> None:
        with self._lock:
            if connection not in self._connections:
                self._connections.append(connection)
            if self.expired:
                _shutdown(connection)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            for connection in self._connections:
                _shutdown(connection)


@contextlib.contextmanager
def request_deadline(seconds: float) -> Iterator[RequestDeadline]:
    """Cut the connections of the requests made in this block, in this thread, after `seconds`."""
    deadline = RequestDeadline(seconds)
    timer = threading.Timer(seconds, deadline.expire)
    timer.daemon = True
    previous = getattr(_current, "deadline", None)
    _current.deadline = deadline
    timer.start()
    try:
        yield deadline
    finally:
        timer.cancel()
        _current.deadline = previous


def deadline_pools(pool_manager: PoolManager) -> None:
    """Make `pool_manager` open connections that a request_deadline can cut.

    Only a manager with urllib3's standard pools (direct, or through an HTTP proxy): a SOCKS
    proxy's own pools are left as they are, bounded by the per-read timeouts alone.
    """
    if pool_manager.pool_classes_by_scheme is not poolmanager.pool_classes_by_scheme:
        return
    pool_manager.pool_classes_by_scheme = {"http": _DeadlineHTTPConnectionPool, "https": _DeadlineHTTPSConnectionPool}


def _watch(connection: HTTPConnection) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(connection)


def _shutdown(connection: HTTPConnection) -> None:
    sock = getattr(connection, "sock", None)
    if sock is None:
        return  # still connecting: connect() checks the deadline once it has a socket
    with contextlib.suppress(OSError):  # already closed by the other side: just as well
        sock.shutdown(socket.SHUT_RDWR)


class _Watched:
    # Watched before connecting, so a timer firing mid-handshake finds the socket; and at every
    # request, since a reused connection is not connected again.
    def connect(self) -> None:
        _watch(self)
        super().connect()
        _watch(self)

    def request(self, *args, **kwargs):
        _watch(self)
        return super().request(*args, **kwargs)


class _DeadlineHTTPConnection(_Watched, HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _DeadlineHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection
