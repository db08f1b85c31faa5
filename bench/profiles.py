"""`--profile`: py-spy samples the web and worker process trees while a scenario runs.

The output is py-spy's "raw" format (collapsed stacks, one line per stack with its sample count),
which `python -m bench.profiles FILE` summarises as the functions holding the most samples.
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
                [str(BIN / "py-spy"), "record", "--pid", str(process.process.pid), "--subprocesses", "--nonblocking",
                 "--format", "raw", "--duration", str(int(seconds)), "--rate", "50", "--output", str(output)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def stop(self) -> None:
        for recorder in self._running:
            try:
                recorder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                recorder.kill()
        self._running.clear()


def summary(path: Path, top: int = 25) -> str:
    """Functions by samples on the stack (inclusive) and at its top (self), as percentages."""
    inclusive, own, total = Counter(), Counter(), 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = [frame.split(" (")[0] + " (" + frame.split("/")[-1] if "(" in frame else frame
                  for frame in stack.split(";")]
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    lines = [f"{path.name}: {total} samples", "self%  function"]
    lines += [f"{100 * n / total:5.1f}  {frame}" for frame, n in own.most_common(top)]
    lines += ["incl%  function"]
    lines += [f"{100 * n / total:5.1f}  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(summary(Path(name)), end="\n\n")
