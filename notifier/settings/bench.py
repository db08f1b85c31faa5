"""`make bench`: production settings, plus a count of SQL statements when the benchmark asks.

Nothing here changes behaviour. With NOTIFIER_BENCH_QUERY_COUNT_DIR set, every process counts the
statements its database connections execute and writes the total to `<dir>/<pid>` twice a
second, so the benchmark can report queries per delivery across web, worker and beat processes.
"""

import os
import threading
from pathlib import Path

from django.db.backends.signals import connection_created

from .prod import *  # noqa: F403

_count_dir = os.environ.get("NOTIFIER_BENCH_QUERY_COUNT_DIR", "")


class _QueryCounter:
    """One per process; execute wrappers run on many threads, so the count is under a lock."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / str(os.getpid())
        self.count = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._flush_forever, name="bench-query-count", daemon=True).start()

    def __call__(self, execute, sql, params, many, context):
        with self._lock:
            self.count += 1
        return execute(sql, params, many, context)

    def _flush_forever(self) -> None:
        event = threading.Event()
        partial = self.path.with_suffix(".partial")
        while not event.wait(0.5):
            partial.write_text(str(self.count))
            partial.replace(self.path)  # atomic: a reader never sees a half-written file


_counters: dict[int, _QueryCounter] = {}
_counters_lock = threading.Lock()


def _count_queries(sender, connection, **kwargs) -> None:
    # One counter per process, keyed by pid: a prefork child inherits the parent's dict but must
    # count (and flush) its own. Under the lock, because the first requests of a web process
    # open their connections on several threads at once, and two counters would share one file.
    with _counters_lock:
        counter = _counters.get(os.getpid())
        if counter is None:
            counter = _counters[os.getpid()] = _QueryCounter(Path(_count_dir))
    if counter not in connection.execute_wrappers:
        connection.execute_wrappers.append(counter)


def _new_lock_in_child() -> None:
    # A fork (Celery's prefork pool) copies the lock in whatever state another thread left it.
    global _counters_lock
    _counters_lock = threading.Lock()


if _count_dir:
    connection_created.connect(_count_queries, weak=False)
    os.register_at_fork(after_in_child=_new_lock_in_child)
