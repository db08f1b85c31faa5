"""`make bench` cannot rot: its smoke mode runs the whole harness (fresh database and vhost, the
Procfile's processes, the load generator, every probe) in seconds, and Ctrl-C leaves nothing behind."""

import json
import os
import signal
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.fakes.smtp import FakeSmtpServer
from tests.support.processes import REPO_ROOT, wait_until

pytestmark = pytest.mark.e2e

RUN_NAME = f"bench_smoke_{os.environ.get('NOTIFIER_TEST_RUN') or 'test'}"
SCENARIO_FIELDS = {
    "noop": {"available", "tasks", "seconds", "per_s", "workers", "complete"},
    "single": {"available", "runs"},
    "email": {"available", "accepted", "accepted_per_s", "delivered", "delivered_per_s", "delivered_per_s_best_60s",
              "delivered_per_channel", "accepted_to_provider_ms", "commits_per_delivery", "queries_per_delivery",
              "ratio_to_noop", "cpu_ms_per_delivery", "machine_cpu_busy_percent"},
    "burst": {"available", "accepted", "accepted_per_s", "errors", "delivered", "delivered_per_s_while_accepting",
              "backlog_at_last_post", "backlog_after_settle", "drained_after_s", "cpu_ms_per_delivery",
              "machine_cpu_busy_percent"},
}
RUN_FIELDS = {"clients", "requests", "accepted", "accepted_per_s", "latency_ms", "errors", "errors_by_status"}


def bench_command(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "bench", "--run-name", RUN_NAME, "--out", str(out), *args]


def bench_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


@pytest.mark.timeout(400)
def test_the_instruction_count_runs_and_counts_the_web_process(tmp_path):
    """`make bench-instructions` cannot rot either: a handful of requests under callgrind."""
    result = subprocess.run([sys.executable, "-m", "bench.instructions", "--smoke", "--run-name", f"{RUN_NAME}_instr",
                             "--out", str(tmp_path)], cwd=REPO_ROOT, env=bench_env(), capture_output=True, text=True,
                            timeout=360)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    counted = json.loads((tmp_path / "instructions.json").read_text())
    assert set(counted) == {"single", "bulk"}
    # A request through Django, DRF and the ORM is millions of instructions; far fewer would mean
    # the count missed the requests (callgrind toggled at the wrong time).
    assert all(measurement["instructions_per_notification"] > 100_000 for measurement in counted.values()), counted


@pytest.mark.timeout(400)  # the smoke run of make bench, up to 300 s
def test_the_smoke_run_writes_every_figure_as_json_and_markdown(tmp_path):
    result = subprocess.run(bench_command(tmp_path, "--smoke"), cwd=REPO_ROOT, env=bench_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    report = json.loads((tmp_path / "latest.json").read_text())
    assert (tmp_path / "latest.md").read_text().startswith("# make bench")
    assert report["smoke"] is True and report["settings"] == "notifier.settings.bench"
    assert {"web", "worker", "beat"} <= set(report["processes"])
    for scenario, fields in SCENARIO_FIELDS.items():
        assert fields <= set(report["scenarios"][scenario]), scenario
    single = report["scenarios"]["single"]
    assert single["paced"]["offered_per_s"] == 20  # the smoke run's paced rate
    for run in [single["floor"], *single["runs"], single["paced"]]:
        assert RUN_FIELDS <= set(run)
        assert {"p50", "p95", "p99"} == set(run["latency_ms"])
        assert run["accepted"] > 0 and run["errors"] == 0, run
    for scenario in ("bulk", "broadcast"):  # measured where the endpoint exists, reported as missing where not
        section = report["scenarios"][scenario]
        assert section["available"] or section["reason"].startswith("not available"), section

    email = report["scenarios"]["email"]
    assert email["delivered"] == email["accepted"] > 0, email
    assert email["delivered_per_channel"]["email"]["sent"] == email["delivered"]
    assert email["accepted_to_provider_ms"]["p50"] > 0
    # Statements and commits are counted (how many a delivery costs depends on how the feed and
    # the worker batch them: a bulk request and a 50-email task share theirs).
    assert email["commits_per_delivery"] > 0 and email["queries_per_delivery"] > 0, email
    assert email["cpu_ms_per_delivery"]["worker"] > 0 and email["cpu_ms_per_delivery"]["postgres"] > 0
    assert 0 < email["machine_cpu_busy_percent"] <= 100
    burst = report["scenarios"]["burst"]
    assert burst["accepted"] > 0 and burst["errors"] == 0, burst
    assert burst["backlog_after_settle"] == burst["accepted"] - burst["delivered"] == 0, burst
    assert "burst: backlog 10 s after the last POST" in result.stdout
    assert report["scenarios"]["noop"]["per_s"] > 0 and report["scenarios"]["noop"]["complete"]
    for name in ("web", "worker", "beat", "smtp"):
        assert report["memory"][name]["largest_peak_mb"] > 0, name
    assert report["database"]["max_connections_in_use"] > 0
    assert all(line["result"] in {"PASS", "MISS", "N/A"} and "target" in line for line in report["targets"])
    assert "email: commits per delivery" in result.stdout and "email: worker CPU per delivery" in result.stdout
    assert "| floor: GET /health/live | 2 |" in (tmp_path / "latest.md").read_text()
    assert "| single, 20/s offered | 2 |" in (tmp_path / "latest.md").read_text()
    assert "single/2 at 20/s: accept latency p99" in result.stdout


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, stack = set(), [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.timeout(300)  # the bench starts its stack (up to 180 s), then stops it
def test_ctrl_c_stops_every_process_the_bench_started(tmp_path):
    log = tmp_path / "bench.log"
    with log.open("wb") as out:
        # 20 s of load from one client: still running when the signal comes.
        bench = subprocess.Popen(bench_command(tmp_path, "--only", "single", "--single-clients", "1", "--users", "50"),
                                 cwd=REPO_ROOT, env=bench_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "single POST" in log.read_text() or bench.poll() is not None, timeout=180,
                   message="the bench's load to start")
        started = _descendants(bench.pid)
        assert len(started) >= 4, log.read_text()  # smtp, web, worker (+ its pool), beat
        bench.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground process
        assert bench.wait(timeout=90) == 130, log.read_text()[-3000:]
    finally:
        if bench.poll() is None:
            bench.kill()
    wait_until(lambda: not any(_alive(pid) for pid in started), timeout=10,
               message=f"the bench's processes to exit\n{log.read_text()[-3000:]}")


def test_the_fake_smtp_server_can_take_as_long_as_an_esp_per_message():
    with FakeSmtpServer(latency=0.2) as server, smtplib.SMTP(server.host, server.port, timeout=10) as client:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "hi"
        message.set_content("hello")
        before = time.time()
        client.send_message(message)
        elapsed = time.time() - before

        [received] = server.take_received()
        assert elapsed >= 0.2
        assert before <= received.received_at <= time.time()
        assert server.take_received() == [] and server.attempts == 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("concurrency", [1, 3])
def test_the_smtp_conversation_bench_sends_every_email_one_or_several_at_once(concurrency):
    """`python -m bench.smtp_client`, quoted in docs/performance.md, runs in both of its modes: its
    concurrent mode had stopped working when the send threads changed their interface."""
    result = subprocess.run([sys.executable, "-m", "bench.smtp_client", "--emails", "30", "--latency-ms", "1",
                             "--concurrency", str(concurrency)], cwd=REPO_ROOT, env=bench_env(), capture_output=True,
                            text=True, timeout=100)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"concurrency={concurrency}: client CPU" in result.stdout and "(30 emails)" in result.stdout, result.stdout
