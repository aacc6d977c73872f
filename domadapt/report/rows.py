"""A run's per-run results summarised into the rows of its results dict (and its learning
curve): metrics over folds x seeds, the summed confusion, the selected validation UA, the
domain gap, and each row's pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from domadapt.evaluate import summarize_runs
from domadapt.report.plots import plot_confusion, plot_curves

#: metrics summarised (mean, std, runs) in every results row
REPORTED_METRICS = (
    "accuracy",
    "uar",
    "macro_f1",
    "subject_accuracy",
    "subject_uar",
    "subject_macro_f1",
    "subject_accuracy_meanprob",
)
#: a run whose selected validation UA is below chance (1/K) + this margin has not learned
CHANCE_MARGIN = 0.05


def summarize_row(
    runs: list[dict[str, Any]], *, label: str, key: str, backbone: str, classes: Sequence[str], recipe: str, plots: Path
) -> dict[str, Any]:
    """One results row of ``label`` (its ``runs/`` folder ``key``): metrics over its per-run
    results, the summed confusion, the selected validation UA and, when every run measured
    it, the domain gap; its confusion matrix and first run's curves go into ``plots``."""
    metrics = {m: summarize_runs([float(r["metrics"][m]) for r in runs]) for m in REPORTED_METRICS if m in runs[0]["metrics"]}
    confusion = np.sum([np.asarray(r["metrics"]["confusion"]) for r in runs], axis=0)
    plot_confusion(
        confusion, list(classes), plots / f"{key}-confusion.png", title=f"{recipe} {label}: segment confusion, all folds x seeds",
    )
    first = min(runs, key=lambda r: (r["fold"], r["seed"]))
    if first["history"]:  # a classical baseline has no epochs
        plot_curves(first["history"], plots / f"{key}-curves.png", title=f"{recipe} {label}: fold {first['fold']} seed {first['seed']}")
    extra: dict[str, Any] = {"validation": _validation_summary(runs, len(classes))}
    if all("domain_gap" in r for r in runs):
        extra["domain_gap"] = {
            point: {
                measure: {when: summarize_runs([r["domain_gap"][when][point][measure] for r in runs]) for when in ("before", "after")}
                for measure in ("a_distance", "mmd")
            }
            for point in runs[0]["domain_gap"]["before"]  # the alignment points the runner measured
        }
    return {"method": label, "key": key, "backbone": backbone, "metrics": metrics, "confusion": confusion.tolist(), **extra}


def learning_curve(labels: Sequence[str], runs: dict, points: list[int | str]) -> dict[str, Any]:
    """UA and subject accuracy per row (``labels``, in row order) and point (mean, std and runs
    over folds x seeds); ``runs[row, point]`` holds the row's per-run results at that point."""
    rows = []
    for row, label in enumerate(labels):
        per_point = {}
        for point in points:
            point_runs = runs[row, point]
            per_point[str(point)] = {
                "n_train_subjects": float(np.mean([r["n_train_subjects"] for r in point_runs])),
                **{m: summarize_runs([float(r["metrics"][m]) for r in point_runs]) for m in ("uar", "subject_accuracy")},
            }
        rows.append({"method": label, "points": per_point})
    return {"points": [str(p) for p in points], "rows": rows}


def selected_validation_ua(result: dict[str, Any]) -> float | None:
    """The validation UA of the model a run kept (its last stage's best epoch), or None when
    it was selected without target labels (information maximisation)."""
    if "selection" in result:  # a classical baseline: the validation UA of the chosen C
        return max(result["selection"]["ua_by_c"].values()) if result["selection"].get("criterion") == "validation UA" else None
    stages = list(dict.fromkeys(key.split("/")[0] for key in result["history"]))
    values = result["history"].get(f"{stages[-1]}/val/uar") if stages else None
    return max(values) if values else None


def _validation_summary(runs: list[dict[str, Any]], num_classes: int) -> dict[str, Any]:
    """The selected validation UA over a row's runs and how many of them are still at chance."""
    scores = [selected_validation_ua(r) for r in runs]
    known = [v for v in scores if v is not None]
    at_chance = sum(v < 1.0 / num_classes + CHANCE_MARGIN for v in known)
    return {
        "uar": summarize_runs(known) if known else None,
        "runs_at_chance": at_chance,
        "runs_judged": len(known),
        "at_chance": bool(known) and at_chance * 2 > len(known),
    }
