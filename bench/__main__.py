"""`python -m bench` (what `make bench` runs): start the stack, run the scenarios, write the reports."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import scenarios
from bench.autovacuum import AutovacuumStandIn
from bench.probes import Monitor
from bench.profiles import Profiler
from bench.report import Targets, write_reports
from bench.stack import REPO_ROOT, SETTINGS_MODULE, Stack

SCENARIOS = ("noop", "single", "bulk", "broadcast", "email", "burst", "workflow")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help=f"comma-separated scenarios to run, of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--smoke", action="store_true",
                        help="a few seconds and a handful of requests per scenario: checks the harness, not the speed")
    parser.add_argument("--run-name", default="bench", help="names the database and vhost notifier_<run-name>")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "var" / "bench", help="where the reports go")
    parser.add_argument("--users", type=int, help="users seeded (default 100000; 50 with --smoke)")
    parser.add_argument("--connection-bound", type=int, default=80,
                        help="most PostgreSQL connections the stack may hold (docs/performance.md)")
    parser.add_argument("--single-clients", default="32,64,256",
                        help="client counts of the single scenario, run in this order (default 32,64,256)")
    parser.add_argument("--email-seconds", type=float, default=60, help="how long the email scenario feeds load")
    parser.add_argument("--single-rate", type=float, default=400,
                        help="single POSTs a second the paced run's 32 clients offer (default 400)")
    parser.add_argument("--burst-posts", type=int, default=20_000, help="single POSTs of the burst scenario")
    parser.add_argument("--load-processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--smtp-latency-ms", type=float, default=5.0, help="the fake SMTP server's time per message")
    parser.add_argument("--smtp-server", choices=("lean", "aiosmtpd"), default="lean",
                        help="the email provider: the bench's lean SMTP server, or the suite's (aiosmtpd)")
    parser.add_argument("--broadcast-audience", default='{"all": true}', help="the audience filter meaning every user (JSON)")
    parser.add_argument("--helper-nice", type=int, default=10,
                        help="niceness of the fake SMTP server and the load generator (0: as the stack)")
    parser.add_argument("--profile", action="store_true",
                        help="record py-spy profiles of web and workers during single/32, email and burst")
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    args.single_clients = [int(n) for n in args.single_clients.split(",") if n.strip()]
    args.users = args.users or (50 if args.smoke else 100_000)
    return args


def _terminate(signum, frame):
    raise KeyboardInterrupt  # the same clean-up as Ctrl-C


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    # Also when started with SIGINT ignored (from a background job, say): Ctrl-C must clean up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    run_dir = args.out / f"run-{stamp}"
    targets = Targets()
    report = {
        "started_at": started_at.isoformat(timespec="seconds"), "smoke": args.smoke, "settings": SETTINGS_MODULE,
        "smtp_server": args.smtp_server,
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "run_dir": str(run_dir), "processes": {}, "scenarios": {name: {"available": False, "reason": "not run"}
                                                                  for name in SCENARIOS},
    }
    stack = Stack(args.run_name, run_dir, smtp_latency=args.smtp_latency_ms / 1000, helper_niceness=args.helper_nice,
                  smtp_server=args.smtp_server)
    monitor = autovacuum = None
    profiler = Profiler(run_dir / "profiles")
    try:
        print(f"preparing database {stack.database} and vhost {stack.vhost}; seeding {args.users} users", flush=True)
        stack.prepare()
        report["machine"]["postgresql_autovacuum"] = stack.postgresql_setting("autovacuum")
        if report["machine"]["postgresql_autovacuum"] != "on":
            print("PostgreSQL's autovacuum is off here: the bench analyses its database before each scenario "
                  "and each run of one, and while they run by autovacuum's rule, as autovacuum would have "
                  "(docs/performance.md)", flush=True)
        seeded = stack.seed(users=args.users)
        stack.analyze()
        stack.start_smtp()
        procfile = stack.start_procfile()
        report["processes"] = {process.name: stack.commands[process.name] for process in procfile}
        print(f"stack up at {stack.base_url}: {', '.join(report['processes'])}", flush=True)
        monitor = Monitor(processes=stack.processes, database=stack.database).start()
        if report["machine"]["postgresql_autovacuum"] == "off":
            autovacuum = AutovacuumStandIn(stack.database).start()
        bench = scenarios.Bench(stack=stack, api_key=seeded["api_key"], template=seeded["template"],
                                users=args.users, smoke=args.smoke, load_processes=args.load_processes,
                                targets=targets, helper_niceness=args.helper_nice,
                                autovacuum_off=report["machine"]["postgresql_autovacuum"] == "off")
        profiled = [p for p in procfile if p.name.startswith(("web", "worker"))]
        run_scenarios(bench, args, report, profiler, profiled, monitor)
    except KeyboardInterrupt:
        print("interrupted: stopping every process the bench started", file=sys.stderr)
        return 130
    finally:
        profiler.stop()
        if monitor:
            monitor.stop()
        if autovacuum:
            autovacuum.stop()
            report["machine"]["tables_analyzed_during_scenarios"] = autovacuum.analyzed
        stack.stop()
    report["memory"] = monitor.memory_report()
    report["database"] = {"name": stack.database, "max_connections_in_use": monitor.max_connections,
                          "connection_bound": args.connection_bound}
    targets.check("database", "most connections in use", monitor.max_connections, "≤", args.connection_bound)
    report["targets"] = targets.lines
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    json_path, md_path = write_reports(report, args.out, stamp)
    print(f"\nreports: {json_path} and {md_path} (also latest.json, latest.md)")
    return 0


def run_scenarios(bench, args, report: dict, profiler: Profiler, profiled: list, monitor: Monitor) -> None:
    chosen = args.only
    results = report["scenarios"]
    # Each scenario starts on the statistics a production server's autovacuum would have kept.
    if "noop" in chosen or "email" in chosen:
        results["noop"] = scenarios.noop_ceiling(bench)
    api_scenarios = [name for name in ("single", "bulk", "broadcast") if name in chosen]
    if api_scenarios:
        bench.broker("pause")  # the API alone; the email scenario measures both together
        if "single" in chosen:
            if args.profile:
                profiler.start("single32", profiled, seconds=15)
            results["single"] = scenarios.single_posts(bench, clients=args.single_clients,
                                                       paced_rate=args.single_rate)
            profiler.stop()
        if "bulk" in chosen:
            bench.settle()
            results["bulk"] = scenarios.bulk_posts(bench)
        if "broadcast" in chosen:
            bench.settle()
            results["broadcast"] = scenarios.broadcast(bench, audience=json.loads(args.broadcast_audience),
                                                       monitor=monitor)
        bench.broker("resume")
    if "email" in chosen:
        bench.settle()
        use_bulk = not bench.unavailable("/api/v1/notifications/bulk")
        if args.profile:
            profiler.start("email", profiled, seconds=40)
        time.sleep(0.5)
        results["email"] = scenarios.email_end_to_end(bench, noop_per_s=results["noop"].get("per_s"),
                                                      use_bulk=use_bulk, monitor=monitor,
                                                      seconds=args.email_seconds)
        profiler.stop()
    if "burst" in chosen:
        bench.settle()
        if args.profile:
            profiler.start("burst", profiled, seconds=60)
        results["burst"] = scenarios.burst(bench, monitor=monitor, total=args.burst_posts)
        profiler.stop()
    if "workflow" in chosen:
        bench.settle()
        results["workflow"] = scenarios.workflow_runs(bench)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
