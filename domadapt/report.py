"""The results files every recipe writes, the comparison across runs, and the plots.

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
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from domadapt.errors import DomadaptError

__all__ = [
    "DATA_KINDS",
    "TABLE_COLUMNS",
    "CSV_COLUMNS",
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
RUNS_METRIC = "accuracy"  # the per-run list shown in the tables, as in the notes
GAP_HEADER = "A-dist. before → after"  # proxy A-distance, held-out general features (0 = no gap, 2 = separable)
CSV_COLUMNS = ("recipe", "method", "backbone", "metric", "mean", "std", "n_runs", "runs")
_MAX_SKIPPED_SHOWN = 100  # results.md lists this many skipped files; results.json has all
_REQUIRED = ("recipe", "data", "title", "subject_overlap", "config", "git", "skipped", "rows")


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


def _csv_text(results: Mapping[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for row in results["rows"]:
        for metric, s in row["metrics"].items():
            runs = ";".join(repr(float(v)) if v is not None else "" for v in s["runs"])
            w.writerow([results["recipe"], row["method"], row["backbone"], metric,
                        s["mean"], s["std"], len(s["runs"]), runs])
    return buf.getvalue()


def write_results(out_dir: str | os.PathLike, results: Mapping[str, Any]) -> dict[str, Path]:
    """Write ``results.json``, ``results.csv`` and ``results.md`` into ``out_dir``.

    Returns ``{"json": path, "csv": path, "md": path}``. The CSV has one line per
    method × metric with columns :data:`CSV_COLUMNS` (``runs`` joined by ``;``).
    """
    if not isinstance(results, Mapping):
        raise DomadaptError(f"results: expected a dict, got {type(results).__name__}")
    clean = _jsonable(results)  # numpy scalars, Paths, SkippedFile objects -> plain JSON
    _validate(clean)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "csv": out / "results.csv", "md": out / "results.md"}
    _atomic_write(paths["json"], json.dumps(clean, indent=2, allow_nan=False) + "\n")
    _atomic_write(paths["csv"], _csv_text(clean))
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


def _cells(row: Mapping[str, Any]) -> list[str]:
    cells = [row["method"], row["backbone"]]
    for key, _ in TABLE_COLUMNS:
        s = row["metrics"].get(key)
        missing = s is None or _pct(s["mean"]) == "–"
        cells.append("–" if missing else f"{_pct(s['mean'])} ± {_pct(s['std'])}")
    cells += [_validation_cell(row), _gap_cell(row)]
    s = row["metrics"].get(RUNS_METRIC)
    cells.append("–" if s is None else ", ".join(_pct(v) for v in s["runs"]))
    return cells


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


def _headers() -> list[str]:
    return ["Method", "Backbone", *(h for _, h in TABLE_COLUMNS), "Val. UA", GAP_HEADER, "Accuracy per run"]


def _n_runs(results: Mapping[str, Any]) -> str:
    counts = sorted({len(s["runs"]) for r in results["rows"] for s in r["metrics"].values()})
    return "/".join(str(c) for c in counts) or "0"


def format_markdown(results: Mapping[str, Any]) -> str:
    """The ``results.md`` text: title with its warnings, the table, the skipped files."""
    _validate(results)
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
    lines.append("")
    head = _headers()
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
    for row in results["rows"]:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(row)) + " |")
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
    table = [_headers()] + [_cells(r) for r in results["rows"]]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [_title(results), f"percent; mean ± sample std over {_n_runs(results)} runs", ""]
    out += [line(table[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in table[1:]]
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
    differs from the others in data kind or subject overlap is tagged in its label.
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
        for row in res["rows"]:
            rows.append({**row, "method": f"{res['recipe']}/{row['method']}{suffix}",
                         "run_dir": str(d), "data": res["data"],
                         "subject_overlap": bool(res["subject_overlap"])})
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
