"""End to end: ``python -m domadapt.recipe casia2modma --quick`` in a subprocess, timed.

Measures the wall time and the peak resident memory of the whole run (the child's own
``rusage`` from ``os.wait4``: its maximum RSS, in MB) against a 3-minute budget for the
quick run on a 2-core CPU. The run's ``--cache-dir`` (synthetic stand-in corpora and
feature cache) and ``--out`` are fresh temporary folders, so everything is timed: corpus
generation, front-end extraction, training of all ten methods, reports. ``--warm`` fills the
cache with one untimed run first and times a second run that reuses it.

    python benchmarks/bench_recipe.py [--quick] [--device auto|cpu|cuda] [--warm] [--recipe NAME]

``--quick`` is accepted for symmetry: the benchmarked run is always the recipe's ``--quick``.
Prints ``recipe_quick_wall_s=...`` and ``recipe_quick_peak_rss_mb=...``, then the last line
``recipe_quick_over_3min_budget_lower_is_better ratio=<wall seconds / 180>``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helpers
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from bench_training_step import cpu_model

from domadapt.device import resolve_device

NAME = "recipe_quick_over_3min_budget_lower_is_better"
BUDGET_S = 180.0
REPO = Path(__file__).resolve().parent.parent


def _run_recipe(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``cmd``; return its wall seconds, its peak RSS in MB and its output."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(output[-3000:])
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}")
    return wall, usage.ru_maxrss / 1024, output  # Linux: ru_maxrss in kilobytes


def run(
    quick: bool = True,
    device: str = "auto",
    threads: int | None = None,
    *,
    warm: bool = False,
    recipe: str = "casia2modma",
) -> float:
    """Run the recipe's quick mode; print wall time and peak RSS; return wall / 180 s.

    ``threads``: the run's torch intra-op threads (``OMP_NUM_THREADS``); default 1 on CPU,
    for the reason :func:`bench_training_step.set_threads` gives.
    """
    env = dict(os.environ)
    if threads is None and resolve_device(device).type == "cpu":
        threads = 1
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory(prefix="domadapt-bench-recipe-") as tmp:
        tmp_path = Path(tmp)
        cmd = [
            sys.executable,
            "-m",
            "domadapt.recipe",
            recipe,
            "--quick",
            "--quiet",
            "--device",
            device,
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
        if warm:
            _run_recipe([*cmd, "--out", str(tmp_path / "warm-up")], env)
        wall, peak_mb, output = _run_recipe([*cmd, "--out", str(tmp_path / "out")], env)
    print(
        f"cpu={cpu_model()}, cores={os.cpu_count()}; command: python -m domadapt.recipe {recipe} --quick "
        f"--device {device} --cache-dir <{'warm' if warm else 'empty'} temporary folder>, "
        f"OMP_NUM_THREADS={env.get('OMP_NUM_THREADS', '(unset)')}"
    )
    tail = [line for line in output.splitlines() if line.strip()][-1:]
    print(f"recipe says: {tail[0] if tail else '(no output)'}")
    print(f"recipe_quick_wall_s={wall:.1f}")
    print(f"recipe_quick_peak_rss_mb={peak_mb:.0f}")
    ratio = wall / BUDGET_S
    print(f"{NAME} ratio={ratio:.2f}")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="accepted; the recipe always runs in --quick mode")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (passed to the recipe)")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the run (default: 1 on CPU)")
    parser.add_argument("--warm", action="store_true", help="time a second run that reuses a filled cache")
    parser.add_argument("--recipe", default="casia2modma", help="recipe name (default casia2modma)")
    args = parser.parse_args(argv)
    run(quick=True, device=args.device, threads=args.threads, warm=args.warm, recipe=args.recipe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
