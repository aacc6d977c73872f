"""A run alone and beside two busy processes: how much a loaded machine costs it.

    python benchmarks/bench_contention.py [--quick] [--device cpu] [--settings NAME ...]

The run is ``python -m domadapt.recipe casia2modma --methods joint --folds 2`` (two
full-size units; ``--quick``: the recipe's ``--quick`` sizes) in a subprocess, on a warm
cache (an untimed first run fills it). "Busy" is one normal-priority spinning process per
core up to two (each stops itself after a bound, and is stopped when the run ends): on 2
cores the run then holds half the machine, so its fair slowdown is about 2.

Settings, each with the environment a user has (``OMP_NUM_THREADS`` removed):

  old default  ``--jobs 1 --threads CORES`` and libgomp's own waiting (``GOMP_SPINCOUNT=300000``,
               what it does without ``OMP_WAIT_POLICY``): the units one after another in
               one process, a thread on every core, spinning at each barrier
  jobs 1       ``--jobs 1 --threads CORES`` with domadapt's passive waits
               (``OMP_WAIT_POLICY=PASSIVE``); not with ``--quick``
  new default  no options: one worker process per core, one thread each, passive waits

Prints ``wall_s`` alone and busy per setting, ``contention_slowdown_<setting> ratio=`` for
each, and last ``contention_slowdown ratio=`` (busy / alone) of the new default.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NAME = "contention_slowdown"
ROOT = Path(__file__).resolve().parents[1]
RUN = ["-m", "domadapt.recipe", "casia2modma", "--methods", "joint", "--folds", "2", "--quiet"]
#: libgomp's spin count when no wait policy is set (its documented default): the old behaviour
GOMP_DEFAULT_SPINCOUNT = "300000"
SETTINGS = {
    "old_default": (["--jobs", "1", "--threads", str(os.cpu_count() or 1)], {"GOMP_SPINCOUNT": GOMP_DEFAULT_SPINCOUNT}),
    "jobs1_passive": (["--jobs", "1", "--threads", str(os.cpu_count() or 1)], {"OMP_WAIT_POLICY": "PASSIVE"}),
    "new_default": ([], {}),
}
#: a busy process stops itself after this many seconds, whatever happens to this script
BUSY_BOUND_S = 900
BUSY = f"import time\nend = time.monotonic() + {BUSY_BOUND_S}\nwhile time.monotonic() < end:\n    pass\n"


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def timed_run(args: list[str], env: dict[str, str], out: Path) -> float:
    """Seconds one recipe run takes (its failure is this benchmark's)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *RUN, *args, "--out", str(out)], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def beside_busy(args: list[str], env: dict[str, str], out: Path, busy: int) -> float:
    """``timed_run`` with ``busy`` spinning normal-priority processes beside it."""
    spinners = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(busy)]
    try:
        return timed_run(args, env, out)
    finally:
        for p in spinners:
            p.terminate()
            p.wait()


def run(quick: bool = False, device: str = "cpu", settings: list[str] | None = None) -> float:
    """``settings``: the ones to time (default: all; with ``quick`` the old and new defaults)."""
    extra = ["--device", device, *(["--quick"] if quick else [])]
    busy = min(2, os.cpu_count() or 1)
    names = settings or (["old_default", "new_default"] if quick else list(SETTINGS))
    if "new_default" not in names:
        raise SystemExit(f"--settings {' '.join(names)}: new_default, the one {NAME} reports, must be among them")
    ratios = {}
    with tempfile.TemporaryDirectory() as tmp:
        timed_run(extra, _env({}), Path(tmp) / "warm")  # fills the cache: features, synthetic corpora
        for name in names:
            args, env = SETTINGS[name]
            alone = timed_run([*extra, *args], _env(env), Path(tmp) / f"{name}-alone")
            loaded = beside_busy([*extra, *args], _env(env), Path(tmp) / f"{name}-busy", busy)
            ratios[name] = loaded / alone
            print(f"{name}: wall_s alone={alone:.1f} beside {busy} busy={loaded:.1f}", flush=True)
    for name, ratio in ratios.items():
        print(f"contention_slowdown_{name} ratio={ratio:.3f}")
    print(f"{NAME} ratio={ratios['new_default']:.3f}")
    return ratios["new_default"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the recipe's --quick sizes; old vs new default only")
    parser.add_argument("--device", default="cpu", help="auto | cpu | cuda")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), help="time only these (default: all)")
    a = parser.parse_args()
    run(a.quick, a.device, a.settings)
