"""Threads that keep a batch's provider calls in flight at once (a channel's SEND_CONCURRENCY).

A send is mostly a wait on the provider: an email waits for the SMTP server's reply to its data
(an ESP queueing it takes milliseconds), and a server answers one message at a time per
connection. A prefork child runs one task at a time on one thread, so a batch sent on one
connection waits out every reply in turn. With SEND_CONCURRENCY above 1 the child's main
thread still does everything else, in order: the claim, rendering, building each message, the
backend's actions and the record, which are all the database and the batch's shared state see.
Only the provider call (`channel_send`: failover, circuits, the backend's `send`) runs on one of
these threads, which is safe where the backend says so (`ChannelBackend.concurrent_sends`: the
email backend keeps one SMTP connection per thread, the circuits lock their state). A thread
that reaches for the database fails its send instead of opening a connection of its own: each
thread's connection objects refuse to connect (a bug of ours then shows as an internal error,
never as a session nobody closes).

The threads last as long as the process, each with its own connection, so a child's SMTP
sessions outlive a batch as its one connection did; a process forked from another (a prefork
child) starts its own threads, never the parent's.
"""

import os
import queue
import threading

from django.db import connections

_lock = threading.Lock()
_pools: dict[tuple[int, int], "SendThreads"] = {}


class DatabaseUseOffMainThread(RuntimeError):
    """A provider call tried to use the database from a send thread (send_pool.py)."""


class SendCall:
    """One provider call handed to the send threads: begun by a thread, or given up by its batch
    before any thread began it, never both (whichever takes its lock first)."""

    __slots__ = ("_taken", "key")

    def __init__(self, key) -> None:
        self.key = key
        self._taken = threading.Lock()

    def take(self) -> bool:
        """True for the first to ask: a send thread, which then makes the call, or its batch, which
        then gives it up (no thread will begin it)."""
        return self._taken.acquire(blocking=False)


class BatchAnswers:
    """A batch's answers from the send threads, by the key each call was started with. An answer is
    stored before the batch is woken for it, so none is lost when the batch's time limit strikes
    between its wake-up and its record."""

    def __init__(self) -> None:
        self.by_key: dict = {}  # key -> (result, None), or (None, the error the call raised)
        self._woken: queue.SimpleQueue = queue.SimpleQueue()

    def put(self, key, result, error: BaseException | None) -> None:
        self.by_key[key] = (result, error)
        self._woken.put(key)

    def next_key(self):
        """The key of the next call to answer, once it has (blocking until then)."""
        return self._woken.get()


class SendThreads:
    """`size` threads making the provider calls handed to `start`, each answer given to the batch's
    BatchAnswers.

    Two queues and a lock a call, where concurrent.futures' executor and `wait()` made a Future,
    took its condition on each call's submit, answer and every wait, and a semaphore on each
    submit: ~30 µs of CPU a call less (docs/performance.md, "The send threads")."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        for number in range(size):
            threading.Thread(target=self._serve, name=f"send_{number}", daemon=True).start()

    def start(self, answers: BatchAnswers, key, function, *args) -> SendCall:
        call = SendCall(key)
        self._calls.put((call, answers, function, args))
        return call

    def stop(self) -> None:
        """Each thread ends after the calls handed to it before (a batch gives up those it has
        not seen begun first: a thread skips them)."""
        for _ in range(self.size):
            self._calls.put(None)

    def _serve(self) -> None:
        _database_refused()
        while (handed := self._calls.get()) is not None:
            call, answers, function, args = handed
            if not call.take():
                continue  # its batch gave it up (its time limit struck first)
            try:
                answer = (function(*args), None)
            except BaseException as error:  # the batch raises it on its own thread
                answer = (None, error)
            answers.put(call.key, *answer)


def send_pool(size: int) -> SendThreads:
    """This process's `size` send threads (started on first use)."""
    key = (os.getpid(), size)
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = SendThreads(size)
        return pool


def send_pools_discard() -> None:
    """Forget this process's pools: their threads end once their current call returns (a send that
    hung past the task's time limit), and the next batch starts fresh threads and connections."""
    with _lock:
        pools = [pool for (pid, _), pool in _pools.items() if pid == os.getpid()]
        _pools.clear()
    for pool in pools:
        pool.stop()


def _database_refused() -> None:
    # `connections[alias]` is this thread's own wrapper; refusing to connect keeps every query
    # on the main thread, whose connection the task's checks look after.
    for alias in connections:
        connections[alias].connect = _refuse


def _refuse() -> None:
    raise DatabaseUseOffMainThread("A send thread may not use the database: only the provider call runs there.")
