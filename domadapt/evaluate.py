"""Segment- and subject-level metrics, and mean ± std over runs.

Conventions (the same in every table):
- ``accuracy`` is WA (weighted accuracy = plain accuracy over items);
- ``uar`` is UA (unweighted average recall = sklearn's balanced accuracy): the mean
  per-class recall over the classes present in ``y_true``;
- ``macro_f1`` is sklearn's ``f1_score(average="macro")`` over the classes present in
  ``y_true`` or ``y_pred``, with 0 for an undefined F1;
- subject-level metrics first reduce each subject to one true label (the majority of its
  segments' labels, ties to the smaller class) and one prediction, then apply the same
  three metrics to subjects. Two reductions: ``"majority"`` (vote of segment argmaxes; a
  tied vote goes to the tied class with the highest mean probability, then to the
  smaller class index) and ``"mean_prob"`` (argmax of the mean probability vector).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score

from domadapt.errors import DomadaptError

__all__ = [
    "segment_metrics",
    "subject_metrics",
    "evaluate_predictions",
    "summarize_runs",
    "summarize_metrics",
    "SUBJECT_MODES",
]

SUBJECT_MODES = ("majority", "mean_prob")


def _labels(name: str, a: Any, num_classes: int) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise DomadaptError(f"{name} must be a 1-D array of class indices, got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise DomadaptError(f"{name} holds class indices outside [0, {num_classes})")
    return arr.astype(np.int64, copy=False)


def segment_metrics(y_true: Any, y_pred: Any, *, num_classes: int) -> dict[str, Any]:
    """WA, UA, macro-F1, per-class recall and the confusion matrix of label predictions.

    Args:
        y_true, y_pred: ``(N,)`` class indices in ``[0, num_classes)``.

    Returns:
        ``accuracy``, ``uar``, ``macro_f1`` (floats in [0, 1]), ``per_class_recall`` (list
        of ``num_classes``; None for a class absent from ``y_true``), ``confusion`` (list of
        lists, rows = true class, columns = predicted), ``n`` (number of items).
    """
    y_true = _labels("y_true", y_true, num_classes)
    y_pred = _labels("y_pred", y_pred, num_classes)
    if len(y_true) != len(y_pred):
        raise DomadaptError(f"y_true has {len(y_true)} items but y_pred has {len(y_pred)}")
    if len(y_true) == 0:
        raise DomadaptError("cannot compute metrics on zero items")
    cm = confusion_matrix(y_true, y_pred, labels=np.arange(num_classes))
    support = cm.sum(axis=1)
    present = support > 0
    recall = np.divide(np.diag(cm), support, out=np.zeros(num_classes), where=present)
    return {
        "accuracy": float(np.trace(cm) / cm.sum()),
        "uar": float(recall[present].mean()),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "per_class_recall": [float(r) if p else None for r, p in zip(recall, present)],
        "confusion": cm.tolist(),
        "n": int(len(y_true)),
    }


def _subject_reduce(
    probs: np.ndarray, y_true: np.ndarray, groups: np.ndarray, mode: str
) -> tuple[np.ndarray, np.ndarray]:
    """One (true label, predicted label) per subject, in sorted subject order."""
    n, k = probs.shape
    _, g_inv = np.unique(groups, return_inverse=True)
    n_subj = int(g_inv.max()) + 1
    seg_count = np.bincount(g_inv, minlength=n_subj).astype(np.float64)
    mean_prob = np.zeros((n_subj, k))
    np.add.at(mean_prob, g_inv, probs)
    mean_prob /= seg_count[:, None]
    true_counts = np.zeros((n_subj, k), dtype=np.int64)
    np.add.at(true_counts, (g_inv, y_true), 1)
    subj_true = true_counts.argmax(axis=1)
    if mode == "mean_prob":
        return subj_true, mean_prob.argmax(axis=1)
    votes = np.zeros((n_subj, k), dtype=np.int64)
    np.add.at(votes, (g_inv, probs.argmax(axis=1)), 1)
    tied = votes == votes.max(axis=1, keepdims=True)
    # among the classes with the most votes, the highest mean probability wins
    return subj_true, np.where(tied, mean_prob, -np.inf).argmax(axis=1)


def subject_metrics(
    probs: Any, y_true: Any, groups: Any, *, mode: str = "majority"
) -> dict[str, Any]:
    """Metrics over subjects, each subject reduced to one label and one prediction.

    Args:
        probs: ``(N, K)`` per-segment class probabilities (softmax outputs).
        y_true: ``(N,)`` per-segment class indices.
        groups: ``(N,)`` per-segment subject ids.
        mode: ``"majority"`` (segment vote, ties broken by mean probability, then by the
            smaller class index) or ``"mean_prob"`` (argmax of the mean probability).

    Returns:
        ``subject_accuracy``, ``subject_uar``, ``subject_macro_f1``,
        ``subject_per_class_recall``, ``subject_confusion``, ``num_subjects``.
    """
    if mode not in SUBJECT_MODES:
        raise DomadaptError(f"unknown subject mode {mode!r}; known: {', '.join(SUBJECT_MODES)}")
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise DomadaptError(f"probs must be a non-empty (N, K) array, got shape {probs.shape}")
    k = probs.shape[1]
    y_true = _labels("y_true", y_true, k)
    groups = np.asarray(groups)
    if not (len(y_true) == len(groups) == len(probs)):
        raise DomadaptError(
            f"probs has {len(probs)} rows, y_true {len(y_true)}, groups {len(groups)}; they must match"
        )
    subj_true, subj_pred = _subject_reduce(probs, y_true, groups, mode)
    m = segment_metrics(subj_true, subj_pred, num_classes=k)
    return {
        "subject_accuracy": m["accuracy"],
        "subject_uar": m["uar"],
        "subject_macro_f1": m["macro_f1"],
        "subject_per_class_recall": m["per_class_recall"],
        "subject_confusion": m["confusion"],
        "num_subjects": m["n"],
    }


def subject_predictions(probs: Any, y_true: Any, groups: Any) -> dict[str, list]:
    """Each test subject's true label and predictions (majority vote and mean probability),
    for statistics over subjects (a bootstrap): ``{"ids", "true", "pred", "pred_meanprob"}``,
    subjects in sorted id order."""
    probs = np.asarray(probs, dtype=np.float64)
    y_true = _labels("y_true", y_true, probs.shape[1])
    groups = np.asarray(groups)
    true, pred = _subject_reduce(probs, y_true, groups, "majority")
    _, pred_mean = _subject_reduce(probs, y_true, groups, "mean_prob")
    return {"ids": np.unique(groups).tolist(), "true": true.tolist(), "pred": pred.tolist(), "pred_meanprob": pred_mean.tolist()}


def evaluate_predictions(
    probs: Any, y_true: Any, groups: Any, *, num_classes: int
) -> dict[str, Any]:
    """Segment metrics + subject metrics under both reductions, in one flat dict.

    Keys: ``accuracy``, ``uar``, ``macro_f1``, ``per_class_recall``, ``confusion``, ``n``;
    ``subject_*`` from the majority vote; ``subject_*_meanprob`` from the mean probability
    (e.g. ``subject_accuracy_meanprob``); ``num_subjects``.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != num_classes:
        raise DomadaptError(f"probs must have shape (N, {num_classes}), got {probs.shape}")
    out = segment_metrics(y_true, probs.argmax(axis=1), num_classes=num_classes)
    out.update(subject_metrics(probs, y_true, groups, mode="majority"))
    mean = subject_metrics(probs, y_true, groups, mode="mean_prob")
    out.update({f"{key}_meanprob": v for key, v in mean.items() if key != "num_subjects"})
    return out


def summarize_runs(values: Iterable[float]) -> dict[str, Any]:
    """``{"mean", "std", "runs"}`` of one metric over runs (folds × seeds).

    ``std`` is the SAMPLE standard deviation (ddof=1) when there are two or more runs, and
    0.0 for a single run.
    """
    runs = [float(v) for v in values]
    if not runs:
        raise DomadaptError("summarize_runs needs at least one value")
    arr = np.asarray(runs)
    std = float(arr.std(ddof=1)) if len(runs) > 1 else 0.0
    return {"mean": float(arr.mean()), "std": std, "runs": runs}


def summarize_metrics(per_run: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Summaries of every float metric shared by all runs (counts, lists, matrices skipped).

    ``per_run`` is a list of :func:`evaluate_predictions` outputs; the result is the
    ``"metrics"`` entry of a results row.
    """
    per_run = list(per_run)
    if not per_run:
        raise DomadaptError("summarize_metrics needs at least one run")

    def scalar(v: Any) -> bool:
        return isinstance(v, (float, np.floating))

    keys = [k for k, v in per_run[0].items() if scalar(v) and all(scalar(r.get(k)) for r in per_run)]
    return {k: summarize_runs(r[k] for r in per_run) for k in keys}
