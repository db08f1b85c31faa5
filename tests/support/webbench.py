"""Compare ways of running the web process, back to back, with production settings.

    NOTIFIER_TEST_RUN=me .venv/bin/python -m tests.support.webbench --rounds 2 --duration 15

Creates a throwaway database and RabbitMQ vhost named after NOTIFIER_TEST_RUN (dropped at the
end), migrates it, then for each option in turn starts the web processes on a free loopback port
(notifier.settings.prod, DJANGO_SECURE_SSL_REDIRECT=false), runs the load generator
(tests/support/loadgen.py, a process of its own) for each scenario, and stops them. Options
alternate within each round, so drift in the machine's load touches all of them alike; the
spread between rounds is the noise. Prints one JSON line per run, then a table (docs/performance.md).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from tests.support.processes import BIN, REPO_ROOT, ServiceProcess, free_port
from tests.support.services import TEST_VHOST_PREFIX, rabbitmq_vhost_reset, rabbitmqctl

UVICORN = [str(BIN / "uvicorn"), "--host", "127.0.0.1", "--proxy-headers", "--timeout-keep-alive", "75",
           "--no-access-log"]
# name: (extra environment, application and server arguments, processes)
OPTIONS = {
    "1 process, persistent connections (before)": ({"NOTIFIER_DB_POOL": "false", "DATABASE_CONN_MAX_AGE": "60"},
                                                   ["notifier.asgi:application"], 1),
    "1 process, a connection per request": ({"NOTIFIER_DB_POOL": "false", "DATABASE_CONN_MAX_AGE": "0"},
                                            ["notifier.asgi:application"], 1),
    "1 process, pool": ({}, ["notifier.asgi:application"], 1),
    "2 processes, pool (chosen)": ({}, ["notifier.asgi:application"], 2),
    "4 processes, pool of 4": ({"NOTIFIER_DB_POOL_MAX_SIZE": "4"}, ["notifier.asgi:application"], 4),
    "2 processes, pool, WSGI": ({}, ["--interface", "wsgi", "notifier.wsgi:application"], 2),
}
SCENARIOS = ("notify", "get-user")
# Every pooled option fits (2 x 8 or 4 x 4, plus what the budget check counts besides: 2 + 2 + 2);
# "before" runs into it, as it ran into max_connections in production.
CONNECTION_LIMIT = 22


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--only", action="append", help="option names to run (substring match)")
    parser.add_argument("--profile", action="store_true", help="then profile one POST (tests/support/profile_post.py)")
    args = parser.parse_args()
    run = os.environ.get("NOTIFIER_TEST_RUN", "bench")
    name = f"notifier_webbench_{run}"
    vhost = f"{TEST_VHOST_PREFIX}_{run}_webbench"
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        # An ordinary role, so that the database's CONNECTION LIMIT holds (superusers ignore it):
        # the option that leaks connections must not take the shared server's.
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        admin.execute(f'CREATE ROLE "{name}" LOGIN')
        admin.execute(f'CREATE DATABASE "{name}" OWNER "{name}" CONNECTION LIMIT {CONNECTION_LIMIT}')
        rabbitmq_vhost_reset(vhost)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "notifier.settings.prod",
            "DJANGO_SECRET_KEY": "webbench-only",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": f"postgres://{name}@127.0.0.1:5432/{name}",
            # The budget check (no worker runs here, but it counts one of concurrency 2).
            "WEB_CONCURRENCY": "2", "CELERY_WORKER_CONCURRENCY": "2", "NOTIFIER_DB_RESERVED_CONNECTIONS": "2",
            "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
            "EMAIL_URL": "smtp://127.0.0.1:1",  # enables the channel; nothing is sent (no worker)
            "PUBLIC_BASE_URL": "http://127.0.0.1:8000",  # required with email in prod
            "LOG_LEVEL": "WARNING",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        try:
            migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=REPO_ROOT, env=env,
                                     capture_output=True, text=True)
            assert migrate.returncode == 0, migrate.stdout + migrate.stderr
            api_key = subprocess.run([sys.executable, "manage.py", "create_api_key", "bench"], cwd=REPO_ROOT, env=env,
                                     check=True, capture_output=True, text=True).stdout.strip()
            options = {k: v for k, v in OPTIONS.items() if not args.only or any(o in k for o in args.only)}
            results = []
            setup_done = False
            for round_number in range(args.rounds):
                for option, (extra_env, app_args, processes) in options.items():
                    port = free_port()
                    command = [*UVICORN, "--port", str(port), "--workers", str(processes), *app_args]
                    with tempfile.TemporaryDirectory() as logs, \
                            ServiceProcess("web", command, {**env, **extra_env}, Path(logs),
                                           ready_text="Application startup complete", ready_count=processes):
                        for scenario in SCENARIOS:
                            result = _loadgen(f"http://127.0.0.1:{port}", api_key, scenario, args, setup=not setup_done)
                            setup_done = True
                            result.update(option=option, round=round_number + 1)
                            print(json.dumps(result), flush=True)
                            results.append(result)
            _table(results)
            if args.profile:
                subprocess.run([sys.executable, "-m", "tests.support.profile_post", "--api-key", api_key,
                                "--requests", "200"], cwd=REPO_ROOT, env=env, check=True)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{name}"')
            rabbitmqctl("delete_vhost", vhost, check=False)


def _loadgen(base_url: str, api_key: str, scenario: str, args, *, setup: bool) -> dict:
    command = [sys.executable, "-m", "tests.support.loadgen", "--base-url", base_url, "--api-key", api_key,
               "--scenario", scenario, "--clients", str(args.clients), "--duration", str(args.duration),
               "--warmup", str(args.warmup)]
    if setup:
        command.append("--setup")
    output = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    return json.loads(output)


def _table(results: list[dict]) -> None:
    print("\n| option | scenario | rounds: req/s | p50 ms | p99 ms | 5xx / errors |")
    print("| --- | --- | --- | --- | --- | --- |")
    for option in dict.fromkeys(r["option"] for r in results):
        for scenario in SCENARIOS:
            runs = [r for r in results if r["option"] == option and r["scenario"] == scenario]
            rates = " / ".join(f"{r['rate_per_s']:.0f}" for r in runs)
            p50 = " / ".join(f"{r['latency_ms']['p50']:.0f}" for r in runs)
            p99 = " / ".join(f"{r['latency_ms']['p99']:.0f}" for r in runs)
            failed = sum(n for r in runs for status, n in r["statuses"].items() if status == "0" or status >= "500")
            total = sum(r["requests"] for r in runs)
            print(f"| {option} | {scenario} | {rates} | {p50} | {p99} | {failed} of {total} |")


if __name__ == "__main__":
    main()
