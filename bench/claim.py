"""The worker's claim, in one statement or the ORM's two: `python -m bench.claim [--deliveries N]`.

In one process on a database and vhost of their own (`notifier_claim`, the bench's settings), with
the fake SMTP server (`bench.smtp_sink`, no latency) as the email provider: emails to the bench's
users are queued straight in the database, then sent by `deliveries_send` in batches of 50 (a
bulk request's messages) and of 1 to 5 (single POSTs gathered by the web's publisher), each claim
made one way then the other, twice (old, new, old, new), so that both see the same load. Prints,
per delivery: the sending thread's CPU (`time.thread_time()`) around `deliveries_send` and around
`deliveries_claim` alone; and for the claim the CPU of the PostgreSQL backend serving the
connection (`pg_backend_pid()`: /proc/<pid>/schedstat, in nanoseconds, and utime + stime from
/proc/<pid>/stat, in clock ticks). docs/performance.md, "The worker's CPU per delivery, one
change at a time", quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from bench.stack import REPO_ROOT, Stack

USERS = 500
SIZES = {"50": [50], "1-5": [1, 2, 3, 4, 5]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.claim", description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=1000, help="per batch size, claim way and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)  # the measured process
    args = parser.parse_args(argv)
    if args.drive:
        print(json.dumps(_drive(deliveries=args.deliveries, rounds=args.rounds)))
        return 0
    stack = Stack("claim", REPO_ROOT / "var" / "bench" / "claim-run")
    stack.smtp_latency = 0.0
    with stack:
        stack.prepare()
        stack.seed(users=USERS)
        stack.start_smtp()
        output = stack.run_python("-m", "bench.claim", "--drive", "--deliveries", str(args.deliveries),
                                  "--rounds", str(args.rounds), timeout=3600)
    results = json.loads(output.strip().splitlines()[-1])
    for result in results:
        print(f"round {result['round']} {result['way']:>4} batches of {result['sizes']:>3}: "
              f"send {result['send_ms']:.3f} ms, claim {result['claim_ms']:.3f} ms of worker CPU per delivery; "
              f"PostgreSQL {result['pg_claim_ms']:.3f} ms per claim ({result['pg_ticks_ms']:.1f} by ticks), "
              f"{result['pg_claim_per_delivery_ms']:.3f} per delivery")
    return 0


def _drive(*, deliveries: int, rounds: int) -> list[dict]:
    import django

    django.setup()
    import logging

    logging.disable(logging.CRITICAL)
    from django.db import connection

    from apps.notifications.delivery import claim, sending

    ways = {"old": claim._claimed_by_the_orm, "new": claim._claimed_in_one_statement}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    for way in ways.values():  # warm both: the first claim of each compiles or builds its SQL
        sending.deliveries_claim_load = way
        sending.deliveries_send(delivery_ids=_queued(5))
    results = []
    for number in range(1, rounds + 1):
        for name, way in ways.items():
            sending.deliveries_claim_load = way
            for sizes_name, sizes in SIZES.items():
                result = {"round": number, "way": name, "sizes": sizes_name}
                batches = _batches(_queued(deliveries), sizes)
                started = time.thread_time()
                for batch in batches:
                    sending.deliveries_send(delivery_ids=batch)
                result["send_ms"] = (time.thread_time() - started) * 1000 / deliveries
                batches = _batches(_queued(deliveries), sizes)
                worker = pg_ns = pg_ticks = 0.0
                for batch in batches:
                    pg_before = _backend_cpu(backend)
                    started = time.thread_time()
                    sending.deliveries_claim(delivery_ids=batch)
                    worker += time.thread_time() - started
                    pg_after = _backend_cpu(backend)
                    pg_ns += pg_after[0] - pg_before[0]
                    pg_ticks += pg_after[1] - pg_before[1]
                result["claim_ms"] = worker * 1000 / deliveries
                result["pg_claim_ms"] = pg_ns / 1e6 / len(batches)
                result["pg_ticks_ms"] = pg_ticks * 1000 / os.sysconf("SC_CLK_TCK") / len(batches)
                result["pg_claim_per_delivery_ms"] = pg_ns / 1e6 / deliveries
                results.append(result)
                print(json.dumps(result), file=sys.stderr, flush=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] == backend, "the connection changed backend: the PostgreSQL figures are wrong"
    return results


def _queued(count: int) -> list[str]:
    """`count` emails queued for the bench's users, as the API leaves them (not published)."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.notifications.models import Delivery, DeliveryStatus, Notification
    from apps.templates.models import TemplateVersion
    from apps.users.models import Recipient

    version = TemplateVersion.objects.select_related("template").order_by("-id").first()
    users = list(Recipient.objects.order_by("id")[:USERS])
    now = timezone.now()
    notifications = Notification.objects.bulk_create(
        Notification(project_id=version.template.project_id, recipient=users[n % len(users)],
                     to=users[n % len(users)].external_id,
                     template=version.template, template_version=version, data={"order": n, "name": "Ada"})
        for n in range(count)
    )
    queued = Delivery.objects.bulk_create(
        Delivery(notification=notification, channel="email", status=DeliveryStatus.QUEUED, status_changed_at=now,
                 recheck_at=now + timedelta(minutes=15))
        for notification in notifications
    )
    return [str(delivery.id) for delivery in queued]


def _batches(ids: list[str], sizes: list[int]) -> list[list[str]]:
    batches, start, index = [], 0, 0
    while start < len(ids):
        size = sizes[index % len(sizes)]
        batches.append(ids[start:start + size])
        start, index = start + size, index + 1
    return batches


def _backend_cpu(pid: int) -> tuple[int, int]:
    """The backend's CPU so far: nanoseconds on a CPU (schedstat), and utime + stime in clock ticks."""
    on_cpu_ns = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return on_cpu_ns, int(fields[11]) + int(fields[12])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
