"""One unit: a row on a fold, for one seed or K seeds trained together. :func:`run_unit`
trains it (through the row's learner), scores it and writes one result JSON per seed."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from domadapt.config import ExperimentConfig, MethodSpec
from domadapt.data import DomainData, FoldData
from domadapt.evaluate import evaluate_predictions, subject_predictions
from domadapt.report.rows import selected_validation_ua
from domadapt.run.context import RunContext, Unit, UnitJob
from domadapt.run.folds import with_target_subjects
from domadapt.run.learners import Learner, Trained, learner_of
from domadapt.run.paths import read_json, tensorboard_writer, write_json


def execute_unit(ctx: RunContext, job: tuple[Unit, Any]) -> list[dict[str, Any]]:
    """The one function every executor runs per unit: ``job = (unit, fold)``, on the fold's
    data (with the unit's learning-curve point)."""
    unit, fold = job
    data = with_target_subjects(ctx.fold_data(fold), unit.point, seed=ctx.cfg.eval.seed + fold.index)
    return run_unit(ctx, unit, data, fold)


def run_unit(ctx: RunContext, unit: Unit, data: FoldData, fold: Any) -> list[dict[str, Any]]:
    """Train and score one unit on its fold's ``data``; one result JSON per seed (atomic).

    With ``resume`` finished seeds are read back. A unit continues from its checkpoint
    whenever one exists: a fresh run removes its units' stale checkpoints before any unit
    starts (:func:`~domadapt.run.plan.plan_run`), so one found here is this run's own
    (``--resume`` of a killed run, or a Ray task retried after its worker died). A vmapped
    unit's seeds train together and finish together; a seed finished before keeps its file
    as it is. Without ``ctx.score_test`` (a sweep's search) the unit returns its validation
    scores and never predicts the test fold.
    """
    paths = ctx.paths(unit)
    done = {s: read_json(paths.result(s)) for s in unit.seeds if ctx.resume and paths.result(s).exists()}
    if len(done) == len(unit.seeds):
        return [done[s] for s in unit.seeds]
    learner = learner_of(unit.spec)
    writers = [tensorboard_writer(paths.tensorboard(s)) if ctx.score_test else None for s in unit.seeds]
    job = UnitJob(ctx, unit, fold, data, paths, writers)
    try:
        trained = learner.train(job)
        results = [done.get(seed) or _result(job, learner, i, trained[i]) for i, seed in enumerate(unit.seeds)]
    finally:
        for writer in writers:
            if writer is not None:
                writer.close()
    for seed, result in zip(unit.seeds, results):
        if seed not in done:
            write_json(paths.result(seed), result)
    paths.checkpoint.unlink(missing_ok=True)
    return results


def _result(job: UnitJob, learner: Learner, i: int, trained: Trained) -> dict[str, Any]:
    """Seed ``i``'s result: its test metrics (a search unit's: its selection objectives only)."""
    ctx, unit, data, seed, writer = job.ctx, job.unit, job.data, job.unit.seeds[i], job.writers[i]
    if not ctx.score_test:
        return _validation_result(unit, seed, trained)
    test = data.target_test
    metrics = evaluate_predictions(trained.probs.numpy(), test.y.cpu().numpy(), test.groups, num_classes=test.num_classes)
    result = {
        "method": unit.spec.label,
        "fold": int(unit.fold),
        "seed": int(seed),
        "trained": trained.how,
        "metrics": metrics,
        "history": trained.history,
        "n_train": len(data.target_train),
        "n_val": len(data.target_val),
        "n_test": len(test),
        "target_subjects": unit.point,
        "n_train_subjects": int(len(np.unique(data.target_train.groups))),
        "n_val_subjects": int(len(np.unique(data.target_val.groups))),
        "n_test_subjects": int(len(np.unique(test.groups))),
        "test_subjects": _test_subjects(ctx, trained.probs.numpy(), test),
        **trained.extra,
    }
    if writer is not None:
        for name, value in metrics.items():
            if isinstance(value, (int, float)):
                writer.add_scalar(f"test/{name}", float(value), 0)
        writer.add_hparams(*run_hparams(ctx.cfg, unit.spec, learner.backbone(ctx.cfg, unit.spec), result), run_name=".")
    return result


def _validation_result(unit: Unit, seed: int, trained: Trained) -> dict[str, Any]:
    """A search unit's result for one seed: every selection objective of the model it kept
    (:mod:`domadapt.selection`) and the validation UA of its own epoch selection (None
    when it selected without target labels)."""
    return {
        "method": unit.spec.label,
        "fold": int(unit.fold),
        "seed": int(seed),
        "validation_uar": selected_validation_ua({"history": trained.history}),
        "objectives": trained.extra["objectives"],
        "history": trained.history,
    }


def run_hparams(
    cfg: ExperimentConfig, spec: MethodSpec, backbone: str, result: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, float]]:
    """One run's row of tensorboard's HParams tab ("." = the run's own folder): what may
    differ between runs (method, its options, backbone, training settings, fold, seed) and
    what it scored (test and selected validation UA; NaN when selected without target
    labels). Values tensorboard cannot show (None, lists, tables) go in as their JSON text."""
    train = cfg.train
    hparams = {
        "method": spec.label, "backbone": backbone, "fold": result["fold"], "seed": result["seed"],
        "target_subjects": str(result["target_subjects"]), "lr": train.lr, "epochs": train.epochs,
        "pretrain_epochs": train.pretrain_epochs, "batch_size": train.batch_size, "align_weight": train.align_weight,
        **{f"option.{key}": value for key, value in spec.method_options.items()},
    }
    hparams = {k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v) for k, v in hparams.items()}
    val_ua = selected_validation_ua(result)
    metrics = {"hparam/test_uar": float(result["metrics"]["uar"]), "hparam/val_uar": float("nan") if val_ua is None else val_ua}
    return hparams, metrics


def _test_subjects(ctx: RunContext, probs: np.ndarray, test: DomainData) -> dict[str, list]:
    """The test subjects (by name) with their labels and predictions."""
    subjects = subject_predictions(probs, test.y.cpu().numpy(), test.groups)
    subjects["ids"] = [ctx.domains.target_segments.subjects[g] for g in subjects["ids"]]
    return subjects


__all__ = ["execute_unit", "run_hparams", "run_unit"]
