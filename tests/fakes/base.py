"""What every fake provider shares: a server on loopback started and stopped like a context
manager, what it received recorded under a lock, and scripted failures for the next requests.

A subclass serves its protocol (see loopback.py for HTTP, smtp.py for SMTP), records with
`_record()`, and takes the next scripted failure with `_take_attempt()`.
"""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType
from typing import Any


class FakeServer:
    """Recording, reset and failure injection, thread-safe; `start()`/`stop()` are the subclass's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recorded: list[Any] = []
        self._attempts = 0
        self._scripted: deque[Any] = deque()  # answers for the next attempts, failures mostly

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- what was received -------------------------------------------------

    @property
    def recorded(self) -> list[Any]:
        """What the server accepted, oldest first (a copy)."""
        with self._lock:
            return list(self._recorded)

    @property
    def attempts(self) -> int:
        """Requests that reached the point of accepting or failing, failed ones included."""
        with self._lock:
            return self._attempts

    def clear(self) -> None:
        """Forget what was received and the attempt count; scripted failures stay."""
        with self._lock:
            self._recorded.clear()
            self._attempts = 0

    def reset(self) -> None:
        """`clear()` and drop every scripted failure."""
        self.clear()
        with self._lock:
            self._scripted.clear()
            self._scripts_clear()

    def _scripts_clear(self) -> None:
        """Drop a subclass's own scripts (called under the lock)."""

    # -- failure injection -----------------------------------------------------

    def _script_next(self, count: int, answer: Any) -> None:
        """Answer the next `count` attempts with `answer`, a failure mostly (calls queue up)."""
        with self._lock:
            self._scripted.extend([answer] * count)

    def _take_attempt(self, *recording: Any) -> Any | None:
        """Count an attempt, recording what is given with it in the same step (so concurrent
        requests take answers in the order they were recorded); return its scripted answer."""
        with self._lock:
            self._recorded.extend(recording)
            self._attempts += 1
            return self._scripted.popleft() if self._scripted else None

    def _record(self, item: Any) -> None:
        with self._lock:
            self._recorded.append(item)
