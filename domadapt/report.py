"""The results files every recipe writes, the statistics behind them, the comparison across
runs, and the plots.

The results dict is a contract other code relies on::

    {"recipe": str, "data": "synthetic" | "real", "title": str, "subject_overlap": bool,
     "config": {...}, "git": str | None, "skipped": [{"path", "reason"}],
     "rows": [{"method": str, "backbone": str,
               "metrics": {"accuracy" | "uar" | "macro_f1" | "subject_accuracy" | ...:
                           {"mean", "std", "runs": [...]}}}]}

Metric values are fractions in [0, 1]; tables show them in percent. ``merge_results`` may
also produce ``data == "mixed"`` (runs on synthetic and real data side by side).
Every file is written atomically (a temp file in the same folder, then ``os.replace``), so
a crash never leaves a half-written results.json behind.

**Statistics from the per-run files.** :func:`add_statistics` (and :func:`write_results`,
which calls it) recompute, from the files the runner leaves in
``RUN/runs/<row key>/fold{F}[-n{POINT}]-seed{S}.json``:

- ``rows[i]["subject_bootstrap"]``: ``{metric: {"estimate", "ci_low", "ci_high", ...}}`` for
  every subject-level metric of the row (:func:`subject_intervals`);
- ``results["comparison"]`` when a baseline row is named (:func:`compare`):
  ``{"baseline", "metric", "metrics", "alpha", "sizes", "holm_over", "rows": {label: ...}}``.

A per-run file is read for these keys (the runner's ``_finish``); the optional ones make the
statistics exact where, without them, they are approximated (each says which it used)::

    {"method": str, "fold": int, "seed": int,
     "metrics": {evaluate_predictions' keys: "uar", "subject_accuracy", "subject_confusion",
                 "subject_confusion_meanprob", "num_subjects", ...},
     "n_train": int, "n_val": int, "n_test": int,            # segments
     # optional
     "n_train_subjects": int, "n_val_subjects": int, "n_test_subjects": int,
     "test_subjects": {"ids": [str], "true": [int], "pred": [int], "pred_meanprob": [int]}}

A row may carry ``"key"`` (its ``runs/`` folder name), ``"target_subjects"`` (the
learning-curve point it summarises) and, after :func:`merge_results`, ``"run_dir"``,
``"run_label"`` and ``"recipe"``; without ``key`` the folder is found the way the runner
names it (``label@backbone`` or ``label``, made file-system safe).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from domadapt.errors import DomadaptError

__all__ = [
    "DATA_KINDS",
    "TABLE_COLUMNS",
    "CSV_COLUMNS",
    "SUMMARY_CSV_COLUMNS",
    "COMPARED_METRICS",
    "SUBJECT_METRICS",
    "RowRuns",
    "load_row_runs",
    "row_ids",
    "find_baseline",
    "subject_intervals",
    "compare",
    "add_statistics",
    "write_results",
    "load_results",
    "merge_results",
    "format_table",
    "format_markdown",
    "plot_confusion",
    "plot_curves",
]

DATA_KINDS = ("synthetic", "real", "mixed")  # "mixed" only comes out of merge_results
# (metric key, column header) of the comparison tables, in order
TABLE_COLUMNS = (
    ("accuracy", "Accuracy (WA)"),
    ("uar", "UA"),
    ("macro_f1", "Macro-F1"),
    ("subject_accuracy", "Subject acc."),
)
RUNS_METRIC = "accuracy"  # the per-run list shown in the tables: the lab reported runs so (docs/lineage.md)
GAP_HEADER = "A-dist. before → after"  # proxy A-distance, held-out general features (0 = no gap, 2 = separable)
#: results.csv, long (tidy) form: one line per (row, fold, seed, metric)
CSV_COLUMNS = ("recipe", "method", "backbone", "fold", "seed", "metric", "value")
#: results_summary.csv: one line per row x metric
SUMMARY_CSV_COLUMNS = ("recipe", "method", "backbone", "metric", "mean", "std", "n_runs", "runs")
_MAX_SKIPPED_SHOWN = 100  # results.md lists this many skipped files; results.json has all
_REQUIRED = ("recipe", "data", "title", "subject_overlap", "config", "git", "skipped", "rows")

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
_RUN_FILE = re.compile(r"^fold(?P<fold>\d+)(?:-n(?P<point>[^-]+))?-seed(?P<seed>\d+)\.json$")


# --------------------------------------------------------------------------- validation


def _validate(results: Mapping[str, Any], where: str = "results") -> None:
    if not isinstance(results, Mapping):
        raise DomadaptError(f"{where}: expected a dict, got {type(results).__name__}")
    missing = [k for k in _REQUIRED if k not in results]
    if missing:
        raise DomadaptError(f"{where}: missing key(s) {', '.join(missing)}")
    if results["data"] not in DATA_KINDS:
        raise DomadaptError(f"{where}: data must be one of {DATA_KINDS}, got {results['data']!r}")
    for i, row in enumerate(results["rows"]):
        for key in ("method", "backbone", "metrics"):
            if key not in row:
                raise DomadaptError(f"{where}: rows[{i}] has no {key!r}")
        for name, summary in row["metrics"].items():
            if not isinstance(summary, Mapping) or not {"mean", "std", "runs"} <= set(summary):
                raise DomadaptError(
                    f"{where}: rows[{i}].metrics[{name!r}] must be {{'mean', 'std', 'runs'}}"
                )
    for i, item in enumerate(results["skipped"]):
        if not isinstance(item, Mapping) or not {"path", "reason"} <= set(item):
            raise DomadaptError(f"{where}: skipped[{i}] must be {{'path', 'reason'}}")


def _jsonable(obj: Any) -> Any:
    """Plain JSON types; NaN/inf become null (strict JSON has no NaN)."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dataclass_fields__"):  # SkippedFile and friends
        return _jsonable(vars(obj))
    return obj


# --------------------------------------------------------------------------- per-run files


@dataclass(frozen=True)
class RowRuns:
    """The per-run result files of one results row.

    ``runs`` maps ``(fold, seed)`` to the file's dict (only the files of the row's
    learning-curve point); ``problem`` says why there are none; ``note`` flags files that
    do not match the row's own summary (e.g. left over from an earlier run in the folder).
    """

    folder: Path | None
    runs: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    problem: str | None = None
    note: str | None = None


def _file_key(text: str) -> str:
    """The runner's file-system-safe row name (``MethodSpec.key``)."""
    return "".join(c if c.isalnum() or c in "._-@=" else "-" for c in text)


def _run_root(row: Mapping[str, Any], run_dir: str | os.PathLike | None) -> Path | None:
    d = row.get("run_dir", run_dir)
    if d is None:
        return None
    d = Path(d)
    return d.parent if d.suffix == ".json" else d  # merge_results takes results.json paths too


def _row_point(row: Mapping[str, Any], results: Mapping[str, Any]) -> str:
    """The learning-curve point whose runs the row summarises: the row's own
    ``target_subjects``, else the curve's last point, else "all" (no curve)."""
    if row.get("target_subjects") is not None:
        return str(row["target_subjects"])
    points = (results.get("curve") or {}).get("points") or ["all"]
    return str(points[-1])


def _summary_runs(row: Mapping[str, Any]) -> int | None:
    counts = {len(s["runs"]) for s in row["metrics"].values()}
    return counts.pop() if len(counts) == 1 else None


def _load_row(row: Mapping[str, Any], run_dir: Any, point: str) -> RowRuns:
    root = _run_root(row, run_dir)
    if root is None:
        return RowRuns(None, problem="no run folder known for this row")
    label = row.get("run_label", row["method"])
    names = [row["key"]] if row.get("key") else list(
        dict.fromkeys([_file_key(f"{label}@{row['backbone']}"), _file_key(label)])
    )
    folder = next((root / "runs" / n for n in names if (root / "runs" / n).is_dir()), None)
    if folder is None:
        return RowRuns(None, problem=f"no per-run files ({' or '.join(str(root / 'runs' / n) for n in names)})")
    runs: dict[tuple[int, int], dict[str, Any]] = {}
    for path in sorted(folder.iterdir()):
        m = _RUN_FILE.match(path.name)
        if m is None or (m["point"] or "all") != point:
            continue
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
            metrics = run["metrics"]
            if not isinstance(metrics, Mapping):
                raise TypeError("'metrics' is not a dict")
        except (OSError, ValueError, KeyError, TypeError) as e:
            return RowRuns(folder, problem=f"{path}: not a per-run result ({type(e).__name__}: {e})")
        if run.get("method", label) != label:
            return RowRuns(folder, problem=f"{folder} holds runs of {run['method']!r}, not {label!r}")
        runs[int(m["fold"]), int(m["seed"])] = run
    if not runs:
        at = "" if point == "all" else f" at {point} target subjects"
        return RowRuns(folder, problem=f"{folder}: no fold*-seed*.json files{at}")
    expected = _summary_runs(row)
    note = None
    if expected is not None and expected != len(runs):
        note = f"the row summarises {expected} runs but {folder} holds {len(runs)}"
    return RowRuns(folder, runs, note=note)


def load_row_runs(
    results: Mapping[str, Any], run_dir: str | os.PathLike | None = None, *, point: str | int | None = None
) -> list[RowRuns]:
    """The per-run files of every row, in row order.

    Args:
        results: a results dict (a row's ``run_dir`` wins over ``run_dir``).
        run_dir: the run folder holding ``runs/`` for rows without their own ``run_dir``.
        point: the learning-curve point to read (``4``, ``"all"``); default: each row's own
            (see the module docstring).
    """
    return [
        _load_row(row, run_dir, str(point) if point is not None else _row_point(row, results))
        for row in results["rows"]
    ]


def row_ids(results: Mapping[str, Any]) -> list[str]:
    """A unique name per row: its label, with ``@backbone`` where labels repeat."""
    labels = [r["method"] for r in results["rows"]]
    ids = [
        f"{r['method']}@{r['backbone']}" if labels.count(r["method"]) > 1 else r["method"]
        for r in results["rows"]
    ]
    return [f"{x}#{i}" if ids.count(x) > 1 else x for i, x in enumerate(ids)]


def find_baseline(results: Mapping[str, Any], name: str) -> int:
    """The index of the row called ``name``: a row id (:func:`row_ids`), or, in a merged
    table, a method label as its own run wrote it (``target_only`` for
    ``casia2modma/target_only``) when exactly one row has it."""
    ids = row_ids(results)
    if name in ids:
        return ids.index(name)
    hits = [i for i, r in enumerate(results["rows"]) if name in (r["method"], r.get("run_label"))]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise DomadaptError(
            f"baseline {name!r} is ambiguous: rows {', '.join(ids[i] for i in hits)}; name one of them"
        )
    raise DomadaptError(f"baseline {name!r} is not a row; rows: {', '.join(ids)}")


# --------------------------------------------------------------------------- over test subjects


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
    from domadapt.stats import _metric_rows  # the one vectorised metric, same conventions as evaluate

    total, count = 0.0, 0
    for g, (yt, preds) in enumerate(groups):
        if draws is None:
            vals = _metric_rows(np.broadcast_to(yt, preds.shape), preds, k, metric)
        else:
            idx = draws[g]
            vals = _metric_rows(np.broadcast_to(yt[idx], (preds.shape[0], *idx.shape)), preds[:, idx], k, metric)
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
    from domadapt.stats import compare_rows

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


# --------------------------------------------------------------------------- writing


def _atomic_write(path: Path, data: str | bytes) -> None:
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8", "newline": ""})) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _summary_csv_text(results: Mapping[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SUMMARY_CSV_COLUMNS)
    for row in results["rows"]:
        for metric, s in row["metrics"].items():
            runs = ";".join(repr(float(v)) if v is not None else "" for v in s["runs"])
            w.writerow([row.get("recipe", results["recipe"]), row["method"], row["backbone"], metric,
                        s["mean"], s["std"], len(s["runs"]), runs])
    return buf.getvalue()


def _csv_value(v: Any) -> Any:
    return "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


def _long_csv_text(results: Mapping[str, Any], row_runs: Sequence[RowRuns]) -> str:
    """One line per (row, fold, seed, metric) from the per-run files; a row without them
    contributes its summarised run values with fold and seed left empty."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for row, rr in zip(results["rows"], row_runs):
        head = [row.get("recipe", results["recipe"]), row["method"], row["backbone"]]
        if rr.runs:
            for (fold, seed), run in sorted(rr.runs.items()):
                for metric in row["metrics"]:
                    v = run["metrics"].get(metric)
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        w.writerow([*head, fold, seed, metric, _csv_value(v)])
        else:
            for metric, s in row["metrics"].items():
                for v in s["runs"]:
                    w.writerow([*head, "", "", metric, _csv_value(v)])
    return buf.getvalue()


def write_results(
    out_dir: str | os.PathLike, results: Mapping[str, Any], *, baseline: str | None = None
) -> dict[str, Path]:
    """Write ``results.json``, ``results.csv``, ``results_summary.csv`` and ``results.md``
    into ``out_dir``, with the statistics recomputed from the per-run files (see
    :func:`add_statistics`; the rows' ``run_dir``, else ``out_dir``).

    ``results.csv`` is long (tidy): one line per row × (fold, seed) run × metric, columns
    :data:`CSV_COLUMNS`. ``results_summary.csv`` has one line per row × metric, columns
    :data:`SUMMARY_CSV_COLUMNS` (``runs`` joined by ``;``). With ``baseline`` (or a
    ``comparison`` already in ``results``) results.json gets ``comparison`` and the
    tables the "Δ UA vs BASELINE [95% CI]" and mark columns.

    Returns ``{"json", "csv", "summary_csv", "md"}`` paths.
    """
    if not isinstance(results, Mapping):
        raise DomadaptError(f"results: expected a dict, got {type(results).__name__}")
    clean = _jsonable(results)  # numpy scalars, Paths, SkippedFile objects -> plain JSON
    _validate(clean)
    out = Path(out_dir)
    baseline = baseline or (clean.get("comparison") or {}).get("baseline")
    row_runs = load_row_runs(clean, out)
    clean = _jsonable(_with_statistics(clean, row_runs, baseline, alpha=ALPHA, n_boot=N_BOOT, seed=BOOT_SEED, run_dir=out))
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "csv": out / "results.csv",
             "summary_csv": out / "results_summary.csv", "md": out / "results.md"}
    _atomic_write(paths["json"], json.dumps(clean, indent=2, allow_nan=False) + "\n")
    _atomic_write(paths["csv"], _long_csv_text(clean, row_runs))
    _atomic_write(paths["summary_csv"], _summary_csv_text(clean))
    _atomic_write(paths["md"], format_markdown(clean))
    return paths


# --------------------------------------------------------------------------- tables


def _flags(results: Mapping[str, Any]) -> list[str]:
    flags = []
    if results["data"] == "synthetic":
        flags.append("SYNTHETIC stand-in data")
    elif results["data"] == "mixed":
        flags.append("MIXED data: some runs on SYNTHETIC stand-in data")
    if results["subject_overlap"]:
        flags.append("subjects overlap between train and test")
    return flags


def _title(results: Mapping[str, Any]) -> str:
    flags = _flags(results)
    return results["title"] + (f" ({'; '.join(flags)})" if flags else "")


def _pct(x: Any) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def _pp(x: float) -> str:
    """A difference in percentage points, signed."""
    return f"{100 * x:+.2f}"


def _interval_text(d: Mapping[str, Any], key: str = "mean_diff") -> str:
    return f"{_pp(d[key])} [{_pp(d['ci_low'])}, {_pp(d['ci_high'])}]"


def _cells(row: Mapping[str, Any], rid: str, comparison: Mapping[str, Any] | None) -> list[str]:
    cells = [row["method"], row["backbone"]]
    boot = row.get("subject_bootstrap") or {}
    for key, _ in TABLE_COLUMNS:
        s = row["metrics"].get(key)
        missing = s is None or _pct(s["mean"]) == "–"
        text = "–" if missing else f"{_pct(s['mean'])} ± {_pct(s['std'])}"
        if not missing and "ci_low" in boot.get(key, {}):
            text += f" [{_pct(boot[key]['ci_low'])}, {_pct(boot[key]['ci_high'])}]"
        cells.append(text)
    cells += [_validation_cell(row), _gap_cell(row)]
    if comparison is not None:
        cells += _comparison_cells(rid, comparison)
    s = row["metrics"].get(RUNS_METRIC)
    cells.append("–" if s is None else ", ".join(_pct(v) for v in s["runs"]))
    return cells


def _comparison_cells(rid: str, comparison: Mapping[str, Any]) -> list[str]:
    if rid == comparison["baseline"]:
        return ["(baseline)", ""]
    c = comparison["rows"].get(rid, {})
    d = c.get(comparison.get("metric", COMPARED_METRICS[0]), {})
    if "mean_diff" not in d:
        return ["–", ""]
    return [_interval_text(d), c.get("mark", "")]


def _validation_cell(row: Mapping[str, Any]) -> str:
    """The selected validation UA; runs still at chance on validation are flagged."""
    v = row.get("validation")
    if not v or v.get("uar") is None:
        return "–"
    text = _pct(v["uar"]["mean"])
    if v["runs_at_chance"]:
        text += f" (AT CHANCE {v['runs_at_chance']}/{v['runs_judged']})"
    return text


def _gap_cell(row: Mapping[str, Any]) -> str:
    """The proxy A-distance of the held-out general features, before -> after training."""
    gap = row.get("domain_gap")
    if not gap:
        return "–"
    a = gap["general"]["a_distance"]
    return f"{a['before']['mean']:.2f} → {a['after']['mean']:.2f}"


def _comparison(results: Mapping[str, Any]) -> Mapping[str, Any] | None:
    c = results.get("comparison")
    return c if c and "error" not in c else None


def _headers(comparison: Mapping[str, Any] | None = None) -> list[str]:
    head = ["Method", "Backbone", *(h for _, h in TABLE_COLUMNS), "Val. UA", GAP_HEADER]
    if comparison is not None:
        head += [f"Δ UA vs {comparison['baseline']} [95% CI]", "Sig."]
    return head + ["Accuracy per run"]


def _n_runs(results: Mapping[str, Any]) -> str:
    counts = sorted({len(s["runs"]) for r in results["rows"] for s in r["metrics"].values()})
    return "/".join(str(c) for c in counts) or "0"


def _bootstrap_legend(results: Mapping[str, Any]) -> str | None:
    linkings = {iv.get("linking") for r in results["rows"] for iv in (r.get("subject_bootstrap") or {}).values()}
    linkings.discard(None)
    if not linkings:
        return None
    text = ("[lo, hi] after a subject-level mean: 95% bootstrap interval over test subjects "
            "(drawn within each test fold and class; all runs of a fold on the same draw)")
    if "confusion, comonotone" in linkings:
        text += ("; the runs store confusion matrices only, so a fold's seeds are lined up hit with hit: "
                 "the interval is conservative (at least as wide as with per-subject predictions)")
    if "independent" in linkings:
        text += "; some folds' seeds disagree on the class counts and were resampled separately (narrower)"
    return text + "."


def _sizes_text(sizes: Mapping[str, Any] | None) -> str:
    if not sizes:
        return "n_test/n_train unknown"
    return f"n_test/n_train = {sizes['n_test']:.4g}/{sizes['n_train']:.4g} {sizes['unit']} per fold"


def _comparison_legend(comparison: Mapping[str, Any]) -> str:
    n = len(comparison["holm_over"].get(comparison["metric"], []))
    return (
        f"Δ UA vs {comparison['baseline']}: mean paired difference over the same (fold, seed) runs, "
        f"percentage points, 95% CI of the corrected resampled t-test (Nadeau & Bengio 2003; "
        f"{_sizes_text(comparison['sizes'])}); Sig. * = Holm-adjusted p < {comparison['alpha']:g} "
        f"over the {n} compared row(s). Details below."
    )


def _p(x: Any) -> str:
    return "–" if x is None else (f"{x:.3g}" if x >= 1e-4 else f"{x:.1e}")


def _comparison_markdown(results: Mapping[str, Any]) -> list[str]:
    c = results.get("comparison")
    if not c:
        return []
    lines = ["", f"## Paired comparison with `{c['baseline']}`", ""]
    if "error" in c:
        return lines + [f"Not computed: {c['error']}"]
    lines.append(
        "Δ = row − baseline, percentage points, mean over the same (fold, seed) runs; 95% CI and p from the "
        f"corrected resampled t-test ({_sizes_text(c['sizes'])}), p Holm-adjusted over the rows compared "
        "on that metric (in brackets: unadjusted); Wilcoxon signed-rank p beside it (its floor with J pairs "
        "is 2/2^J). The subject bootstrap column resamples test subjects, paired."
    )
    lines.append("")
    head = ["Method", "Pairs", "Δ UA [95% CI]", "p", "Wilcoxon p", "Δ subject acc. [95% CI]", "p",
            "Wilcoxon p", "Δ subject acc. [subject bootstrap]"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|---|" + "|".join(["---:"] * (len(head) - 1)) + "|")
    for rid, r in c["rows"].items():
        name = rid.replace("|", "\\|")
        if r["status"] != "compared":
            lines.append(f"| {name} | – | not compared: {r['reason'].replace('|', '/')} |" + " |" * (len(head) - 3))
            continue
        cells = [name, str(r["n_pairs"])]
        for metric in COMPARED_METRICS:
            d = r.get(metric, {})
            if "mean_diff" not in d:
                cells += [f"– ({d.get('reason', 'not computed')})", "–", "–"]
                continue
            cells += [_interval_text(d) + (f" {d['mark']}" if d["mark"] else ""),
                      f"{_p(d['p_t_holm'])} ({_p(d['p_t'])})",
                      f"{_p(d['p_wilcoxon_holm'])} ({_p(d['p_wilcoxon'])})"]
        b = r.get("subject_accuracy_bootstrap", {})
        cells.append(_interval_text(b, "estimate") if "ci_low" in b else f"– ({b.get('reason', 'not computed')})")
        lines.append("| " + " | ".join(x.replace("|", "/") for x in cells) + " |")
    notes = [(rid, r["note"]) for rid, r in c["rows"].items() if r.get("note")]
    if c.get("baseline_note"):
        notes.insert(0, (c["baseline"], c["baseline_note"]))
    if notes:
        lines += [""] + [f"- {rid}: {note}" for rid, note in notes]
    return lines


def _curve_markdown(results: Mapping[str, Any]) -> list[str]:
    """One table per learning-curve point: each method's UA and subject accuracy with the
    labelled target subjects it trained on, and its paired Δ UA against the baseline there."""
    curve = results.get("curve")
    if not curve:
        return []
    comparisons = curve.get("comparisons") or {}
    lines = ["", "## Learning curve: labelled target subjects per training fold", ""]
    lines.append("Percent, mean ± sample std over folds × seeds; plots/learning-curve.png draws the same.")
    for point in curve["points"]:
        comparison = comparisons.get(point)
        compared = comparison is not None and "error" not in comparison
        lines += ["", f"### {point} labelled subject(s)" if point != "all" else "### all labelled subjects", ""]
        if comparison is not None and not compared:
            lines += [f"Comparison not computed: {comparison['error']}", ""]
        head = ["Method", "Labelled subjects", "UA", "Subject acc."]
        if compared:
            head += [f"Δ UA vs {comparison['baseline']} [95% CI]", "Sig."]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|---|" + "|".join(["---:"] * (len(head) - 1)) + "|")
        for row, rid in zip(curve["rows"], row_ids(results)):
            at = row["points"][point]
            cells = [rid, f"{at['n_train_subjects']:.4g}"]
            cells += [f"{_pct(at[m]['mean'])} ± {_pct(at[m]['std'])}" for m in ("uar", "subject_accuracy")]
            if compared:
                cells += _comparison_cells(rid, comparison)
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def format_markdown(results: Mapping[str, Any]) -> str:
    """The ``results.md`` text: title with its warnings, the table (with the comparison
    columns when ``results["comparison"]`` exists), the comparison details, the skipped
    files."""
    _validate(results)
    comparison = _comparison(results)
    lines = [f"# {_title(results)}", ""]
    git = results["git"] or "unknown"
    lines.append(f"Recipe `{results['recipe']}` · data: {results['data']} · git: `{git}`")
    lines.append("")
    lines.append(f"Percent; mean ± sample std over {_n_runs(results)} runs (folds × seeds).")
    lines.append(
        "Val. UA: validation UA of the kept model (AT CHANCE: runs below chance + 5 points, not yet learned). "
        f"{GAP_HEADER}: proxy A-distance between held-out source and target general features "
        "(subject-grouped linear domain classifier; 0 = indistinguishable, 2 = separable), mean over runs."
    )
    legend = _bootstrap_legend(results)
    if legend:
        lines.append(legend)
    if comparison is not None:
        lines.append(_comparison_legend(comparison))
    lines.append("")
    head = _headers(comparison)
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
    for row, rid in zip(results["rows"], row_ids(results)):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(row, rid, comparison)) + " |")
    lines += _comparison_markdown(results)
    lines += _curve_markdown(results)
    skipped = results["skipped"]
    if skipped:
        lines += ["", f"## Skipped files ({len(skipped)})", ""]
        lines += [f"- `{s['path']}`: {s['reason']}" for s in skipped[:_MAX_SKIPPED_SHOWN]]
        if len(skipped) > _MAX_SKIPPED_SHOWN:
            lines.append(f"- ... and {len(skipped) - _MAX_SKIPPED_SHOWN} more (see results.json)")
    return "\n".join(lines) + "\n"


def format_table(results: Mapping[str, Any]) -> str:
    """The same table as aligned plain text, for the terminal."""
    _validate(results)
    comparison = _comparison(results)
    table = [_headers(comparison)] + [_cells(r, rid, comparison) for r, rid in zip(results["rows"], row_ids(results))]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [_title(results), f"percent; mean ± sample std over {_n_runs(results)} runs", ""]
    out += [line(table[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in table[1:]]
    legend = _bootstrap_legend(results)
    if legend or results.get("comparison"):
        out.append("")
    if legend:
        out.append(legend)
    c = results.get("comparison")
    if c and "error" in c:
        out.append(f"comparison with {c['baseline']}: not computed ({c['error']})")
    elif c:
        out.append(_comparison_legend(c).replace(" Details below.", " Details in results.md."))
        out += [f"  {rid}: not compared ({r['reason']})" for rid, r in c["rows"].items() if r["status"] != "compared"]
    if results["skipped"]:
        out += ["", f"{len(results['skipped'])} file(s) skipped (listed in results.md)"]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- merging


def load_results(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read ``RUN_DIR/results.json`` (or that file itself); errors name the path."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise DomadaptError(f"{path}: no results.json here (is this a run folder?)")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DomadaptError(f"{path}: not a valid results.json ({e})") from None
    _validate(results, where=str(path))
    return results


def merge_results(run_dirs: Iterable[str | os.PathLike]) -> dict[str, Any]:
    """One comparison table from several runs' results.json.

    Row labels become ``recipe/method`` (backbone stays its own column). When the runs mix
    synthetic and real data, ``data`` is ``"mixed"`` and the title says so; a row whose run
    differs from the others in data kind or subject overlap is tagged in its label. Each
    row keeps ``run_dir``, ``run_label`` (its label in its own run) and ``recipe``, so that
    :func:`add_statistics` finds its per-run files; a run's comparison is not carried over
    (recompute it with a baseline of the merged table).
    """
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise DomadaptError("merge_results needs at least one run folder")
    loaded = [load_results(d) for d in run_dirs]
    kinds = {r["data"] for r in loaded}
    overlaps = {bool(r["subject_overlap"]) for r in loaded}
    rows, skipped = [], []
    for d, res in zip(run_dirs, loaded):
        tags = []
        if len(kinds) > 1:
            tags.append(res["data"])
        if len(overlaps) > 1 and res["subject_overlap"]:
            tags.append("subjects overlap")
        suffix = f" ({', '.join(tags)})" if tags else ""
        root = d.parent if d.suffix == ".json" else d
        for row in res["rows"]:
            point = row.get("target_subjects")
            if point is None and res.get("curve"):
                point = res["curve"]["points"][-1]
            rows.append({**row, "method": f"{res['recipe']}/{row['method']}{suffix}",
                         "run_label": row.get("run_label", row["method"]), "recipe": row.get("recipe", res["recipe"]),
                         "run_dir": str(row.get("run_dir", root)), "data": res["data"],
                         "subject_overlap": bool(res["subject_overlap"]),
                         **({"target_subjects": point} if point is not None else {})})
        skipped += res["skipped"]
    gits = {r["git"] for r in loaded}
    recipes = ", ".join(dict.fromkeys(r["recipe"] for r in loaded))
    return {
        "recipe": "merged",
        "data": kinds.pop() if len(kinds) == 1 else "mixed",
        "title": f"Comparison of {len(loaded)} runs: {recipes}",
        "subject_overlap": any(overlaps),
        "config": {"run_dirs": [str(d) for d in run_dirs]},
        "git": gits.pop() if len(gits) == 1 else None,
        "skipped": skipped,
        "rows": rows,
    }


# --------------------------------------------------------------------------- plots


def _figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (5.0, 4.0)):
    # Figure + Agg canvas directly: no pyplot global state, no display needed
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save_png(fig: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    _atomic_write(path, buf.getvalue())
    return path


def plot_confusion(matrix: Any, classes: Sequence[str], path: str | os.PathLike, *, title: str) -> Path:
    """A confusion matrix PNG: counts written in the cells, colour = row-normalised recall."""
    cm = np.asarray(matrix, dtype=np.float64)
    k = len(classes)
    if cm.shape != (k, k):
        raise DomadaptError(f"confusion matrix of shape {cm.shape} does not fit {k} classes")
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    fig, axes = _figure(size=(1.2 + 0.7 * k, 1.0 + 0.65 * k))
    ax = axes[0, 0]
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), labels=list(classes), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{cm[i, j]:g}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    fig.tight_layout()
    return _save_png(fig, path)


def plot_curves(history: Mapping[str, Sequence[float]], path: str | os.PathLike, *, title: str) -> Path:
    """Training curves PNG, one line per series; losses and other metrics on separate panels."""
    series = {k: list(v) for k, v in history.items() if len(v)}
    if not series:
        raise DomadaptError("plot_curves: history has no values to plot")
    losses = {k: v for k, v in series.items() if "loss" in k}
    others = {k: v for k, v in series.items() if "loss" not in k}
    panels = [p for p in (losses, others) if p]
    fig, axes = _figure(1, len(panels), size=(5.0 * len(panels), 3.8))
    for ax, panel in zip(axes[0], panels):
        for name, values in panel.items():
            ax.plot(range(1, len(values) + 1), values, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss" if panel is losses else "value")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save_png(fig, path)


def plot_feature_space(
    stages: Mapping[str, tuple[Any, Any]], path: str | os.PathLike, *, title: str, max_points: int = 400
) -> Path:
    """Source vs target features in 2-D, one panel per stage (e.g. "before", "after").

    ``stages`` maps a panel name to ``(f_s [N, D], f_t [M, D])``. Each panel has its own PCA
    (scikit-learn) fitted on both domains together, so the picture shows how far apart the
    two clouds are in the directions of largest variance at that point of training.
    """
    from sklearn.decomposition import PCA

    if not stages:
        raise DomadaptError("plot_feature_space: no feature sets given")
    fig, axes = _figure(1, len(stages), size=(4.2 * len(stages), 4.0))
    rng = np.random.default_rng(0)
    for ax, (name, (f_s, f_t)) in zip(axes[0], stages.items()):
        f_s, f_t = np.asarray(f_s, dtype=np.float64), np.asarray(f_t, dtype=np.float64)
        f_s = f_s[rng.permutation(len(f_s))[:max_points]]
        f_t = f_t[rng.permutation(len(f_t))[:max_points]]
        both = np.concatenate([f_s, f_t])
        z = PCA(n_components=2, random_state=0).fit_transform(both) if both.shape[1] >= 2 else np.c_[both, both]
        ax.scatter(z[: len(f_s), 0], z[: len(f_s), 1], s=6, alpha=0.5, label="source")
        ax.scatter(z[len(f_s):, 0], z[len(f_s):, 1], s=6, alpha=0.5, label="target")
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save_png(fig, path)


def plot_learning_curve(curve: Mapping[str, Any], path: str | os.PathLike, *, title: str) -> Path:
    """UA and subject accuracy against the labelled target subjects, one line per method with
    a band of ± one std over folds x seeds (``curve`` as the runner's ``results["curve"]``)."""
    fig, axes = _figure(1, 2, size=(10.0, 4.0))
    for ax, metric, name in ((axes[0][0], "uar", "UA"), (axes[0][1], "subject_accuracy", "subject accuracy")):
        for row in curve["rows"]:
            pts = [row["points"][p] for p in curve["points"]]
            x = np.array([p["n_train_subjects"] for p in pts])
            mean = np.array([100 * p[metric]["mean"] for p in pts])
            std = np.array([100 * (p[metric]["std"] or 0.0) for p in pts])
            ax.plot(x, mean, marker="o", label=row["method"])
            ax.fill_between(x, mean - std, mean + std, alpha=0.15)
        ax.set_xlabel("labelled target training subjects per fold")
        ax.set_ylabel(f"{name} (%)")
        ax.grid(alpha=0.3)
    axes[0][1].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return _save_png(fig, path)

