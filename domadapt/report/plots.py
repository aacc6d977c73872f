"""The pictures of a run: confusion matrices, training curves, the feature space before and
after training, the learning curve (PNG, written atomically)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from domadapt.errors import DomadaptError
from domadapt.files import atomic_write


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
    atomic_write(path, buf.getvalue())
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
