"""On a shared host the web yields the CPU to the workers: the Procfile's processes as a deployment
starts them (each line in a session of its own, as honcho does), with no setting given."""

import os
from pathlib import Path

import pytest

from tests.support.processes import web_server

pytestmark = [pytest.mark.e2e]

needs_linux = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")


def children(pid: int) -> list[int]:
    return [int(child) for task in os.listdir(f"/proc/{pid}/task")
            for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]


def serving(pid: int) -> bool:
    """Not multiprocessing's resource tracker, which uvicorn's manager starts beside them."""
    return b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()


def threads_niceness(pid: int) -> set[int]:
    return {os.getpriority(os.PRIO_PROCESS, int(thread)) for thread in os.listdir(f"/proc/{pid}/task")}


def session_group_niceness(pid: int) -> int | None:
    autogroup = Path(f"/proc/{pid}/autogroup")
    return int(autogroup.read_text().split()[-1]) if autogroup.exists() else None


@needs_linux
def test_the_web_processes_run_at_niceness_10_and_the_workers_as_started(e2e_env, process_logs, worker):
    server, _ = web_server(e2e_env, process_logs, processes=2)
    with server:
        web_processes = [pid for pid in children(server.process.pid) if serving(pid)]
        assert len(web_processes) == 2
        for pid in web_processes:
            assert threads_niceness(pid) == {10}  # the publishing thread and the request threads too
            assert session_group_niceness(pid) in (10, None)

        worker_pids = [worker.process.pid, *children(worker.process.pid)]
        for pid in worker_pids:
            assert threads_niceness(pid) == {os.getpriority(os.PRIO_PROCESS, 0)}
            assert session_group_niceness(pid) in (0, None)
