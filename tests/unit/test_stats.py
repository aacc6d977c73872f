"""Statistics against references: a hand-computed corrected t-test, scipy's ttest_1samp and
wilcoxon, a hand-worked Holm example, evaluate.segment_metrics for the bootstrap's
vectorised metrics, bootstrap coverage on simulated data, and table comparisons."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from domadapt.errors import DomadaptError
from domadapt.evaluate import segment_metrics
from domadapt.stats import (
    METRICS,
    metric_rows,
    compare_rows,
    compare_to_baseline,
    corrected_resampled_ttest,
    holm,
    paired_subject_bootstrap_ci,
    subject_bootstrap_ci,
    wilcoxon_signed_rank,
)

# --------------------------------------------------------------------------- corrected t


def test_corrected_ttest_hand_computed():
    # 2 folds × 2 seeds, J = 4; n_test / n_train = 2 / 8 = 1/4
    # d = [.01, .03, .05, .07]: mean = .04
    # s² = ((-.03)² + (-.01)² + .01² + .03²) / 3 = .0020 / 3 = 6.6667e-4
    # correction 1/J + n_test/n_train = 1/4 + 1/4 = 1/2 → se² = 3.3333e-4 = 1/3000
    # se = 0.0182574186;  t = .04 · √3000 = 2.1908902  (t² = 4.8)
    # df = 3; for 3 df the two-sided p has a closed form with θ = atan(t/√3), tan²θ = 1.6:
    #   p = 1 - (2/π)(θ + sinθ cosθ) = 1 - (2/π)(atan(√1.6) + √1.6 / 2.6) = 0.1161575
    # t_{.975, 3} = 3.1824463 → half-width 3.1824463 · 0.0182574 = 0.0581033
    # CI = [-0.0181033, 0.0981033]
    r = corrected_resampled_ttest([0.01, 0.03, 0.05, 0.07], n_train=8, n_test=2)
    assert r["df"] == 3
    assert r["mean"] == pytest.approx(0.04)
    assert r["t"] == pytest.approx(0.04 * math.sqrt(3000))
    assert r["t"] == pytest.approx(2.1908902, abs=1e-7)
    p_closed = 1 - (2 / math.pi) * (math.atan(math.sqrt(1.6)) + math.sqrt(1.6) / 2.6)
    assert r["p"] == pytest.approx(p_closed, rel=1e-9)
    assert r["p"] == pytest.approx(0.1161575, abs=1e-7)
    assert r["ci_low"] == pytest.approx(-0.0181033, abs=1e-7)
    assert r["ci_high"] == pytest.approx(0.0981033, abs=1e-7)


def test_corrected_ttest_alpha_changes_only_the_interval():
    d = [0.01, 0.03, 0.05, 0.07]
    r95 = corrected_resampled_ttest(d, n_train=8, n_test=2)
    r90 = corrected_resampled_ttest(d, n_train=8, n_test=2, alpha=0.10)
    # t_{.95, 3} = 2.3533634 → half-width 2.3533634 · 0.0182574 = 0.0429663
    assert r90["ci_high"] - 0.04 == pytest.approx(0.0429663, abs=1e-7)
    assert (r90["t"], r90["p"]) == (r95["t"], r95["p"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_corrected_ttest_without_correction_is_ttest_1samp(seed):
    d = np.random.default_rng(seed).normal(0.02, 0.05, size=15)
    r = corrected_resampled_ttest(d, n_train=100, n_test=0)
    ref = st.ttest_1samp(d, 0.0)
    assert r["t"] == pytest.approx(ref.statistic, rel=1e-12)
    assert r["p"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert r["df"] == ref.df
    ci = ref.confidence_interval(0.95)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-10)


def test_correction_widens_the_interval_and_raises_p():
    d = np.random.default_rng(3).normal(0.03, 0.04, size=10)
    plain = corrected_resampled_ttest(d, n_train=40, n_test=0)
    corr = corrected_resampled_ttest(d, n_train=40, n_test=10)  # 1/10 + 1/4 vs 1/10
    assert corr["t"] == pytest.approx(plain["t"] * math.sqrt(0.1 / 0.35))
    assert corr["p"] > plain["p"]
    assert corr["ci_high"] - corr["ci_low"] > plain["ci_high"] - plain["ci_low"]


def test_corrected_ttest_zero_variance():
    zero = corrected_resampled_ttest([0.0] * 6, n_train=4, n_test=1)
    assert zero == {"mean": 0.0, "ci_low": 0.0, "ci_high": 0.0, "t": 0.0, "p": 1.0, "df": 5}
    # 0.7 - 0.6 and 0.5 - 0.4 differ in the last bits: still "all equal"
    d = [0.7 - 0.6, 0.5 - 0.4, 0.3 - 0.2, 0.9 - 0.8]
    up = corrected_resampled_ttest(d, n_train=4, n_test=1)
    assert up["t"] == math.inf and up["p"] == 0.0
    assert up["ci_low"] == up["ci_high"] == pytest.approx(0.1)
    down = corrected_resampled_ttest([-0.2] * 3, n_train=4, n_test=1)
    assert down["t"] == -math.inf and down["p"] == 0.0


@pytest.mark.parametrize(
    "diffs, kw",
    [
        ([0.1], {"n_train": 4, "n_test": 1}),
        ([0.1, float("nan")], {"n_train": 4, "n_test": 1}),
        ([[0.1, 0.2]], {"n_train": 4, "n_test": 1}),
        ([0.1, 0.2], {"n_train": 0, "n_test": 1}),
        ([0.1, 0.2], {"n_train": 4, "n_test": -1}),
        ([0.1, 0.2], {"n_train": 4, "n_test": 1, "alpha": 1.5}),
    ],
)
def test_corrected_ttest_rejects_bad_input(diffs, kw):
    with pytest.raises(DomadaptError):
        corrected_resampled_ttest(diffs, **kw)


# --------------------------------------------------------------------------- Wilcoxon


@pytest.mark.parametrize(
    "d",
    [
        [0.05, 0.02, -0.01, 0.04, 0.03, 0.06, -0.02, 0.01],  # exact
        [0.1, 0.1, -0.1, 0.2, 0.0, 0.3],  # a zero and ties
        list(np.random.default_rng(0).normal(0.01, 0.05, size=60)),  # normal approx
    ],
)
def test_wilcoxon_equals_scipy(d):
    assert wilcoxon_signed_rank(d) == st.wilcoxon(d).pvalue


def test_wilcoxon_known_values():
    # 5 positive differences: exact two-sided p = 2 / 2**5
    assert wilcoxon_signed_rank([0.1, 0.2, 0.3, 0.4, 0.5]) == pytest.approx(0.0625)
    assert wilcoxon_signed_rank([0.0, 0.0, 0.0]) == 1.0  # defined, no warning needed


# --------------------------------------------------------------------------- Holm


def test_holm_hand_worked():
    # sorted: .005 (#3), .01 (#0), .03 (#2), .04 (#1); m = 4
    # scaled: 4·.005 = .02, 3·.01 = .03, 2·.03 = .06, 1·.04 = .04
    # running max: .02, .03, .06, .06 → back in input order [.03, .06, .06, .02]
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_ties_and_edges():
    # sorted .2, .3, .6: 3·.2 = .6, 2·.3 = .6, 1·.6 = .6
    assert holm([0.6, 0.2, 0.3]) == pytest.approx([0.6, 0.6, 0.6])
    assert holm([0.5, 0.5]) == pytest.approx([1.0, 1.0])
    assert holm([0.04]) == [0.04]
    assert holm([]) == []
    with pytest.raises(DomadaptError):
        holm([0.1, 1.2])
    with pytest.raises(DomadaptError):
        holm([0.1, float("nan")])


# --------------------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("metric", METRICS)
def test_vectorised_metric_matches_evaluate(metric):
    rng = np.random.default_rng(0)
    t = rng.integers(0, 4, size=(30, 12))
    p = np.where(rng.random((30, 12)) < 0.6, t, rng.integers(0, 4, size=(30, 12)))
    t[0] = 1  # a row with a single true class
    p[1] = 3  # a row predicting one class
    got = metric_rows(t, p, 4, metric)
    want = [segment_metrics(t[i], p[i], num_classes=4)[metric] for i in range(30)]
    assert got == pytest.approx(want, abs=1e-12)


def test_subject_bootstrap_estimate_labels_and_reproducibility():
    y = np.array(["hc", "mdd", "hc", "mdd", "hc", "hc", "mdd", "hc"])
    p = np.array(["hc", "mdd", "mdd", "hc", "hc", "hc", "mdd", "hc"])
    a = subject_bootstrap_ci(y, p, metric="uar", seed=7)
    # recall hc = 4/5, mdd = 2/3 → UA = (0.8 + 0.6667) / 2 = 0.7333
    assert a["estimate"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert a == subject_bootstrap_ci(y, p, metric="uar", seed=7)
    assert a != subject_bootstrap_ci(y, p, metric="uar", seed=8)
    assert a["ci_low"] <= a["estimate"] <= a["ci_high"]
    assert (a["n_subjects"], a["n_runs"], a["stratified"], a["method"]) == (8, 1, True, "percentile")


def test_subject_bootstrap_covers_the_truth_on_a_large_sample():
    # 2000 subjects, every prediction right with probability .8: the interval covers .8
    # and its width is the binomial one, 2 · 1.96 · √(.8 · .2 / 2000) = 0.0351
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=2000)
    p = np.where(rng.random(2000) < 0.8, y, 1 - y)
    for metric in METRICS:
        r = subject_bootstrap_ci(y, p, metric=metric, seed=0)
        if metric != "macro_f1":  # F1 of a class also depends on the other's errors
            assert r["ci_low"] < 0.8 < r["ci_high"], metric
        assert r["ci_high"] - r["ci_low"] == pytest.approx(0.0351, rel=0.2), metric


def test_subject_bootstrap_coverage_over_repeated_samples():
    # 200 samples of 100 subjects, true accuracy .75: a 95% interval covers it ~95% of times
    rng = np.random.default_rng(2)
    hits = 0
    for i in range(200):
        y = np.repeat([0, 1], 50)
        p = np.where(rng.random(100) < 0.75, y, 1 - y)
        r = subject_bootstrap_ci(y, p, metric="accuracy", n_boot=500, seed=i)
        hits += r["ci_low"] <= 0.75 <= r["ci_high"]
    assert 0.88 <= hits / 200 <= 0.99


def test_stratified_resamples_keep_every_class():
    # one subject per class, everything predicted as class 1: UA = (0 + 1) / 2 = .5 in every
    # stratified resample; unstratified ones that draw one class twice give UA 0 or 1
    y, p = [0, 1], [1, 1]
    strat = subject_bootstrap_ci(y, p, metric="uar", seed=0)
    assert (strat["ci_low"], strat["ci_high"]) == (0.5, 0.5)
    free = subject_bootstrap_ci(y, p, metric="uar", seed=0, stratify=False)
    assert (free["ci_low"], free["ci_high"]) == (0.0, 1.0)


def test_subject_bootstrap_several_runs_average_their_metrics():
    y = np.array([0, 0, 1, 1, 1])
    runs = np.array([[0, 0, 1, 1, 1], [0, 1, 1, 0, 1]])  # accuracy 1.0 and 0.6
    r = subject_bootstrap_ci(y, runs, metric="accuracy")
    assert r["estimate"] == pytest.approx(0.8) and r["n_runs"] == 2


def test_paired_bootstrap():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=400)
    good = np.where(rng.random(400) < 0.9, y, 1 - y)
    poor = np.where(rng.random(400) < 0.6, y, 1 - y)
    r = paired_subject_bootstrap_ci(y, good, poor, metric="accuracy", seed=0)
    assert r["estimate"] == pytest.approx(r["estimate_a"] - r["estimate_b"])
    assert r["estimate_a"] == pytest.approx(np.mean(good == y))
    assert 0.0 < r["ci_low"] < 0.3 < r["ci_high"]
    same = paired_subject_bootstrap_ci(y, good, good.copy(), metric="uar")
    assert (same["estimate"], same["ci_low"], same["ci_high"]) == (0.0, 0.0, 0.0)
    # pairing: b = a with 4 subjects flipped; the difference moves only with those 4
    # (sd ≈ √4 / 400 = .005), far less than one method's accuracy (sd ≈ √(.9·.1/400) = .015)
    b = good.copy()
    b[:4] = 1 - b[:4]
    paired = paired_subject_bootstrap_ci(y, good, b, metric="accuracy", seed=0)
    single = subject_bootstrap_ci(y, good, metric="accuracy", seed=0)
    assert paired["ci_high"] - paired["ci_low"] < 0.5 * (single["ci_high"] - single["ci_low"])


@pytest.mark.parametrize(
    "call",
    [
        lambda: subject_bootstrap_ci([0, 1], [0, 1], metric="f2"),
        lambda: subject_bootstrap_ci([0, 1], [0, 1, 1]),
        lambda: subject_bootstrap_ci([], []),
        lambda: subject_bootstrap_ci([0, 1], [0, 1], n_boot=0),
        lambda: paired_subject_bootstrap_ci([0, 1], [0, 1], [[0, 1, 1]]),
    ],
)
def test_subject_bootstrap_rejects_bad_input(call):
    with pytest.raises(DomadaptError):
        call()


# --------------------------------------------------------------------------- table rows


def runs(values, folds=5, seeds=3):
    """{(fold, seed): value} in fold-major order."""
    keys = [(f, s) for f in range(folds) for s in range(seeds)]
    return dict(zip(keys, np.asarray(values, dtype=float)))


def test_compare_to_baseline_pairs_by_key_not_order():
    rng = np.random.default_rng(4)
    base = runs(rng.uniform(0.5, 0.7, size=15))
    a = {k: v + 0.05 + 0.02 * rng.standard_normal() for k, v in base.items()}
    shuffled = dict(reversed(list(a.items())))
    r = compare_to_baseline(shuffled, base, n_train=40, n_test=10)
    d = np.array([a[k] - base[k] for k in base])
    t = corrected_resampled_ttest(d, n_train=40, n_test=10)
    assert r["n_pairs"] == 15
    assert r["mean_diff"] == pytest.approx(d.mean())
    assert r["mean_method"] - r["mean_baseline"] == pytest.approx(d.mean())
    assert (r["ci_low"], r["ci_high"], r["t"], r["p_t"], r["df"]) == pytest.approx(
        (t["ci_low"], t["ci_high"], t["t"], t["p"], t["df"])
    )
    assert r["p_wilcoxon"] == pytest.approx(st.wilcoxon(d).pvalue)


def test_compare_to_baseline_names_the_unmatched_runs():
    base = runs([0.5] * 6, folds=3, seeds=2)
    a = dict(base)
    del a[(2, 1)]
    a[(3, 0)] = 0.6
    with pytest.raises(DomadaptError, match=r"missing from the method: \(2, 1\)") as e:
        compare_to_baseline(a, base, n_train=10, n_test=5)
    assert "missing from the baseline: (3, 0)" in str(e.value)


def test_compare_rows_marks_a_clear_winner_not_noise():
    rng = np.random.default_rng(5)
    base = rng.uniform(0.55, 0.65, size=15)
    noise = rng.normal(0, 0.03, size=15)
    rows = {
        "target_only": runs(base),
        "better": runs(base + 0.10 + rng.normal(0, 0.02, size=15)),
        "noise": runs(base + noise - noise.mean()),  # mean difference exactly 0
        "slightly": runs(base + 0.005 + rng.normal(0, 0.03, size=15)),
    }
    out = compare_rows(rows, "target_only", n_train=40, n_test=10)
    assert list(out) == ["better", "noise", "slightly"]
    assert out["better"]["mark"] == "*"
    assert out["noise"]["mark"] == "" and out["slightly"]["mark"] == ""
    assert out["noise"]["p_t"] == pytest.approx(1.0)
    assert [out[m]["p_t_holm"] for m in out] == pytest.approx(holm([out[m]["p_t"] for m in out]))
    assert [out[m]["p_wilcoxon_holm"] for m in out] == pytest.approx(
        holm([out[m]["p_wilcoxon"] for m in out])
    )


def test_compare_rows_mark_uses_the_holm_adjusted_p():
    # three methods, each raw corrected-t p just under .05; Holm multiplies the smallest by 3
    base = runs(np.full(15, 0.6))
    rng = np.random.default_rng(6)
    wiggle = rng.normal(0, 1, size=15)
    wiggle = (wiggle - wiggle.mean()) / wiggle.std(ddof=1)  # mean 0, sd 1
    # t = m / (s · √(1/15 + 1/4)); for p ≈ .04 at df 14, t ≈ 2.264 → m = 2.264 · s · .5627
    s = 0.02
    m = 2.264 * s * math.sqrt(1 / 15 + 1 / 4)
    rows = {"base": base, **{f"m{i}": runs(0.6 + m + s * wiggle) for i in range(3)}}
    out = compare_rows(rows, "base", n_train=40, n_test=10)
    for r in out.values():
        assert 0.035 < r["p_t"] < 0.05 and r["p_t_holm"] > 0.05 and r["mark"] == ""


def test_compare_rows_errors():
    rows = {"a": runs([0.5] * 15), "b": runs([0.6] * 15)}
    with pytest.raises(DomadaptError, match="baseline 'target_only' is not a row; rows: a, b"):
        compare_rows(rows, "target_only", n_train=4, n_test=1)
    rows["c"] = {k: v for k, v in runs([0.7] * 15).items() if k != (0, 0)}
    with pytest.raises(DomadaptError, match=r"c vs a: .*missing from the method: \(0, 0\)"):
        compare_rows(rows, "a", n_train=4, n_test=1)
