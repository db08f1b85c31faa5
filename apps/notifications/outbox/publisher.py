"""A thread per web process that publishes what the requests committed, so a 202 does not wait
for RabbitMQ.

Requests hand their committed deliveries' messages to a bounded in-memory queue; the thread
takes whatever gathers within a short window (NOTIFIER_PUBLISH_GATHER_SECONDS, up to
BATCH_MESSAGES), publishes it on one broker connection with confirms, and marks the confirmed
deliveries published with one UPDATE (outbox/deliveries.py). A round costs about as much CPU for
one request as for fifty, so without the window a process taking a POST every few milliseconds
paid a whole round per POST (a third of its CPU, docs/performance.md).
Nothing here is the truth: each delivery was committed `queued` with the short unpublished
deadline, so what a crash loses from this queue is published by the sweep within
NOTIFIER_UNPUBLISHED_TIMEOUT_SECONDS plus one sweep interval (docs/reliability.md).

A full queue (the broker slower than the requests, for long) is not waited on: the request
publishes its own messages, as it would without this thread, which slows the callers down
instead of growing memory. On exit (atexit) the thread drains what is left, for a few seconds.
"""

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence

from django.db import connections

logger = logging.getLogger(__name__)

# Lists of messages (one per committed transaction), not messages: a bulk request is one item.
QUEUE_CAPACITY = 10_000
# Messages published and marked per round; more wait for the next round.
BATCH_MESSAGES = 1_000
_STOP = object()


class BackgroundPublisher:
    def __init__(self, publish: Callable[[Sequence], int], *, capacity: int = QUEUE_CAPACITY,
                 batch_messages: int = BATCH_MESSAGES, gather_seconds: float = 0.0) -> None:
        self._publish = publish
        self._queue: queue.Queue = queue.Queue(maxsize=capacity)
        self._batch_messages = batch_messages
        self._gather_seconds = gather_seconds
        self._thread = threading.Thread(target=self._run, name="notifier-publisher", daemon=True)
        self.pid = os.getpid()  # a forked child has no thread reading this queue: it must not use it

    def start(self) -> "BackgroundPublisher":
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def offer(self, messages: Sequence) -> bool:
        """Queue the messages for the thread; False if it is not running or its queue is full."""
        if not self.running:
            return False
        try:
            self._queue.put_nowait(list(messages))
        except queue.Full:
            return False
        return True

    def stop(self, *, timeout: float = 5.0) -> None:
        """Publish what is queued, then end the thread (waiting at most `timeout`)."""
        if not self.running:
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            logger.warning("the publisher's queue stayed full at exit; the sweep publishes what it held")
            return
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = []
            item = self._queue.get()
            # Whatever gathered while the last round waited for its confirms goes in this one, and
            # whatever arrives within the gathering window after the round's first item: a round
            # (a publish, its confirm, the mark's UPDATE) costs the same for one request as for many.
            gather_until = time.monotonic() + self._gather_seconds
            while True:
                if item is _STOP:
                    stopping = True
                else:
                    batch.extend(item)
                if stopping or len(batch) >= self._batch_messages:
                    break
                try:
                    item = self._queue.get(timeout=max(0.0, gather_until - time.monotonic()))
                except queue.Empty:
                    break
            if batch:
                self._publish_batch(batch)

    def _publish_batch(self, batch: list) -> None:
        try:
            self._publish(batch)  # never raises by contract; guarded so the thread cannot die of it
        except Exception:
            logger.exception("background publishing failed; the sweep publishes %d deliveries", len(batch))
        finally:
            # Hand this thread's database connection back to the pool between rounds.
            connections.close_all()
