"""A web process lowers its own CPU priority, and its session's where it leads it, never anyone else's.

Each case runs in a process of its own: lowering the test runner's priority could not be undone.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import REPO_ROOT

# Reports what a process has after the call: its threads' niceness and its session group's.
REPORT = """
import json, os, threading
from pathlib import Path
started = threading.Event(); done = threading.Event()
thread = threading.Thread(target=lambda: (started.set(), done.wait()), daemon=True); thread.start(); started.wait()
from apps.core.cpu_priority import web_cpu_priority_lower
web_cpu_priority_lower({niceness})
autogroup = Path("/proc/self/autogroup")
print(json.dumps({{
    "threads": [os.getpriority(os.PRIO_PROCESS, int(t)) for t in os.listdir("/proc/self/task")],
    "session_group": int(autogroup.read_text().split()[-1]) if autogroup.exists() else None,
}}))
"""

AUTOGROUP = Path("/proc/self/autogroup")
needs_linux = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")


def report(command: list[str]) -> dict:
    output = subprocess.run(command, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                            capture_output=True, text=True, check=True, start_new_session=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def python(tmp_path: Path, niceness: int) -> str:
    script = tmp_path / "report.py"
    script.write_text(REPORT.format(niceness=niceness))
    return f"{sys.executable} {script}"


@needs_linux
def test_every_thread_and_the_session_it_leads_are_lowered(tmp_path):
    after = report(python(tmp_path, 10).split())

    assert after["threads"] == [10, 10]  # the main thread and the one started before the call
    if AUTOGROUP.exists():
        assert after["session_group"] == 10


@needs_linux
def test_a_process_in_someone_elses_session_leaves_the_session_alone(tmp_path):
    # The session's leader is a shell whose child shell (not the leader) runs the web, as a web
    # started from a terminal or a script beside other processes would be. (`; true` keeps each
    # shell from replacing itself with its command.)
    after = report(["/bin/sh", "-c", f"/bin/sh -c '{python(tmp_path, 10)}; true'; true"])

    assert after["threads"] == [10, 10]
    if AUTOGROUP.exists():
        assert after["session_group"] == 0


@needs_linux
def test_zero_changes_nothing(tmp_path):
    after = report(python(tmp_path, 0).split())

    assert after["threads"] == [os.getpriority(os.PRIO_PROCESS, 0)] * 2
    if AUTOGROUP.exists():
        assert after["session_group"] == 0
