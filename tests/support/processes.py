"""Real processes for end-to-end tests: Celery workers, beat and the ASGI web server.

Each runs in its own process group (so a kill takes its pool children too), with its output in
a log file that a failing test can print.
"""

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.db import connection

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """The URL of the database this test run uses (pytest-django's test_ database)."""
    db = connection.settings_dict
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test, wherever it is imported


def process_env(**overrides) -> dict[str, str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "notifier.settings.test", "PYTHONUNBUFFERED": "1"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update({key: str(value) for key, value in overrides.items()})
    return env


class ServiceProcess:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path, ready_text: str = "",
                 ready_count: int = 1):
        self.name = name
        self.args = args
        self.env = env
        self.ready_text = ready_text
        self.ready_count = ready_count  # a supervisor with N processes is ready when all N say so
        self.log_path = Path(log_dir) / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "ServiceProcess":
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        if self.ready_text:
            self.wait_for_log(self.ready_text, timeout=timeout, count=self.ready_count)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout: float = 60, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count(text) >= count:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not print {text!r} within {timeout}s:\n{self.log()[-4000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (the worker and its pool children)."""
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 20) -> None:
        if not self.process or self.process.poll() is not None:
            return
        self.kill(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.process.wait(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def procfile_command(name: str) -> str:
    """The command line the Procfile gives process type `name`."""
    for line in (REPO_ROOT / "Procfile").read_text().splitlines():
        process_type, _, command = line.partition(":")
        if process_type.strip() == name:
            return command.strip()
    raise KeyError(f"no {name!r} line in the Procfile")


def _procfile_args(name: str) -> list[str]:
    """The Procfile's line for `name` as arguments, its program taken from this venv."""
    program, *args = shlex.split(procfile_command(name))
    return [str(BIN / program), *args]


def celery_worker(env: dict[str, str], log_dir: Path, *, concurrency: int = 2, queues: str = "") -> ServiceProcess:
    """The Procfile's `worker` line, with fewer pool processes (tests share two cores) and a name
    of its own; mingle and gossip only slow the start of a worker that has no peers to meet."""
    name = f"worker-{uuid.uuid4().hex[:6]}"
    args = [*_procfile_args("worker"), f"--concurrency={concurrency}", f"--hostname={name}@%h", "--without-gossip",
            "--without-mingle"]
    if queues:
        args.append(f"--queues={queues}")
    return ServiceProcess(name, args, env, log_dir, ready_text=" ready.")


def celery_beat(env: dict[str, str], log_dir: Path) -> ServiceProcess:
    """The Procfile's `beat` line, keeping its schedule file with the logs rather than in the checkout."""
    schedule = Path(log_dir) / f"beat-schedule-{uuid.uuid4().hex[:6]}"
    return ServiceProcess("beat", [*_procfile_args("beat"), f"--schedule={schedule}"], env, log_dir,
                          ready_text="beat: Starting")


def web_server(env: dict[str, str], log_dir: Path, *, port: int | None = None,
               processes: int = 1) -> tuple[ServiceProcess, str]:
    """The Procfile's `web` line exactly as a deployment runs it (WEB_CONCURRENCY processes behind
    one port), except that it listens on loopback only."""
    port = port or free_port()
    command = procfile_command("web")
    assert "--host 0.0.0.0" in command, command
    command = command.replace("--host 0.0.0.0", "--host 127.0.0.1")
    env = {**env, "PORT": str(port), "WEB_CONCURRENCY": str(processes)}
    server = ServiceProcess(f"web-{port}", ["/bin/sh", "-c", command], env, log_dir,
                            ready_text="Application startup complete", ready_count=processes)
    return server, f"http://127.0.0.1:{port}"


def wait_until(predicate, *, timeout: float, interval: float = 0.2, message: str = "condition"):
    """Poll predicate until it returns something truthy; return that, or fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
