"""What the bench watches while it runs: memory of every process tree, PostgreSQL connections and
commits, and the statements counted by notifier/settings/bench.py."""

from __future__ import annotations

import os
import resource
import threading
import time
from pathlib import Path

import psycopg

from bench.stack import POSTGRES_URL
from tests.support.processes import ServiceProcess


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name may hold spaces and parentheses: the fields after the last ")" are safe.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def _tree(pid: int, children: dict[int, list[int]]) -> list[int]:
    pids, stack = [], [pid]
    while stack:
        current = stack.pop()
        pids.append(current)
        stack.extend(children.get(current, []))
    return pids


def _vm_hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def connect(url: str, *, attempts: int = 20, **kwargs) -> psycopg.Connection:
    """A connection, retried for a while: on a shared machine the server's connection slots can be
    taken for a moment by others (and by the stack under test)."""
    for attempt in range(attempts):
        try:
            return psycopg.connect(url, **kwargs)
        except psycopg.OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


class Monitor:
    """Polls in a thread: each process's peak resident memory (VmHWM, kept per pid so that a
    replaced pool child still counts) and the connections open to the bench database. Its one
    connection (to the `postgres` database, so its own transactions are not counted) is opened at
    the start, before the load can take the server's free slots."""

    def __init__(self, *, processes: list[ServiceProcess], database: str, interval: float = 0.5) -> None:
        self.processes = processes
        self.database = database
        self.interval = interval
        self.peak_kib: dict[str, dict[int, int]] = {}
        self.max_connections = 0
        self._backend_cpu_ns: dict[int, int] = {}  # CPU time of each backend of the bench database, last seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-monitor", daemon=True)
        self._connection: psycopg.Connection | None = None

    def start(self) -> Monitor:
        self._connection = connect(f"{POSTGRES_URL}/postgres", autocommit=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._poll_memory()
        if self._connection is not None:
            self._connection.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._poll_memory()
            self.max_connections = max(self.max_connections, self._poll_backends())

    def _poll_backends(self) -> int:
        pids = [row[0] for row in self._connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.database]).fetchall()]
        for pid in pids:
            used = _cpu_ns(pid)
            if used is not None:
                self._backend_cpu_ns[pid] = max(used, self._backend_cpu_ns.get(pid, 0))
        return len(pids)

    def postgres_cpu_seconds(self) -> float:
        """CPU time used so far by the PostgreSQL backends serving the bench database (polled with
        the connections: a backend that exits loses at most its last interval)."""
        self._poll_backends()
        return sum(self._backend_cpu_ns.values()) / 1e9

    def database_commits(self) -> int:
        """Transactions committed in the bench database so far."""
        self._connection.execute("SELECT pg_stat_clear_snapshot()")
        row = self._connection.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s",
                                       [self.database]).fetchone()
        return int(row[0])

    def _poll_memory(self) -> None:
        children = _children_by_parent()
        for process in self.processes:
            if process.process is None:
                continue
            peaks = self.peak_kib.setdefault(process.name, {})
            for pid in _tree(process.process.pid, children):
                peaks[pid] = max(peaks.get(pid, 0), _vm_hwm_kib(pid))

    def memory_report(self) -> dict[str, dict]:
        report = {}
        for name, peaks in self.peak_kib.items():
            values = [kib for kib in peaks.values() if kib]
            root = next((p for p in self.processes if p.name == name), None)
            report[name] = {
                "processes_seen": len(values),
                "main_peak_mb": round(peaks.get(root.process.pid, 0) / 1024, 1) if root else 0.0,
                "largest_peak_mb": round(max(values, default=0) / 1024, 1),
                "sum_of_peaks_mb": round(sum(values) / 1024, 1),
            }
        return report


def _cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime


def _cpu_ns(pid: int) -> int | None:
    """CPU time of a single-threaded process in nanoseconds, from the scheduler's own count
    (/proc/PID/schedstat). Clock ticks are 10 ms: a PostgreSQL backend serving a short run can use
    several milliseconds and still show none, which made the smoke run read 0 ms a delivery."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):  # a kernel without schedstats: fall back to the ticks
        ticks = _cpu_ticks(pid)
        return None if ticks is None else ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def cpu_seconds(processes: list[ServiceProcess]) -> dict[str, float]:
    """CPU time (user + system) used so far by each process's tree, pool children reaped included."""
    ticks = os.sysconf("SC_CLK_TCK")
    children = _children_by_parent()
    return {process.name: sum(_cpu_ticks(pid) or 0 for pid in _tree(process.process.pid, children)) / ticks
            for process in processes}


def machine_cpu_ticks() -> tuple[int, int]:
    """(busy, all) CPU ticks of the whole machine so far, every core and every process (/proc/stat)."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)  # less idle and iowait


def load_generator_cpu_seconds() -> float:
    """CPU time of this process's reaped children: the load generator's processes, once run_load()
    has waited for them (the bench starts nothing else while a load runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def statements_executed(query_count_dir: Path) -> int:
    """The sum of every process's count (notifier/settings/bench.py writes one file per pid)."""
    total = 0
    for path in query_count_dir.glob("[0-9]*[0-9]"):
        try:
            total += int(path.read_text() or 0)
        except (OSError, ValueError):
            continue
    return total
