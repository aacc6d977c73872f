"""Why did an adaptation row do what it did? Its training history, epoch by epoch.

Every per-run file of a recipe run (``<out>/runs/<row>/fold<i>-seed<j>.json``) carries the
run's history: the loss terms and whatever the alignment loss or method returned in its
stats dict, averaged over each epoch's batches. This prints, for each row, the mean over
the row's runs of each epoch's value, plus the held-out domain gap after training:

* DANN / CDAN: ``disc_acc`` (the discriminator's balanced accuracy on the training
  batches; 0.5 = confused) and ``grl_coeff`` (the gradient-reversal coefficient reached);
* MDD: ``source_agreement`` / ``target_agreement`` (adversary vs. main head) and ``grl_coeff``;
* self-training: ``confident`` (fraction of target rows over the threshold), ``target_acc``
  (accuracy of the head's argmax on the training target) and ``confident_correct``; the
  accuracy of the pseudo-labels trained on is ``confident_correct / confident``;
* every joint row: ``task``, ``align``, ``lam`` and the validator's ``val/im``.

Usage::

    python benchmarks/adaptation_history.py runs/da_testbed_powered-... [--rows align-dann self_training] [--folds 0]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

KEYS = ("task", "align", "lam", "disc_acc", "grl_coeff", "source_agreement", "target_agreement",
        "confident", "target_acc", "confident_correct", "im")


def runs_of(row_dir: Path, folds: list[int] | None) -> list[dict]:
    files = sorted(row_dir.glob("fold*-seed*.json"))
    runs = [json.loads(f.read_text()) for f in files]
    return [r for r in runs if folds is None or r["fold"] in folds]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--rows", nargs="*", help="row folders under runs/ (default: all)")
    ap.add_argument("--folds", type=int, nargs="*", help="only these folds (default: all)")
    a = ap.parse_args()
    base = a.run_dir / "runs"
    if not base.is_dir():
        print(f"error: {base}: no runs folder (expected a recipe's --out folder)", file=sys.stderr)
        return 2
    for row in a.rows or sorted(p.name for p in base.iterdir() if p.is_dir()):
        runs = runs_of(base / row, a.folds)
        if not runs:
            print(f"{row}: no runs")
            continue
        uar = [r["metrics"]["uar"] for r in runs]
        print(f"== {row}: {len(runs)} runs, UA {100 * np.mean(uar):.2f} ± {100 * np.std(uar):.2f}")
        history = runs[0]["history"]
        for key in history:
            if key.rsplit("/", 1)[-1] not in KEYS:
                continue
            epochs = np.array([r["history"][key] for r in runs if key in r["history"]])
            print(f"  {key:34s}" + "".join(f"{v:7.3f}" for v in epochs.mean(0)))
        gaps = [r.get("domain_gap") for r in runs]
        if all(gaps):
            for when in ("before", "after"):
                a_dist = np.mean([g[when]["general"]["a_distance"] for g in gaps])
                print(f"  A-distance (general, held out) {when:6s} {a_dist:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
