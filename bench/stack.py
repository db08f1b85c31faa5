"""The stack under test: a fresh database and vhost, the fake SMTP server, the Procfile's processes.

Every process is started in its own session (tests/support/processes.py) and stopped with its whole
process group, also on Ctrl-C or a failure (`Stack` is a context manager; `__main__` turns SIGTERM into the same path).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.support.processes import REPO_ROOT, ServiceProcess, free_port
from tests.support.services import rabbitmq_vhost_reset, unreachable_services

BIN = Path(sys.executable).parent
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432"
BROKER_URL = "amqp://guest:guest@127.0.0.1:5672"
SETTINGS_MODULE = "notifier.settings.bench"
# Flower needs credentials of its own and is not on the delivery path.
SKIPPED_PROCESSES = {"flower"}


def procfile_commands(path: Path = REPO_ROOT / "Procfile") -> dict[str, str]:
    """The Procfile's processes, as written there (`name: command`)."""
    commands = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and ":" in line:
            name, command = line.split(":", 1)
            commands[name.strip()] = command.strip()
    return commands


def loopback_only(command: str) -> str:
    """The bench serves loopback only: a process told to listen on every interface listens on 127.0.0.1."""
    return re.sub(r"\b0\.0\.0\.0\b", "127.0.0.1", command)


def is_celery_worker(command: str) -> bool:
    words = shlex.split(command)
    return "celery" in Path(words[0]).name and "worker" in words


@dataclass
class Stack:
    """Names derive from `run_name`, so the suite's smoke run never touches `make bench`'s database."""

    run_name: str
    run_dir: Path
    smtp_latency: float = 0.005
    helper_niceness: int = 10  # the fake SMTP server's (and the load generator's) `nice`
    smtp_server: str = "lean"  # bench.smtp_sink's --server
    processes: list[ServiceProcess] = field(default_factory=list)
    commands: dict[str, str] = field(default_factory=dict)
    base_url: str = ""

    def __post_init__(self) -> None:
        self.database = f"notifier_{self.run_name}"
        self.vhost = f"notifier_{self.run_name}"
        self.database_url = f"{POSTGRES_URL}/{self.database}"
        self.logs = self.run_dir / "logs"
        self.query_count_dir = self.run_dir / "query-counts"
        self.smtp_log = self.run_dir / "smtp-received.txt"
        for folder in (self.logs, self.query_count_dir, self.run_dir / "data"):
            folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.smtp_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = self._env()

    def _env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("DJANGO_", "NOTIFIER_", "TWILIO_", "FCM_")) and key not in {
                   "DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "EMAIL_URL"}}
        env.update({
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),  # generated for this run, never stored
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": f"{BROKER_URL}/{self.vhost}",
            "EMAIL_URL": f"smtp://127.0.0.1:{self.smtp_port}",
            "PUBLIC_BASE_URL": self.base_url,
            "NOTIFIER_DATA_DIR": str(self.run_dir / "data"),
            "NOTIFIER_BENCH_QUERY_COUNT_DIR": str(self.query_count_dir),
            # The load is one API key sending as fast as the stack takes it: a rate it never reaches,
            # so the figures include the limit's cost (one Redis round trip a request) but not its refusals.
            "NOTIFIER_API_RATE_LIMIT": "1000000/s",
            "PORT": str(self.port),
        })
        return env

    # -- setting up ---------------------------------------------------------------------------

    def prepare(self) -> None:
        problems = unreachable_services(POSTGRES_URL, BROKER_URL)
        if problems:
            raise RuntimeError("make bench needs PostgreSQL and RabbitMQ on localhost:\n  " + "\n  ".join(problems))
        with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{self.database}"')
        rabbitmq_vhost_reset(self.vhost)
        self.run_python("manage.py", "migrate", "--noinput")

    def postgresql_setting(self, name: str) -> str:
        """A setting of the server under the bench: the figures mean something else with some
        (autovacuum off: tables the run writes keep the statistics of when they were empty, unless
        the bench analyses them)."""
        with psycopg.connect(f"{POSTGRES_URL}/postgres") as connection:
            return connection.execute("SELECT current_setting(%s)", [name]).fetchone()[0]

    def analyze(self) -> None:
        """ANALYZE the bench database: after the seed (a bulk load, whose statistics a production
        server's autovacuum would have long before a broadcast to those users), and between
        scenarios where the server's autovacuum is off (docs/performance.md)."""
        with psycopg.connect(f"{POSTGRES_URL}/{self.database}", autocommit=True) as connection:
            connection.execute("ANALYZE")

    def seed(self, *, users: int) -> dict:
        """Project, API key, template and users, written straight to the database (bench/seed.py)."""
        return json.loads(self.run_python("-m", "bench.seed", "--users", str(users)))

    def run_python(self, *args: str, timeout: float = 600) -> str:
        result = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=self.env, capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-4000:]}")
        return result.stdout

    # -- processes ----------------------------------------------------------------------------

    def start_smtp(self) -> ServiceProcess:
        # At a lower priority: a real provider's CPU is not ours to count (docs/performance.md).
        command = (f"exec nice -n {self.helper_niceness} {shlex.quote(sys.executable)} -m bench.smtp_sink "
                   f"--port {self.smtp_port} --latency {self.smtp_latency} --server {self.smtp_server} "
                   f"--out {shlex.quote(str(self.smtp_log))}")
        return self._start("smtp", command, ready_text="listening")

    def start_procfile(self) -> list[ServiceProcess]:
        """The Procfile's processes; workers also load the bench's no-op task (bench/noop.py)."""
        started = []
        for name, command in procfile_commands().items():
            if name in SKIPPED_PROCESSES:
                continue
            command = loopback_only(command)
            ready_text = ""
            if is_celery_worker(command):
                command, ready_text = f"{command} --include=bench.noop", " ready."
            started.append(self._start(name, command, ready_text=ready_text))
        self._wait_for_web(timeout=120)
        return started

    def _start(self, name: str, command: str, *, ready_text: str = "") -> ServiceProcess:
        # bash runs the line as a Procfile runner would ($PORT, `&&`); its process group is what stops.
        process = ServiceProcess(name, ["bash", "-c", command], self.env, self.logs, ready_text=ready_text)
        self.processes.append(process)
        self.commands[name] = command
        return process.start(timeout=120)

    def _wait_for_web(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.base_url}/health/live", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            dead = [p for p in self.processes if p.process.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0].name} exited:\n{dead[0].log()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the web process did not answer {self.base_url}/health/live in {timeout}s")
            time.sleep(0.3)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
