"""One experiment, top-down: :func:`run_experiment` plans the units (:func:`plan_run`), runs
them on the executor (:func:`run_units`), summarises the rows and writes the results files."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from domadapt.config import ExperimentConfig, MethodSpec
from domadapt.device import precision
from domadapt.engine import VmapSupport, vmap_support
from domadapt.errors import DomadaptError
from domadapt.executors import Executor, LocalExecutor
from domadapt.methods import method_class
from domadapt.outdir_lock import OutDirLock
from domadapt.progress import Progress
from domadapt.report import load_results, plot_learning_curve, write_results
from domadapt.report.rows import learning_curve, summarize_row
from domadapt.run.context import RunContext, Unit
from domadapt.run.corpora import Domains
from domadapt.run.folds import curve_points, split_target
from domadapt.run.learners import learner_of, prepare_functionals
from domadapt.run.model import make_method
from domadapt.run.paths import config_fingerprint, git_hash, read_json, write_json
from domadapt.run.unit import execute_unit


def run_experiment(
    cfg: ExperimentConfig,
    domains: Domains,
    *,
    out_dir: Path,
    device: torch.device,
    resume: bool = False,
    progress: bool = False,
    cache_dir: Path | None = None,
    baseline: str | None = None,
    executor: Executor | None = None,
    annotate: dict[str, Any] | None = None,
    say=print,
) -> dict[str, Any]:
    """Run every method of ``cfg`` over folds x seeds on ``domains`` and write the results
    files into ``out_dir``; returns the results dict (see :mod:`domadapt.report`), with the
    paired comparisons against the ``baseline`` row when one is named.

    The units run on ``executor`` (default: in this process); ``annotate`` adds top-level
    keys to results.json (a sweep's ``"selected_by": OBJECTIVE``). A second live run on
    ``out_dir`` is refused (:class:`~domadapt.outdir_lock.OutDirLock`).
    """
    executor = executor or LocalExecutor()
    with OutDirLock(out_dir):
        plan = plan_run(
            cfg, domains, out_dir=out_dir, device=executor.device(device), resume=resume, progress=progress,
            cache_dir=cache_dir, say=say,
        )
        prepare_functionals(plan.ctx, jobs=executor.preparation_jobs())
        runs: dict[tuple[int, int | str], list[dict[str, Any]]] = {}
        for unit, results in zip(plan.units, run_units(executor, plan, say=say)):
            runs.setdefault((unit.row, unit.point), []).extend(results)  # plan order, whatever finished first
        points = curve_points(cfg)
        results = {
            "recipe": cfg.name,
            "data": "synthetic" if domains.synthetic else "real",
            "title": f"{cfg.name}: " + (f"{'+'.join(cfg.data.source)} -> " if cfg.data.source else "") + cfg.data.target,
            "subject_overlap": plan.subject_overlap,
            "config": cfg.to_dict(),
            "git": git_hash(),
            "skipped": _skipped(domains),
            "rows": [_row(cfg, domains, spec, runs[row, points[-1]], out_dir) for row, spec in enumerate(cfg.methods)],
            **(annotate or {}),
        }
        if len(points) > 1:
            results["curve"] = learning_curve([spec.label for spec in cfg.methods], runs, points)
            plot_learning_curve(results["curve"], out_dir / "plots" / "learning-curve.png", title=f"{cfg.name}: learning curve")
        # the statistics are computed once, from the per-run files, as the files are written
        write_results(out_dir, results, baseline=baseline or cfg.eval.baseline)
        return load_results(out_dir)


@dataclass
class PlannedRun:
    """One experiment ready to dispatch: its context, its folds and its units in plan order."""

    ctx: RunContext
    folds: list[Any]
    units: list[Unit]

    @property
    def subject_overlap(self) -> bool:
        return any(getattr(f, "subject_overlap", False) for f in self.folds)


def plan_run(
    cfg: ExperimentConfig,
    domains: Domains,
    *,
    out_dir: Path,
    device: torch.device,
    resume: bool = False,
    progress: bool = False,
    cache_dir: Path | None = None,
    score_test: bool = True,
    say=print,
) -> PlannedRun:
    """config.json, the folds and the units of one run in ``out_dir`` (the caller holds it).

    A fresh run (no ``resume``) removes its units' checkpoints first: one left by an earlier
    killed run in the same folder is not this run's, and every unit resumes from a
    checkpoint it finds (a Ray task retried after its worker died).
    """
    ctx = RunContext(cfg, domains, out_dir, device, resume, progress, cache_dir, score_test)
    _write_config(ctx)
    _describe(domains, say)
    folds = split_target(cfg, domains)
    plan = PlannedRun(ctx, folds, [])
    say(
        f"  {len(cfg.methods)} methods x {len(folds)} folds x {cfg.eval.seeds} seeds on {device} "
        f"({precision(device, cfg.train.amp)}); split: "
        f"{cfg.eval.splitter}{' (SUBJECTS OVERLAP)' if plan.subject_overlap else ', subject-independent'}"
    )
    plan.units = plan_units(cfg, domains, folds, say=say)
    if not resume:
        for unit in plan.units:
            ctx.paths(unit).checkpoint.unlink(missing_ok=True)
    return plan


def run_units(executor: Executor, plan: PlannedRun, *, say=print) -> list[list[dict[str, Any]]]:
    """Every unit of ``plan`` through ``executor``; per unit (in plan order, whatever
    finished first) its per-seed results."""
    ctx = plan.ctx
    folds = {f.index: f for f in plan.folds}
    jobs = [(unit, folds[unit.fold]) for unit in plan.units]
    out: list[Any] = [None] * len(jobs)
    # a line per unit (said), the record a log and a terminal's scrollback keep; a bar besides on a terminal
    progress_units = Progress(len(jobs), "units (method x fold x seeds)", unit="units", enabled=ctx.progress, log_lines=False)
    with progress_units as clock:
        say_above = clock.above(say)
        # units at once would interleave their per-epoch bars: then only the unit lines show
        shared = dataclasses.replace(ctx, progress=False) if executor.parallel else ctx
        # units of a row (at a curve point) take about as long: in workers, the longest start first
        kinds = [(unit.row, unit.point) for unit in plan.units]
        for j, results in executor.map(execute_unit, shared, jobs, kinds=kinds):
            unit = plan.units[j]
            if executor.remote:  # the driver keeps its own copy: results need no disk shared with the workers
                for result in results:
                    write_json(ctx.paths(unit).result(result["seed"]), result)
            out[j] = results
            for result in results:
                _say_result(say_above, unit.spec.key(ctx.cfg.model), result)
            clock.parallel = executor.concurrency  # known once the map has started its workers
            clock.update(last=f"{unit.spec.label} fold {unit.fold}")
            say_above(f"  [{clock.line()}]")
    return out


def plan_units(cfg: ExperimentConfig, domains: Domains, folds: list[Any], *, say=print) -> list[Unit]:
    """Folds outside, methods inside: every unit of a fold shares that fold's data."""
    seeds = tuple(cfg.eval.seed + i for i in range(cfg.eval.seeds))
    groups: list[list[tuple[int, ...]]] = []
    support: list[VmapSupport | None] = []
    for spec in cfg.methods:
        vmapped, line = seed_plan(cfg, domains, spec, len(seeds))
        if len(seeds) > 1:
            say(f"  {spec.key(cfg.model)}: {line}")
        groups.append([seeds] if vmapped else [(s,) for s in seeds])
        support.append(vmapped)
    return [
        Unit(row, spec, fold.index, group, point, vmap=support[row])
        for fold in folds
        for point in curve_points(cfg)
        for row, spec in enumerate(cfg.methods)
        for group in groups[row]
    ]


def seed_plan(cfg: ExperimentConfig, domains: Domains, spec: MethodSpec, n_seeds: int) -> tuple[VmapSupport | None, str]:
    """How the seeds of ``spec`` train as one vmapped model (None: one after another), and a
    line saying so or why not. The probe runs once per row; its units reuse it."""
    if n_seeds < 2:
        return None, "one seed"
    if not cfg.train.vmap_seeds:
        return None, f"{n_seeds} seeds one after another (train.vmap_seeds = false)"
    if not method_class(spec).vmappable:
        return None, f"{n_seeds} seeds one after another: {method_class(spec).why_not_vmappable}"
    support = vmap_support(make_method(cfg, domains, spec))  # losses are probed on a built method
    if not support.ok:
        return None, f"{n_seeds} seeds one after another: {support.why}"
    why = "" if support.why == "vmapped" else f"; {support.why}"
    return support, f"{n_seeds} seeds in one vmapped pass (float32{why})"


def _row(cfg: ExperimentConfig, domains: Domains, spec: MethodSpec, runs: list[dict[str, Any]], out_dir: Path) -> dict:
    """One results row of ``spec`` from its per-run results (:func:`domadapt.report.rows.summarize_row`)."""
    return summarize_row(
        runs, label=spec.label, key=spec.key(cfg.model), backbone=learner_of(spec).backbone(cfg, spec),
        classes=domains.target.classes, recipe=cfg.name, plots=out_dir / "plots",
    )


def _write_config(ctx: RunContext) -> None:
    """config.json; a resume with another configuration is refused."""
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = config_fingerprint(ctx.cfg)
    path = ctx.out_dir / "config.json"
    if ctx.resume and path.exists():
        previous = read_json(path).get("fingerprint")
        if previous != fingerprint:
            raise DomadaptError(
                f"{path}: --resume with a different configuration (fingerprint {previous} vs "
                f"{fingerprint}); use a new --out or the same settings"
            )
    write_json(path, {
        "fingerprint": fingerprint, "git": git_hash(), "device": str(ctx.device),
        "precision": precision(ctx.device, ctx.cfg.train.amp), "config": ctx.cfg.to_dict(),
    })


def _describe(domains: Domains, say) -> None:
    for corpus, seg in zip([*domains.sources, domains.target], [*domains.source_segments, domains.target_segments]):
        say(
            f"  {corpus.name:<8} {'SYNTHETIC' if corpus.synthetic else 'real':<9} {corpus.root}: "
            f"{len(corpus.utterances)} utterances, {len(corpus.subjects())} subjects, "
            f"{len(seg.y)} segments {tuple(seg.x.shape[1:])}, classes {', '.join(corpus.classes)}"
        )


def _say_result(say, key: str, result: dict[str, Any]) -> None:
    if "metrics" not in result:  # a sweep's search: its selection objectives only
        scores = ", ".join(f"{name} {value:.3f}" for name, value in result["objectives"].items() if value is not None)
        say(f"  {key:<18} fold {result['fold']} seed {result['seed']}: {scores}")
        return
    m = result["metrics"]
    say(
        f"  {key:<18} fold {result['fold']} seed {result['seed']}: acc {m['accuracy']:.3f} "
        f"UA {m['uar']:.3f} F1 {m['macro_f1']:.3f} subject-acc {m['subject_accuracy']:.3f}"
    )


def _skipped(domains: Domains) -> list[dict[str, str]]:
    return [
        {"path": s.path, "reason": s.reason}
        for seg in [*domains.source_segments, domains.target_segments]
        for s in seg.skipped
    ]
