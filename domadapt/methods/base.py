"""What a training strategy gives the Trainer: stages, and a step that returns loss terms.

The loop itself lives once in :mod:`domadapt.train`; a method only says, per stage, which
parameters train at which learning-rate multiplier, which batches it draws, and what the
task loss and the alignment loss of one step are. The Trainer combines them as
``loss = task + lambda(p) * align`` in plain sight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

from domadapt.config import MethodSpec, TrainConfig
from domadapt.data import TARGET_TASK, DomainData, FoldData
from domadapt.errors import DomadaptError
from domadapt.models.transfer import TransferModel


@dataclass
class SourceBatch:
    task: str
    x: torch.Tensor  # [B, C, T]
    y: torch.Tensor  # [B]


@dataclass
class StepBatch:
    """One step's data: a target batch and/or one batch per source domain."""

    x_t: torch.Tensor | None = None  # [B, C, T]
    y_t: torch.Tensor | None = None  # [B]
    sources: list[SourceBatch] = field(default_factory=list)


@dataclass
class StepOutput:
    """The loss terms of one step. ``align`` is None for methods without alignment."""

    task: torch.Tensor
    align: torch.Tensor | None = None
    stats: dict[str, float] = field(default_factory=dict)


@dataclass
class Stage:
    """One phase of training (e.g. source pre-training, then target training).

    ``draw`` says which domains a step sees: ``"target"``, ``"source"`` or ``"joint"``
    (an epoch is one pass over the driving domain: the target for joint stages).
    ``param_groups`` are ``(parameters, lr multiplier)`` pairs; a multiplier of 0 freezes.
    ``monitor`` is the validation data used for model selection, read through ``predict``.
    """

    name: str
    epochs: int
    draw: str
    param_groups: list[tuple[list[nn.Parameter], float]]
    step: Callable[[StepBatch, float], StepOutput]
    monitor: DomainData
    predict: Callable[[torch.Tensor], torch.Tensor]
    on_epoch_start: Callable[[int], None] | None = None
    # Modules held fixed in this stage: no gradient, and in eval mode so that not even
    # BatchNorm running statistics move (a frozen extractor stays exactly the pre-trained one).
    frozen: list[nn.Module] = field(default_factory=list)
    # Model selection: "labels" = validation UA on ``monitor``'s labels; "im" = the
    # information-maximisation validator on ``monitor``'s predictions (labels never read).
    select: str = "labels"
    # lambda(p) of the align term; None = the experiment's train.align_schedule.
    align_schedule: Callable[[float], float] | None = None


class Method(nn.Module):
    """Base class. Subclasses build their stages in :meth:`stages`.

    A method is an ``nn.Module`` so that whatever it owns (a DANN discriminator, a latent
    encoder, a frozen copy of a pre-trained extractor) is checkpointed and moved to the
    device with it; the Trainer optimises every trainable parameter a stage names.
    """

    #: whether source and target may have different label sets for this method
    needs_shared_labels = False
    #: option names this method accepts in its ``[[methods]]`` entry
    option_names: tuple[str, ...] = ()

    def __init__(self, spec: MethodSpec, train: TrainConfig) -> None:
        super().__init__()
        unknown = sorted(set(spec.method_options) - set(self.option_names))
        if unknown:
            raise DomadaptError(
                f"method {spec.name!r}: unknown option(s) {', '.join(unknown)}; valid: "
                + (", ".join(self.option_names) or "none")
            )
        self.spec = spec
        self.train_cfg = train
        self.options: dict[str, Any] = spec.method_options

    def stages(self, model: TransferModel, data: FoldData) -> list[Stage]:
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        """State outside ``state_dict()`` that a checkpoint must keep (default: none)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    # -- shared building blocks -------------------------------------------------------
    @staticmethod
    def target_task(data: FoldData) -> str:
        return data.target_train.task

    @staticmethod
    def source_ce(model: TransferModel, batch: StepBatch) -> tuple[torch.Tensor, list]:
        """Summed cross-entropy over the step's source batches, and their forward outputs."""
        outs, loss = [], 0.0
        for sb in batch.sources:
            out = model(sb.x, sb.task)
            loss = loss + F.cross_entropy(out.logits, sb.y)
            outs.append(out)
        return loss, outs

    def predictor(self, model: TransferModel, task: str) -> Callable[[torch.Tensor], torch.Tensor]:
        if task == TARGET_TASK:
            return lambda x: self.target_logits(model, x)
        return lambda x: model(x, task).logits

    def target_logits(self, model: TransferModel, x: torch.Tensor) -> torch.Tensor:
        """The target task's logits [B, K] for features ``x`` [B, C, T] after training."""
        return model(x, TARGET_TASK).logits

    def pretrain_stage(self, model: TransferModel, data: FoldData) -> Stage:
        """Supervised training of general + source parts on all sources (notes: "pre-train on
        CASIA"); model selection on the held-out source share."""
        source_tasks = [d.task for d in data.sources]
        params = list(model.general.parameters())
        for task in dict.fromkeys(source_tasks):
            params += model.task_parameters(task)

        def step(batch: StepBatch, p: float) -> StepOutput:
            loss, _ = self.source_ce(model, batch)
            return StepOutput(task=loss)

        first = data.source_val[0]
        return Stage(
            name="pretrain",
            epochs=self.train_cfg.pretrain_epochs,
            draw="source",
            param_groups=[(params, 1.0)],
            step=step,
            monitor=first,
            predict=self.predictor(model, first.task),
        )

    def target_stage(
        self,
        model: TransferModel,
        data: FoldData,
        *,
        general_lr_mult: float = 1.0,
        name: str = "target",
    ) -> Stage:
        """Supervised training on the target task; the general extractor's lr is scaled by
        ``general_lr_mult`` (0 freezes it)."""
        task = self.target_task(data)

        def step(batch: StepBatch, p: float) -> StepOutput:
            return StepOutput(task=F.cross_entropy(model(batch.x_t, task).logits, batch.y_t))

        groups = [(model.task_parameters(task), 1.0)]
        if general_lr_mult > 0:
            groups.insert(0, (list(model.general.parameters()), general_lr_mult))
        return Stage(
            name=name,
            epochs=self.train_cfg.epochs,
            draw="target",
            param_groups=groups,
            step=step,
            monitor=data.target_val,
            predict=self.predictor(model, task),
            frozen=[] if general_lr_mult > 0 else [model.general],
        )


def require_shared_labels(method: str, data: FoldData) -> None:
    if not data.shared_labels:
        raise DomadaptError(
            f"method {method!r} needs source and target to share one label set "
            "(cross-corpus emotion); this experiment's label sets differ"
        )
