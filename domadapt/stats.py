"""The statistics a reviewer asks for: paired comparisons against a baseline row and
bootstrap intervals over test subjects. Pure functions on numpy arrays.

Two kinds of uncertainty, kept apart:

- **over runs** (folds × seeds): :func:`corrected_resampled_ttest` and
  :func:`wilcoxon_signed_rank` on the paired per-(fold, seed) differences between a method
  and the baseline; :func:`compare_to_baseline` pairs two rows by (fold, seed) and runs
  both; :func:`compare_rows` does it for every method of a table and adds Holm-adjusted
  p-values (:func:`holm`) and a significance mark.
- **over test subjects**: :func:`subject_bootstrap_ci` (one method's subject-level metric)
  and :func:`paired_subject_bootstrap_ci` (the difference between two methods on the same
  subjects) resample subjects with replacement, stratified by label.

What is scipy and what is written here:

- the t and Wilcoxon distributions are scipy's (``scipy.stats.t``,
  ``scipy.stats.wilcoxon``); the corrected variance is two lines on top;
- Holm is written by hand: scipy 1.17's only multiple-testing adjustment is
  ``false_discovery_control`` (Benjamini–Hochberg / –Yekutieli), and statsmodels is not a
  dependency;
- the subject bootstrap is written by hand: ``scipy.stats.bootstrap`` (1.17) has no
  strata, and an unstratified resample of a small test fold can drop a class, which makes
  UA and macro-F1 a different quantity in that resample. Percentile intervals, not BCa:
  subject-level metrics take few distinct values, and BCa's jackknife acceleration is
  unstable (scipy warns of degenerate distributions) on such data.
"""

from __future__ import annotations

from typing import Any, Hashable, Mapping, Sequence

import numpy as np
from scipy import stats as _st

from domadapt.errors import DomadaptError

__all__ = [
    "METRICS",
    "corrected_resampled_ttest",
    "wilcoxon_signed_rank",
    "holm",
    "subject_bootstrap_ci",
    "paired_subject_bootstrap_ci",
    "compare_to_baseline",
    "compare_rows",
    "metric_rows",
]

METRICS = ("accuracy", "uar", "macro_f1")


# --------------------------------------------------------------------------- helpers


def _diffs(diffs: Any) -> np.ndarray:
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim != 1:
        raise DomadaptError(f"diffs must be a 1-D array of paired differences, got shape {d.shape}")
    if not np.all(np.isfinite(d)):
        raise DomadaptError("diffs holds NaN or inf; every (fold, seed) run needs a finite value")
    return d


def _alpha(alpha: float) -> float:
    if not 0.0 < alpha < 1.0:
        raise DomadaptError(f"alpha must be in (0, 1), got {alpha}")
    return float(alpha)


def _is_constant(d: np.ndarray) -> bool:
    # metrics like 0.7 - 0.6 and 0.5 - 0.4 differ in the last bits; treat that as equal
    # rather than as a near-zero variance that would give an astronomically large t
    return bool(np.ptp(d) <= 1e-12 * max(1.0, float(np.max(np.abs(d)))))


# --------------------------------------------------------------------------- over runs


def corrected_resampled_ttest(
    diffs: Any, *, n_train: float, n_test: float, alpha: float = 0.05
) -> dict[str, float]:
    """Corrected resampled t-test on paired differences from repeated k-fold runs.

    Nadeau, C. & Bengio, Y. (2003). Inference for the Generalization Error. *Machine
    Learning* 52(3), 239–281 — the "corrected resampled t-test"; used for r × k-fold
    cross-validation (J = k·r differences) by Bouckaert, R. & Frank, E. (2004), Evaluating
    the Replicability of Significance Tests for Comparing Learning Algorithms, PAKDD.

    The J differences come from overlapping training sets, so they are correlated and the
    plain one-sample t-test (variance ``s²/J``) is anti-conservative. The correction
    replaces ``1/J`` with ``1/J + n_test/n_train``::

        mean = mean(d);  s² = var(d, ddof=1);  se = sqrt((1/J + n_test/n_train) · s²)
        t = mean / se,   df = J - 1,  p = 2 · (1 - T_df(|t|))
        CI = mean ± T_df⁻¹(1 - alpha/2) · se

    With ``n_test = 0`` the correction vanishes and this is ``scipy.stats.ttest_1samp(d, 0)``.

    Args:
        diffs: ``(J,)`` paired differences (method - baseline), one per (fold, seed) run.
        n_train, n_test: sizes of one fold's training and test sets, in the unit the folds
            are split on (subjects for a subject-grouped k-fold); only their ratio matters
            (≈ 1/(k-1) for k-fold). When sizes vary across folds, pass their means.
        alpha: 1 - the confidence level of the interval.

    Returns:
        ``mean``, ``ci_low``, ``ci_high``, ``t``, ``p`` (two-sided), ``df``.

        Zero variance (all differences equal, to 1e-12 relative): the interval is the point
        ``[mean, mean]``; ``t = 0, p = 1`` when that value is 0 (no difference at all), and
        ``t = ±inf, p = 0`` otherwise (the limit of the test, as ``ttest_1samp`` gives);
        read the Wilcoxon p beside it, whose exact floor with J pairs is ``2 / 2**J``.

    Example:
        >>> r = corrected_resampled_ttest([0.01, 0.03, 0.05, 0.07], n_train=8, n_test=2)
        >>> round(r["t"], 5), r["df"]
        (2.19089, 3)
    """
    d = _diffs(diffs)
    alpha = _alpha(alpha)
    if not n_train > 0 or not n_test >= 0:
        raise DomadaptError(
            f"need n_train > 0 and n_test >= 0, got n_train={n_train}, n_test={n_test}"
        )
    j = len(d)
    if j < 2:
        raise DomadaptError(f"the corrected t-test needs at least 2 paired runs, got {j}")
    mean = float(d.mean())
    df = j - 1
    if _is_constant(d):
        if mean == 0.0:
            return {"mean": 0.0, "ci_low": 0.0, "ci_high": 0.0, "t": 0.0, "p": 1.0, "df": df}
        return {"mean": mean, "ci_low": mean, "ci_high": mean,
                "t": float(np.copysign(np.inf, mean)), "p": 0.0, "df": df}
    se = float(np.sqrt((1.0 / j + n_test / n_train) * d.var(ddof=1)))
    t = mean / se
    p = float(2.0 * _st.t.sf(abs(t), df))
    half = float(_st.t.ppf(1.0 - alpha / 2.0, df)) * se
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "t": t, "p": p, "df": df}


def wilcoxon_signed_rank(diffs: Any) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (``scipy.stats.wilcoxon``
    with its defaults: zero differences dropped, exact distribution for small samples).

    All differences zero → ``1.0`` (scipy would also say 1.0, with a division warning).
    """
    d = _diffs(diffs)
    if len(d) == 0:
        raise DomadaptError("the Wilcoxon test needs at least 1 paired run, got 0")
    if not np.any(d):
        return 1.0
    return float(_st.wilcoxon(d).pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order.

    Sorted ascending, ``p_(i)`` becomes ``max_{j <= i} min(1, (m - j + 1) · p_(j))``
    (1-based ``j``); reject where the adjusted value is below alpha. Controls the
    family-wise error rate under any dependence between the tests. Written here because
    scipy 1.17 has no Holm (``false_discovery_control`` is Benjamini–Hochberg only).

    Example:
        >>> [round(p, 6) for p in holm([0.01, 0.04, 0.03, 0.005])]
        [0.03, 0.06, 0.06, 0.02]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise DomadaptError(f"pvalues must be 1-D, got shape {p.shape}")
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise DomadaptError(f"p-values must lie in [0, 1], got {p.tolist()}")
    m = len(p)
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.maximum.accumulate(scaled)
    return [float(v) for v in out]


# --------------------------------------------------------------------------- over subjects


def metric_rows(y_true: np.ndarray, y_pred: np.ndarray, k: int, metric: str) -> np.ndarray:
    """``metric`` of every row: ``y_true``, ``y_pred`` int arrays ``(..., n)`` of class
    indices in ``[0, k)``, same shape; returns ``(...)``. Same conventions as
    :mod:`domadapt.evaluate` (UA over classes present in ``y_true``; macro-F1 over classes
    present in either, 0 for an undefined F1)."""
    if metric == "accuracy":
        return (y_true == y_pred).mean(axis=-1)
    lead = y_true.shape[:-1]
    rows = int(np.prod(lead))
    t = y_true.reshape(rows, -1)
    p = y_pred.reshape(rows, -1)
    base = (np.arange(rows) * k)[:, None]
    support = np.bincount((base + t).ravel(), minlength=rows * k).reshape(rows, k)
    hit = np.where(t == p, base + t, rows * k)  # misses go to an overflow bin
    tp = np.bincount(hit.ravel(), minlength=rows * k + 1)[:-1].reshape(rows, k)
    if metric == "uar":
        present = support > 0
        recall = np.divide(tp, support, out=np.zeros((rows, k)), where=present)
        out = recall.sum(axis=1) / present.sum(axis=1)
    else:  # macro_f1: F1_c = 2 tp / (support + predicted count)
        denom = support + np.bincount((base + p).ravel(), minlength=rows * k).reshape(rows, k)
        used = denom > 0
        f1 = np.divide(2.0 * tp, denom, out=np.zeros((rows, k)), where=used)
        out = f1.sum(axis=1) / used.sum(axis=1)
    return out.reshape(lead)


def _subject_inputs(
    y_true: Any, preds: Mapping[str, Any], metric: str, n_boot: int, alpha: float
) -> tuple[np.ndarray, list[np.ndarray], int]:
    """Labels encoded to ``[0, k)`` over the union of classes; predictions as ``(R, n)``."""
    if metric not in METRICS:
        raise DomadaptError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    _alpha(alpha)
    if int(n_boot) != n_boot or n_boot < 1:
        raise DomadaptError(f"n_boot must be a positive integer, got {n_boot}")
    yt = np.asarray(y_true)
    if yt.ndim != 1 or len(yt) == 0:
        raise DomadaptError(
            f"the true labels must be a non-empty 1-D array (one per subject), got shape {yt.shape}"
        )
    ps = []
    for name, p in preds.items():
        p = np.asarray(p)
        p = p[None] if p.ndim == 1 else p
        if p.ndim != 2 or p.shape[1] != len(yt):
            raise DomadaptError(
                f"{name} must have shape ({len(yt)},) or (runs, {len(yt)}) to match the true "
                f"labels, got {np.shape(p)}"
            )
        ps.append(p)
    classes, inv = np.unique(np.concatenate([yt] + [p.ravel() for p in ps]), return_inverse=True)
    inv = inv.astype(np.int64)
    out, at = [inv[: len(yt)]], len(yt)
    for p in ps:
        out.append(inv[at : at + p.size].reshape(p.shape))
        at += p.size
    return out[0], out[1:], len(classes)


def _resample(y_true: np.ndarray, n_boot: int, seed: int, stratify: bool) -> np.ndarray:
    """``(n_boot, n)`` subject indices drawn with replacement; with ``stratify`` each
    resample keeps every class's subject count (as a stratified split built the fold)."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    if not stratify:
        return rng.integers(0, n, size=(n_boot, n))
    parts = []
    for c in np.unique(y_true):
        members = np.flatnonzero(y_true == c)
        parts.append(members[rng.integers(0, len(members), size=(n_boot, len(members)))])
    return np.concatenate(parts, axis=1)


def _run_mean_metric(
    y_true: np.ndarray, y_pred: np.ndarray, k: int, metric: str, idx: np.ndarray | None
) -> np.ndarray:
    """Metric averaged over the runs (rows) of ``y_pred (R, n)``; per resample if ``idx``."""
    if idx is None:
        return metric_rows(np.broadcast_to(y_true, y_pred.shape), y_pred, k, metric).mean(axis=0)
    t = np.broadcast_to(y_true[idx], (y_pred.shape[0],) + idx.shape)
    return metric_rows(t, y_pred[:, idx], k, metric).mean(axis=0)


def _interval(boot: np.ndarray, alpha: float) -> tuple[float, float]:
    lo, hi = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def subject_bootstrap_ci(
    y_true_subject: Any,
    y_pred_subject: Any,
    *,
    metric: str = "uar",
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    stratify: bool = True,
) -> dict[str, Any]:
    """Percentile bootstrap interval of a subject-level metric, resampling test subjects.

    Subjects are drawn with replacement, within each true class when ``stratify`` (the
    test folds are built stratified, so their class counts are fixed by design, and every
    resample keeps every class: UA and macro-F1 stay the same quantity). A class with a
    single subject then contributes no resampling variance; pass ``stratify=False`` to
    resample all subjects together.

    Args:
        y_true_subject: ``(n,)`` one true label per test subject (any sortable labels).
        y_pred_subject: ``(n,)`` one predicted label per subject, or ``(R, n)``: R runs
            (seeds) predicting the same subjects; the statistic is then the mean of the R
            runs' metrics, and the same subjects are drawn for every run.
        metric: ``"accuracy"`` (WA), ``"uar"`` (UA) or ``"macro_f1"``, with the
            conventions of :mod:`domadapt.evaluate`.
        n_boot: number of resamples; seed: the generator's seed (same seed, same interval).
        alpha: 1 - the confidence level.

    Returns:
        ``estimate`` (the metric on the subjects as given), ``ci_low``, ``ci_high``,
        ``metric``, ``n_subjects``, ``n_runs``, ``n_boot``, ``alpha``, ``stratified``,
        ``method`` (``"percentile"``).
    """
    yt, (yp,), k = _subject_inputs(
        y_true_subject, {"y_pred_subject": y_pred_subject}, metric, n_boot, alpha
    )
    idx = _resample(yt, int(n_boot), seed, stratify)
    lo, hi = _interval(_run_mean_metric(yt, yp, k, metric, idx), alpha)
    return {
        "estimate": float(_run_mean_metric(yt, yp, k, metric, None)),
        "ci_low": lo, "ci_high": hi, "metric": metric, "n_subjects": int(len(yt)),
        "n_runs": int(yp.shape[0]), "n_boot": int(n_boot), "alpha": float(alpha),
        "stratified": bool(stratify), "method": "percentile",
    }


def paired_subject_bootstrap_ci(
    y_true: Any,
    pred_a: Any,
    pred_b: Any,
    *,
    metric: str = "uar",
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    stratify: bool = True,
) -> dict[str, Any]:
    """Percentile bootstrap interval of ``metric(pred_a) - metric(pred_b)`` over the same
    test subjects: each resample draws one set of subjects and scores both methods on it,
    so what the two methods share (an easy or a hard subject) cancels.

    Args and resampling as :func:`subject_bootstrap_ci`; ``pred_a`` and ``pred_b`` are each
    ``(n,)`` or ``(R, n)`` (R may differ between them).

    Returns:
        ``estimate`` (the difference on the subjects as given), ``estimate_a``,
        ``estimate_b``, ``ci_low``, ``ci_high``, and the same bookkeeping keys as
        :func:`subject_bootstrap_ci` (``n_runs`` is ``[R_a, R_b]``).
    """
    yt, (pa, pb), k = _subject_inputs(
        y_true, {"pred_a": pred_a, "pred_b": pred_b}, metric, n_boot, alpha
    )
    idx = _resample(yt, int(n_boot), seed, stratify)
    boot = _run_mean_metric(yt, pa, k, metric, idx) - _run_mean_metric(yt, pb, k, metric, idx)
    lo, hi = _interval(boot, alpha)
    ea = float(_run_mean_metric(yt, pa, k, metric, None))
    eb = float(_run_mean_metric(yt, pb, k, metric, None))
    return {
        "estimate": ea - eb, "estimate_a": ea, "estimate_b": eb, "ci_low": lo, "ci_high": hi,
        "metric": metric, "n_subjects": int(len(yt)), "n_runs": [int(pa.shape[0]), int(pb.shape[0])],
        "n_boot": int(n_boot), "alpha": float(alpha), "stratified": bool(stratify),
        "method": "percentile",
    }


# --------------------------------------------------------------------------- table rows


def compare_to_baseline(
    per_run_a: Mapping[Hashable, float],
    per_run_base: Mapping[Hashable, float],
    *,
    n_train: float,
    n_test: float,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Paired comparison of a method's runs with the baseline's, matched by (fold, seed).

    Args:
        per_run_a, per_run_base: ``{(fold, seed): metric value}`` of the method and of the
            baseline; both must hold exactly the same keys.
        n_train, n_test, alpha: as :func:`corrected_resampled_ttest`.

    Returns:
        ``n_pairs``, ``mean_method``, ``mean_baseline``, ``mean_diff`` (method - baseline),
        ``ci_low``, ``ci_high`` (the corrected-t interval of the mean difference, at
        1 - alpha, not adjusted for multiplicity), ``t``, ``df``, ``p_t`` (corrected
        resampled t-test), ``p_wilcoxon`` (signed-rank), ``alpha``.

    Raises:
        DomadaptError: the two rows do not hold the same (fold, seed) runs; the message
            names the runs each side lacks.
    """
    keys_a, keys_b = set(per_run_a), set(per_run_base)
    if keys_a != keys_b:
        only_a = sorted(keys_a - keys_b, key=repr)
        only_b = sorted(keys_b - keys_a, key=repr)
        parts = []
        if only_a:
            parts.append(f"missing from the baseline: {', '.join(map(repr, only_a))}")
        if only_b:
            parts.append(f"missing from the method: {', '.join(map(repr, only_b))}")
        raise DomadaptError("runs are paired by (fold, seed), but " + "; ".join(parts))
    keys = sorted(keys_a, key=repr)
    a = np.array([per_run_a[k] for k in keys], dtype=np.float64)
    b = np.array([per_run_base[k] for k in keys], dtype=np.float64)
    d = a - b
    t = corrected_resampled_ttest(d, n_train=n_train, n_test=n_test, alpha=alpha)
    return {
        "n_pairs": len(keys), "mean_method": float(a.mean()), "mean_baseline": float(b.mean()),
        "mean_diff": t["mean"], "ci_low": t["ci_low"], "ci_high": t["ci_high"],
        "t": t["t"], "df": t["df"], "p_t": t["p"], "p_wilcoxon": wilcoxon_signed_rank(d),
        "alpha": float(alpha),
    }


def compare_rows(
    rows: Mapping[str, Mapping[Hashable, float]],
    baseline: str,
    *,
    n_train: float,
    n_test: float,
    alpha: float = 0.05,
) -> dict[str, dict[str, Any]]:
    """Every method of a table against the baseline row, with Holm across the methods.

    Each method gets :func:`compare_to_baseline`'s dict plus ``p_t_holm`` and
    ``p_wilcoxon_holm`` (Holm over the table's methods, baseline excluded) and ``mark``:
    ``"*"`` when ``p_t_holm < alpha``, else ``""``.

    The mark follows the corrected t-test, not Wilcoxon: the signed-rank test treats the
    J = folds × seeds differences as independent, which overlapping training sets make
    them not (Nadeau & Bengio's point), and with few runs its exact p has a floor
    (``2 / 2**J``: 0.0625 for 5 runs) that could never mark anything. The Wilcoxon p is
    reported beside it as a check that does not assume normal differences. The mark
    says "different", in either direction; the sign is the sign of ``mean_diff``.

    Args:
        rows: ``{method: {(fold, seed): metric value}}``, the baseline included.
        baseline: the key of the baseline row (e.g. ``"target_only"``).
        n_train, n_test, alpha: as :func:`corrected_resampled_ttest`.

    Returns:
        ``{method: comparison}`` for every method but the baseline, in ``rows``' order.
    """
    if baseline not in rows:
        raise DomadaptError(f"baseline {baseline!r} is not a row; rows: {', '.join(map(str, rows))}")
    out: dict[str, dict[str, Any]] = {}
    for method, per_run in rows.items():
        if method == baseline:
            continue
        try:
            out[method] = compare_to_baseline(
                per_run, rows[baseline], n_train=n_train, n_test=n_test, alpha=alpha
            )
        except DomadaptError as e:
            raise DomadaptError(f"{method} vs {baseline}: {e}") from None
    methods = list(out)
    for key in ("p_t", "p_wilcoxon"):
        for method, adj in zip(methods, holm([out[m][key] for m in methods])):
            out[method][f"{key}_holm"] = adj
    for method in methods:
        out[method]["mark"] = "*" if out[method]["p_t_holm"] < alpha else ""
    return out
