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
import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connections

_lock = threading.Lock()
_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}


class DatabaseUseOffMainThread(RuntimeError):
    """A provider call tried to use the database from a send thread (send_pool.py)."""


def send_pool(size: int) -> ThreadPoolExecutor:
    """This process's pool of `size` send threads (made on first use)."""
    key = (os.getpid(), size)
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="send",
                                                    initializer=_database_refused)
        return pool


def send_pools_discard() -> None:
    """Forget this process's pools: their threads end once their current call returns (a send that
    hung past the task's time limit), and the next batch starts fresh threads and connections."""
    with _lock:
        pools = [pool for (pid, _), pool in _pools.items() if pid == os.getpid()]
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=False, cancel_futures=True)


def _database_refused() -> None:
    # `connections[alias]` is this thread's own wrapper; refusing to connect keeps every query
    # on the main thread, whose connection the task's checks look after.
    for alias in connections:
        connections[alias].connect = _refuse


def _refuse() -> None:
    raise DatabaseUseOffMainThread("A send thread may not use the database: only the provider call runs there.")
