"""Two checkouts, the same recipe command, run in turns: is B's code faster than A's?

    python benchmarks/ab_runs.py CHECKOUT_A CHECKOUT_B [--repeats 4] [--args "casia2modma ..."]

A whole default run takes 8 to 10 minutes, and a shared host's own speed moves by a tenth or
more within an hour (benchmarks/RESULTS.md), so one run of each commit measures the hour as
much as the code. Here the two checkouts run the same smaller command A, B, B, A, A, B, ...
(an ABBA order, so a steady drift falls on both alike), each from inside its own checkout
(``python -m`` puts the working directory first on ``sys.path``, ahead of ``PYTHONPATH``)
with this interpreter, one shared feature cache filled by an untimed run of each first, and
a fresh ``--out`` per run (both removed at the end unless ``--keep``). Prints every run's
wall time, then per pair B / A and their geometric mean with a t interval (95 %) over the
pairs' log ratios; the last line is ``ab_wall_b_over_a_lower_is_better ratio=<geometric
mean>``. An even ``--repeats`` balances a steady drift; the same commit against itself
(benchmarks/RESULTS.md) shows what the tool resolves.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats

NAME = "ab_wall_b_over_a_lower_is_better"
DEFAULT_ARGS = "casia2modma --methods target_only,joint,align:mmd --folds 2"


def timed_run(checkout: Path, args: list[str], cache: str, out: Path) -> float:
    """Seconds of ``python -m domadapt.recipe ARGS --out OUT`` started inside ``checkout``."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "DOMADAPT_CACHE": cache}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "domadapt.recipe", *args, "--out", str(out)], cwd=checkout,
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"ab_runs: {checkout}: the run failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="checkout A (the reference)")
    parser.add_argument("b", type=Path, help="checkout B")
    parser.add_argument("--repeats", type=int, default=4, help="pairs of timed runs (default 4)")
    parser.add_argument("--args", default=DEFAULT_ARGS, help=f"the recipe command's arguments (default {DEFAULT_ARGS!r})")
    parser.add_argument("--keep", action="store_true", help="keep the runs' output folders and the cache")
    opts = parser.parse_args(argv)
    if opts.repeats < 1:
        raise SystemExit(f"ab_runs: --repeats {opts.repeats}: expected at least 1 pair")
    checkouts = {"A": opts.a.resolve(), "B": opts.b.resolve()}
    for name, path in checkouts.items():
        if not (path / "domadapt" / "recipe.py").is_file():
            raise SystemExit(f"ab_runs: checkout {name} {path}: expected a domadapt checkout (domadapt/recipe.py)")
    args = shlex.split(opts.args)
    cache, outs = tempfile.mkdtemp(prefix="domadapt-ab-cache-"), Path(tempfile.mkdtemp(prefix="domadapt-ab-out-"))
    for name, path in checkouts.items():  # untimed: fills the shared cache, warms the page cache
        timed_run(path, args, cache, outs / f"warm-{name}")
    walls: dict[str, list[float]] = {"A": [], "B": []}
    for i in range(opts.repeats):
        for name in ("AB" if i % 2 == 0 else "BA"):
            seconds = timed_run(checkouts[name], args, cache, outs / f"{name}{i}")
            walls[name].append(seconds)
            print(f"pair {i + 1} {name}: {seconds:.1f} s", flush=True)
    logs = np.log(np.array(walls["B"]) / np.array(walls["A"]))
    mean = float(logs.mean())
    lo, hi = stats.t.interval(0.95, len(logs) - 1, loc=mean, scale=stats.sem(logs)) if len(logs) > 1 else (math.nan, math.nan)
    print(f"A {checkouts['A']}: " + ", ".join(f"{s:.1f}" for s in walls["A"]) + " s")
    print(f"B {checkouts['B']}: " + ", ".join(f"{s:.1f}" for s in walls["B"]) + " s")
    print("B / A per pair: " + ", ".join(f"{r:.3f}" for r in np.exp(logs))
          + f"; geometric mean {math.exp(mean):.3f} [{math.exp(lo):.3f}, {math.exp(hi):.3f}]")
    if opts.keep:
        print(f"kept: the runs in {outs}, the cache in {cache}")
    else:  # the cache holds the synthetic corpora: hundreds of MB a call
        shutil.rmtree(outs, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
    print(f"{NAME} ratio={math.exp(mean):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
