"""How many folds and test speakers a DA testbed needs for a gap-closed claim to be significant.

From one measured comparison (a method's Δ UA against ``source_only`` with its 95 %
corrected-resampled-t interval, as a run's table prints it) this recovers the spread of the
paired per-run differences, then predicts the interval half-width, and the power to get an
interval above zero, of a method that closes a given fraction of the source_only -> oracle
gap, for other designs (k folds of m test speakers, r seeds each).

The corrected resampled t-test (Nadeau & Bengio 2003; :func:`domadapt.stats.corrected_resampled_ttest`)
has ``se = sqrt((1/J + n_test/n_train) · s²)`` over J = folds × seeds paired runs; with
subject k-fold ``n_test/n_train = 1/(k-1)``, so more folds shrink the correction term, more
seeds only the ``1/J`` term. The spread ``s`` of one run's Δ is taken to scale as
``1/sqrt(m)`` with m test speakers per fold (speaker sampling dominating it): an assumption,
stated with the output, checked by the testbed's own run.

Usage::

    python benchmarks/testbed_power.py --ci -10.75 21.36 --runs 6 --ratio 1 --speakers 4 --gap 24.69
"""

from __future__ import annotations

import argparse
import math

from scipy import stats

DESIGNS = ((2, 4), (5, 4), (6, 6), (5, 8), (10, 4))  # (folds, test speakers per fold)


def spread(ci: tuple[float, float], runs: int, ratio: float, alpha: float = 0.05) -> float:
    """The standard deviation of the paired differences behind a corrected-t interval."""
    half = (ci[1] - ci[0]) / 2
    t = stats.t.ppf(1 - alpha / 2, runs - 1)
    return half / t / math.sqrt(1 / runs + ratio)


def design(s: float, speakers: int, folds: int, per_fold: int, seeds: int, effect: float, alpha: float = 0.05) -> dict:
    """Half-width and power (P[interval above 0] for a true mean difference ``effect``)."""
    runs = folds * seeds
    sd = s * math.sqrt(speakers / per_fold)
    se = math.sqrt(1 / runs + 1 / (folds - 1)) * sd
    t = stats.t.ppf(1 - alpha / 2, runs - 1)
    power = 1 - stats.t.cdf(t - effect / se, runs - 1)
    return {"runs": runs, "se": se, "half": t * se, "power": power}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ci", type=float, nargs=2, required=True, help="measured 95 %% interval of Δ UA (points)")
    ap.add_argument("--runs", type=int, required=True, help="paired runs behind it (folds x seeds)")
    ap.add_argument("--ratio", type=float, required=True, help="its n_test/n_train")
    ap.add_argument("--speakers", type=int, required=True, help="its test speakers per fold")
    ap.add_argument("--gap", type=float, required=True, help="oracle - source_only UA (points)")
    ap.add_argument("--fraction", type=float, default=0.25, help="gap fraction to detect (default 0.25)")
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    s = spread(tuple(a.ci), a.runs, a.ratio)
    effect = a.fraction * a.gap
    print(f"spread of one run's Δ: s = {s:.2f} points ({a.speakers} test speakers per fold)")
    print(f"effect to detect: {a.fraction:.0%} of a {a.gap:.2f}-point gap = {effect:.2f} points")
    print("folds  test spk/fold  target spk  runs   se   95% half-width  power")
    for folds, per_fold in DESIGNS:
        d = design(s, a.speakers, folds, per_fold, a.seeds, effect)
        print(f"{folds:5d}  {per_fold:13d}  {folds * per_fold:10d}  {d['runs']:4d}  {d['se']:5.2f}  "
              f"{d['half']:14.2f}  {d['power']:5.2f}")
    print("(assumes s scales as 1/sqrt(test speakers per fold))")


if __name__ == "__main__":
    main()
