"""`--profile`: py-spy samples the web and worker process trees while a scenario runs.

Only threads holding the GIL are sampled (`--gil`): what the process spends its CPU on, not where
its threads wait. The output is py-spy's "raw" format (collapsed stacks, one line per stack with its
sample count), which `python -m bench.profiles FILE` summarises by package and by function.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.stack import BIN
from tests.support.processes import ServiceProcess


class Profiler:
    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._running: list[subprocess.Popen] = []

    def start(self, label: str, processes: list[ServiceProcess], seconds: float) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for process in processes:
            output = self.out_dir / f"{label}-{process.name}.txt"
            self._running.append(subprocess.Popen(
                [str(BIN / "py-spy"), "record", "--pid", str(process.process.pid), "--subprocesses", "--nonblocking", "--gil",
                 "--format", "raw", "--duration", str(int(seconds)), "--rate", "50", "--output", str(output)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def stop(self) -> None:
        for recorder in self._running:
            try:
                recorder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                recorder.kill()
        self._running.clear()


def _package(frame: str) -> str:
    """`func (django/db/models/query.py:123)` → `django`; the standard library's files have no folder."""
    location = frame.rpartition(" (")[2]
    return location.split("/")[0] if "/" in location else "(stdlib) " + location.split(":")[0]


def summary(path: Path, top: int = 20) -> str:
    """Samples by the package of the running function (self), by function (self), and by function
    anywhere on the stack (inclusive), as percentages of all samples."""
    packages, own, inclusive, total = Counter(), Counter(), Counter(), 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [frame for frame in stack.split(";") if not frame.startswith("process ")]
        if not frames:
            continue
        samples = int(count)
        total += samples
        packages[_package(frames[-1])] += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    # Frames on (nearly) every stack, the process's main loop and the like, say nothing.
    inclusive = Counter({frame: n for frame, n in inclusive.items() if n < 0.8 * total})
    lines = [f"{path.name}: {total} samples"]
    for title, counter in (("self, by package", packages), ("self, by function", own), ("inclusive", inclusive)):
        lines += [f"-- {title}"] + [f"{100 * n / max(total, 1):5.1f}%  {name}" for name, n in counter.most_common(top)]
    return "\n".join(lines)


if __name__ == "__main__":
    print("\n\n".join(summary(Path(name)) for name in sys.argv[1:]))
