"""Broker-side steps of the bench, run in the stack's environment: `python -m bench.broker ACTION`.

- `pause` / `resume`: the workers stop / start consuming the email queue (Celery remote control),
  so an API scenario measures the API alone and leaves a backlog the bench then purges.
- `purge`: empty the email queue (the rows stay `queued`; the bench database is dropped next run).
- `depth`: messages ready in the email queue.
- `noop --count N`: pause, publish N no-op tasks to the email queue, resume, and time the drain:
  the ceiling of these broker and worker settings, with nothing of Notifier in the task.
Each prints one JSON object.
"""

import argparse
import json
import time
import uuid

import django

QUEUE = "notifications.email"


def queue_depth(app) -> int:
    with app.connection_for_write() as connection:
        _, ready, _ = connection.default_channel.queue_declare(queue=QUEUE, passive=True)
    return ready


def consumers_cancel(app) -> int:
    """How many workers stopped consuming. A broadcast collects replies until its timeout, so the
    count of workers found here lets `consumers_add` return as soon as they have all answered."""
    return len(app.control.cancel_consumer(QUEUE, reply=True, timeout=2) or [])


def consumers_add(app, *, workers: int | None = None) -> int:
    return len(app.control.add_consumer(QUEUE, reply=True, timeout=5, limit=workers) or [])


def noop_ceiling(app, *, count: int, timeout: float) -> dict:
    from bench.noop import noop

    workers = consumers_cancel(app)
    # Without publisher confirms, so that publishing the backlog is not what gets measured.
    app.conf.broker_transport_options = {}
    with app.producer_or_acquire() as producer:
        for _ in range(count):
            noop.apply_async((str(uuid.uuid4()),), queue=QUEUE, producer=producer)
    # Unconfirmed publishes may still be on their way: start once the broker holds them all.
    settle_deadline = time.monotonic() + 30
    while (backlog := queue_depth(app)) < count and time.monotonic() < settle_deadline:
        time.sleep(0.05)
    started = time.monotonic()
    consumers_add(app, workers=workers)
    while (ready := queue_depth(app)) and time.monotonic() - started < timeout:
        time.sleep(0.05)
    seconds = time.monotonic() - started
    done = backlog - ready
    return {"tasks": done, "seconds": round(seconds, 3), "per_s": round(done / seconds, 1) if seconds else 0.0,
            "workers": workers, "complete": ready == 0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["pause", "resume", "purge", "depth", "noop"])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    django.setup()
    from celery_app import app

    if args.action == "pause":
        result = {"workers": consumers_cancel(app)}
    elif args.action == "resume":
        result = {"workers": consumers_add(app)}
    elif args.action == "purge":
        with app.connection_for_write() as connection:
            result = {"purged": connection.default_channel.queue_purge(QUEUE) or 0}
    elif args.action == "depth":
        result = {"ready": queue_depth(app)}
    else:
        result = noop_ceiling(app, count=args.count, timeout=args.timeout)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
