"""Previews render in separate processes, so a runaway template cannot take the web process down.

A preview renders a template nobody has sent yet, with data the caller chose, in the process
that serves every other request. The in-process budget (apps.templates.budget) bounds what the
filters and tags we know of can build; this bounds everything else (a filter's worst case we
did not foresee, a C routine that cannot be interrupted). Each web process keeps a small pool
of render processes (`python -m apps.templates.sandbox`), started on first use:

- each limits its own address space (RLIMIT_AS) to what it has once Django is loaded plus
  NOTIFIER_TEMPLATE_PREVIEW_MEMORY_BYTES, so an allocation past it is a MemoryError there
  (after which it exits and a fresh one takes its place);
- each request renders one channel and is given NOTIFIER_TEMPLATE_MAX_RENDER_SECONDS plus a
  grace period, after which the render process is killed;
- at most NOTIFIER_TEMPLATE_PREVIEW_PROCESSES exist per web process: 32 clients previewing at
  once wait for one (up to NOTIFIER_TEMPLATE_PREVIEW_QUEUE_SECONDS, then 503 preview_busy)
  instead of starting 32. With N web processes, at most N times that many run.

They talk JSON lines over stdin/stdout. A render process reads until its stdin closes, so it
ends with the web process that started it, even when that one is killed.
"""

import json
import os
import resource
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings

from apps.core.exceptions import ApplicationError
from apps.templates.budget import TemplateRenderError

_REPO_ROOT = Path(__file__).resolve().parent.parent.parent
_READY = b"ready\n"
# Time a render process may take past the render cap before it is killed: the budget's own
# checks run between nodes and filters, so a render normally stops by itself within it.
_GRACE_SECONDS = 2.0
_START_SECONDS = 60.0  # loading Django on a busy machine
_OUT_OF_MEMORY = "Rendering needed more memory than a preview may use."


class _Died(Exception):
    pass


class _TimedOut(Exception):
    pass


class _RenderProcess:
    def __init__(self):
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "apps.templates.sandbox"], cwd=_REPO_ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, bufsize=0,
            # This process's settings, not only its environment's (tests and operators override them).
            env={**os.environ, "NOTIFIER_TEMPLATE_PREVIEW_MEMORY_BYTES": str(settings.NOTIFIER_TEMPLATE_PREVIEW_MEMORY_BYTES)},
        )
        if self._read_line(time.monotonic() + _START_SECONDS) != _READY:
            self.kill()
            raise ApplicationError("preview_unavailable", "The preview renderer did not start.", status_code=503)

    def ask(self, request: dict, *, timeout: float) -> dict:
        """The render process's answer; _Died or _TimedOut (after killing it) when there is none."""
        try:
            self._write(json.dumps(request).encode() + b"\n")
        except OSError:
            self.kill()
            raise _Died() from None
        line = self._read_line(time.monotonic() + timeout)
        if line is None:
            died = not self.alive()
            self.kill()
            raise _Died() if died else _TimedOut()
        return json.loads(line)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.popen.kill()
        self.popen.wait()
        self.popen.stdin.close()
        self.popen.stdout.close()

    def _write(self, payload: bytes) -> None:
        view = memoryview(payload)
        while view:
            view = view[os.write(self.popen.stdin.fileno(), view):]

    def _read_line(self, deadline: float) -> bytes | None:
        fd = self.popen.stdout.fileno()
        readable = select.poll()  # not select(): a busy web process has descriptors past its 1024
        readable.register(fd, select.POLLIN)
        received = bytearray()
        while not received.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not readable.poll(remaining * 1000):
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None  # it died
            received += chunk
        return bytes(received)


class _Pool:
    def __init__(self):
        self._idle: list[_RenderProcess] = []
        self._lock = threading.Lock()
        self._slots: threading.BoundedSemaphore | None = None

    def render(self, channels: dict, data: dict) -> dict:
        slots = self._semaphore()
        if not slots.acquire(timeout=settings.NOTIFIER_TEMPLATE_PREVIEW_QUEUE_SECONDS):
            raise ApplicationError(
                "preview_busy", "Every preview renderer is busy; try again shortly.", status_code=503
            )
        try:
            with self._lock:
                process = self._idle.pop() if self._idle else None
            process = process if process is not None and process.alive() else _RenderProcess()
            try:
                return {channel: _render_channel(process, channel, parts, data) for channel, parts in channels.items()}
            finally:
                if process.alive():
                    with self._lock:
                        self._idle.append(process)
        finally:
            slots.release()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            self._slots = None  # the next preview reads NOTIFIER_TEMPLATE_PREVIEW_PROCESSES again
        for process in idle:
            process.kill()

    def _semaphore(self) -> threading.BoundedSemaphore:
        with self._lock:
            if self._slots is None:
                self._slots = threading.BoundedSemaphore(settings.NOTIFIER_TEMPLATE_PREVIEW_PROCESSES)
            return self._slots


def _render_channel(process: _RenderProcess, channel: str, parts, data: dict):
    max_seconds = settings.NOTIFIER_TEMPLATE_MAX_RENDER_SECONDS
    request = {"parts": parts, "data": data, "max_bytes": settings.NOTIFIER_TEMPLATE_MAX_RENDERED_BYTES,
               "max_seconds": max_seconds}
    try:
        answer = process.ask(request, timeout=max_seconds + _GRACE_SECONDS)
    except _Died:
        # Its own MemoryError handling failed too, or the kernel ended it: memory, either way.
        raise TemplateRenderError(_OUT_OF_MEMORY, path=channel) from None
    except _TimedOut:
        raise TemplateRenderError(f"Rendering took longer than {max_seconds:g} seconds.", path=channel) from None
    if answer.get("exiting"):
        process.kill()  # it ends itself after a MemoryError: not to be handed the next preview
    if "error" in answer:
        path = f"{channel}.{answer['error']['path']}".rstrip(".")
        raise TemplateRenderError(answer["error"]["message"], path=path)
    return answer["rendered"]


_pool = _Pool()


def preview_processes_stop() -> None:
    """End this process's idle render processes (the next preview starts fresh ones, with the settings then)."""
    _pool.close()


def preview_render(*, channels: dict, data: dict) -> dict:
    """Each channel's parts rendered with data in a render process: {channel: rendered parts}.

    Raises TemplateRenderError with path "<channel>.<part>" (or "<channel>" when the render
    process ran out of time or memory), and ApplicationError 503 when no renderer is free.
    """
    return _pool.render(channels, data)


# --- The render process --------------------------------------------------------------------------


def _serve() -> None:
    import django

    django.setup()
    from apps.templates.rendering import render_value

    _limit_memory(settings.NOTIFIER_TEMPLATE_PREVIEW_MEMORY_BYTES)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(_READY)
    stdout.flush()
    for line in stdin:
        request = json.loads(line)
        memory_error = False
        try:
            answer = {"rendered": render_value(
                request["parts"], request["data"], max_bytes=request["max_bytes"], max_seconds=request["max_seconds"]
            )}
        except TemplateRenderError as exc:
            memory_error = isinstance(exc.__cause__, MemoryError)
            message = _OUT_OF_MEMORY if memory_error else str(exc)
            answer = {"error": {"path": exc.path, "message": message}, "exiting": memory_error}
        stdout.write(json.dumps(answer).encode() + b"\n")
        stdout.flush()
        if memory_error:
            return  # what failed to allocate may have left the interpreter short: start afresh


def _limit_memory(allowance: int) -> None:
    with open("/proc/self/statm") as statm:
        virtual_bytes = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = virtual_bytes + allowance
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


if __name__ == "__main__":
    _serve()
