"""Joint training (the notes' "Multitrain") and joint training with an alignment loss."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from domadapt.align import DomainAdversarialLoss, build_loss, build_schedule
from domadapt.data import FoldData
from domadapt.errors import DomadaptError
from domadapt.methods.base import Method, Stage, StepBatch, StepOutput
from domadapt.models.transfer import TaskOutput, TransferModel

ALIGN_POINTS = ("general", "specific")


def joint_stage(
    method: Method,
    model: TransferModel,
    data: FoldData,
    *,
    align: Callable[[list[TaskOutput], TaskOutput, StepBatch], tuple[torch.Tensor, dict]] | None,
    use_target_labels: bool = True,
    name: str = "joint",
) -> Stage:
    """Source and target batches in every step, one head per task, everything trained.

    ``align(outs_s, out_t, batch) -> (loss, stats)`` adds the alignment term; without target
    labels the target contributes only through it, and model selection is unsupervised.
    """
    task_t = method.target_task(data)
    params = list(model.general.parameters())
    for task in dict.fromkeys([d.task for d in data.sources] + [task_t]):
        params += model.task_parameters(task)

    def step(batch: StepBatch, p: float) -> StepOutput:
        loss_s, outs_s = method.source_ce(model, batch)
        out_t = model(batch.x_t, task_t)
        task_loss = loss_s
        if use_target_labels:
            task_loss = task_loss + F.cross_entropy(out_t.logits, batch.y_t)
        if align is None:
            return StepOutput(task=task_loss)
        align_loss, stats = align(outs_s, out_t, batch)
        return StepOutput(task=task_loss, align=align_loss, stats=stats)

    return Stage(
        name=name,
        epochs=method.train_cfg.epochs,
        draw="joint",
        param_groups=[(params, 1.0)],
        step=step,
        monitor=data.target_val,
        predict=method.predictor(model, task_t),
        select="labels" if use_target_labels else "im",
    )


def feature_aligner(
    loss: nn.Module, *, at: str, shared_labels: bool
) -> Callable[[list[TaskOutput], TaskOutput, StepBatch], tuple[torch.Tensor, dict]]:
    """Align general (or specific) features of all source batches against the target batch.

    Class context (``y_s``, ``logits_s``) is passed only when source and target share a
    label set; ``y_t`` only when target labels are used for training.
    """
    if at not in ALIGN_POINTS:
        raise DomadaptError(f"align at {at!r}: expected one of {', '.join(ALIGN_POINTS)}")

    def align(outs_s: list[TaskOutput], out_t: TaskOutput, batch: StepBatch) -> tuple[torch.Tensor, dict]:
        f_s = torch.cat([getattr(o, at) for o in outs_s])
        f_t = getattr(out_t, at)
        context = {"logits_t": out_t.logits}
        if shared_labels:
            context["y_s"] = torch.cat([sb.y for sb in batch.sources])
            context["logits_s"] = torch.cat([o.logits for o in outs_s])
        if batch.y_t is not None and "y_t" in loss.uses:
            context["y_t"] = batch.y_t
        return loss.forward_with_stats(f_s, f_t, **context)

    return align


class Joint(Method):
    """Source and target tasks trained together, one specific extractor + head per task."""

    def stages(self, model: TransferModel, data: FoldData) -> list[Stage]:
        return [joint_stage(self, model, data, align=None)]


class Align(Joint):
    """Joint training plus an alignment loss from :mod:`domadapt.align` between source and
    target features, taken after the general (default) or the specific extractor.

    Options: ``loss`` (registry name, default ``mmd``), ``at`` (general | specific),
    ``loss_options`` (a table passed to the loss), ``use_target_labels`` (default true;
    false = unsupervised DA: the target's labels are never read in training and model
    selection uses the information-maximisation validator).
    """

    option_names = ("loss", "at", "loss_options", "use_target_labels")

    def stages(self, model: TransferModel, data: FoldData) -> list[Stage]:
        at = str(self.options.get("at", "general"))
        dim = model.general.out_dim if at == "general" else model.specific_for(self.target_task(data))[0].out_features
        self.loss = build_loss(
            str(self.options.get("loss", "mmd")),
            feature_dim=int(dim),
            num_classes=data.target_train.num_classes if data.shared_labels else None,
            **dict(self.options.get("loss_options", {})),
        )
        use_labels = bool(self.options.get("use_target_labels", True))
        aligner = feature_aligner(self.loss, at=at, shared_labels=data.shared_labels)
        stage = joint_stage(self, model, data, align=aligner, use_target_labels=use_labels)
        if isinstance(self.loss, DomainAdversarialLoss):
            # DANN warms up its own gradient-reversal coefficient (Ganin et al.); ramping
            # the loss weight as well would scale the adversarial signal twice.
            stage.align_schedule = build_schedule("constant")
        return [stage]
