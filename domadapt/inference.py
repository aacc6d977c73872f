"""Use a trained model: ``domadapt.load_model(folder)`` and its predictions.

::

    model = domadapt.load_model("models/casia2modma-mmd")
    model.predict_file("a.wav")                 # class probabilities [K], in model.classes order
    model.predict(waveform, sample_rate)        # the same for a wave in memory
    table = model.predict_many(["a.wav", "b.wav"], subjects=["s1", "s1"])
    pandas.DataFrame(table.rows)                # path, subject, class, p_<class>..., n_windows

A recording goes through the training data's own path (:func:`domadapt.features.frontend.extract_windows`):
read and mixed down to mono, resampled with the same resampler, cut into the same windows,
the same features, standardised with the target's training statistics kept in the folder;
the file's probabilities are the mean of its windows' softmax probabilities. A subject's
class is aggregated as the evaluation does (:func:`domadapt.evaluate.subject_predictions`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from domadapt.corpora.base import Corpus, SkippedFile, Utterance
from domadapt.device import BF16, FLOAT32, autocast, resolve_device
from domadapt.engine.replicas import predict_proba
from domadapt.errors import DomadaptError
from domadapt.evaluate import subject_predictions
from domadapt.features.config import FeatureConfig
from domadapt.features.frontend import extract_windows
from domadapt.model_folder import read_model_folder

#: files a folder given to ``predict`` contributes: what soundfile reads
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".caf", ".w64", ".rf64")


@dataclass
class PredictionTable:
    """Per-file predictions and the files that gave none.

    ``rows``: one dict per predicted file (``path``, ``subject``, ``class``, ``p_<class>`` per
    class, ``n_windows``), ready for ``pandas.DataFrame(rows)`` or :meth:`write_csv`.
    ``skipped``: ``(path, reason)`` of every file that could not be predicted.
    ``subjects``: one row per subject (when subjects were given), aggregated as the
    evaluation does: ``class`` by majority vote of the windows, ``class_meanprob`` from the
    mean probability.
    """

    classes: tuple[str, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)
    subjects: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)

    def write_csv(self, path: Path, rows: list[dict[str, Any]] | None = None) -> Path:
        rows = self.rows if rows is None else rows
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["path"])
            writer.writeheader()
            writer.writerows(rows)
        return path


def file_row(path: str, subject: str, window_probs: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """One file's row of a prediction table from its windows' probabilities ``[W, K]``: their
    mean per class, its argmax class and the number of windows."""
    mean = window_probs.mean(axis=0)
    return {
        "path": path, "subject": subject, "class": classes[int(mean.argmax())],
        **{f"p_{c}": float(v) for c, v in zip(classes, mean)}, "n_windows": int(len(window_probs)),
    }


class Model:
    """A model folder loaded for prediction (see :func:`load_model`)."""

    def __init__(self, method: torch.nn.Module, info: dict[str, Any], device: torch.device) -> None:
        self.method = method.to(device).eval()
        self.info = info
        self.device = device
        self.classes: tuple[str, ...] = tuple(info["classes"])
        self.features = FeatureConfig(**_tuples(info["features"]))
        stats = info["standardization"]
        # the target's per-channel training statistics [1, C, 1] (None: the run fed raw features)
        self.mean = None if stats is None else torch.tensor(stats["mean"], dtype=torch.float32).view(1, -1, 1)
        self.std = None if stats is None else torch.tensor(stats["std"], dtype=torch.float32).view(1, -1, 1)

    # -- windows ---------------------------------------------------------------------
    def window_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Window features ``[N, C, T]`` (CPU) standardised as the training data was."""
        return x if self.mean is None else (x - self.mean) / self.std

    def window_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities ``[N, K]`` (CPU) of standardised window features ``[N, C, T]``,
        in the batches and the precision the run evaluated in."""
        # a folder written before precisions were recorded was evaluated in float32
        with autocast(self.device, self.info.get("precision", FLOAT32) == BF16):
            return predict_proba(self.method.target_logits, x.to(self.device))

    # -- recordings ------------------------------------------------------------------
    def predict(self, waveform: Any, sample_rate: int) -> np.ndarray:
        """Class probabilities ``[K]`` of one recording in memory: ``[S]`` or ``[channels, S]``
        samples (numpy or torch) at ``sample_rate`` Hz; channels are averaged."""
        wave = _mono(waveform)
        table = self._predict([(f"<waveform {sample_rate} Hz>", None)], {0: (wave, int(sample_rate))})
        return self._one(table)

    def predict_file(self, path: str | Path) -> np.ndarray:
        """Class probabilities ``[K]`` of one audio file."""
        return self._one(self._predict([(str(path), None)]))

    def predict_many(
        self, paths: Sequence[str | Path], *, subjects: Sequence[str | None] | None = None, progress: bool = False
    ) -> PredictionTable:
        """Every file of ``paths`` (with its subject, if given) as a :class:`PredictionTable`;
        a file that cannot be predicted is listed in ``skipped`` with the reason."""
        subjects = list(subjects) if subjects is not None else [None] * len(paths)
        if len(subjects) != len(paths):
            raise DomadaptError(f"predict_many: {len(subjects)} subjects for {len(paths)} paths")
        return self._predict([(str(p), s) for p, s in zip(paths, subjects)], progress=progress)

    def _one(self, table: PredictionTable) -> np.ndarray:
        if table.skipped:
            s = table.skipped[0]
            raise DomadaptError(f"{s.path}: {s.reason}")
        row = table.rows[0]
        return np.array([row[f"p_{c}"] for c in self.classes], dtype=np.float64)

    def _predict(
        self, items: list[tuple[str, str | None]], waves: dict[int, tuple[np.ndarray, int]] | None = None,
        *, progress: bool = False,
    ) -> PredictionTable:

        table = PredictionTable(self.classes)
        label = self.classes[0]  # the front-end wants a label; none is ever read
        utterances = [
            Utterance(path=Path(p), label=label, subject=s if s is not None else p, domain="predict", meta={"item": str(i)})
            for i, (p, s) in enumerate(items)
        ]
        present = []
        for u, (p, _) in zip(utterances, items):
            if waves is None and not Path(p).is_file():
                table.skipped.append(SkippedFile(p, "no such file"))
            else:
                present.append(u)
        if not present:
            return table
        reader = None
        if waves is not None:
            reader = lambda u: waves[int(u.meta["item"])]  # noqa: E731
        corpus = Corpus(name="predict", root=Path("."), classes=(label,), utterances=present)
        segs, skipped = extract_windows(corpus, self.features, device=self.device, reader=reader, progress=progress)
        inputs = {str(u.path) for u in present}
        for s in skipped:  # per file, once: the front-end adds "subject ...: no usable audio" after a subject's files
            if s.path in inputs:
                inputs.discard(s.path)
                table.skipped.append(s)
        if segs is None:
            return table
        probs = self.window_probabilities(self.window_inputs(segs.x)).numpy()
        owner = segs.utterance.numpy()
        position = {u.key: n for n, u in enumerate(present)}
        given = {u.key: items[int(u.meta["item"])][1] for u in present}
        for k, key in enumerate(segs.utterance_keys):
            table.rows.append(file_row(key, given[key] or "", probs[owner == k], self.classes))
        table.rows.sort(key=lambda r: position[r["path"]])  # input order
        if any(s is not None for _, s in items):
            table.subjects = self._subject_rows(segs, probs, given)
        return table

    def _subject_rows(self, segs: Any, probs: np.ndarray, given: dict[str, str | None]) -> list[dict[str, Any]]:
        """Per subject (files without one left out): the evaluation's two aggregations."""

        window_subject = np.array([given[segs.utterance_keys[u]] or "" for u in segs.utterance.numpy()], dtype=object)
        keep = window_subject != ""
        if not keep.any():
            return []
        names, groups = np.unique(window_subject[keep].astype(str), return_inverse=True)
        p = probs[keep]
        agg = subject_predictions(p, np.zeros(len(p), dtype=np.int64), groups)
        rows = []
        for g, pred, pred_mean in zip(agg["ids"], agg["pred"], agg["pred_meanprob"]):
            mine = groups == g
            files = {segs.utterance_keys[u] for u in segs.utterance.numpy()[keep][mine]}
            rows.append({
                "subject": names[g], "class": self.classes[pred], "class_meanprob": self.classes[pred_mean],
                **{f"p_{c}": float(v) for c, v in zip(self.classes, p[mine].mean(axis=0))},
                "n_files": len(files), "n_windows": int(mine.sum()),
            })
        return rows


def _tuples(values: dict[str, Any]) -> dict[str, Any]:
    """JSON lists back to the tuples FeatureConfig holds."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def _mono(waveform: Any) -> np.ndarray:
    wave = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) else np.asarray(waveform)
    if wave.ndim == 2:
        wave = wave.mean(axis=0)
    if wave.ndim != 1 or wave.size == 0:
        raise DomadaptError(f"predict: expected samples [S] or [channels, S], got shape {tuple(np.shape(waveform))}")
    return np.ascontiguousarray(wave, dtype=np.float32)


def load_model(path: str | Path, *, device: str | torch.device = "auto") -> Model:
    """The model folder ``path`` (see :mod:`domadapt.model_folder`) ready to predict on
    ``device`` (``auto``: CUDA when present). Never unpickles anything."""

    dev = device if isinstance(device, torch.device) else resolve_device(device)
    method, info = read_model_folder(Path(path))
    return Model(method, info, dev)


def expand_inputs(args: Sequence[str | Path]) -> tuple[list[str], list[str | None]]:
    """``domadapt predict``'s AUDIO arguments as ``(paths, subjects)``: a folder gives its audio
    files (recursive, sorted), a ``.csv`` its rows ``path[,subject]`` (a first row ``path,...``
    is a header; relative paths are relative to the CSV's folder), anything else itself."""
    paths: list[str] = []
    subjects: list[str | None] = []
    for arg in map(Path, args):
        if arg.is_dir():
            found = sorted(p for p in arg.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            paths += [str(p) for p in found]
            subjects += [None] * len(found)
        elif arg.suffix.lower() == ".csv" and arg.is_file():
            for path, subject in _manifest(arg):
                paths.append(path)
                subjects.append(subject)
        else:
            paths.append(str(arg))
            subjects.append(None)
    return paths, subjects


def _manifest(path: Path) -> list[tuple[str, str | None]]:
    with path.open(newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(cell.strip() for cell in r)]
    if rows and rows[0][0].strip().lower() == "path":
        rows = rows[1:]
    out = []
    for n, row in enumerate(rows, 1):
        if len(row) > 2:
            raise DomadaptError(f"{path}: row {n} has {len(row)} fields; expected path[,subject]")
        file = Path(row[0].strip())
        file = file if file.is_absolute() else path.parent / file
        subject = row[1].strip() if len(row) == 2 and row[1].strip() else None
        out.append((str(file), subject))
    return out
