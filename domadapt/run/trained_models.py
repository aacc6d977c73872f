"""The models a run trains, kept as model folders (:mod:`domadapt.model_folder`).

- :func:`save_unit_models`: with ``eval.save_models = true`` a cross-validated run writes
  each (method, fold, seed) model to ``OUT/models/KEY/foldF-seedS/``, with ``scored.csv``:
  what the run scored on that fold's test files, per file as ``domadapt predict`` writes it.
- :func:`train_final`: ``python -m domadapt.recipe NAME --final --method M``: one model of
  one method on *all* labelled target subjects (and the sources, and the unlabelled target
  audio where the method reads it), for an epoch budget fixed by the recipe or taken from a
  cross-validated run (:func:`epochs_from_run`). No subject is held out: no test fold exists.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import torch

from domadapt.data import FoldData, standardization
from domadapt.errors import DomadaptError
from domadapt.inference import PredictionTable, file_row
from domadapt.methods import method_class
from domadapt.engine import Run, build_replicas, fit
from domadapt.model_folder import write_model_folder
from domadapt.run.folds import build_fold
from domadapt.run.model import make_method
from domadapt.run.paths import git_hash


def _training_description(domains: Any, data: FoldData) -> dict[str, Any]:
    """What a model trained on: corpora and counts, no file paths."""
    tseg = domains.target_segments
    return {
        "target": {
            "corpus": domains.target.name,
            "synthetic": bool(domains.target.synthetic),
            "labelled_windows": len(data.target_train),
            "labelled_subjects": int(len(np.unique(data.target_train.groups))),
            "validation_subjects": int(len(np.unique(data.target_val.groups))),
            "classes": list(tseg.classes),
        },
        "sources": [
            {"corpus": c.name, "synthetic": bool(c.synthetic), "windows": len(d) + len(v), "classes": list(c.classes)}
            for c, d, v in zip(domains.sources, data.sources, data.source_val)
        ],
    }


def _tasks(method: torch.nn.Module) -> dict[str, int]:
    return {task: int(k) for task, k in method.model.tasks.items()}


def _target_statistics(ctx: Any, fold: Any) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The fold's target standardisation, computed as :func:`domadapt.run.folds.build_fold`
    did: on the device, from the raw features of the fold's training partition."""
    if not ctx.cfg.features.standardize:
        return None, None
    rows = torch.as_tensor(ctx.fold_data(fold).target_train.index, dtype=torch.long)
    return standardization(ctx.domains.target_segments.x[rows].to(ctx.device))


def save_unit_models(ctx: Any, unit: Any, replicas: Any, fold: Any, data: FoldData, probs: torch.Tensor) -> list[Path]:
    """Each seed's trained model of ``unit`` on ``fold`` as a model folder, with
    ``scored.csv``: the run's probabilities ``probs`` ``[K, N, C]`` of the fold's test
    windows, per file (mean over its windows) as ``domadapt predict`` writes them."""
    cfg, spec = ctx.cfg, unit.spec
    mean, std = _target_statistics(ctx, fold)
    tseg = ctx.domains.target_segments
    at = "" if unit.point == "all" else f"-n{unit.point}"
    test = data.target_test
    keys = [tseg.utterance_keys[u] for u in tseg.utterance.numpy()[test.index]]
    written = []
    for i, seed in enumerate(unit.seeds):
        method = replicas.export(i)
        folder = ctx.out_dir / "models" / spec.key(cfg.model) / f"fold{unit.fold}{at}-seed{seed}"
        training = {
            **_training_description(ctx.domains, data),
            "fold": int(unit.fold), "seed": int(seed),
            "test_subjects": sorted({tseg.subjects[g] for g in test.groups}),
            "epochs": {"train.epochs": cfg.train.epochs, "train.pretrain_epochs": cfg.train.pretrain_epochs},
            "budget": "the recipe's epochs; each stage kept its best validation epoch",
        }
        write_model_folder(
            folder, method, cfg=cfg, spec=spec, target=ctx.domains.target.name, classes=tuple(tseg.classes),
            tasks=_tasks(method), input_shape=tuple(tseg.x.shape[1:]), mean=mean, std=std, training=training,
            precision=replicas.precision(cfg.train.amp), git=git_hash(),
        )
        _write_scored(folder / "scored.csv", keys, [tseg.subjects[g] for g in test.groups], probs[i].numpy(), tseg.classes)
        written.append(folder)
    return written


def _write_scored(path: Path, keys: list[str], subjects: list[str], probs: np.ndarray, classes: tuple[str, ...]) -> None:
    """The run's test probabilities ``[N, C]`` (windows of the files ``keys``) per file, in
    the table ``domadapt predict`` writes."""

    keys_a = np.asarray(keys, dtype=object)
    subject_of = dict(zip(keys, subjects))
    table = PredictionTable(tuple(classes))
    table.rows = [file_row(key, subject_of[key], probs[keys_a == key], classes) for key in dict.fromkeys(keys)]
    table.write_csv(path)


# --------------------------------------------------------------------------- the final model


@dataclasses.dataclass(frozen=True)
class AllSubjects:
    """The "fold" of a final model: every target row trains; nothing is validated or tested."""

    train: np.ndarray
    test: np.ndarray
    index: int = 0
    val: None = None


def epochs_from_run(run_dir: Path, label: str, key: str) -> dict[str, Any]:
    """The epoch budget a cross-validated run found for method ``label`` (its runs in
    ``run_dir/runs/KEY/``): per training knob, the median over its (fold, seed) runs of the
    best validation epoch of the stages that knob sets (``pretrain`` stages:
    ``train.pretrain_epochs``; every other stage: ``train.epochs``)."""
    files = sorted((Path(run_dir) / "runs" / key).glob("fold*-seed*.json"))
    if not files:
        raise DomadaptError(f"--from {run_dir}: no runs of {label} (expected {Path(run_dir) / 'runs' / key}/fold*-seed*.json)")
    best: dict[str, list[int]] = {"train.epochs": [], "train.pretrain_epochs": []}
    for file in files:
        history = json.loads(file.read_text()).get("history", {})
        for name, scores in history.items():
            stage, _, metric = name.partition("/")
            if metric != "val/score" or not scores:
                continue
            finite = [s if s == s else -np.inf for s in scores]  # NaN never selected
            knob = "train.pretrain_epochs" if stage == "pretrain" else "train.epochs"
            best[knob].append(int(np.argmax(finite)) + 1)
    found = {knob: int(round(statistics.median(v))) for knob, v in best.items() if v}
    if not found:
        raise DomadaptError(f"--from {run_dir}: the runs of {label} selected no epoch on validation (train.val_fraction = 0?)")
    return {"epochs": found, "runs": len(files), "from": str(run_dir)}


def train_final(
    cfg: Any, domains: Any, spec: Any, *, out: Path, device: torch.device, from_run: Path | None = None,
    progress: bool = False, say=print,
) -> Path:
    """Train ``spec`` once on every labelled target subject and write the model folder ``out``."""
    if method_class(spec).trained_by != "engine":
        raise DomadaptError(f"--final --method {spec.label}: a classical baseline has no network to keep; choose a deep method")
    budget = {"train.epochs": cfg.train.epochs, "train.pretrain_epochs": cfg.train.pretrain_epochs}
    how = "fixed: the recipe's train.epochs / train.pretrain_epochs"
    if from_run is not None:
        found = epochs_from_run(from_run, spec.label, spec.key(cfg.model))
        budget.update(found["epochs"])
        how = (f"the median best validation epoch of {found['runs']} cross-validated runs in {from_run} "
               f"({', '.join(f'{k} = {v}' for k, v in found['epochs'].items())}; any other fixed by the recipe)")
    train = dataclasses.replace(
        cfg.train, val_fraction=0.0, epochs=budget["train.epochs"], pretrain_epochs=budget["train.pretrain_epochs"]
    )
    cfg = dataclasses.replace(cfg, train=train)
    n = len(domains.target_segments.y)
    every = AllSubjects(train=np.arange(n), test=np.zeros(0, dtype=np.int64))
    data = build_fold(
        domains, every, val_fraction=0.0, seed=cfg.eval.seed, device=device, standardize_features=cfg.features.standardize
    )
    seed = cfg.eval.seed
    replicas = build_replicas(lambda: make_method(cfg, domains, spec), [seed], data, device, vmap=False, compile=cfg.train.compile)
    reads_test = [s.name for s in replicas.stages if s.draw == "test"]
    if reads_test:
        raise DomadaptError(
            f"--final --method {spec.label}: adapts on the test recordings themselves (stage {reads_test[0]!r}, "
            "test-time adaptation); a final model has no test set to adapt on"
        )
    say(f"  final model: {spec.label} on all {len(np.unique(data.target_train.groups))} labelled target subjects "
        f"({len(data.target_train)} windows), epochs {budget}; {how}")
    fit(replicas, cfg.train, Run(progress=progress))
    method = replicas.export(0)
    mean, std = standardization(domains.target_segments.x.to(device)) if cfg.features.standardize else (None, None)
    training = {
        **_training_description(domains, data),
        "seed": seed,
        "epochs": budget,
        "budget": how,
        "test": "none: every labelled target subject trained this model; no test fold exists, its accuracy is "
        "the cross-validated run's to report",
        "target_audio": "every target recording is labelled and trains; an aligning method aligns on the same recordings",
    }
    tseg = domains.target_segments
    return write_model_folder(
        out, method, cfg=cfg, spec=spec, target=domains.target.name, classes=tuple(tseg.classes),
        tasks=_tasks(method), input_shape=tuple(tseg.x.shape[1:]), mean=mean, std=std, training=training,
        precision=replicas.precision(cfg.train.amp), git=git_hash(),
    )

