"""Figures, targets and the two report files (JSON for machines, Markdown for people)."""

from __future__ import annotations

import json
import math
import operator
from pathlib import Path

_OPERATORS = {"≥": operator.ge, "≤": operator.le, "=": operator.eq}


def percentiles(values: list[float], *wanted: int) -> dict[str, float | None]:
    """Nearest-rank percentiles, e.g. {"p50": …, "p99": …}; None when there is nothing to rank."""
    ordered = sorted(values)
    result = {}
    for p in wanted:
        result[f"p{p}"] = round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 2) if ordered else None
    return result


def rate(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


class Targets:
    """Every target the bench checks, in the order checked, each PASS, MISS or N/A (not measured)."""

    def __init__(self) -> None:
        self.lines: list[dict] = []

    def check(self, scenario: str, figure: str, value: float | None, op: str, threshold: float, unit: str = "") -> dict:
        if value is None:
            result = "N/A"
        else:
            result = "PASS" if _OPERATORS[op](value, threshold) else "MISS"
        line = {"scenario": scenario, "figure": figure, "value": value, "target": f"{op} {threshold:g}{unit}",
                "result": result}
        self.lines.append(line)
        print(f"  {result:4}  {scenario}: {figure} = {_show(value)}{unit} (target {op} {threshold:g}{unit})", flush=True)
        return line

    @staticmethod
    def note(scenario: str, figure: str, value: float, unit: str = "") -> None:
        """A figure without a target of its own (printed, not listed among the targets)."""
        print(f"  ----  {scenario}: {figure} = {_show(value)}{unit}", flush=True)

    def not_available(self, scenario: str, reason: str) -> None:
        self.lines.append({"scenario": scenario, "figure": "available", "value": None, "target": "-",
                           "result": "N/A", "reason": reason})
        print(f"  N/A   {scenario}: {reason}", flush=True)


def _show(value) -> str:
    return "—" if value is None else f"{value:g}" if isinstance(value, (int, float)) else str(value)


def write_reports(report: dict, out_dir: Path, stamp: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    text_json = json.dumps(report, indent=2, sort_keys=False)
    text_md = markdown(report)
    for name in (stamp, "latest"):
        (out_dir / f"{name}.json").write_text(text_json)
        (out_dir / f"{name}.md").write_text(text_md)
    return out_dir / f"{stamp}.json", out_dir / f"{stamp}.md"


def _stand_in(machine: dict) -> str:
    analyzed = machine.get("tables_analyzed_during_scenarios")
    if analyzed is None:
        return ""
    return f" (the bench analysed {analyzed} tables while scenarios ran, by autovacuum's rule)"


def markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [
        f"# make bench, {report['started_at']}",
        "",
        f"{machine['cpus']} CPUs, load average {machine['load_average_at_start']} at the start, PostgreSQL's "
        f"autovacuum {machine.get('postgresql_autovacuum', 'not read')}"
        f"{_stand_in(machine)}"
        f"{' (smoke run: figures mean nothing)' if report['smoke'] else ''}. Settings `{report['settings']}`; "
        f"processes: {', '.join(f'`{name}`' for name in report['processes'])}; "
        f"SMTP server {report.get('smtp_server', 'aiosmtpd')}.",
        "",
        "| scenario | figure | value | target | result |",
        "| --- | --- | --- | --- | --- |",
    ]
    for line in report["targets"]:
        value = line.get("reason") or _show(line["value"])
        lines.append(f"| {line['scenario']} | {line['figure']} | {value} | {line['target']} | {line['result']} |")
    lines += ["", "## API load", "", "CPU ms per accepted notification, by process tree (`load generator`: the "
              "bench's own clients, at a lower priority).", "",
              "| scenario | clients | requests | accepted/s | p50 ms | p95 ms | p99 ms | errors | CPU ms per accepted |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    floor = report["scenarios"].get("single", {}).get("floor")
    for name, runs in (("floor: GET /health/live", [floor] if floor else []),
                       ("single", report["scenarios"]["single"].get("runs", [])),
                       *((f"single, {paced['offered_per_s']:g}/s offered", [paced])
                         for paced in [report["scenarios"]["single"].get("paced")] if paced),
                       ("bulk", report["scenarios"]["bulk"].get("runs", []))):
        for run in runs:
            latency = run["latency_ms"]
            cpu = ", ".join(f"{process} {ms}" for process, ms in run.get("cpu_ms_per_accepted", {}).items())
            lines.append(f"| {name} | {run['clients']} | {run['requests']} | {run['accepted_per_s']} | {latency['p50']} "
                         f"| {latency['p95']} | {latency['p99']} | {run['errors'] or 0} | {cpu} |")
    email = report["scenarios"]["email"]
    if email.get("available"):
        latency = email["accepted_to_provider_ms"]
        lines += ["", "## End to end (email)", "",
                  f"- accepted {email['accepted']} at {email['accepted_per_s']}/s; delivered {email['delivered']} "
                  f"at {email['delivered_per_s']}/s (best 60 s: {email['delivered_per_s_best_60s']}/s), "
                  f"{email['ratio_to_noop']} of the no-op ceiling ({report['scenarios']['noop'].get('per_s')}/s)",
                  f"- per channel (sent_at): {email['delivered_per_channel']}",
                  f"- accepted → provider: p50 {latency['p50']} ms, p99 {latency['p99']} ms",
                  f"- per delivery: {email['commits_per_delivery']} commits, {email['queries_per_delivery']} queries, "
                  f"CPU ms by process: {email['cpu_ms_per_delivery']}",
                  f"- the machine's cores busy (every process on it): {email.get('machine_cpu_busy_percent')}%"]
    burst = report["scenarios"].get("burst", {})
    if burst.get("available"):
        lines += ["", "## Burst of single POSTs (workers consuming)", "",
                  f"- accepted {burst['accepted']} at {burst['accepted_per_s']}/s (p99 {burst['latency_ms']['p99']} ms, "
                  f"{burst['errors']} errors); delivered {burst['delivered_per_s_while_accepting']}/s while accepting",
                  f"- backlog (accepted, not yet delivered): {burst['backlog_at_last_post']} at the last POST, "
                  f"{burst['backlog_after_settle']} {burst['settle_seconds']:g} s after it; "
                  f"drained {burst['drained_after_s']} s after the last POST",
                  f"- CPU ms per delivery by process: {burst['cpu_ms_per_delivery']}; the machine's cores "
                  f"{burst['machine_cpu_busy_percent']}% busy (every process on it)"]
    lines += ["", "## Processes", "", "| process | processes seen | main peak MB | largest peak MB | sum of peaks MB |",
              "| --- | --- | --- | --- | --- |"]
    for name, memory in report["memory"].items():
        lines.append(f"| {name} | {memory['processes_seen']} | {memory['main_peak_mb']} | {memory['largest_peak_mb']} "
                     f"| {memory['sum_of_peaks_mb']} |")
    database = report["database"]
    lines += ["", f"PostgreSQL: at most {database['max_connections_in_use']} connections to `{database['name']}` "
              f"(bound {database['connection_bound']}).", ""]
    return "\n".join(lines)
