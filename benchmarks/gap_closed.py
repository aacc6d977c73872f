"""How much of the source_only -> oracle gap each row of a DA run closes, with its interval.

Reads a recipe run's ``results.json`` (its ``comparison`` against the baseline row, the
corrected resampled t-test of :mod:`domadapt.report.statistics`) and per-run files, and
prints one markdown row per method: UA mean ± std over the runs, the held-out A-distance
before → after training, Δ UA against the baseline with its 95 % interval, the gap closed
(Δ and its interval divided by the oracle's mean Δ: the interval carries the spread of the
method's paired differences, not the uncertainty of the oracle's gap), and how many paired
runs the row beats the baseline in. A row "closes part of the gap" only when the lower end
of its interval is above zero.

Usage::

    python benchmarks/gap_closed.py runs/da_testbed_powered-... [--oracle "target_only (oracle)"]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from domadapt.report import load_row_runs, row_ids


def _a_distance(row: dict) -> str:
    gap = row.get("domain_gap")
    if not gap or "general" not in gap:
        return "–"
    a = gap["general"]["a_distance"]
    return f"{a['before']['mean']:.2f} → {a['after']['mean']:.2f}"


def table(run_dir: Path, oracle: str) -> str:
    """The markdown table of one run folder (see the module docstring)."""
    results = json.loads((run_dir / "results.json").read_text())
    comparison = results.get("comparison")
    if not comparison:
        raise SystemExit(f"error: {run_dir}/results.json: no comparison against a baseline row (run with --baseline)")
    ids = row_ids(results)
    if oracle not in ids:
        raise SystemExit(f"error: {run_dir}/results.json: no row {oracle!r}; rows: {', '.join(ids)}")
    base_id = comparison["baseline"]
    runs = dict(zip(ids, load_row_runs(results, run_dir)))
    base_uar = {k: r["metrics"]["uar"] for k, r in runs[base_id].runs.items()}
    gap = 100 * comparison["rows"][oracle]["uar"]["mean_diff"]
    lines = [
        f"gap (oracle - {base_id}): {gap:.2f} points; intervals: 95 %, corrected resampled t-test",
        "",
        "| row | UA (%) | A-dist. before → after | Δ UA vs source_only [95 % CI] | gap closed [95 % CI] | runs above source_only |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row, rid in zip(results["rows"], ids):
        uar = 100 * np.array([r["metrics"]["uar"] for r in runs[rid].runs.values()])
        cells = [rid, f"{uar.mean():.2f} ± {uar.std():.2f}", _a_distance(row)]
        if rid == base_id:
            cells += ["(baseline)", "(0 %)", "–"]
        else:
            c = comparison["rows"][rid].get("uar")
            if c is None:
                cells += [comparison["rows"][rid].get("reason", "not compared"), "", ""]
            else:
                d, lo, hi = (100 * c[k] for k in ("mean_diff", "ci_low", "ci_high"))
                above = sum(r["metrics"]["uar"] > base_uar[k] for k, r in runs[rid].runs.items())
                if rid == oracle:
                    closed = "(100 %)"
                elif gap <= 0:  # the oracle is no better than the baseline: there is no gap to close
                    closed = "– (no gap)"
                else:
                    closed = f"{100 * d / gap:+.0f} % [{100 * lo / gap:+.0f}, {100 * hi / gap:+.0f}]"
                cells += [f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]", closed, f"{above}/{len(runs[rid].runs)}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path, help="a recipe's --out folder")
    ap.add_argument("--oracle", default="target_only (oracle)", help="the row whose Δ is the whole gap")
    a = ap.parse_args()
    if not (a.run_dir / "results.json").is_file():
        print(f"error: {a.run_dir}: no results.json (expected a finished recipe run's --out folder)", file=sys.stderr)
        return 2
    print(table(a.run_dir, a.oracle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
