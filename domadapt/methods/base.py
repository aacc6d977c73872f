"""What a training strategy gives the engine: stages, and a step that returns loss terms.

The loop itself lives once in :mod:`domadapt.engine.loop`; a method only says, per stage,
which parameters train at which learning-rate multiplier, which batches it draws, and what
the task loss and the alignment loss of one step are. The loop combines them as
``loss = task + lambda(p) * align`` in plain sight.

A method is an ``nn.Module`` that owns the model it trains (``self.model``) and every module
of its own (a DANN discriminator, a latent encoder), all built in ``__init__``: one
``state_dict`` is the whole trainable state, one ``functional_call`` on the method swaps all
of it (that is how K replicas train as one vmapped model), and :meth:`stages` only builds
closures over modules that already exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator

import torch
from torch import nn
from torch.nn import functional as F

from domadapt.config import TrainConfig
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
    stats: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class Stage:
    """One phase of training (e.g. source pre-training, then target training).

    ``draw`` says which domains a step sees: ``"target"``, ``"source"``, ``"joint"`` (an
    epoch is one pass over the largest domain) or ``"test"`` (test-time adaptation: the
    target's test rows in ``x_t``, their labels never handed over).
    ``param_groups`` are ``(parameters, lr multiplier)`` pairs; a multiplier of 0 freezes.
    An empty list makes a forward-only stage: no optimiser, steps run without gradient
    (AdaBN's re-estimation of BatchNorm statistics).
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
    # Model selection: "labels" = validation UA on ``monitor``'s labels; else a name of
    # VALIDATORS scored on ``monitor``'s predictions (labels never read): "im" information
    # maximisation, "snd" soft neighbourhood density. train.unsupervised_selection overrides it.
    select: str = "labels"
    # lambda and lambda(p) of the align term, the method's (its loss family's) own; the
    # recipe's train.align_weight / align_schedule override them when set.
    align_weight: float = 1.0
    align_schedule: Callable[[float], float] | None = None  # None: the DANN warm-up
    # Reads the source corpora only (pre-training): no diagnostic reads the target fold in
    # it either, so a run trains it once for all its units that start it from the same
    # state (domadapt/engine/shared_stages.py).
    source_only: bool = False


@dataclass(frozen=True)
class NoOptions:
    """A method without options of its own."""


class Method(nn.Module):
    """Base class: owns ``model`` and its own modules; subclasses build :meth:`stages`.

    Class attributes a subclass sets:
        Options: a frozen dataclass of the method's ``[[methods]]`` options with defaults
            (the registry checks a recipe's values against it before any data is read).
        vmappable / why_not_vmappable: whether K replicas can train as one ``torch.func``
            model, and the reason shown to the user when not.
        needs_shared_labels: source and target must share one label set.
        trained_by: the learner that trains a row of this class (``domadapt.run.learners``):
            ``"engine"``, the training loop over K replicas.
    """

    Options: ClassVar[type] = NoOptions
    trained_by: ClassVar[str] = "engine"
    vmappable: ClassVar[bool] = True
    why_not_vmappable: ClassVar[str] = ""
    needs_shared_labels: ClassVar[bool] = False

    def __init__(self, model: TransferModel, train: TrainConfig, options: Any = None) -> None:
        super().__init__()
        self.model = model
        self.train_cfg = train
        self.options = self.Options() if options is None else options
        if self.needs_shared_labels and not self.shared_labels:
            raise DomadaptError(
                f"method {type(self).__name__} needs source and target to share one label set "
                "(cross-corpus emotion); this experiment's label sets differ"
            )

    @classmethod
    def label(cls, name: str, options: dict[str, Any]) -> str:
        """The row's name in tables for these ``options`` (``align:mmd``); default: ``name``."""
        return name

    @property
    def shared_labels(self) -> bool:
        """True when every source uses the target's head (the model has no ``source:*`` task)."""
        return set(self.model.tasks) == {TARGET_TASK}

    @property
    def num_classes(self) -> int:
        return int(self.model.tasks[TARGET_TASK])

    def stages(self, data: FoldData) -> list[Stage]:
        raise NotImplementedError

    def own_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters the method owns beyond the model's (always trained by every stage)."""
        model_ids = {id(p) for p in self.model.parameters()}
        return (p for p in self.parameters() if id(p) not in model_ids)

    def extra_state(self) -> dict[str, Any]:
        """State outside ``state_dict()`` that a checkpoint must keep (default: none)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    # -- shared building blocks -------------------------------------------------------
    def cross_entropy(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """A supervised task term: cross-entropy of ``logits`` [B, K] against ``y`` [B], with
        the run's ``train.label_smoothing``."""
        return F.cross_entropy(logits, y, label_smoothing=self.train_cfg.label_smoothing)

    def source_ce(self, batch: StepBatch) -> tuple[torch.Tensor, list]:
        """Summed cross-entropy over the step's source batches, and their forward outputs."""
        outs, loss = [], 0.0
        for sb in batch.sources:
            out = self.model(sb.x, sb.task)
            loss = loss + self.cross_entropy(out.logits, sb.y)
            outs.append(out)
        return loss, outs

    def predictor(self, task: str) -> Callable[[torch.Tensor], torch.Tensor]:
        if task == TARGET_TASK:
            return self.target_logits
        return lambda x: self.model(x, task).logits

    def target_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The target task's logits [B, K] for features ``x`` [B, C, T] after training."""
        return self.model(x, TARGET_TASK).logits

    def target_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The features the target head reads, by alignment point (``general``,
        ``specific``): what the domain-gap diagnostic measures."""
        out = self.model(x, TARGET_TASK)
        return {"general": out.general, "specific": out.specific}

    def source_features(self, x: torch.Tensor, task: str) -> dict[str, torch.Tensor]:
        """As :meth:`target_features` for a source batch of ``task``. The specific features
        are the target head's own when the label sets are shared."""
        out = self.model(x, task)
        return {"general": out.general, "specific": out.specific}

    def pretrain_stage(self, data: FoldData, *, epochs: int | None = None, name: str = "pretrain") -> Stage:
        """Supervised training of general + source parts on all sources (the lab's "pre-train
        on CASIA", docs/lineage.md); model selection on the held-out source share."""
        model = self.model
        params = list(model.general.parameters())
        for task in dict.fromkeys(d.task for d in data.sources):
            params += model.task_parameters(task)

        def step(batch: StepBatch, p: float) -> StepOutput:
            loss, _ = self.source_ce(batch)
            return StepOutput(task=loss)

        first = data.source_val[0]
        return Stage(
            name=name,
            epochs=self.train_cfg.pretrain_epochs if epochs is None else epochs,
            draw="source",
            param_groups=[(params, 1.0)],
            step=step,
            monitor=first,
            predict=self.predictor(first.task),
            source_only=True,
        )

    def target_stage(self, data: FoldData, *, general_lr_mult: float = 1.0, name: str = "target") -> Stage:
        """Supervised training on the target task; the general extractor's lr is scaled by
        ``general_lr_mult`` (0 freezes it)."""
        model = self.model

        def step(batch: StepBatch, p: float) -> StepOutput:
            return StepOutput(task=self.cross_entropy(self.target_logits(batch.x_t), batch.y_t))

        groups = [(model.task_parameters(TARGET_TASK), 1.0)]
        if general_lr_mult > 0:
            groups.insert(0, (list(model.general.parameters()), general_lr_mult))
        return Stage(
            name=name,
            epochs=self.train_cfg.epochs,
            draw="target",
            param_groups=groups,
            step=step,
            monitor=data.target_val,
            predict=self.target_logits,
            frozen=[] if general_lr_mult > 0 else [model.general],
        )

