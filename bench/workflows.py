"""The workflow scenario's probes, run in the stack's environment: `python -m bench.workflows ACTION`.

- `cost`: what the runs waiting in the database cost: bytes per run (the run's row and its steps,
  with their indexes) and every message in the vhost's queues (a wait must hold none);
- `render --events N`: a digest of N events rendered by the worker's path and by a preview's
  render process (apps/templates/sandbox.py), timed.
Each prints one JSON object.
"""

import argparse
import json
import time
from urllib.parse import urlparse

import django

DIGEST_PARTS = {"subject": "{{ event_count }} new comments",
                "text": "{% for e in events %}{{ e.author }}: {{ e.text }}\n{% endfor %}"}


def cost() -> dict:
    from django.conf import settings
    from django.db import connection

    from apps.workflows.models import WorkflowRun
    from tests.support.services import rabbitmqctl

    waiting = WorkflowRun.objects.filter(state="active", due_at__gt=time_ahead(days=6)).count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), coalesce(avg(pg_column_size(r.*)), 0) FROM workflows_workflowrun r")
        runs, run_row = cursor.fetchone()
        cursor.execute("SELECT count(*), coalesce(avg(pg_column_size(s.*)), 0) FROM workflows_runstep s")
        steps, step_row = cursor.fetchone()
        cursor.execute("SELECT pg_total_relation_size('workflows_workflowrun') + pg_total_relation_size('workflows_runstep')")
        (total,) = cursor.fetchone()
    vhost = urlparse(settings.CELERY_BROKER_URL).path.lstrip("/")
    listing = rabbitmqctl("list_queues", "-p", vhost, "--no-table-headers", "--quiet", "name", "messages").stdout
    messages = {name: int(depth) for name, depth in (line.split() for line in listing.splitlines() if line.strip())}
    return {
        "runs": runs, "waiting_7_days": waiting, "steps": steps,
        "run_row_bytes": round(float(run_row), 1), "step_row_bytes": round(float(step_row), 1),
        "steps_per_run": round(steps / runs, 2) if runs else None,
        "bytes_per_run_with_indexes": round(total / runs) if runs else None,
        "broker_messages": sum(messages.values()), "broker_messages_by_queue": messages,
    }


def time_ahead(*, days: float):
    from datetime import timedelta

    from django.utils import timezone

    return timezone.now() + timedelta(days=days)


def render(events: int) -> dict:
    from apps.templates.rendering import render_value
    from apps.templates.sandbox import preview_processes_stop, preview_render

    data = {"thread": "t-42", "events": [{"author": f"user-{n}", "text": f"comment number {n} on the thread"}
                                         for n in range(events)], "event_count": events}
    started = time.perf_counter()
    rendered = render_value(DIGEST_PARTS, data)
    worker_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    preview = preview_render(channels={"email": DIGEST_PARTS}, data=data)
    preview_ms = (time.perf_counter() - started) * 1000
    preview_processes_stop()
    return {"events": events, "worker_render_ms": round(worker_ms, 1), "preview_render_ms": round(preview_ms, 1),
            "text_bytes": len(rendered["text"].encode()), "same": preview["email"]["text"] == rendered["text"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["cost", "render"])
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args()
    django.setup()
    print(json.dumps(cost() if args.action == "cost" else render(args.events)))


if __name__ == "__main__":
    main()
