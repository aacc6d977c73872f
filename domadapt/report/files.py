"""The results files of a run (results.json, results.csv, results_summary.csv, results.md),
reading them back, and merging several runs into one table. Every file is written with
:func:`domadapt.files.atomic_write`."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from domadapt.errors import DomadaptError
from domadapt.files import atomic_write
from domadapt.report.runs import RowRuns, _jsonable, _validate, load_row_runs
from domadapt.report.statistics import ALPHA, BOOT_SEED, N_BOOT, _with_statistics
from domadapt.report.tables import format_markdown

#: results.csv, long (tidy) form: one line per (row, fold, seed, metric)
CSV_COLUMNS = ("recipe", "method", "backbone", "fold", "seed", "metric", "value")
#: results_summary.csv: one line per row x metric
SUMMARY_CSV_COLUMNS = ("recipe", "method", "backbone", "metric", "mean", "std", "n_runs", "runs")


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
    atomic_write(paths["json"], json.dumps(clean, indent=2, allow_nan=False) + "\n")
    atomic_write(paths["csv"], _long_csv_text(clean, row_runs))
    atomic_write(paths["summary_csv"], _summary_csv_text(clean))
    atomic_write(paths["md"], format_markdown(clean))
    return paths


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
