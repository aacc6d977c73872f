"""Joint training (the lab's "Multitrain", docs/lineage.md) and joint training with an
alignment loss."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from domadapt.align import build_loss, build_schedule
from domadapt.data import TARGET_TASK, FoldData
from domadapt.methods.base import Method, Stage, StepBatch, StepOutput
from domadapt.models.transfer import TaskOutput, TransferModel
from domadapt.registries import LOSSES, METHODS
from domadapt.registry import option

ALIGN_POINTS = ("general", "specific")

Aligner = Callable[[list[TaskOutput], TaskOutput, StepBatch], tuple[torch.Tensor, dict]]


def joint_stage(method: Method, data: FoldData, *, align: Aligner | None, use_target_labels: bool = True) -> Stage:
    """Source and target batches in every step, one head per task, everything trained.

    ``align(outs_s, out_t, batch) -> (loss, stats)`` adds the alignment term; without target
    labels the target contributes only through it, and model selection is unsupervised.
    """
    model = method.model
    params = list(model.general.parameters())
    for task in dict.fromkeys([d.task for d in data.sources] + [TARGET_TASK]):
        params += model.task_parameters(task)

    def step(batch: StepBatch, p: float) -> StepOutput:
        # One forward of all domains together: BatchNorm normalises source and target with
        # shared statistics, as at test time. Separate forwards would standardise each domain
        # with its own batch statistics, which aligns the batches' first two moments for free
        # in training (a distance loss then reads ~0) and leaves the features unaligned under
        # the running statistics used for prediction.
        xs = [sb.x for sb in batch.sources] + [batch.x_t]
        general = model.general(torch.cat(xs)).split([len(x) for x in xs])
        outs_s = [model.from_general(g, sb.task) for g, sb in zip(general, batch.sources)]
        out_t = model.from_general(general[-1], TARGET_TASK)
        loss_s = sum(method.cross_entropy(o.logits, sb.y) for o, sb in zip(outs_s, batch.sources))
        task_loss = loss_s
        if use_target_labels:
            task_loss = task_loss + method.cross_entropy(out_t.logits, batch.y_t)
        if align is None:
            return StepOutput(task=task_loss)
        align_loss, stats = align(outs_s, out_t, batch)
        return StepOutput(task=task_loss, align=align_loss, stats=stats)

    return Stage(
        name="joint",
        epochs=method.train_cfg.epochs,
        draw="joint",
        param_groups=[(params, 1.0)],
        step=step,
        monitor=data.target_val,
        predict=method.target_logits,
        select="labels" if use_target_labels else "im",
    )


def feature_aligner(loss: nn.Module, *, at: str, shared_labels: bool, use_target_labels: bool = True) -> Aligner:
    """Align general (or specific) features of all source batches against the target batch
    (no alignment on a step whose batch has fewer rows than the loss's ``min_batch``).

    Class context (``y_s``, ``logits_s``) is passed only when source and target share a
    label set; ``y_t`` only when target labels are used for training.
    """

    def align(outs_s: list[TaskOutput], out_t: TaskOutput, batch: StepBatch) -> tuple[torch.Tensor, dict]:
        f_s = torch.cat([getattr(o, at) for o in outs_s])
        f_t = getattr(out_t, at)
        if min(len(f_s), len(f_t)) < loss.min_batch:
            # an epoch's last partial batch too small for the estimator (MMD's median
            # bandwidth is 0 on 2 rows): this step trains the tasks only; the zero stays in
            # the graph so that replicas trained together still return one term each
            return (f_s.sum() + f_t.sum()) * 0.0, {}
        context = {"logits_t": out_t.logits}
        if shared_labels:
            context["y_s"] = torch.cat([sb.y for sb in batch.sources])
            context["logits_s"] = torch.cat([o.logits for o in outs_s])
        if use_target_labels and batch.y_t is not None and "y_t" in loss.uses:
            context["y_t"] = batch.y_t
        return loss.forward_with_stats(f_s, f_t, **context)

    return align


def aligned_width(model: TransferModel, at: str) -> int:
    """The width of the features at alignment point ``at``."""
    if at == "general":
        return int(model.general.out_dim)
    return int(model.specific_for(TARGET_TASK)[0].out_features)


@METHODS.register("joint")
class Joint(Method):
    """Source and target tasks trained together, one specific extractor + head per task."""

    def stages(self, data: FoldData) -> list[Stage]:
        return [joint_stage(self, data, align=None)]


@METHODS.register("align")
class Align(Method):
    """Joint training plus an alignment loss from :mod:`domadapt.align` between source and
    target features, taken after the general (default) or the specific extractor.
    ``use_target_labels = false`` is unsupervised DA: the target's labels are never read in
    training and model selection uses the information-maximisation validator."""

    @dataclass(frozen=True)
    class Options:
        loss: str = "mmd"  # a registered alignment loss (domadapt list losses)
        at: str = option("general", choices=ALIGN_POINTS)
        loss_options: dict = field(default_factory=dict)  # passed to the loss
        use_target_labels: bool = True

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        LOSSES.check(str(options.get("loss", "mmd")), dict(options.get("loss_options", {})))

    @classmethod
    def label(cls, name: str, options: dict[str, Any]) -> str:
        return f"align:{options.get('loss', 'mmd')}"

    def __init__(self, model: TransferModel, train, options=None) -> None:
        super().__init__(model, train, options)
        o = self.options
        self.loss = build_loss(
            o.loss,
            feature_dim=aligned_width(model, o.at),
            num_classes=self.num_classes if self.shared_labels else None,
            **dict(o.loss_options),
        )

    def stages(self, data: FoldData) -> list[Stage]:
        o = self.options
        aligner = feature_aligner(
            self.loss, at=o.at, shared_labels=self.shared_labels, use_target_labels=o.use_target_labels
        )
        stage = joint_stage(self, data, align=aligner, use_target_labels=o.use_target_labels)
        # the loss family's own lambda and warm-up (DANN: constant, its GRL warms up instead)
        stage.align_weight = type(self.loss).default_weight
        stage.align_schedule = build_schedule(type(self.loss).default_schedule)
        return [stage]
