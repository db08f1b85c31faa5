"""PostgreSQL's work per email delivery, statement by statement: `python -m bench.pg_work`.

In one process on a database and vhost of their own (`notifier_pgwork`, the bench's settings),
with the fake SMTP server (`bench.smtp_sink`, no latency) as the email provider, `--deliveries`
emails go the way the email scenario takes them: bulk requests of 100 through
`notifications_create` (its INSERT, its publish after commit and the mark of the confirmed
publishes), then `deliveries_send` in batches of 50 (the claim, the sends, the record). Prints per
delivery: the CPU of the PostgreSQL backend serving the connection (`/proc/<pid>/schedstat`) and
of the process's own thread, per phase; and, when the server preloads `pg_stat_statements`
(`--postgres-url` to a server of your own that does, with `track_planning` and `track = all`),
each statement's calls, planning and execution time, rows and WAL records and bytes, the foreign
keys' checks (run inside the inserts) listed apart. WAL records and bytes are deterministic: they
count what each statement wrote whatever the machine's load. docs/performance.md, "PostgreSQL's
work per delivery", quotes it.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import sys
import time
from pathlib import Path

import psycopg

from bench import stack as stack_module
from bench.claim import _backend_cpu
from bench.stack import REPO_ROOT, Stack
from tests.support.services import rabbitmqctl

USERS = 1000
BULK = 100  # the email scenario's bulk requests
BATCH = 50  # NOTIFIER_EMAIL_BATCH_SIZE: a message's deliveries


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_work", description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--postgres-url", default=stack_module.POSTGRES_URL,
                        help="a server with pg_stat_statements preloaded gives the per-statement figures")
    parser.add_argument("--profile", metavar="FILE", default="",
                        help="also write a cProfile of the sends (claim, record) to FILE")
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)  # the measured process
    args = parser.parse_args(argv)
    if args.drive:
        print(json.dumps(_drive(deliveries=args.deliveries, profile=args.profile)))
        return 0
    stack_module.POSTGRES_URL = args.postgres_url
    stack = Stack("pgwork", REPO_ROOT / "var" / "bench" / "pgwork-run")
    stack.smtp_latency = 0.0
    with stack:
        stack.prepare()
        with psycopg.connect(stack.database_url, autocommit=True) as connection:
            if "pg_stat_statements" in connection.execute("SHOW shared_preload_libraries").fetchone()[0]:
                connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        stack.seed(users=USERS)
        stack.start_smtp()
        profile = ["--profile", str(Path(args.profile).resolve())] if args.profile else []
        output = stack.run_python("-m", "bench.pg_work", "--drive", "--deliveries", str(args.deliveries),
                                  *profile, timeout=3600)
        statements = _statements(stack.database_url, deliveries=args.deliveries)
        with psycopg.connect(f"{args.postgres_url}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{stack.database}" WITH (FORCE)')
        rabbitmqctl("delete_vhost", stack.vhost, check=False)
    result = json.loads(output.strip().splitlines()[-1])
    for phase, figures in result.items():
        print(f"{phase}: PostgreSQL {figures['pg_ms']:.4f} ms, this process {figures['self_ms']:.4f} ms "
              f"(every thread {figures['process_ms']:.4f} ms) of CPU per delivery")
    if statements is None:
        print("(no pg_stat_statements on this server: no per-statement figures)")
        return 0
    print(f"{'per delivery':<70} {'calls':>7} {'plan ms':>8} {'exec ms':>8} {'rows':>6} {'WAL rec':>8} {'WAL B':>7}")
    for row in statements:
        print(f"{row['query'][:70]:<70} {row['calls']:>7.3f} {row['plan_ms']:>8.4f} {row['exec_ms']:>8.4f} "
              f"{row['rows']:>6.2f} {row['wal_records']:>8.2f} {row['wal_bytes']:>7.0f}")
    return 0


def _statements(database_url: str, *, deliveries: int) -> list[dict] | None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone():
            return None
        rows = connection.execute(
            "SELECT toplevel, query, calls, plans, total_plan_time, total_exec_time, rows, wal_records, wal_bytes"
            " FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND query NOT LIKE '%%pg_stat_statements%%' ORDER BY toplevel DESC, total_exec_time DESC"
        ).fetchall()
    statements, total = [], {"calls": 0.0, "plan_ms": 0.0, "exec_ms": 0.0, "rows": 0.0, "wal_records": 0.0,
                             "wal_bytes": 0.0}
    for toplevel, query, calls, _, plan_ms, exec_ms, count, wal_records, wal_bytes in rows:
        # A foreign key's check runs inside the INSERT or COPY, whose figures already hold it (a
        # COPY is no executor statement, so pg_stat_statements counts the checks as top level).
        toplevel = toplevel and not query.startswith("SELECT 1 FROM ONLY")
        row = {"query": ("" if toplevel else "(inside) ") + " ".join(query.split()),
               "calls": calls / deliveries, "plan_ms": plan_ms / deliveries, "exec_ms": exec_ms / deliveries,
               "rows": count / deliveries, "wal_records": wal_records / deliveries,
               "wal_bytes": float(wal_bytes) / deliveries}
        if row["calls"] < 0.001 and row["wal_records"] < 0.01:
            continue  # the setup's statements, not the path's
        statements.append(row)
        if toplevel:
            for key in total:
                total[key] += row[key]
    statements.append({"query": "all statements (top level)", **total})
    return statements


def _drive(*, deliveries: int, profile: str) -> dict:
    import django

    django.setup()
    import logging

    logging.disable(logging.CRITICAL)
    from django.db import connection

    from apps.notifications.delivery import sending
    from apps.notifications.delivery.sending import deliveries_send
    from apps.notifications.intake.services import NotificationRequest, notifications_create
    from apps.projects.models import Project
    from bench.seed import TEMPLATE_KEY, user_id

    project = Project.objects.get()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    def created(count: int, start: int) -> list[str]:
        requests = [NotificationRequest(to=user_id((start + n) % USERS), template_key=TEMPLATE_KEY,
                                        data={"order": start + n, "name": "Ada"}) for n in range(count)]
        ids = []
        for outcome in notifications_create(project=project, requests=requests):
            ids.extend(str(d.id) for d in outcome.deliveries)
        return ids

    def send(ids: list[str]) -> None:
        for start in range(0, len(ids), BATCH):
            deliveries_send(delivery_ids=ids[start:start + BATCH])

    # Warm: the first of each compiles or builds its SQL, and loads the backend's caches.
    send(created(BATCH, 0))
    with connection.cursor() as cursor:
        if _has_statements(cursor):
            cursor.execute("SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database"
                           " WHERE datname = current_database()), 0)")
    names = ("intake (insert, publish, mark)", "send (claim, SMTP, record)", "  of which the claim",
             "  of which the record")
    figures = {name: {"pg": 0.0, "self": 0.0, "process": 0.0} for name in names}
    ids_of_round: list[str] = []
    profiler = cProfile.Profile() if profile else None

    def measured(name: str, work, *args, **kwargs):
        pg, own, process = _backend_cpu(backend)[0], time.thread_time(), time.process_time()
        result = work(*args, **kwargs)
        figures[name]["pg"] += _backend_cpu(backend)[0] - pg
        figures[name]["self"] += time.thread_time() - own
        # With the email channel's SEND_CONCURRENCY above 1 the SMTP conversations run on send threads.
        figures[name]["process"] += time.process_time() - process
        return result

    # The claim and the record as deliveries_send calls them, timed on their own too.
    claim_load, record = sending.deliveries_claim_load, sending.attempts_record
    sending.deliveries_claim_load = lambda *a, **k: measured(names[2], claim_load, *a, **k)
    sending.attempts_record = lambda *a, **k: measured(names[3], record, *a, **k)

    for start in range(0, deliveries, BULK):
        def intake(start=start) -> None:
            ids_of_round[:] = created(min(BULK, deliveries - start), start)
        measured(names[0], intake)
        if profiler is not None:
            profiler.enable()
        measured(names[1], send, ids_of_round)
        if profiler is not None:
            profiler.disable()
    if profiler is not None:
        profiler.dump_stats(profile)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] == backend, "the connection changed backend: the PostgreSQL figures are wrong"
    return {name: {"pg_ms": f["pg"] / 1e6 / deliveries, "self_ms": f["self"] * 1000 / deliveries,
                   "process_ms": f["process"] * 1000 / deliveries}
            for name, f in figures.items()}


def _has_statements(cursor) -> bool:
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
    return cursor.fetchone() is not None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
