"""A process's memory as the kernel counts it (/proc/<pid>/status), for tests that bound it."""

import os
from pathlib import Path


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(f"{field} not in /proc/{pid}/status")


def rss_bytes(pid: int | None = None) -> int:
    """Resident memory now (VmRSS)."""
    return _status_kb(pid or os.getpid(), "VmRSS") * 1024


def peak_rss_bytes(pid: int | None = None) -> int:
    """The most resident memory since the process started or since peak_rss_reset (VmHWM)."""
    return _status_kb(pid or os.getpid(), "VmHWM") * 1024


def peak_rss_reset(pid: int | None = None) -> None:
    """Start VmHWM again from the current RSS (Linux's clear_refs, value 5)."""
    Path(f"/proc/{pid or os.getpid()}/clear_refs").write_text("5")


def process_tree(pid: int) -> set[int]:
    """pid and its descendants, alive now."""
    found, pending = set(), [pid]
    while pending:
        current = pending.pop()
        found.add(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                pending.extend(int(child) for child in (task / "children").read_text().split())
            except FileNotFoundError:
                pass
    return found


def render_processes(pid: int | None = None) -> set[int]:
    """The template render processes (apps.templates.sandbox) below pid."""
    found = set()
    for child in process_tree(pid or os.getpid()):
        try:
            if b"apps.templates.sandbox" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(child)
        except FileNotFoundError:
            pass
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
