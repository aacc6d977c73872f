"""The training loop, written once for every method.

Each method hands the Trainer a list of :class:`~domadapt.methods.base.Stage`; per step the
stage returns its loss terms and the loop combines them as ``loss = task + lam(p) * align``.
Per epoch: model selection on the stage's validation data, tensorboard scalars and an atomic
checkpoint (temp file + rename), so ``resume`` continues a killed run exactly where its
last finished epoch left it, with the same random state.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from domadapt.align import AlignmentLoss, build_schedule
from domadapt.config import TrainConfig
from domadapt.data import FoldData, cycle_batches, index_batches
from domadapt.errors import DomadaptError
from domadapt.evaluate import segment_metrics
from domadapt.methods.base import Method, SourceBatch, Stage, StepBatch
from domadapt.models.transfer import TransferModel

log = logging.getLogger("domadapt")

CHECKPOINT_VERSION = 1


class NonFiniteLossError(DomadaptError):
    """A NaN/inf loss term: the message names the stage, epoch, batch and term."""


@torch.no_grad()
def predict_proba(
    predict: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, batch_size: int = 512
) -> torch.Tensor:
    """Softmax probabilities [N, K] (float32, CPU) of ``predict`` over ``x`` in batches."""
    out = [torch.softmax(predict(x[i : i + batch_size]).float(), dim=1) for i in range(0, len(x), batch_size)]
    return torch.cat(out).cpu()


def information_maximization(probs: torch.Tensor) -> float:
    """Unsupervised validation score (higher is better) of predictions ``probs`` [N, K]:
    pytorch-adapt's ``IMValidator`` (diversity of the mean prediction minus the mean entropy),
    so model selection on an unlabelled target never reads a label."""
    from pytorch_adapt.validators import IMValidator

    logits = probs.clamp_min(1e-12).log()  # softmax(log p) = p
    return float(IMValidator()(target_train={"logits": logits}))


def compile_general(model: TransferModel) -> None:
    """``torch.compile`` the model's general extractor in place (``nn.Module.compile``: the
    state_dict keys stay as they are, so checkpoints are unchanged). Compiled code is cached
    per process and reused by later models of the same architecture; a new input shape or
    train/eval switch costs one more compile."""
    if getattr(model.general, "_compiled_call_impl", None) is None:
        model.general.compile()


def score_probs(stage: Stage, probs: torch.Tensor) -> dict[str, float]:
    """A stage's validation score of predictions ``probs`` [N, K] on ``stage.monitor``
    (higher is better): UAR on labelled validation data, or the information-maximisation
    score when the stage selects without labels (``select="im"``)."""
    if stage.select == "im":
        im = information_maximization(probs)
        return {"score": im, "im": im}
    y = stage.monitor.y.cpu().numpy()
    m = segment_metrics(y, probs.argmax(1).numpy(), num_classes=stage.monitor.num_classes)
    return {"score": float(m["uar"]), "uar": float(m["uar"]), "accuracy": float(m["accuracy"])}


def global_rng_state() -> dict[str, Any]:
    """torch's global random state (and CUDA's, where present), for a checkpoint."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_global_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`global_rng_state` saved."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_optimizer_state(saved: dict[str, Any], opt: torch.optim.Optimizer, sched: Any) -> None:
    """A checkpoint's ``optimizer`` and ``scheduler`` states into a stage's fresh ones."""
    opt.load_state_dict(saved["optimizer"])
    if sched is not None and saved["scheduler"] is not None:
        sched.load_state_dict(saved["scheduler"])


def atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Trainer:
    """Runs a method's stages on one fold.

    Args:
        cfg: optimisation settings (optimizer, lr, StepLR, clipping, AMP, lambda schedule).
        device: where the model and the data live.
        checkpoint: file for per-epoch checkpoints; with ``resume`` an existing one is loaded.
        writer: a tensorboard ``SummaryWriter`` (or None).
        progress: show a tqdm bar per stage.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        *,
        device: torch.device,
        checkpoint: Path | None = None,
        resume: bool = False,
        writer: Any = None,
        progress: bool = False,
    ) -> None:
        self.cfg = cfg
        self.device = device
        self.checkpoint = checkpoint
        self.resume = resume
        self.writer = writer
        self.progress = progress
        self.lam = build_schedule(cfg.align_schedule)

    # -- pieces (public: domadapt.ensemble trains K models with the same ones) ----------
    def build_optimizer(self, stage: Stage, method: Method) -> torch.optim.Optimizer:
        groups, seen = [], set()
        for params, mult in stage.param_groups:
            fresh = [p for p in params if p.requires_grad and id(p) not in seen]
            seen.update(id(p) for p in fresh)
            if fresh and mult > 0:
                groups.append({"params": fresh, "lr": self.cfg.lr * mult})
        # Whatever the method owns (a DANN discriminator, a latent encoder) is always trained.
        own = [p for p in method.parameters() if p.requires_grad and id(p) not in seen]
        if own:
            groups.append({"params": own, "lr": self.cfg.lr})
        if not groups:
            raise DomadaptError(f"stage {stage.name!r} has no trainable parameters")
        kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
        if self.cfg.optimizer not in kinds:
            raise DomadaptError(f"train.optimizer {self.cfg.optimizer!r}: expected one of {', '.join(kinds)}")
        return kinds[self.cfg.optimizer](groups, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)

    def build_scheduler(self, opt: torch.optim.Optimizer, epochs: int):
        kind = self.cfg.scheduler
        if kind == "step":
            return torch.optim.lr_scheduler.StepLR(opt, step_size=self.cfg.step_size, gamma=self.cfg.gamma)
        if kind == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
        if kind == "none":
            return None
        raise DomadaptError(f"train.scheduler {kind!r}: expected step, cosine or none")

    def batches(self, stage: Stage, data: FoldData, gen: torch.Generator) -> Iterator[StepBatch]:
        bs, dev = self.cfg.batch_size, self.device
        if stage.draw == "target":
            t = data.target_train
            for idx in index_batches(len(t), bs, generator=gen, device=dev):
                x, y = t.take(idx)
                yield StepBatch(x_t=x, y_t=y)
            return
        if stage.draw not in ("source", "joint"):
            raise DomadaptError(f"stage {stage.name!r}: unknown draw {stage.draw!r}")
        sources = data.sources
        if stage.draw == "source":
            # An epoch is one pass over the largest source; the others cycle alongside.
            driver = max(range(len(sources)), key=lambda i: len(sources[i]))
            lead = index_batches(len(sources[driver]), bs, generator=gen, device=dev)
        else:
            lead = index_batches(len(data.target_train), bs, generator=gen, device=dev)
        cycles = [cycle_batches(len(s), bs, generator=gen, device=dev) for s in sources]
        for idx in lead:
            batch = StepBatch()
            if stage.draw == "joint":
                batch.x_t, batch.y_t = data.target_train.take(idx)
            for i, s in enumerate(sources):
                x, y = s.take(idx if stage.draw == "source" and i == driver else next(cycles[i]))
                batch.sources.append(SourceBatch(task=s.task, x=x, y=y))
            yield batch

    def _score(self, stage: Stage, model: nn.Module, method: Method) -> dict[str, float]:
        model.eval()
        method.eval()
        return score_probs(stage, predict_proba(stage.predict, stage.monitor.x))

    # -- checkpoint --------------------------------------------------------------------
    def _rng_state(self, gen: torch.Generator) -> dict[str, Any]:
        return {**global_rng_state(), "batches": gen.get_state()}

    def _set_rng_state(self, state: dict[str, Any], gen: torch.Generator) -> None:
        set_global_rng_state(state)
        gen.set_state(state["batches"])

    # -- the loop ----------------------------------------------------------------------
    def fit(self, model: TransferModel, method: Method, data: FoldData, *, seed: int) -> dict[str, list[float]]:
        """Train ``model`` with ``method`` on ``data``; returns the per-epoch history.

        At the end of each stage the model holds the weights of that stage's best
        validation epoch (model selection never sees the test fold).
        """
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model.to(self.device)
        if self.cfg.compile:
            compile_general(model)
        stages = method.stages(model, data)
        method.to(self.device)
        history: dict[str, list[float]] = {}
        start_stage, start_epoch, saved = 0, 0, None
        if self.resume and self.checkpoint is not None and self.checkpoint.exists():
            saved = torch.load(self.checkpoint, map_location=self.device, weights_only=False)
            if saved.get("version") != CHECKPOINT_VERSION:
                raise DomadaptError(f"{self.checkpoint}: checkpoint version {saved.get('version')} is not {CHECKPOINT_VERSION}")
            model.load_state_dict(saved["model"])
            method.load_state_dict(saved["method"])
            method.load_extra_state(saved["method_extra"])
            history = saved["history"]
            start_stage, start_epoch = saved["stage"], saved["epoch"]
            self._set_rng_state(saved["rng"], gen)
            log.info("resumed %s at stage %d epoch %d", self.checkpoint, start_stage, start_epoch)

        for s_idx in range(start_stage, len(stages)):
            stage = stages[s_idx]
            for module in stage.frozen:
                module.requires_grad_(False)
            opt = self.build_optimizer(stage, method)
            sched = self.build_scheduler(opt, stage.epochs)
            best_score, best_state = -math.inf, None
            first_epoch = 0
            if saved is not None and s_idx == start_stage:
                load_optimizer_state(saved, opt, sched)
                best_score, best_state = saved["best_score"], saved["best_state"]
                first_epoch = start_epoch
            for epoch in range(first_epoch, stage.epochs):
                terms = self._train_epoch(stage, model, method, data, gen, epoch, opt)
                val = self._score(stage, model, method)
                if val["score"] > best_score:
                    best_score = val["score"]
                    best_state = copy.deepcopy({"model": model.state_dict(), "method": method.state_dict()})
                row = {**{f"train/{k}": v for k, v in terms.items()}, **{f"val/{k}": v for k, v in val.items()}}
                for key, value in row.items():
                    history.setdefault(f"{stage.name}/{key}", []).append(value)
                    if self.writer is not None:
                        self.writer.add_scalar(f"{stage.name}/{key}", value, epoch)
                if sched is not None:
                    sched.step()
                if self.checkpoint is not None:
                    last = epoch + 1 == stage.epochs
                    atomic_save(
                        {
                            "version": CHECKPOINT_VERSION,
                            "stage": s_idx + 1 if last else s_idx,
                            "epoch": 0 if last else epoch + 1,
                            "model": model.state_dict() if not last else best_state["model"],
                            "method": method.state_dict() if not last else best_state["method"],
                            "method_extra": method.extra_state(),
                            "optimizer": opt.state_dict(),
                            "scheduler": sched.state_dict() if sched is not None else None,
                            "best_score": best_score,
                            "best_state": best_state,
                            "history": history,
                            "rng": self._rng_state(gen),
                        },
                        self.checkpoint,
                    )
            if best_state is not None:
                model.load_state_dict(best_state["model"])
                method.load_state_dict(best_state["method"])
            for module in stage.frozen:
                module.requires_grad_(True)
            saved = None
        return history

    def _train_epoch(
        self,
        stage: Stage,
        model: TransferModel,
        method: Method,
        data: FoldData,
        gen: torch.Generator,
        epoch: int,
        opt: torch.optim.Optimizer,
    ) -> dict[str, float]:
        if stage.on_epoch_start is not None:
            stage.on_epoch_start(epoch)
        model.train()
        method.train()
        for module in stage.frozen:
            module.eval()
        n_batches = count_batches(stage, data, self.cfg.batch_size)
        sums: dict[str, float] = {}
        count = 0
        use_amp = self.cfg.amp and self.device.type == "cuda"
        align_losses = [m for m in method.modules() if isinstance(m, AlignmentLoss)]
        batches = self.batches(stage, data, gen)
        if self.progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, total=n_batches, desc=f"{stage.name} {epoch + 1}/{stage.epochs}", leave=False)
        for b, batch in enumerate(batches):
            p = (epoch * n_batches + b) / max(1, stage.epochs * n_batches)  # training progress in [0, 1)
            for loss_module in align_losses:  # e.g. DANN's gradient-reversal coefficient
                loss_module.set_progress(p)
            amp = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else contextlib.nullcontext()
            with amp:
                out = stage.step(batch, p)
            lam = self.cfg.align_weight * (stage.align_schedule or self.lam)(p)
            loss = out.task if out.align is None else out.task + lam * out.align
            if not torch.isfinite(loss):
                bad = "task" if not torch.isfinite(out.task) else "align"
                raise NonFiniteLossError(
                    f"non-finite loss in stage {stage.name!r}, epoch {epoch + 1}, batch {b + 1}: "
                    f"{bad} term = {float(out.task if bad == 'task' else out.align)}"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg.grad_clip > 0:
                params = [q for group in opt.param_groups for q in group["params"]]
                torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
            opt.step()
            # Summed as tensors and read once per epoch: no device sync per logged term.
            values = {"loss": loss.detach(), "task": out.task.detach()}
            if out.align is not None:
                values.update(align=out.align.detach(), lam=lam)
            values.update(out.stats)
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + (v.detach().float() if torch.is_tensor(v) else float(v))
            count += 1
        return {k: float(v) / max(1, count) for k, v in sums.items()}


def count_batches(stage: Stage, data: FoldData, batch_size: int) -> int:
    """Steps per epoch: batches of the domain that drives the stage (partial ones of < 2 dropped)."""
    if stage.draw == "source":
        n = max(len(s) for s in data.sources)
    else:
        n = len(data.target_train)
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= 2 else 0)
