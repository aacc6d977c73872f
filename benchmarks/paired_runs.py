"""Two runs of the same recipe, unit by unit: did a change of code or precision move the numbers?

    python benchmarks/paired_runs.py RUN_A RUN_B [--metric uar]

Pairs every (method, fold, seed) result present in both run folders (``runs/<method>/
fold<F>-seed<S>.json``) and prints, over the deep rows (every row but ``baseline*``), the
mean of B − A in percentage points with a t interval (95 %), its standard deviation and the
largest single difference, then the mean per method, and whether the classical rows are
identical. The units are not independent draws of one population (folds share subjects
across methods), so the interval says how large a systematic shift the pairs can exclude,
not more.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats


def results(run: Path) -> dict[tuple[str, str], dict]:
    return {(p.parent.name, p.stem): json.loads(p.read_text())["metrics"] for p in (run / "runs").glob("*/*.json")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--metric", default="uar")
    args = parser.parse_args(argv)
    a, b = results(args.run_a), results(args.run_b)
    shared = sorted(set(a) & set(b))
    deep = [k for k in shared if not k[0].startswith("baseline")]
    if len(deep) < 2:
        raise SystemExit(f"paired_runs: {len(deep)} deep units in both {args.run_a} and {args.run_b}; need 2")
    d = np.array([b[k][args.metric] - a[k][args.metric] for k in deep]) * 100
    lo, hi = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    print(f"{args.metric}: {len(d)} deep units paired, mean B − A {d.mean():+.2f} points [{lo:+.2f}, {hi:+.2f}], "
          f"sd {d.std(ddof=1):.2f}, largest |Δ| {np.abs(d).max():.2f} ({deep[int(np.abs(d).argmax())]})")
    per: dict[str, list[float]] = defaultdict(list)
    for k, x in zip(deep, d):
        per[k[0]].append(x)
    for method, xs in sorted(per.items()):
        print(f"  {method:<20} {np.mean(xs):+.2f}  ({', '.join(f'{x:+.1f}' for x in xs)})")
    classical = [k for k in shared if k[0].startswith("baseline")]
    same = all(a[k] == b[k] for k in classical)
    print(f"classical rows ({len(classical)} units): {'identical' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
