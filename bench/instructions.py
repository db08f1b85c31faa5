"""`python -m bench.instructions` (`make bench-instructions`): what the web process's own code costs
per single POST and per bulk notification, in instructions counted by valgrind's callgrind.

`make bench`'s CPU milliseconds move with whatever else the two cores run: the same code measured
4.1 to 9.8 ms of web CPU a single POST on one day. An instruction count does not move with the
load (callgrind counts the instructions the process executes, not the time they take), so it
compares two commits on a busy machine where milliseconds cannot; read it beside `make bench`,
not instead of it.

What is counted: the web's ASGI application in one process, called as uvicorn calls it (the
request body limit, Django's handler, the middleware, the view, the background publisher's thread
publishing to RabbitMQ), 8 requests at a time, on a database and vhost of its own (the bench's,
`notifier_<run-name>`) with production settings. Counting starts after a warm-up and ends after the
measured requests' deliveries are published. What is not: uvicorn's HTTP parsing and its socket
(part of `make bench`'s CPU figure), PostgreSQL and RabbitMQ (processes of their own). Under
valgrind the process runs ~50x slower, one thread at a time; a run takes about two minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench.seed import user_id
from bench.stack import REPO_ROOT, Stack

CONCURRENT_REQUESTS = 8
WARM_UP_REQUESTS = 50
USERS = 200
# What each measurement sends: requests, and notifications per request (1: the single POST).
MEASUREMENTS = {"single": (200, 1), "bulk": (3, 1000)}
SMOKE_MEASUREMENTS = {"single": (5, 1), "bulk": (1, 10)}  # checks the harness, not the cost
# `--cpu`: a CPU clock ticks in 10 ms steps and the load moves it, so many more requests.
CPU_MEASUREMENTS = {"single": (3000, 1), "bulk": (10, 1000)}
# valgrind runs the process some 50 times slower, wall-clock waits included: three bulk requests at
# once each hold a connection for ~30 s, and the pool opening the ones they lack (its own Python,
# slowed as much, behind their threads) outlasted its 10 s wait now and then, a 503 that stopped
# the count. The wait is the only setting changed: what is counted is the same.
UNDER_VALGRIND = {"NOTIFIER_DB_POOL_TIMEOUT_SECONDS": "300"}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-name", default="instructions", help="names the database and vhost notifier_<run-name>")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "var" / "bench", help="where instructions.json goes")
    parser.add_argument("--smoke", action="store_true", help="a handful of requests: checks the harness, not the cost")
    parser.add_argument("--cpu", action="store_true",
                        help="the process's CPU time (user + system) per notification instead, without valgrind")
    parser.add_argument("--drive", choices=sorted(MEASUREMENTS), help=argparse.SUPPRESS)  # the process under callgrind
    parser.add_argument("--api-key", help=argparse.SUPPRESS)
    parser.add_argument("--template", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    measurements = SMOKE_MEASUREMENTS if args.smoke else CPU_MEASUREMENTS if args.cpu else MEASUREMENTS
    if args.drive:
        _drive(*measurements[args.drive], api_key=args.api_key, template=args.template, cpu=args.cpu)
        return 0
    if args.cpu:
        return _cpu_main(args, measurements)
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        print("valgrind (with callgrind_control) is needed: apt-get install valgrind", file=sys.stderr)
        return 2
    stack = Stack(args.run_name, args.out / "instructions-run")
    print(f"preparing database {stack.database} and vhost {stack.vhost}", flush=True)
    stack.prepare()
    seeded = stack.seed(users=USERS)
    results = {}
    for name, (requests, batch) in measurements.items():
        total = _counted(stack, name, api_key=seeded["api_key"], template=seeded["template"], smoke=args.smoke)
        per = total / (requests * batch)
        results[name] = {"instructions": total, "requests": requests, "notifications_per_request": batch,
                         "instructions_per_notification": round(per)}
        print(f"{name}: {per / 1e6:.2f} million instructions per notification "
              f"({requests} requests of {batch})", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "instructions.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _counted(stack: Stack, name: str, *, api_key: str, template: str, smoke: bool) -> int:
    """The instructions callgrind counted while the driver's measured requests ran."""
    out = stack.run_dir / f"callgrind-{name}.out"
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         sys.executable, "-m", "bench.instructions", "--drive", name, "--api-key", api_key, "--template", template,
         *(["--smoke"] if smoke else [])],
        cwd=REPO_ROOT, env={**stack.env, **UNDER_VALGRIND}, check=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, timeout=1800,
    )
    totals = re.search(r"^totals: (\d+)$", out.read_text(), re.MULTILINE)
    if not totals:
        raise RuntimeError(f"callgrind wrote no totals to {out}")
    return int(totals.group(1))


def _cpu_main(args, measurements: dict) -> int:
    """`--cpu`: the same requests, not under valgrind, timed by the process's CPU clock. Instructions
    leave out what the kernel does for the process (a round trip's send, its wait and wake-up):
    this counts it, and moves with the machine's load as `make bench`'s CPU figure does."""
    stack = Stack(args.run_name, args.out / "instructions-run")
    print(f"preparing database {stack.database} and vhost {stack.vhost}", flush=True)
    stack.prepare()
    seeded = stack.seed(users=USERS)
    for name, (requests, batch) in measurements.items():
        result = subprocess.run(
            [sys.executable, "-m", "bench.instructions", "--drive", name, "--cpu", "--api-key", seeded["api_key"],
             "--template", seeded["template"], *(["--smoke"] if args.smoke else [])],
            cwd=REPO_ROOT, env=stack.env, check=True, capture_output=True, text=True, timeout=1800,
        )
        seconds = float(result.stdout.split()[-1])
        print(f"{name}: {seconds / (requests * batch) * 1000:.3f} ms of CPU per notification "
              f"({requests} requests of {batch})", flush=True)
    return 0


def _drive(requests: int, batch: int, *, api_key: str, template: str, cpu: bool = False) -> None:
    """In the process under callgrind: warm up, count the measured requests, stop counting (with
    `cpu`, not under callgrind: print the CPU seconds they took instead)."""
    from notifier.asgi import application
    from tests.support.asgi import asgi_request

    path = "/api/v1/notifications" + ("/bulk" if batch > 1 else "")
    headers = [(b"content-type", b"application/json"), (b"authorization", f"Api-Key {api_key}".encode())]
    expected = 200 if batch > 1 else 202

    def body(number: int) -> bytes:
        items = [{"to": user_id((number * batch + n) % USERS), "template": template,
                  "data": {"name": "Ada", "order": number * batch + n}} for n in range(batch)]
        return json.dumps({"notifications": items} if batch > 1 else items[0]).encode()

    async def send(numbers: range) -> None:
        slots = asyncio.Semaphore(CONCURRENT_REQUESTS)

        async def one(number: int) -> None:
            async with slots:
                status = await asgi_request(application, method="POST", path=path, headers=headers, body=body(number))
            if status != expected:
                raise RuntimeError(f"POST {path} answered {status}")

        await asyncio.gather(*(one(number) for number in numbers))

    async def measured() -> None:
        await send(range(WARM_UP_REQUESTS if batch == 1 else 1))
        await asyncio.sleep(1)  # the warm-up's publishing done
        started = os.times()
        if not cpu:
            _callgrind("on")
        await send(range(1_000_000, 1_000_000 + requests))
        await asyncio.sleep(1)  # the background publisher publishes and marks what they committed
        if not cpu:
            _callgrind("off")
        ended = os.times()
        if cpu:  # the sleep costs no CPU
            print(ended.user - started.user + ended.system - started.system, flush=True)

    asyncio.run(measured())
    os._exit(0)  # no exit handlers: the publisher's drain at exit is not part of the count


def _callgrind(state: str) -> None:
    subprocess.run(["callgrind_control", "--instr=" + state, str(os.getpid())], check=True, capture_output=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
