"""The training loop, written once for one replica and for K vmapped ones.

stage -> epoch -> batch -> step -> select -> checkpoint: per step the stage returns its
loss terms and the loop combines them as ``loss = task + lam(p) * align``; per epoch each
replica is scored on the stage's validation data and keeps its best epoch (a ``[K]`` best
score and a ``torch.where`` over the stacked state: the only bookkeeping), tensorboard rows
are written per replica, and one atomic checkpoint lets ``resume`` continue a killed run
exactly where its last finished epoch left it, with the same random state.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from domadapt.align import AlignmentLoss, build_schedule
from domadapt.augment import SpecAugment
from domadapt.config import TrainConfig
from domadapt.device import autocast
from domadapt.engine.batches import count_batches, draw_batches
from domadapt.engine.checkpoint import load_checkpoint, save_checkpoint
from domadapt.engine.replicas import Replicas
from domadapt.engine.scoring import score_probs
from domadapt.engine.shared_stages import SharedStages
from domadapt.errors import DomadaptError
from domadapt.methods.base import Stage
from domadapt.progress import progress_bar

log = logging.getLogger("domadapt")

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


class NonFiniteLossError(DomadaptError):
    """A NaN/inf loss term: the message names the stage, epoch, batch, seed and term."""


@dataclass
class Run:
    """Where a fit reports and saves: all optional."""

    checkpoint: Path | None = None
    resume: bool = False
    # seconds between checkpoints (train.checkpoint_every): an epoch's end saves once this
    # long has passed since the fit started or last saved; 0 = every epoch
    checkpoint_every: float = 0.0
    writers: list[Any] | None = None  # one tensorboard SummaryWriter (or None) per replica
    progress: bool = False
    # Per-epoch diagnostics after validation (e.g. the domain gap on a fixed probe batch):
    # replicas -> one {name: value} per replica, logged as STAGE/NAME; not in source-only stages.
    epoch_probe: Callable[[Replicas], list[dict[str, float]]] | None = None
    # where source-only stages trained earlier in the run are kept and found again
    shared_stages: SharedStages | None = None


@dataclass
class StageState:
    """What one stage carries from epoch to epoch (and through a checkpoint)."""

    optimizer: torch.optim.Optimizer | None  # None: a forward-only stage
    scheduler: Any
    lam_of: Callable[[float], float]  # the alignment weight at training progress p: weight * schedule(p)
    best_score: Tensor  # [K] float64, -inf until a replica first scores
    best: dict[str, Tensor] | None = None  # per-replica best state, stacked like replicas.state()
    histories: list[dict[str, list[float]]] = field(default_factory=list)


def build_optimizer(replicas: Replicas, stage: Stage, cfg: TrainConfig) -> torch.optim.Optimizer | None:
    """The stage's optimiser; None for a stage without parameter groups (forward passes only,
    e.g. AdaBN re-estimating BatchNorm statistics)."""
    if not stage.param_groups:
        return None
    groups = replicas.param_groups(stage, cfg.lr)
    # fused: the update of every parameter in one kernel instead of a dozen small ops per
    # tensor, the same Adam (timed in benchmarks/bench_tim_step.py)
    return OPTIMIZERS[cfg.optimizer](
        groups, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay, fused=True
    )


def build_scheduler(opt: torch.optim.Optimizer | None, cfg: TrainConfig, epochs: int) -> Any:
    if opt is None:
        return None
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    return None


def fit(replicas: Replicas, cfg: TrainConfig, run: Run | None = None) -> list[dict[str, list[float]]]:
    """Train the replicas through their method's stages; one per-epoch history per replica.

    At the end of each stage every replica holds the weights of its own best validation
    epoch (model selection never sees the test fold), or of its last epoch when the stage
    has no validation rows.
    """
    run = run or Run()
    if run.writers is not None and len(run.writers) != replicas.k:
        raise DomadaptError(f"{len(run.writers)} tensorboard writers for {replicas.k} replicas")
    histories: list[dict[str, list[float]]] = [{} for _ in range(replicas.k)]
    replicas.augment = SpecAugment.from_config(cfg)
    start_stage, start_epoch, saved = 0, 0, None
    if run.resume and run.checkpoint is not None and run.checkpoint.exists():
        saved = load_checkpoint(run.checkpoint, seeds=replicas.seeds, generators=replicas.generators, device=replicas.device)
    if saved is not None:  # None: no checkpoint, or one that could not be read (the unit starts over)
        replicas.load_state(saved["state"])
        replicas.load_extra_state(saved["extra"])
        histories, start_stage, start_epoch = saved["histories"], saved["stage"], saved["epoch"]
        log.info("resumed %s at stage %d epoch %d", run.checkpoint, start_stage, start_epoch)
    saved_at = time.monotonic()
    for s_idx in range(start_stage, len(replicas.stages)):
        stage = replicas.stages[s_idx]
        fresh = saved is None or s_idx > start_stage
        key = run.shared_stages.key(replicas, stage, cfg) if run.shared_stages is not None and fresh else None
        if key is not None and run.shared_stages.load(key, replicas, stage, histories, run.writers):
            continue
        with replicas.frozen(stage):
            state = _begin_stage(replicas, stage, cfg, histories, saved if s_idx == start_stage else None)
            probed = run.epoch_probe is not None and not stage.source_only
            for epoch in range(start_epoch if s_idx == start_stage else 0, stage.epochs):
                terms = train_epoch(replicas, stage, cfg, state.optimizer, epoch, progress=run.progress, lam_of=state.lam_of)
                with autocast(replicas.device, cfg.amp):
                    val = validate(replicas, stage, unsupervised=cfg.unsupervised_selection)
                    probes = run.epoch_probe(replicas) if probed else [{} for _ in range(replicas.k)]
                keep_best(replicas, state, val)
                _log_epoch(state.histories, run.writers, stage.name, epoch, terms, val, probes)
                if state.scheduler is not None:
                    state.scheduler.step()
                if run.checkpoint is not None and time.monotonic() - saved_at >= run.checkpoint_every:
                    _save(replicas, run.checkpoint, state, stage=s_idx, epoch=epoch + 1)
                    saved_at = time.monotonic()
            _restore_best(replicas, state)
        if key is not None:
            run.shared_stages.store(key, replicas, stage, histories)
    replicas.eval_mode()
    return histories


def _begin_stage(
    replicas: Replicas, stage: Stage, cfg: TrainConfig, histories: list, saved: dict[str, Any] | None
) -> StageState:
    """The stage's optimiser, scheduler and best-keeping, fresh or as a checkpoint left them."""
    opt = build_optimizer(replicas, stage, cfg)
    sched = build_scheduler(opt, cfg, stage.epochs)
    state = StageState(
        opt, sched, alignment_weight(stage, cfg), torch.full((replicas.k,), -math.inf, dtype=torch.float64), histories=histories
    )
    if saved is not None:
        if opt is not None:
            opt.load_state_dict(saved["optimizer"])
        if sched is not None:
            sched.load_state_dict(saved["scheduler"])
        state.best_score, state.best = saved["best_score"], saved["best"]
    return state


def alignment_weight(stage: Stage, cfg: TrainConfig) -> Callable[[float], float]:
    """λ(p) of ``stage``, built once per stage: ``train.align_weight`` (else the stage's own
    weight) times ``train.align_schedule`` (else the stage's schedule, else DANN's ramp)."""
    weight = cfg.align_weight if cfg.align_weight is not None else stage.align_weight
    schedule = build_schedule(cfg.align_schedule) if cfg.align_schedule is not None else stage.align_schedule or build_schedule("dann")
    return lambda p: weight * schedule(p)


def train_epoch(
    replicas: Replicas, stage: Stage, cfg: TrainConfig, opt: torch.optim.Optimizer | None, epoch: int, *, progress: bool,
    lam_of: Callable[[float], float],
) -> dict[str, list[float]]:
    """One epoch of ``stage`` for every replica; mean loss terms per replica. Without an
    optimiser (a stage with no parameter groups) the steps run forward only, without grad.
    ``lam_of``: the stage's :func:`alignment_weight`."""
    replicas.begin_epoch(stage, epoch)
    n_batches = count_batches(stage, replicas.data, cfg.batch_size)
    align_losses = [m for m in replicas.method.modules() if isinstance(m, AlignmentLoss)]
    trained = [p for group in opt.param_groups for p in group["params"]] if opt is not None else []
    draws = [draw_batches(stage, replicas.data, cfg.batch_size, g, replicas.device) for g in replicas.generators]
    batches: Any = zip(*draws)
    desc = f"{stage.name} {epoch + 1}/{stage.epochs}" + (f" x{replicas.k} seeds" if replicas.k > 1 else "")
    batches = progress_bar(batches, total=n_batches, desc=desc, enabled=progress)
    sums: dict[str, Tensor] = {}
    nonfinite = NonFiniteWatch(replicas.k, replicas.device)
    for b, per_replica in enumerate(batches):
        p = (epoch * n_batches + b) / max(1, stage.epochs * n_batches)  # training progress in [0, 1)
        for loss_module in align_losses:  # e.g. DANN's gradient-reversal coefficient
            loss_module.set_progress(p)
        with autocast(replicas.device, cfg.amp), torch.set_grad_enabled(opt is not None):
            out = replicas.loss_terms(stage, list(per_replica), p)
        lam = lam_of(p)
        loss = out.task if out.align is None else out.task + lam * out.align
        nonfinite.update(b, loss, out)
        if opt is not None:
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()  # replicas are independent: d(sum)/d(replica k) = d(loss k)
            if cfg.grad_clip > 0:
                replicas.clip_(trained, cfg.grad_clip)
            opt.step()
        values = {"loss": loss, "task": out.task, **({"align": out.align} if out.align is not None else {})}
        if out.align is not None:
            values["lam"] = torch.full((replicas.k,), lam)
        for key, v in {**values, **out.stats}.items():  # summed on the device, read once per epoch
            sums[key] = sums.get(key, 0.0) + v.detach().float().reshape(-1).expand(replicas.k)
    nonfinite.check(stage.name, epoch, replicas.seeds)
    count = max(1, n_batches)
    return {key: [float(x) / count for x in v.cpu()] for key, v in sums.items()}


class NonFiniteWatch:
    """Each replica's first non-finite loss of an epoch, kept on the device and read once,
    when the epoch ends: asking the device after every step (``bool(...)``) makes the host
    wait for the GPU's queue to drain, step after step.

    Per replica ``[K]``: the batch of its first non-finite loss (-1: none yet) and that
    batch's task and align terms.
    """

    def __init__(self, k: int, device: torch.device) -> None:
        self.k = k
        self.batch = torch.full((k,), -1, dtype=torch.long, device=device)
        self.task = torch.zeros(k, device=device)
        self.align = torch.zeros(k, device=device)

    @torch.no_grad()
    def update(self, b: int, loss: Tensor, out: Any) -> None:
        first = ~torch.isfinite(loss.reshape(-1).expand(self.k)) & (self.batch < 0)
        self.batch = torch.where(first, b, self.batch)
        self.task = torch.where(first, out.task.detach().float().reshape(-1).expand(self.k), self.task)
        if out.align is not None:
            self.align = torch.where(first, out.align.detach().float().reshape(-1).expand(self.k), self.align)

    def check(self, stage: str, epoch: int, seeds: list[int]) -> None:
        """Raise for the first replica that met a non-finite loss (the epoch's one read)."""
        batches = self.batch.tolist()
        bad = [i for i, b in enumerate(batches) if b >= 0]
        if not bad:
            return
        i = bad[0]
        task = float(self.task[i])
        term, value = ("task", task) if not math.isfinite(task) else ("align", float(self.align[i]))
        raise NonFiniteLossError(
            f"non-finite loss in stage {stage!r}, epoch {epoch + 1}, batch {batches[i] + 1} "
            f"(seed {seeds[i]}): {term} term = {value}"
        )


def validate(replicas: Replicas, stage: Stage, *, unsupervised: str | None = None) -> list[dict[str, float]]:
    """Each replica's validation scores of ``stage`` (on ``stage.monitor``); ``unsupervised``
    (``train.unsupervised_selection``) replaces the validator of a stage that reads no label.
    None when the monitor holds no rows (``train.val_fraction = 0``): the stage keeps its
    last epoch."""
    if len(stage.monitor) == 0:
        return [{} for _ in range(replicas.k)]
    replicas.eval_mode()
    probs = replicas.predict(stage.predict, stage.monitor.x)
    return [score_probs(stage, p, unsupervised=unsupervised) for p in probs]


@torch.no_grad()
def keep_best(replicas: Replicas, state: StageState, val: list[dict[str, float]]) -> None:
    """Replicas whose score improved keep their current state as their best (NaN, or no
    score at all, never improves)."""
    score = torch.tensor([v.get("score", math.nan) for v in val], dtype=torch.float64)
    improved = score > state.best_score
    if not bool(improved.any()):
        return
    state.best_score = torch.where(improved, score, state.best_score)
    current = {k: v.detach() for k, v in replicas.state().items()}
    if state.best is None:
        state.best = {k: v.clone() for k, v in current.items()}
        return
    mask = improved.to(replicas.device)
    state.best = {k: torch.where(_expand(mask, v), v, state.best[k]) for k, v in current.items()}


@torch.no_grad()
def _restore_best(replicas: Replicas, state: StageState) -> None:
    """Every replica back to its own best epoch (one that never scored keeps its last)."""
    if state.best is None:
        return
    ever = torch.isfinite(state.best_score).to(replicas.device)
    for k, v in replicas.state().items():
        v.copy_(torch.where(_expand(ever, v), state.best[k], v))


def _expand(mask: Tensor, like: Tensor) -> Tensor:
    return mask.view(-1, *([1] * (like.dim() - 1)))


def _log_epoch(histories, writers, stage: str, epoch: int, terms: dict[str, list[float]], val: list[dict], probes: list[dict]) -> None:
    for i, history in enumerate(histories):
        row = {**{f"train/{k}": v[i] for k, v in terms.items()}, **{f"val/{k}": v for k, v in val[i].items()}, **probes[i]}
        for key, value in row.items():
            history.setdefault(f"{stage}/{key}", []).append(value)
            if writers is not None and writers[i] is not None:
                writers[i].add_scalar(f"{stage}/{key}", value, epoch)


def _save(replicas: Replicas, path: Path, state: StageState, *, stage: int, epoch: int) -> None:
    """One checkpoint after an epoch; ``epoch == stage.epochs`` means only the best restore is left."""
    save_checkpoint(
        path,
        seeds=replicas.seeds,
        generators=replicas.generators,
        stage=stage,
        epoch=epoch,
        state={k: v.detach() for k, v in replicas.state().items()},
        extra=replicas.extra_state(),
        optimizer=state.optimizer.state_dict() if state.optimizer is not None else None,
        scheduler=state.scheduler.state_dict() if state.scheduler is not None else None,
        best_score=state.best_score,
        best=state.best,
        histories=state.histories,
    )
