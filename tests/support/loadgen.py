"""A load generator for the HTTP API, run in a process of its own so its CPU is not the server's.

    python -m tests.support.loadgen --base-url http://127.0.0.1:8000 --api-key KEY \
        --scenario notify --clients 32 --duration 20 --warmup 3 --setup

Each client is a keep-alive connection sending one request after another. `--setup` first creates
the users and the email template the scenarios use (through the API). The summary is one JSON
object on stdout: request count, rate, statuses, latency percentiles, the created notification
ids (notify) and the first few error bodies.

Scenarios: `notify` (POST /api/v1/notifications, one email each), `get-user` (GET
/api/v1/users/{id}), `live` (GET /health/live: the server's floor, no database).
"""

import argparse
import asyncio
import json
import statistics
import sys
import time

import httpx

TEMPLATE_KEY = "loadgen"
TEMPLATE = {"channels": {"email": {"subject": "Load {{ n }}", "text": "Hello {{ n }}"}}}


def _user(index: int, users: int) -> str:
    return f"loadgen-{index % users}"


def _request(scenario: str, index: int, users: int) -> tuple[str, str, dict | None]:
    if scenario == "notify":
        body = {"to": _user(index, users), "template": TEMPLATE_KEY, "data": {"n": index}}
        return "POST", "/api/v1/notifications", body
    if scenario == "get-user":
        return "GET", f"/api/v1/users/{_user(index, users)}", None
    if scenario == "live":
        return "GET", "/health/live", None
    raise ValueError(scenario)


async def _setup(client: httpx.AsyncClient, users: int) -> None:
    response = await client.put(f"/api/v1/templates/{TEMPLATE_KEY}", json=TEMPLATE)
    response.raise_for_status()
    for index in range(users):
        response = await client.put(f"/api/v1/users/{_user(index, users)}", json={"email": f"{_user(index, users)}@example.com"})
        response.raise_for_status()


async def run(args) -> dict:
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    headers = {"Authorization": f"Api-Key {args.api_key}"}
    async with httpx.AsyncClient(base_url=args.base_url, headers=headers, limits=limits, timeout=args.timeout) as client:
        if args.setup:
            await _setup(client, args.users)
        counter = iter(range(sys.maxsize))
        results: list[tuple[float, float, int]] = []  # (finished at, latency, status)
        ids: list[str] = []
        errors: list[str] = []
        started = time.monotonic()
        stop_at = started + args.warmup + args.duration if args.duration else None

        async def one_client() -> None:
            while True:
                index = next(counter)
                if args.requests and index >= args.requests:
                    return
                if stop_at and time.monotonic() >= stop_at:
                    return
                method, path, body = _request(args.scenario, index, args.users)
                began = time.monotonic()
                try:
                    response = await client.request(method, path, json=body)
                    status, text = response.status_code, response.text
                except httpx.HTTPError as exc:
                    status, text = 0, f"{type(exc).__name__}: {exc!r} (cause: {exc.__cause__!r})"
                finished = time.monotonic()
                results.append((finished, finished - began, status))
                if status == 202:
                    ids.append(response.json()["id"])
                elif status >= 400 or status == 0:
                    if len(errors) < 10:
                        errors.append(f"{status} {text[:300]}")

        await asyncio.gather(*(one_client() for _ in range(args.clients)))
        ended = time.monotonic()

    measured = [r for r in results if r[0] - started >= args.warmup] if args.duration else results
    window = (ended - started - args.warmup) if args.duration else (ended - started)
    latencies = sorted(latency for _, latency, _ in measured)
    statuses: dict[str, int] = {}
    for _, _, status in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1

    def percentile(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1) if latencies else 0.0

    return {
        "scenario": args.scenario,
        "clients": args.clients,
        "requests": len(results),
        "measured_requests": len(measured),
        "seconds": round(window, 2),
        "rate_per_s": round(len(measured) / window, 1) if window > 0 else 0.0,
        "statuses": statuses,
        "latency_ms": {"p50": percentile(0.50), "p95": percentile(0.95), "p99": percentile(0.99),
                       "max": percentile(1.0), "mean": round(1000 * statistics.fmean(latencies), 1) if latencies else 0.0},
        "ids": ids if args.ids else [],
        "errors": errors,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--scenario", choices=["notify", "get-user", "live"], default="notify")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=0, help="stop after this many requests in all")
    parser.add_argument("--duration", type=float, default=0, help="or stop after this many seconds (after the warm-up)")
    parser.add_argument("--warmup", type=float, default=0, help="seconds not counted in rate and latency")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--setup", action="store_true", help="create the template and users first")
    parser.add_argument("--ids", action="store_true", help="list the created notification ids")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args(argv)
    if not (args.requests or args.duration):
        parser.error("give --requests or --duration")
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
