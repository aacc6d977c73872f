"""How busy the machine's cores are while a command runs: is a run compute-bound or waiting?

    python benchmarks/busy_cores.py [--every 0.5] -- python -m domadapt.recipe casia2modma --out DIR

Runs the command, reads the machine's CPU counters (``/proc/stat``, Linux) every ``--every``
seconds, and prints each line of the command's output (stdout and stderr) prefixed with the
seconds since the start and the cores busy on average since the line before, e.g.
``[  47.0 s | 1.98]``. At the end: the wall time, the cores busy on average and the idle
core-seconds, which bound what any rescheduling of the same work could save (idle
core-seconds / cores). The counters are the whole machine's, so measure on a quiet one.
Exits with the command's exit status.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

STAT = Path("/proc/stat")


def read_counters(text: str) -> tuple[int, int]:
    """(all jiffies, idle jiffies) of the machine from ``/proc/stat``'s text: its first line
    sums every core (user nice system idle iowait irq softirq steal ...; idle = idle + iowait)."""
    fields = [int(v) for v in text.splitlines()[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]


def busy_cores(before: tuple[int, int], after: tuple[int, int], cores: int) -> float:
    """Cores busy on average between two readings of :func:`read_counters`."""
    total, idle = after[0] - before[0], after[1] - before[1]
    return cores * (1.0 - idle / total) if total > 0 else 0.0


class Sampler(threading.Thread):
    """Reads the counters every ``every`` seconds; ``since(mark)`` is the busy cores since a mark."""

    def __init__(self, every: float, cores: int) -> None:
        super().__init__(daemon=True)
        self.every, self.cores = every, cores
        self.samples = [(time.monotonic(), read_counters(STAT.read_text()))]
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            self.samples.append((time.monotonic(), read_counters(STAT.read_text())))

    def since(self, index: int) -> float:
        """Busy cores from reading ``index`` to the last (at least the last interval)."""
        index = max(0, min(index, len(self.samples) - 2))
        return busy_cores(self.samples[index][1], self.samples[-1][1], self.cores)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=float, default=0.5, help="seconds between readings (default 0.5)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    if not STAT.exists():
        parser.error(f"{STAT} not found: this script reads Linux's CPU counters")
    cores = os.cpu_count() or 1
    sampler = Sampler(args.every, cores)
    start = sampler.samples[0][0]
    sampler.start()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    mark = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        print(f"[{time.monotonic() - start:7.1f} s | {sampler.since(mark):.2f}] {line}", end="", flush=True)
        mark = len(sampler.samples) - 1
    status = proc.wait()
    sampler.stop.set()
    sampler.join()
    sampler.samples.append((time.monotonic(), read_counters(STAT.read_text())))
    wall = sampler.samples[-1][0] - start
    busy = sampler.since(0)
    print(f"wall {wall:.1f} s, {busy:.2f} of {cores} cores busy on average, "
          f"{(cores - busy) * wall:.1f} idle core-seconds (exit status {status})")
    return status


if __name__ == "__main__":
    sys.exit(main())
