"""Statistics from the per-run files: subject-bootstrap intervals per row and the paired
comparison of every row with a baseline row (:func:`add_statistics`).

- ``rows[i]["subject_bootstrap"]``: ``{metric: {"estimate", "ci_low", "ci_high", ...}}`` for
  every subject-level metric of the row (:func:`subject_intervals`);
- ``results["comparison"]`` when a baseline row is named (:func:`compare`):
  ``{"baseline", "metric", "metrics", "alpha", "sizes", "holm_over", "rows": {label: ...}}``.
"""

from __future__ import annotations

import math
import os
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from domadapt.errors import DomadaptError
from domadapt.report.runs import RowRuns, _jsonable, _validate, find_baseline, load_row_runs, row_ids
from domadapt.stats import compare_rows, metric_rows

#: the metrics compared with the baseline row; the first one sets the table's mark
COMPARED_METRICS = ("uar", "subject_accuracy")
#: subject-level row metric -> (its prediction key in a run's ``test_subjects``, the
#: confusion matrix in the run's metrics that holds the same (true, predicted) pairs, the
#: metric applied to subjects)
SUBJECT_METRICS = {
    "subject_accuracy": ("pred", "subject_confusion", "accuracy"),
    "subject_uar": ("pred", "subject_confusion", "uar"),
    "subject_macro_f1": ("pred", "subject_confusion", "macro_f1"),
    "subject_accuracy_meanprob": ("pred_meanprob", "subject_confusion_meanprob", "accuracy"),
    "subject_uar_meanprob": ("pred_meanprob", "subject_confusion_meanprob", "uar"),
    "subject_macro_f1_meanprob": ("pred_meanprob", "subject_confusion_meanprob", "macro_f1"),
}
ALPHA = 0.05  # 95% intervals; the mark is Holm-adjusted p < ALPHA
N_BOOT = 2000  # subject resamples per interval (percentile method; the seed fixes them)
BOOT_SEED = 0


def _subject_pairs(run: Mapping[str, Any], pred_key: str, confusion_key: str):
    """``(ids or None, true, pred)`` of one run's test subjects, or None when the run
    stores neither its per-subject predictions nor the confusion matrix.

    From a confusion matrix the subjects are anonymous; they come out sorted by true class
    and, within a class, correct predictions first: runs of a fold then line up hit with
    hit (see :func:`_fold_groups`)."""
    ts = run.get("test_subjects")
    if isinstance(ts, Mapping) and pred_key in ts and "true" in ts:
        ids = [str(i) for i in ts["ids"]] if ts.get("ids") is not None else None
        return ids, np.asarray(ts["true"], dtype=np.int64), np.asarray(ts[pred_key], dtype=np.int64)
    cm = run["metrics"].get(confusion_key)
    if cm is None:
        return None
    cm = np.asarray(cm, dtype=np.int64)
    k = len(cm)
    true = np.repeat(np.arange(k), cm.sum(axis=1))
    pred = np.concatenate([np.repeat([i, *(j for j in range(k) if j != i)],
                                     cm[i, [i, *(j for j in range(k) if j != i)]]) for i in range(k)])
    return None, true, pred.astype(np.int64)


def _fold_groups(runs: Mapping[tuple[int, int], Mapping[str, Any]], pred_key: str, confusion_key: str):
    """The runs' subject predictions grouped per test fold, for a bootstrap that draws each
    fold's subjects once for all its seeds.

    Returns ``(groups, k, linking, n_subjects)`` with ``groups`` a list of
    ``(y_true (n,), preds (R, n))``, or a string saying what is missing. ``linking``:

    - ``"subject ids"``: seeds lined up by the stored subject ids (exact);
    - ``"single run per fold"``: one seed per fold: the confusion matrix is all the
      bootstrap needs (exact);
    - ``"confusion, comonotone"``: several seeds, confusion matrices only: a fold's seeds
      are lined up hit with hit, the largest correlation they could have, so the interval
      is at least as wide as the exact one for accuracy and UA (conservative);
    - ``"independent"``: a fold's seeds disagree on the class counts (not one test fold)
      and are resampled separately (narrower than exact).
    """
    by_fold: dict[int, list[tuple]] = {}
    for (fold, seed), run in sorted(runs.items()):
        got = _subject_pairs(run, pred_key, confusion_key)
        if got is None:
            return f"fold{fold}-seed{seed} stores neither test_subjects.{pred_key} nor metrics.{confusion_key}"
        by_fold.setdefault(fold, []).append(got)
    k = 1 + max(int(max(t.max(initial=0), p.max(initial=0))) for items in by_fold.values() for _, t, p in items)
    groups, kinds, n_subjects = [], set(), 0
    for items in by_fold.values():
        n_subjects += len(items[0][1])
        ids0 = items[0][0]
        if ids0 is not None and all(
            ids is not None and len(set(ids)) == len(ids) and sorted(ids) == sorted(ids0) for ids, _, _ in items
        ):
            aligned = [(t[np.argsort(ids)], p[np.argsort(ids)]) for ids, t, p in items]
            if all(np.array_equal(t, aligned[0][0]) for t, _ in aligned):
                groups.append((aligned[0][0], np.stack([p for _, p in aligned])))
                kinds.add("subject ids" if len(items) > 1 else "single run per fold")
                continue
        if all(ids is None for ids, _, _ in items) and all(np.array_equal(t, items[0][1]) for _, t, _ in items):
            groups.append((items[0][1], np.stack([p for _, _, p in items])))
            kinds.add("confusion, comonotone" if len(items) > 1 else "single run per fold")
            continue
        groups += [(t, p[None]) for _, t, p in items]
        kinds.add("independent")
    for kind in ("independent", "confusion, comonotone", "subject ids", "single run per fold"):
        if kind in kinds:  # the weakest link names the whole
            return groups, k, kind, n_subjects
    raise AssertionError("unreachable")


def _strata_draws(y: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, n)`` subject indices drawn with replacement within each true class."""
    parts = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        parts.append(members[rng.integers(0, len(members), size=(n_boot, len(members)))])
    return np.concatenate(parts, axis=1)


def _mean_metric(groups: Sequence[tuple], k: int, metric: str, draws: Sequence[np.ndarray] | None = None):
    """The metric averaged over every run of every fold (the row's mean); per resample when
    ``draws`` (one ``(n_boot, n)`` index array per group) is given."""

    total, count = 0.0, 0
    for g, (yt, preds) in enumerate(groups):
        if draws is None:
            vals = metric_rows(np.broadcast_to(yt, preds.shape), preds, k, metric)
        else:
            idx = draws[g]
            vals = metric_rows(np.broadcast_to(yt[idx], (preds.shape[0], *idx.shape)), preds[:, idx], k, metric)
        total = total + vals.sum(axis=0)
        count += preds.shape[0]
    return total / count


def _quantiles(boot: np.ndarray, alpha: float) -> tuple[float, float]:
    lo, hi = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def _row_interval(runs: Mapping, name: str, *, n_boot: int, seed: int, alpha: float) -> dict[str, Any]:
    pred_key, confusion_key, metric = SUBJECT_METRICS[name]
    got = _fold_groups(runs, pred_key, confusion_key)
    if isinstance(got, str):
        return {"reason": got}
    groups, k, linking, n_subjects = got
    rng = np.random.default_rng(seed)
    draws = [_strata_draws(yt, n_boot, rng) for yt, _ in groups]
    lo, hi = _quantiles(_mean_metric(groups, k, metric, draws), alpha)
    return {
        "estimate": float(_mean_metric(groups, k, metric)), "ci_low": lo, "ci_high": hi,
        "n_subjects": n_subjects, "n_runs": len(runs), "n_folds": len({f for f, _ in runs}),
        "n_boot": n_boot, "alpha": alpha, "linking": linking,
        "method": "percentile bootstrap over test subjects, drawn within each test fold and true class",
    }


def _rows_intervals(results, row_runs, *, n_boot, seed, alpha) -> list[dict[str, Any] | None]:
    out = []
    for row, rr in zip(results["rows"], row_runs):
        names = [m for m in row["metrics"] if m in SUBJECT_METRICS]
        if not rr.runs or not names:
            out.append(None)
            continue
        out.append({m: _row_interval(rr.runs, m, n_boot=n_boot, seed=seed, alpha=alpha) for m in names})
    return out


def subject_intervals(
    results: Mapping[str, Any],
    run_dir: str | os.PathLike | None = None,
    *,
    n_boot: int = N_BOOT,
    seed: int = BOOT_SEED,
    alpha: float = ALPHA,
) -> dict[str, dict[str, dict[str, Any]]]:
    """A bootstrap interval over test subjects for every subject-level metric of every row.

    The statistic is the row's own: the metric averaged over its folds × seeds. Each
    resample draws every test fold's subjects with replacement within each true class (the
    folds are built stratified) and scores every run of the fold on the same draw, so the
    interval is the uncertainty due to *which subjects* were tested, on top of which the
    run-to-run std of the table sits. The estimate equals the row's mean when the row
    summarises the same runs.

    Returns:
        ``{row id: {metric: {"estimate", "ci_low", "ci_high", "n_subjects", "n_runs",
        "n_folds", "n_boot", "alpha", "linking", "method"} | {"reason"}}}`` for the rows
        with per-run files (``linking`` as :func:`_fold_groups` says: exact with stored
        subject ids or one seed per fold, conservative from confusion matrices otherwise).
    """
    rows = _rows_intervals(results, load_row_runs(results, run_dir), n_boot=n_boot, seed=seed, alpha=alpha)
    return {rid: iv for rid, iv in zip(row_ids(results), rows) if iv is not None}


def _paired_subject_interval(runs_a, runs_b, name, *, n_boot, seed, alpha) -> dict[str, Any]:
    """Bootstrap interval of (method - baseline) on the same test subjects; needs the
    stored subject ids (a confusion matrix cannot say which subject the other row got
    right, and lining them up would shrink the interval)."""
    pred_key, _, metric = SUBJECT_METRICS[name]
    groups, k = [], 1
    for fold in sorted({f for f, _ in runs_a}):
        items = []
        for runs in (runs_a, runs_b):
            for (f, s), run in sorted(runs.items()):
                ts = run.get("test_subjects")
                if f != fold:
                    continue
                if not (isinstance(ts, Mapping) and ts.get("ids") is not None and pred_key in ts):
                    return {"reason": f"no per-subject predictions (test_subjects with ids, true, {pred_key}) "
                                      f"in fold{f}-seed{s} of {'the row' if runs is runs_a else 'the baseline'}"}
                ids = [str(i) for i in ts["ids"]]
                order = np.argsort(ids)
                items.append((sorted(ids), np.asarray(ts["true"])[order], np.asarray(ts[pred_key])[order],
                              runs is runs_a))
        if any(ids != items[0][0] or not np.array_equal(t, items[0][1]) for ids, t, _, _ in items):
            return {"reason": f"fold {fold}: the two rows tested different subjects"}
        yt = items[0][1].astype(np.int64)
        pa = np.stack([p for _, _, p, a in items if a]).astype(np.int64)
        pb = np.stack([p for _, _, p, a in items if not a]).astype(np.int64)
        k = max(k, 1 + int(max(yt.max(), pa.max(), pb.max())))
        groups.append((yt, pa, pb))
    rng = np.random.default_rng(seed)
    draws = [_strata_draws(yt, n_boot, rng) for yt, _, _ in groups]
    ga, gb = [(yt, pa) for yt, pa, _ in groups], [(yt, pb) for yt, _, pb in groups]
    boot = _mean_metric(ga, k, metric, draws) - _mean_metric(gb, k, metric, draws)
    lo, hi = _quantiles(boot, alpha)
    ea, eb = float(_mean_metric(ga, k, metric)), float(_mean_metric(gb, k, metric))
    return {
        "estimate": ea - eb, "estimate_method": ea, "estimate_baseline": eb, "ci_low": lo, "ci_high": hi,
        "n_subjects": int(sum(len(g[0]) for g in groups)), "n_boot": n_boot, "alpha": alpha,
        "method": "paired percentile bootstrap over test subjects, drawn within each test fold and true class",
    }


# --------------------------------------------------------------------------- against a baseline


def _fold_sizes(runs: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Mean training and test size of a fold for the corrected t-test, in subjects when
    every run says how many (``n_train_subjects`` [+ ``n_val_subjects``] and
    ``n_test_subjects`` or the metrics' ``num_subjects``), else in segments. The
    validation subjects count as training: the split holds them out of the test fold and
    the run learns from them (model selection), as it does from the training subjects."""
    runs = list(runs)

    def test_subjects(r):
        return r.get("n_test_subjects", r["metrics"].get("num_subjects"))

    if all(isinstance(r.get("n_train_subjects"), int) and isinstance(test_subjects(r), int) for r in runs):
        with_val = all(isinstance(r.get("n_val_subjects"), int) for r in runs)
        return {
            "unit": "subjects",
            "n_train": float(np.mean([r["n_train_subjects"] + (r["n_val_subjects"] if with_val else 0) for r in runs])),
            "n_test": float(np.mean([test_subjects(r) for r in runs])),
            "n_train_counts": "training + validation subjects" if with_val
            else "training subjects (n_val_subjects not stored)",
        }
    if all(isinstance(r.get(k), int) for r in runs for k in ("n_train", "n_val", "n_test")):
        return {
            "unit": "segments",
            "n_train": float(np.mean([r["n_train"] + r["n_val"] for r in runs])),
            "n_test": float(np.mean([r["n_test"] for r in runs])),
            "n_train_counts": "training + validation segments (subject counts not stored)",
        }
    return None


def _pairing_problem(a: RowRuns, base: RowRuns) -> str | None:
    """Why ``a`` cannot be paired run by run with the baseline, or None."""
    if a.problem:
        return a.problem
    if set(a.runs) != set(base.runs):
        def runs_text(keys):
            return ", ".join(f"fold {f} seed {s}" for f, s in sorted(keys))

        parts = []
        if set(a.runs) - set(base.runs):
            parts.append(f"only here: {runs_text(set(a.runs) - set(base.runs))}")
        if set(base.runs) - set(a.runs):
            parts.append(f"only in the baseline: {runs_text(set(base.runs) - set(a.runs))}")
        return "not the same (fold, seed) runs as the baseline (" + "; ".join(parts) + ")"
    for key in sorted(a.runs):
        ra, rb = a.runs[key], base.runs[key]
        ta, tb = ra.get("test_subjects") or {}, rb.get("test_subjects") or {}
        if ta.get("ids") is not None and tb.get("ids") is not None:
            if sorted(map(str, ta["ids"])) != sorted(map(str, tb["ids"])):
                return f"fold {key[0]} seed {key[1]}: tested other subjects than the baseline"
        elif ra.get("n_test") is not None and rb.get("n_test") is not None and ra["n_test"] != rb["n_test"]:
            return (f"fold {key[0]} seed {key[1]}: {ra['n_test']} test segments vs the baseline's "
                    f"{rb['n_test']}: not the same test fold")
    if len(base.runs) < 2:
        return f"needs at least 2 paired (fold, seed) runs, has {len(base.runs)}"
    return None


def _metric_values(runs: Mapping[tuple[int, int], Mapping[str, Any]], metric: str):
    """``{(fold, seed): value}``, or a string naming the first run without a finite value."""
    out = {}
    for (f, s), run in sorted(runs.items()):
        v = run["metrics"].get(metric)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            return f"fold{f}-seed{s} has no finite {metric}"
        out[f, s] = float(v)
    return out


def _compare(results, row_runs, baseline: str, *, alpha: float, n_boot: int, seed: int) -> dict[str, Any]:

    ids = row_ids(results)
    bi = find_baseline(results, baseline)
    base, bid = row_runs[bi], ids[bi]
    rows: dict[str, dict[str, Any]] = {}
    eligible: dict[str, RowRuns] = {}
    for i, rid in enumerate(ids):
        if i == bi:
            continue
        problem = f"the baseline: {base.problem}" if base.problem else _pairing_problem(row_runs[i], base)
        if problem:
            rows[rid] = {"status": "not compared", "reason": problem, "mark": ""}
        else:
            eligible[rid] = row_runs[i]
            rows[rid] = {"status": "compared", "n_pairs": len(base.runs), "mark": ""}
        if row_runs[i].note:
            rows[rid]["note"] = row_runs[i].note
    sizes = _fold_sizes(base.runs.values()) if not base.problem else None
    if eligible and sizes is None:
        for rid in eligible:
            rows[rid] = {"status": "not compared", "mark": "", "reason": "the per-run files hold no fold "
                         "sizes (n_train, n_val, n_test) for the corrected t-test"}
        eligible = {}
    holm_over: dict[str, list[str]] = {}
    for metric in COMPARED_METRICS:
        base_vals = _metric_values(base.runs, metric) if eligible else {}
        values = {}
        for rid, rr in eligible.items():
            v = base_vals if isinstance(base_vals, str) else _metric_values(rr.runs, metric)
            if isinstance(v, str):
                rows[rid][metric] = {"reason": f"the baseline's {v}" if v is base_vals else v}
            else:
                values[rid] = v
        holm_over[metric] = list(values)
        if values:
            table = compare_rows({bid: base_vals, **values}, bid, n_train=sizes["n_train"],
                                 n_test=sizes["n_test"], alpha=alpha)
            for rid, r in table.items():
                rows[rid][metric] = r
    for rid, rr in eligible.items():
        rows[rid]["mark"] = rows[rid].get(COMPARED_METRICS[0], {}).get("mark", "")
        name = next((m for m in COMPARED_METRICS if m in SUBJECT_METRICS), None)
        if name is not None:
            rows[rid][f"{name}_bootstrap"] = _paired_subject_interval(
                rr.runs, base.runs, name, n_boot=n_boot, seed=seed, alpha=alpha
            )
    return {
        "baseline": bid,
        **({"baseline_note": base.note} if base.note else {}),
        "metric": COMPARED_METRICS[0],
        "metrics": list(COMPARED_METRICS),
        "alpha": alpha,
        "test": "corrected resampled t-test (Nadeau & Bengio 2003) on the paired (fold, seed) differences, "
                "Holm across the compared rows; Wilcoxon signed-rank beside it",
        "mark_rule": f"* = Holm-adjusted corrected-t p < {alpha} on {COMPARED_METRICS[0]}",
        "sizes": sizes,
        "holm_over": holm_over,
        "rows": rows,
    }


def compare(
    results: Mapping[str, Any],
    run_dir: str | os.PathLike | None,
    baseline: str,
    *,
    alpha: float = ALPHA,
    n_boot: int = N_BOOT,
    seed: int = BOOT_SEED,
    point: str | int | None = None,
) -> dict[str, Any]:
    """Every row against the ``baseline`` row, paired over the same (fold, seed) runs read
    from the per-run files.

    For each metric of :data:`COMPARED_METRICS` (UA, subject accuracy) and each row that
    holds exactly the baseline's (fold, seed) runs on the same test folds:
    :func:`domadapt.stats.compare_rows` — the mean difference (method - baseline), its
    interval from the corrected resampled t-test with ``n_test / n_train`` of a fold (in
    subjects when the runs store subject counts, else segments: ``sizes`` says which), the
    t-test and Wilcoxon p-values, both Holm-adjusted over the rows compared on that metric,
    and ``mark`` (``"*"`` when the Holm-adjusted corrected-t p < alpha). The row's own
    ``mark`` is the one on UA. Subject accuracy also gets a paired bootstrap over test
    subjects (``subject_accuracy_bootstrap``) when the runs store per-subject predictions,
    else its ``reason``.

    A row that cannot be paired is not dropped: it appears with ``status: "not compared"``
    and the ``reason`` (other (fold, seed) runs, another test fold, no per-run files).

    Args:
        results: a results dict (see the module docstring); rows may carry ``run_dir``.
        run_dir: the folder holding ``runs/`` for rows without their own ``run_dir``.
        baseline: the baseline row (see :func:`find_baseline`).
        alpha: 1 - the confidence level, and the mark's threshold.
        n_boot, seed: the subject bootstrap's resamples and generator seed.
        point: a learning-curve point to compare at (default: each row's own).

    Returns:
        ``{"baseline": row id, "metric": "uar", "metrics": [...], "alpha", "test",
        "mark_rule", "sizes": {"unit", "n_train", "n_test", "n_train_counts"} | None,
        "holm_over": {metric: [row ids]}, "rows": {row id: {"status", "mark", "n_pairs" |
        "reason", "uar": {...}, "subject_accuracy": {...},
        "subject_accuracy_bootstrap": {...}}}}``.

    Raises:
        DomadaptError: ``baseline`` names no row (or several).
    """
    return _compare(results, load_row_runs(results, run_dir, point=point), baseline,
                    alpha=alpha, n_boot=n_boot, seed=seed)


def _with_statistics(results, row_runs, baseline, *, alpha, n_boot, seed, run_dir=None) -> dict[str, Any]:
    out = dict(results)
    out["rows"] = [dict(r) for r in results["rows"]]
    for row, iv in zip(out["rows"], _rows_intervals(results, row_runs, n_boot=n_boot, seed=seed, alpha=alpha)):
        if iv is not None:
            row["subject_bootstrap"] = iv
    if baseline:
        out["comparison"] = _compare_or_error(results, row_runs, baseline, alpha=alpha, n_boot=n_boot, seed=seed)
        if results.get("curve"):
            out["curve"] = dict(results["curve"])
            out["curve"]["comparisons"] = {
                point: _compare_or_error(results, load_row_runs(results, run_dir, point=point), baseline,
                                         alpha=alpha, n_boot=n_boot, seed=seed)
                for point in results["curve"]["points"]
            }
    return out


def _compare_or_error(results, row_runs, baseline, **kw) -> dict[str, Any]:
    """:func:`_compare`, or ``{"baseline", "error"}``: the results are kept and the tables say
    what went wrong."""
    try:
        return _compare(results, row_runs, baseline, **kw)
    except DomadaptError as e:
        return {"baseline": baseline, "error": str(e), "rows": {}}


def add_statistics(
    results: Mapping[str, Any],
    run_dir: str | os.PathLike | None = None,
    *,
    baseline: str | None = None,
    alpha: float = ALPHA,
    n_boot: int = N_BOOT,
    seed: int = BOOT_SEED,
) -> dict[str, Any]:
    """A copy of ``results`` with the statistics recomputed from the per-run files: each
    row with files gets ``subject_bootstrap`` (:func:`subject_intervals`), and with a
    ``baseline`` (default: the one ``results["comparison"]`` already names) the table gets
    ``comparison`` (:func:`compare`). Rows without per-run files keep what they had.

    A baseline that names no row does not raise here (a long run's results must still be
    written): ``comparison`` then holds ``{"baseline", "error"}`` and the tables say so;
    check names up front with :func:`find_baseline`.
    """
    clean = _jsonable(results)
    _validate(clean)
    baseline = baseline or (clean.get("comparison") or {}).get("baseline")
    row_runs = load_row_runs(clean, run_dir)
    return _with_statistics(clean, row_runs, baseline, alpha=alpha, n_boot=n_boot, seed=seed, run_dir=run_dir)
