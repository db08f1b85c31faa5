"""The scenarios. Each returns its section of the report and checks its targets; a scenario whose
endpoint does not exist on this branch reports "not available (404)" instead of failing the run."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.load import LoadSpec, run_load
from bench.probes import connect, cpu_seconds, load_generator_cpu_seconds, machine_cpu_ticks, statements_executed
from bench.report import Targets, percentiles, rate
from bench.stack import Stack


@dataclass
class Bench:
    stack: Stack
    api_key: str
    template: str
    users: int
    smoke: bool
    load_processes: int
    targets: Targets
    helper_niceness: int = 10
    autovacuum_off: bool = False

    def settle(self) -> None:
        """Where autovacuum is off, the statistics it would have kept (docs/performance.md)."""
        if self.autovacuum_off:
            self.stack.analyze()

    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.stack.base_url + path, method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Api-Key {self.api_key}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            try:
                return error.code, json.loads(error.read() or b"{}")
            except ValueError:
                return error.code, {}

    def unavailable(self, path: str) -> str:
        """Why the endpoint cannot be benched, or "" when it exists: an empty POST to a real endpoint
        is refused for its body (400), not for its address. (An unknown /api/v1/ path answers 404,
        or 403 where CSRF checking reaches the fallback view first.)"""
        status, _ = self.api("POST", path, {})
        return f"not available ({status})" if status in (403, 404, 405) else ""

    def broker(self, action: str, *args: str) -> dict:
        return json.loads(self.stack.run_python("-m", "bench.broker", action, *args))

    def load(self, *, path: str, kind: str, clients: int, seconds: float, batch: int = 1,
             requests_per_client: int = 0, offered_per_s: float = 0.0) -> dict:
        """`requests_per_client`: each client stops after that many (0: when `seconds` have passed);
        `offered_per_s`: requests a second the clients offer together (0: closed loop, bench/load.py)."""
        spec = LoadSpec(base_url=self.stack.base_url, api_key=self.api_key, path=path, kind=kind, clients=clients,
                        seconds=seconds, users=self.users, template=self.template, batch=batch,
                        max_requests=requests_per_client or (3 if self.smoke else 0), niceness=self.helper_niceness,
                        rate=offered_per_s)
        cpu_before = cpu_seconds(self.stack.processes)
        load_cpu_before = load_generator_cpu_seconds()
        result = run_load(spec, processes=self.load_processes)
        seconds_run = result["finished_at"] - result["started_at"]
        cpu = {name: seconds - cpu_before.get(name, 0.0) for name, seconds in cpu_seconds(self.stack.processes).items()}
        cpu["load generator"] = load_generator_cpu_seconds() - load_cpu_before
        success = "200" if kind in ("bulk", "floor") else "202"
        errors = {status: count for status, count in result["statuses"].items() if status != success}
        return {
            "clients": clients, "batch": batch, "offered_per_s": offered_per_s or None, "seconds": round(seconds_run, 2),
            "requests": len(result["latencies_ms"]), "accepted": result["accepted"],
            "accepted_per_s": rate(result["accepted"], seconds_run),
            "latency_ms": percentiles(result["latencies_ms"], 50, 95, 99),
            "errors": sum(errors.values()), "errors_by_status": errors,
            # 100 is one core busy: a process tree whose Python runs in one process cannot go past it.
            "cpu_percent": {name: round(100 * seconds / seconds_run, 1) if seconds_run else None
                            for name, seconds in cpu.items()},
            # CPU per notification accepted: steadier than the rates on a machine others share.
            "cpu_ms_per_accepted": {name: round(1000 * seconds / result["accepted"], 3) if result["accepted"] else None
                                    for name, seconds in cpu.items()},
            "started_at": result["started_at"], "finished_at": result["finished_at"],
        }


def noop_ceiling(bench: Bench) -> dict:
    result = bench.broker("noop", "--count", "200" if bench.smoke else "15000")
    bench.targets.note("noop", "no-op tasks/s (the ceiling the email scenario is compared with)", result["per_s"], "/s")
    return {"available": True, **result}


def single_posts(bench: Bench, *, clients: list[int], paced_rate: float) -> dict:
    # The floor first: the same clients on `GET /health/live`, which touches neither the database
    # nor the broker, say what uvicorn, Django and the machine cost and allow before any work of ours.
    floor_clients = 2 if bench.smoke else 32
    print(f"floor: GET /health/live, {floor_clients} clients, 10 s", flush=True)
    floor = bench.load(path="/health/live", kind="floor", clients=floor_clients, seconds=2 if bench.smoke else 10)
    bench.targets.note("floor", "GET /health/live answered/s", floor["accepted_per_s"], "/s")
    bench.targets.note("floor", "GET /health/live p99", floor["latency_ms"]["p99"], " ms")
    bench.targets.note("floor", "web CPU per GET /health/live", floor["cpu_ms_per_accepted"].get("web"), " ms")
    runs = []
    # The first count (the one with targets) runs 20 s, the others 15 s.
    plan = [(2, 2)] if bench.smoke else [(count, 20 if n == 0 else 15) for n, count in enumerate(clients)]
    for n, (clients, seconds) in enumerate(plan):
        if n:
            bench.settle()
        print(f"single POST /api/v1/notifications, {clients} clients, {seconds} s", flush=True)
        run = bench.load(path="/api/v1/notifications", kind="single", clients=clients, seconds=seconds)
        runs.append(run)
        scenario = f"single/{clients}"
        if clients == 32:
            bench.targets.check(scenario, "accepted/s", run["accepted_per_s"], "≥", 400, "/s")
            # Closed loop, latency is the queue the clients themselves keep full (32 ÷ answers/s):
            # the latency target is judged on the paced run below, at the rate it goes with.
            bench.targets.note(scenario, "accept latency p99, closed loop", run["latency_ms"]["p99"], " ms")
            bench.targets.check(scenario, "web CPU per accepted notification", run["cpu_ms_per_accepted"].get("web"),
                                "≤", 2, " ms")
        bench.targets.check(scenario, "errors", run["errors"], "=", 0)
        bench.broker("purge")
    bench.settle()
    paced = single_posts_paced(bench, offered_per_s=20 if bench.smoke else paced_rate)
    return {"available": True, "runs": runs, "paced": paced, "floor": floor}


def single_posts_paced(bench: Bench, *, offered_per_s: float) -> dict:
    """32 clients offering `offered_per_s` single POSTs a second together, latency counted from when each
    request was due: what a client sees while the stack carries the target rate."""
    clients, seconds = (2, 2) if bench.smoke else (32, 20)
    print(f"single POST /api/v1/notifications, {clients} clients offering {offered_per_s:g}/s, {seconds} s", flush=True)
    run = bench.load(path="/api/v1/notifications", kind="single", clients=clients, seconds=seconds,
                     offered_per_s=offered_per_s)
    scenario = f"single/{clients} at {offered_per_s:g}/s"
    bench.targets.check(scenario, "accepted/s", run["accepted_per_s"], "≥", 0.97 * offered_per_s, "/s")
    bench.targets.check(scenario, "accept latency p99", run["latency_ms"]["p99"], "≤", 50, " ms")
    bench.targets.check(scenario, "errors", run["errors"], "=", 0)
    bench.broker("purge")
    return run


def bulk_posts(bench: Bench) -> dict:
    path = "/api/v1/notifications/bulk"
    if reason := bench.unavailable(path):
        bench.targets.not_available("bulk", reason)
        return {"available": False, "reason": reason, "runs": []}
    clients, seconds, batch = (1, 2, 10) if bench.smoke else (4, 20, 1000)
    print(f"bulk POST {path}, {clients} clients, {batch} per request, {seconds} s", flush=True)
    run = bench.load(path=path, kind="bulk", clients=clients, seconds=seconds, batch=batch)
    bench.targets.check("bulk", "notifications accepted/s", run["accepted_per_s"], "≥", 5000, "/s")
    bench.targets.check("bulk", "web CPU per accepted notification", run["cpu_ms_per_accepted"].get("web"),
                        "≤", 0.3, " ms")
    bench.targets.check("bulk", "errors", run["errors"], "=", 0)
    bench.broker("purge")
    return {"available": True, "runs": [run]}


def workflow_runs(bench: Bench) -> dict:
    """Runs started per second through the API, of a workflow that waits 7 days before its email;
    then what those waiting runs cost (database bytes, broker messages) and a 1,000-event digest
    rendered."""
    # Named as the template: the load's bodies name it in `workflow` where they would name the template.
    path = f"/api/v1/workflows/{bench.template}"
    status, _ = bench.api("PUT", path, {"template": bench.template, "steps": [{"wait": "7d"}, {"channel": "email"}]})
    if status != 201:
        reason = f"not available ({status})"
        bench.targets.not_available("workflow", reason)
        return {"available": False, "reason": reason}
    clients, seconds = (2, 2) if bench.smoke else (32, 15)
    print(f"workflow POST /api/v1/notifications {{workflow}}, {clients} clients, {seconds} s", flush=True)
    run = bench.load(path="/api/v1/notifications", kind="workflow", clients=clients, seconds=seconds)
    bench.targets.check("workflow", "errors", run["errors"], "=", 0)
    bench.targets.note("workflow", "runs started/s (32 clients)", run["accepted_per_s"], "/s")
    # Every run takes its first step (the wait) on the workers; then it is a row until its time.
    deadline = time.monotonic() + (10 if bench.smoke else 120)
    while (cost := json.loads(bench.stack.run_python("-m", "bench.workflows", "cost")))["waiting_7_days"] < run["accepted"]:
        if time.monotonic() > deadline:
            break
        time.sleep(2)
    bench.targets.check("workflow", "runs waiting 7 days", cost["waiting_7_days"], "≥", run["accepted"])
    bench.targets.note("workflow", "bytes per waiting run (rows + indexes)", cost["bytes_per_run_with_indexes"], " B")
    bench.targets.check("workflow", "broker messages held for the waits", cost["broker_messages"], "=", 0)
    rendered = json.loads(bench.stack.run_python("-m", "bench.workflows", "render", "--events", "1000"))
    bench.targets.note("workflow", "1,000-event digest rendered (worker)", rendered["worker_render_ms"], " ms")
    bench.targets.note("workflow", "1,000-event digest rendered (preview sandbox)", rendered["preview_render_ms"], " ms")
    return {"available": True, "runs": [run], "waiting_cost": cost, "digest_render": rendered}


def broadcast(bench: Bench, *, audience: dict, monitor) -> dict:
    path = "/api/v1/broadcasts"
    if reason := bench.unavailable(path):
        bench.targets.not_available("broadcast", reason)
        return {"available": False, "reason": reason}
    print(f"broadcast to {bench.users} users", flush=True)
    cpu_before = cpu_seconds(bench.stack.processes)
    started = time.monotonic()
    status, created = bench.api("POST", path, {"template": bench.template, "data": {"name": "all", "order": 1},
                                                "audience": audience})
    if status != 202:
        bench.targets.check("broadcast", f"POST {path} status", status, "=", 202)
        return {"available": True, "accepted": False, "status": status, "body": created}
    state: dict = {}
    while time.monotonic() - started < (20 if bench.smoke else 120):
        _, state = bench.api("GET", f"{path}/{created['id']}")
        if state.get("status") in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.5)
    seconds = round(time.monotonic() - started, 2)
    # The fan-out's CPU, which the machine's load moves far less than the seconds (docs/performance.md).
    cpu = {name: spent - cpu_before.get(name, 0.0) for name, spent in cpu_seconds(bench.stack.processes).items()}
    users = sum(state.get(count) or 0 for count in ("created", "skipped", "failed"))  # the users fanned out so far
    cpu_ms_per_user = {name: round(1000 * spent / users, 3) for name, spent in cpu.items() if users}
    if state.get("status") not in ("completed", "failed", "cancelled"):
        # Still fanning out: stop it, or it would feed the next scenario's workers and counts.
        bench.api("POST", f"{path}/{created['id']}/cancel", {})
    depth = bench.broker("depth")["ready"]
    queued = _broadcast_deliveries_queued(bench.stack.database_url, broadcast_id=created["id"])
    bench.targets.check("broadcast", "seconds until every delivery is created and queued", seconds, "≤", 30, " s")
    bench.targets.check("broadcast", "notifications created", state.get("created"), "=", bench.users)
    # Deliveries, not messages: email travels up to NOTIFIER_EMAIL_BATCH_SIZE deliveries a message.
    bench.targets.check("broadcast", "deliveries queued (or already sent)", queued, "=", bench.users)
    largest = max((memory["largest_peak_mb"] for memory in monitor.memory_report().values()), default=0)
    bench.targets.check("broadcast", "largest process peak (VmHWM)", largest, "≤", 500, " MB")
    if "worker" in cpu_ms_per_user:
        bench.targets.note("broadcast", "worker CPU per user", cpu_ms_per_user["worker"], " ms")
    bench.broker("purge")
    return {"available": True, "accepted": True, "seconds": seconds, "state": state, "queued_messages": depth,
            "queued_deliveries": queued, "cpu_ms_per_user": cpu_ms_per_user}


def email_end_to_end(bench: Bench, *, noop_per_s: float | None, use_bulk: bool, monitor, seconds: float) -> dict:
    stack = bench.stack
    seconds = 3 if bench.smoke else seconds
    commits_before = monitor.database_commits()
    statements_before = statements_executed(stack.query_count_dir)
    cpu_before, machine_before = _cpu_used(bench, monitor), machine_cpu_ticks()
    phase_start = time.time()
    if use_bulk:
        print(f"end to end: bulk POSTs for {seconds} s, consumers on", flush=True)
        run = bench.load(path="/api/v1/notifications/bulk", kind="bulk", clients=1 if bench.smoke else 4,
                         seconds=seconds, batch=10 if bench.smoke else 100)
    else:
        print(f"end to end: single POSTs for {seconds} s, consumers on", flush=True)
        run = bench.load(path="/api/v1/notifications", kind="single", clients=2 if bench.smoke else 64, seconds=seconds)
    received = _wait_for_deliveries(stack.smtp_log, since=phase_start, expected=run["accepted"],
                                    idle_timeout=10 if bench.smoke else 30, timeout=30 if bench.smoke else 120)
    time.sleep(1 if bench.smoke else 11)  # PostgreSQL publishes an idle backend's counters within 10 s
    delivered = len(received)
    commits = monitor.database_commits() - commits_before
    statements = statements_executed(stack.query_count_dir) - statements_before
    cpu = {name: seconds - cpu_before.get(name, 0.0) for name, seconds in _cpu_used(bench, monitor).items()}
    machine_busy = _busy_percent(machine_before)

    times = sorted(received.values())
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    delivered_per_s = rate(delivered, span)
    best_60s = _best_window_rate(times, 60.0) if span >= 60 else None
    sustained = best_60s if best_60s is not None else delivered_per_s
    ratio = round(sustained / noop_per_s, 3) if noop_per_s else None
    section = {
        "available": True, "feed": "bulk" if use_bulk else "single", "load": run,
        "accepted": run["accepted"], "accepted_per_s": run["accepted_per_s"],
        "delivered": delivered, "delivered_per_s": delivered_per_s, "delivered_per_s_best_60s": best_60s,
        "delivered_per_channel": _delivered_per_channel(stack.database_url, since=phase_start),
        "accepted_to_provider_ms": percentiles(_accepted_to_provider_ms(stack.database_url, received), 50, 99),
        # Divided by the deliveries: exact when every accepted notification was delivered in the
        # window ("all_delivered"), an overestimate otherwise (the API's share of the rest is in).
        "all_delivered": delivered >= run["accepted"],
        "commits_per_delivery": round(commits / delivered, 2) if delivered else None,
        "queries_per_delivery": round(statements / delivered, 2) if delivered else None,
        "ratio_to_noop": ratio,
        "cpu_ms_per_delivery": {name: round(1000 * seconds / delivered, 2) if delivered else None
                                for name, seconds in cpu.items()},
        "machine_cpu_busy_percent": machine_busy,
    }
    scenario = "email"
    bench.targets.check(scenario, "deliveries/s sustained over 60 s", sustained if delivered else None, "≥", 1000, "/s")
    bench.targets.check(scenario, "delivered/s ÷ no-op tasks/s", ratio, "≥", 0.60)
    bench.targets.check(scenario, "every accepted notification delivered", delivered, "≥", run["accepted"])
    bench.targets.check(scenario, "commits per delivery", section["commits_per_delivery"], "≤", 3)
    bench.targets.check(scenario, "worker CPU per delivery", section["cpu_ms_per_delivery"].get("worker"), "≤", 0.8,
                        " ms")
    return section


def burst(bench: Bench, *, monitor, total: int = 20_000, clients: int = 32, settle: float = 30.0) -> dict:
    """`total` single POSTs from `clients` clients with the workers consuming: are they delivered
    as fast as they are accepted? The backlog (accepted, not yet at the SMTP server) is read at the
    last answer and `settle` seconds later; the target is none left then."""
    stack = bench.stack
    if bench.smoke:
        total, clients, settle = 20, 2, 10.0
    per_client = max(1, total // clients)
    # What the email scenario left undelivered (it stops waiting after 2 minutes) would be sent
    # first, and the burst's deliveries measured behind it: it is emptied out of the queue.
    bench.broker("purge")
    cpu_before, machine_before = _cpu_used(bench, monitor), machine_cpu_ticks()
    phase_start = time.time()
    print(f"burst: {per_client * clients:,} single POSTs from {clients} clients, consumers on", flush=True)
    run = bench.load(path="/api/v1/notifications", kind="single", clients=clients, seconds=3600,
                     requests_per_client=per_client)
    first_post, last_post = run["started_at"], run["finished_at"]
    # Until every accepted one is delivered, and at least until `settle` s after the last POST
    # unless they all are; a backlog left then is waited on for a while more, to say how long it takes.
    deadline = last_post + settle + (0 if bench.smoke else 60)
    ours: set[str] = set()  # the burst's deliveries: what an earlier scenario left may still arrive meanwhile
    while True:
        received = _sink_lines(stack.smtp_log, since=phase_start)
        ours |= _created_since(stack.database_url, [d for d in received if d and d not in ours], since=phase_start)
        received = {delivery_id: stamp for delivery_id, stamp in received.items() if delivery_id in ours}
        if len(received) >= run["accepted"] or time.time() > deadline:
            break
        time.sleep(0.5)
    cpu = {name: seconds - cpu_before.get(name, 0.0) for name, seconds in _cpu_used(bench, monitor).items()}
    machine_busy = _busy_percent(machine_before)
    times = sorted(received.values())

    def delivered_by(moment: float) -> int:
        return sum(1 for stamp in times if stamp <= moment)

    backlog_at_last = run["accepted"] - delivered_by(last_post)
    backlog_after = run["accepted"] - delivered_by(last_post + settle)
    drained = len(times) >= run["accepted"]
    section = {
        "available": True, "load": run, "accepted": run["accepted"], "accepted_per_s": run["accepted_per_s"],
        "errors": run["errors"], "latency_ms": run["latency_ms"],
        "delivered": len(times),
        "delivered_per_s_while_accepting": rate(delivered_by(last_post), last_post - first_post),
        "backlog_at_last_post": backlog_at_last,
        "settle_seconds": settle,
        "backlog_after_settle": backlog_after,
        # From the last POST's answer to the last delivery; None if some were still undelivered when the bench stopped waiting.
        "drained_after_s": round(times[-1] - last_post, 2) if drained and times else None,
        "cpu_ms_per_delivery": {name: round(1000 * seconds / len(times), 2) if times else None
                                for name, seconds in cpu.items()},
        "machine_cpu_busy_percent": machine_busy,
    }
    bench.targets.check("burst", "errors", run["errors"], "=", 0)
    bench.targets.note("burst", "accepted/s", run["accepted_per_s"], "/s")
    bench.targets.note("burst", "delivered/s while accepting", section["delivered_per_s_while_accepting"], "/s")
    # "Delivered at the rate it is accepted": the deliveries keep pace with the POSTs while they arrive,
    # allowing a tenth for the pipeline's own lag (a message is sent a few ms after its 202).
    keeping_pace = section["delivered_per_s_while_accepting"], run["accepted_per_s"]
    bench.targets.check("burst", "delivered/s while accepting ÷ accepted/s",
                        round(keeping_pace[0] / keeping_pace[1], 3) if keeping_pace[1] else None, "≥", 0.9)
    bench.targets.note("burst", "backlog at the last POST", backlog_at_last)
    bench.targets.check("burst", f"backlog {settle:g} s after the last POST", backlog_after, "=", 0)
    return section


def _cpu_used(bench: Bench, monitor) -> dict[str, float]:
    """CPU seconds used so far by each Procfile process tree and by the bench database's PostgreSQL backends."""
    return {**cpu_seconds(bench.stack.processes), "postgres": monitor.postgres_cpu_seconds()}


def _busy_percent(before: tuple[int, int]) -> float | None:
    """How busy the machine's cores were since `before` (every process on it, not only the stack's)."""
    busy, total = (now - then for now, then in zip(machine_cpu_ticks(), before, strict=True))
    return round(100 * busy / total, 1) if total else None


def _sink_lines(path: Path, *, since: float) -> dict[str, float]:
    received = {}
    if path.exists():
        for line in path.read_text().splitlines():
            stamp, _, delivery_id = line.partition(" ")
            if delivery_id and float(stamp) >= since:
                received.setdefault(delivery_id, float(stamp))
    return received


def _wait_for_deliveries(path: Path, *, since: float, expected: int, idle_timeout: float,
                         timeout: float) -> dict[str, float]:
    """What the SMTP server received since `since`, once it has them all, has had none for
    `idle_timeout`, or `timeout` has passed (a backlog the workers would take many minutes to drain)."""
    last_count, last_change = -1, time.monotonic()
    deadline = time.monotonic() + timeout
    while True:
        received = _sink_lines(path, since=since)
        if len(received) >= expected or time.monotonic() > deadline:
            return received
        if len(received) != last_count:
            last_count, last_change = len(received), time.monotonic()
        elif time.monotonic() - last_change > idle_timeout:
            return received
        time.sleep(0.5)


def _best_window_rate(times: list[float], window: float) -> float:
    best, start = 0, 0
    for end, stamp in enumerate(times):
        while stamp - times[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return round(best / window, 1)


def _created_since(database_url: str, delivery_ids: list[str], *, since: float) -> set[str]:
    """Those of `delivery_ids` whose notification was created at `since` or later."""
    if not delivery_ids:
        return set()
    with connect(database_url) as connection:
        rows = connection.execute(
            "SELECT d.id::text FROM notifications_delivery d JOIN notifications_notification n ON n.id = d.notification_id"
            " WHERE d.id = ANY(%s::uuid[]) AND n.created_at >= to_timestamp(%s)", [delivery_ids, since]).fetchall()
    return {row[0] for row in rows}


def _broadcast_deliveries_queued(database_url: str, *, broadcast_id: str) -> int:
    """The broadcast's deliveries that are queued or further along (not `pending`, not `skipped`)."""
    with connect(database_url) as connection:
        return connection.execute(
            "SELECT count(*) FROM notifications_delivery d JOIN notifications_notification n ON n.id = d.notification_id"
            " WHERE n.broadcast_id = %s AND d.status NOT IN ('pending', 'skipped', 'cancelled')", [broadcast_id]
        ).fetchone()[0]


def _delivered_per_channel(database_url: str, *, since: float) -> dict[str, dict]:
    with connect(database_url) as connection:
        rows = connection.execute(
            "SELECT channel, count(*), extract(epoch FROM max(sent_at) - min(sent_at)) FROM notifications_delivery"
            " WHERE sent_at >= to_timestamp(%s) GROUP BY channel", [since]).fetchall()
    return {channel: {"sent": count, "per_s": rate(count, float(span or 0))} for channel, count, span in rows}


def _accepted_to_provider_ms(database_url: str, received: dict[str, float]) -> list[float]:
    if not received:
        return []
    with connect(database_url) as connection:
        rows = connection.execute(
            "SELECT d.id::text, extract(epoch FROM n.created_at) FROM notifications_delivery d"
            " JOIN notifications_notification n ON n.id = d.notification_id WHERE d.id = ANY(%s::uuid[])",
            [list(received)]).fetchall()
    return [(received[delivery_id] - float(created)) * 1000 for delivery_id, created in rows]
