"""Waking the live streams of a user who has a new inbox message, across processes.

The database is the truth; what crosses processes is only a wake-up ("user R has message M"). A
woken stream reads from the database what it has not sent yet, so a wake-up that is lost, late
or repeated costs latency at worst, never a message and never a duplicate. A stream also reads
the database once per heartbeat, which bounds what a lost wake-up can cost to one heartbeat
interval: that read is the only periodic one, a bounded safety net rather than the mechanism.

The transport follows REDIS_URL, which the worker (it announces) and the web processes (they
listen) share:
- Redis pub/sub: one channel per user, `<NOTIFIER_INBOX_CHANNEL_PREFIX>inbox.<user id>`. Each web
  process holds one subscriber connection (a pattern subscription), opened by its first stream
  and shared by all of them, so streams cost no Redis connection each.
- No Redis (the embedded default, everything on one machine): each web process binds a UNIX
  datagram socket in a folder named after the data directory, and the worker sends each wake-up
  to every socket there. No server and no polling; a socket left behind by a killed process is
  removed by the next sender that finds nobody listening on it.
"""

import asyncio
import atexit
import contextlib
import hashlib
import json
import logging
import os
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from django.conf import settings

from apps.core.redis import redis_run

logger = logging.getLogger(__name__)

# How long a stream waits for its process's listener to be ready before relying on heartbeats.
_LISTENER_READY_TIMEOUT_SECONDS = 2.0


def inbox_message_announce(*, recipient_id: int, message_id: int) -> None:
    """Wake the user's streams in every web process. Never raises: the message is stored already,
    and a stream that misses this wake-up finds the message at its next heartbeat."""
    _wake_send(recipient_id, {"r": recipient_id, "m": message_id}, what=f"inbox message {message_id}")


def inbox_erasure_announce(*, recipient_id: int) -> None:
    """Wake the erased user's streams, which then find their user gone and end. Never raises: a
    stream that misses it ends when its token expires, having nothing left to show."""
    _wake_send(recipient_id, {"r": recipient_id}, what=f"the erasure of user {recipient_id}")


def _wake_send(recipient_id: int, wake_up: dict, *, what: str) -> None:
    payload = json.dumps(wake_up).encode()
    try:
        if settings.REDIS_URL:
            # A short timeout, then a pause (apps/core/redis.py): a hung Redis must not hold the
            # worker, whose message is stored already.
            redis_run(lambda client: client.publish(_channel(recipient_id), payload))
        else:
            _sockets_send(payload)
    except Exception as exc:  # Redis down or hung, a socket error: nothing the caller could do but log it
        logger.warning("could not announce %s live: %s", what, exc)


def _channel(recipient_id: int) -> str:
    return f"{settings.NOTIFIER_INBOX_CHANNEL_PREFIX}inbox.{recipient_id}"


def _channel_pattern() -> str:
    prefix = settings.NOTIFIER_INBOX_CHANNEL_PREFIX
    escaped = "".join(f"\\{char}" if char in "*?[]\\" else char for char in prefix)
    return f"{escaped}inbox.*"


def wake_socket_dir() -> Path:
    """Where the web processes of this installation bind their wake-up sockets.

    Under the temp dir, named after the data dir, not inside it: a UNIX socket path is limited to
    about 100 bytes, which a deep data dir would exceed.
    """
    data_dir = str(Path(settings.VAR_DIR).resolve())
    return Path(tempfile.gettempdir()) / f"notifier-inbox-{hashlib.sha256(data_dir.encode()).hexdigest()[:12]}"


def _sockets_send(payload: bytes) -> None:
    folder = wake_socket_dir()
    if not folder.is_dir():
        return  # no web process has listened yet
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for path in folder.glob("*.sock"):
            try:
                sock.sendto(payload, str(path))
            except (ConnectionRefusedError, FileNotFoundError):
                path.unlink(missing_ok=True)  # its process is gone
            except BlockingIOError:
                logger.warning("inbox wake-up socket %s is full; its streams catch up at their heartbeat", path)


class _Hub:
    """The streams of one web process waiting for news, by user, and the listener that wakes them."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self._waiting: dict[int, set[asyncio.Event]] = {}
        self._ready = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._started_at = 0.0
        # Streams admitted and not yet closed, by user (admission comes before `listen`).
        self._admitted: dict[int, int] = {}

    def stream_admit(self, recipient_id: int) -> str:
        """Count a new stream of the user in; "" if admitted, else which cap refuses it ("user" or
        "process"). Call on the event loop; every admitted stream must be released once."""
        if sum(self._admitted.values()) >= settings.NOTIFIER_INBOX_STREAMS_PER_PROCESS:
            return "process"
        if self._admitted.get(recipient_id, 0) >= settings.NOTIFIER_INBOX_STREAMS_PER_USER:
            return "user"
        self._admitted[recipient_id] = self._admitted.get(recipient_id, 0) + 1
        return ""

    def stream_release(self, recipient_id: int) -> None:
        """Count a closed stream out; safe from any thread (Django closes responses off the loop)."""
        self.loop.call_soon_threadsafe(self._release, recipient_id)

    def _release(self, recipient_id: int) -> None:
        left = self._admitted.get(recipient_id, 0) - 1
        if left > 0:
            self._admitted[recipient_id] = left
        else:
            self._admitted.pop(recipient_id, None)

    @contextlib.asynccontextmanager
    async def listen(self, recipient_id: int) -> AsyncIterator[asyncio.Event]:
        """An event set whenever the user may have new messages; registered before this returns,
        so whatever commits after entering is announced to it."""
        event = asyncio.Event()
        self._waiting.setdefault(recipient_id, set()).add(event)
        logger.info("inbox stream opened for user %s; %d open in this process", recipient_id, self.streams_count())
        try:
            await self._start()
            yield event
        finally:
            waiting = self._waiting.get(recipient_id, set())
            waiting.discard(event)
            if not waiting:
                self._waiting.pop(recipient_id, None)
            logger.info("inbox stream closed for user %s; %d open in this process", recipient_id, self.streams_count())

    def streams_count(self) -> int:
        return sum(len(events) for events in self._waiting.values())

    def wake(self, recipient_id: int) -> None:
        for event in self._waiting.get(recipient_id, ()):
            event.set()

    def wake_all(self) -> None:
        for recipient_id in list(self._waiting):
            self.wake(recipient_id)

    def received(self, data: bytes) -> None:
        try:
            self.wake(int(json.loads(data)["r"]))
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring a malformed inbox wake-up: %r", data[:200])

    async def _start(self) -> None:
        if self._task is None or self._task.done():  # never started, or stopped by a bug: (re)start it
            self._started_at = self.loop.time()
            self._task = asyncio.create_task(self._run(), name=f"inbox-{type(self).__name__}")
            self._task.add_done_callback(_listener_stopped)
        if self._ready.is_set():
            return
        # Only the first streams wait for the listener: once it has had its chance (Redis down),
        # new streams start at once and rely on their heartbeat reads until it connects.
        remaining = self._started_at + _LISTENER_READY_TIMEOUT_SECONDS - self.loop.time()
        try:
            await asyncio.wait_for(self._ready.wait(), timeout=max(remaining, 0))
        except TimeoutError:
            logger.warning("the inbox wake-up listener is not ready; streams rely on their heartbeat reads")

    async def _run(self) -> None:
        raise NotImplementedError


def _listener_stopped(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("the inbox wake-up listener stopped; the next stream opened starts it again",
                     exc_info=task.exception())


class _RedisHub(_Hub):
    async def _run(self) -> None:
        import redis.asyncio as aioredis

        delay = 0.5
        while True:
            client = aioredis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=5, socket_keepalive=True, health_check_interval=30,
                # Named, so CLIENT LIST shows one listener per web process, however many streams it serves.
                client_name=f"{settings.NOTIFIER_INBOX_CHANNEL_PREFIX}inbox-listener:{os.getpid()}",
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(_channel_pattern())
                self._ready.set()
                # Whatever was announced while this process was not subscribed is in the database.
                self.wake_all()
                delay = 0.5
                while True:
                    # Blocks until a message or the timeout; idle connections get a health-check PING.
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30.0)
                    if message is not None:
                        self.received(message["data"])
            except Exception as exc:  # whatever broke, listening again is the answer (cancelling is not an Exception)
                logger.warning("inbox listener lost Redis (%r); reconnecting in %.1fs", exc, delay)
            finally:
                # Closing a connection Redis has already dropped can fail too: it must not end the loop.
                for resource in (pubsub, client):
                    try:
                        await resource.aclose()
                    except Exception:
                        logger.debug("closing the inbox listener's Redis connection failed", exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


class _SocketHub(_Hub):
    async def _run(self) -> None:
        folder = wake_socket_dir()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / f"{os.getpid()}-{secrets.token_hex(4)}.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(str(path))
        # Removed on a normal exit; uvicorn ends on SIGTERM by re-raising the signal, which skips
        # this, and the next sender then finds nobody listening and removes the socket itself.
        atexit.register(path.unlink, missing_ok=True)
        self._ready.set()
        try:
            while True:
                self.received(await self.loop.sock_recv(sock, 1024))
        finally:
            sock.close()
            path.unlink(missing_ok=True)


_hub: _Hub | None = None


def hub_get() -> _Hub:
    """This process's hub, for the running event loop (uvicorn runs one per process)."""
    global _hub
    loop = asyncio.get_running_loop()
    if _hub is None or _hub.loop is not loop:
        _hub = (_RedisHub if settings.REDIS_URL else _SocketHub)(loop)
    return _hub
