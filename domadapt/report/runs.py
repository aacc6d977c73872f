"""The results dict's checks and the per-run files a run leaves behind.

A per-run file ``RUN/runs/<row key>/fold{F}[-n{POINT}]-seed{S}.json`` is read for these keys
(:mod:`domadapt.run.unit` writes them); the optional ones make the statistics exact where,
without them, they are approximated (each says which it used)::

    {"method": str, "fold": int, "seed": int,
     "metrics": {evaluate_predictions' keys: "uar", "subject_accuracy", "subject_confusion",
                 "subject_confusion_meanprob", "num_subjects", ...},
     "n_train": int, "n_val": int, "n_test": int,            # segments
     # optional
     "n_train_subjects": int, "n_val_subjects": int, "n_test_subjects": int,
     "test_subjects": {"ids": [str], "true": [int], "pred": [int], "pred_meanprob": [int]}}

A row may carry ``"key"`` (its ``runs/`` folder name), ``"target_subjects"`` (the
learning-curve point it summarises) and, after :func:`~domadapt.report.files.merge_results`,
``"run_dir"``, ``"run_label"`` and ``"recipe"``; without ``key`` the folder is found the way
the runner names it (``label@backbone`` or ``label``, made file-system safe).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from domadapt.errors import DomadaptError

DATA_KINDS = ("synthetic", "real", "mixed")  # "mixed" only comes out of merge_results
_REQUIRED = ("recipe", "data", "title", "subject_overlap", "config", "git", "skipped", "rows")
_RUN_FILE = re.compile(r"^fold(?P<fold>\d+)(?:-n(?P<point>[^-]+))?-seed(?P<seed>\d+)\.json$")


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
