"""The load generator: HTTP clients in separate processes, through the public API.

`run_load()` starts `processes` copies of this module (`python -m bench.load CONFIG`), each running
its share of the clients on one asyncio loop with aiohttp keep-alive connections, and merges what
they report. Two modes:

- closed loop (`rate` 0): a client sends its next request as soon as the previous answer arrives,
  so the run finds the most the stack answers, and latency is bound to it (clients ÷ answers/s);
- paced (`rate` > 0): the clients together offer `rate` requests a second, each client on a
  schedule of its own, and latency is counted from when a request was due, not when it went out.
  A client still waiting for its previous answer sends late, and that lateness is part of the
  latency, so a stall cannot hide by holding back the requests that would have seen it.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass

from bench.priority import niceness_session_wide
from bench.seed import user_id
from tests.support.processes import REPO_ROOT


@dataclass(frozen=True)
class LoadSpec:
    base_url: str
    api_key: str
    path: str
    # "single", "bulk" or "workflow" (a single POST starting a run): what one request body carries;
    # "floor": a GET of the path, the web stack's own cost per request with none of ours.
    kind: str
    clients: int
    seconds: float
    users: int
    template: str
    batch: int = 1  # notifications per request (bulk)
    max_requests: int = 0  # per client; 0: until `seconds` have passed
    niceness: int = 10  # the load generator yields the CPU to the stack it measures (docs/performance.md)
    rate: float = 0.0  # requests a second offered by all the clients together; 0: closed loop


def request_body(spec: LoadSpec, rng: random.Random) -> dict:
    # "workflow": `template` names a workflow, whose run the notification starts.
    message = "workflow" if spec.kind == "workflow" else "template"

    def one() -> dict:
        return {"to": user_id(rng.randrange(spec.users)), message: spec.template,
                "data": {"name": "Ada", "order": rng.randrange(10**9)}}

    if spec.kind == "bulk":
        return {"notifications": [one() for _ in range(spec.batch)]}
    return one()


def accepted_in(kind: str, status: int, payload) -> int:
    """Notifications this answer accepted: a 202 for one; the results without an error for bulk;
    for the floor, a 200."""
    if kind == "floor":
        return 1 if status == 200 else 0
    if kind == "bulk":
        if status != 200 or not isinstance(payload, dict):
            return 0
        return sum(1 for result in payload.get("results", []) if isinstance(result, dict) and "error" not in result)
    return 1 if status == 202 else 0


async def _client(session, spec: LoadSpec, seed: int, deadline: float, out: dict) -> None:
    import aiohttp

    rng = random.Random(seed)
    url = spec.base_url + spec.path
    headers = {"Authorization": f"Api-Key {spec.api_key}"}
    # Paced: this client's requests are due every `interval` seconds, from a random phase so the
    # clients' requests spread over the interval instead of arriving together.
    interval = spec.clients / spec.rate if spec.rate else 0.0
    due = time.perf_counter() + rng.random() * interval
    stop = time.perf_counter() + deadline - time.monotonic()  # the deadline on the clock `due` is read on
    sent = 0
    while time.monotonic() < deadline and (not spec.max_requests or sent < spec.max_requests):
        if interval:
            if due >= stop:
                break
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            started, due = due, due + interval
        request = (session.get(url, headers=headers) if spec.kind == "floor"
                   else session.post(url, json=request_body(spec, rng), headers=headers))
        if not interval:
            started = time.perf_counter()
        try:
            async with request as response:
                status = response.status
                payload = await response.json(content_type=None) if spec.kind == "bulk" else await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            out["statuses"][type(exc).__name__] += 1
            continue
        finally:
            sent += 1
        out["latencies_ms"].append(round((time.perf_counter() - started) * 1000, 3))
        out["statuses"][str(status)] += 1
        out["accepted"] += accepted_in(spec.kind, status, payload)


async def _run(spec: LoadSpec, first_seed: int, start_at: float) -> dict:
    import aiohttp

    out = {"latencies_ms": [], "statuses": Counter(), "accepted": 0}
    connector = aiohttp.TCPConnector(limit=spec.clients)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        started = time.time()
        deadline = time.monotonic() + spec.seconds
        await asyncio.gather(*(_client(session, spec, first_seed + n, deadline, out) for n in range(spec.clients)))
        out["started_at"], out["finished_at"] = started, time.time()
    return out


def run_load(spec: LoadSpec, *, processes: int = 2) -> dict:
    """Run `spec.clients` clients split over `processes` processes; merged counts and latencies."""
    processes = max(1, min(processes, spec.clients))
    shares = [spec.clients // processes + (1 if n < spec.clients % processes else 0) for n in range(processes)]
    children = []
    for n, clients in enumerate(shares):
        # Each process offers its clients' share of the rate.
        config = {**spec.__dict__, "clients": clients, "rate": spec.rate * clients / spec.clients, "seed": n * 100_000}
        children.append(subprocess.Popen(["nice", "-n", str(spec.niceness), sys.executable, "-m", "bench.load",
                                          json.dumps(config)], cwd=REPO_ROOT, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, start_new_session=True))
    try:
        _start_together(children)
        reports = [json.loads(child.communicate(timeout=spec.seconds + 180)[0]) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    statuses = Counter()
    for report in reports:
        statuses.update(report["statuses"])
    return {
        "latencies_ms": [value for report in reports for value in report["latencies_ms"]],
        "statuses": dict(statuses),
        "accepted": sum(report["accepted"] for report in reports),
        "started_at": min(report["started_at"] for report in reports),
        "finished_at": max(report["finished_at"] for report in reports),
    }


# How long after the last process is ready the clients start: the start time's trip to each process.
START_MARGIN_SECONDS = 0.05


def _start_together(children: list[subprocess.Popen]) -> None:
    """Start every process's clients at one moment, once each has loaded.

    The rates are counted over the run's whole window, from the first process's start to the last
    one's end. A process that loaded late (at nice 10, on cores still busy with the previous
    scenario's deliveries) lengthened the window without adding requests: a paced run of 8,000
    requests at 400/s took a window of 20.6 s, and counted 387.7/s.
    """
    for child in children:
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError(f"a load process ended before it was ready (exit status {child.wait()})")
    start_at = time.time() + START_MARGIN_SECONDS
    for child in children:
        child.stdin.write(f"{start_at}\n")
        child.stdin.flush()


def main() -> None:
    niceness_session_wide()
    config = json.loads(sys.argv[1])
    seed = config.pop("seed")
    import aiohttp  # noqa: F401  (loaded before the start, not in the measured window)

    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    out = asyncio.run(_run(LoadSpec(**config), seed, start_at))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
