"""The general / specific / head composition every transfer method works on.

``general`` is a backbone ``[B, F, T] -> [B, D]`` shared by all tasks; each task (a source
corpus' emotion task, the target's depression task) has its own *specific* extractor
``[B, D] -> [B, H]`` and its own linear head ``[B, H] -> [B, K]``. Methods freeze, share or
align these parts; none of them needs to know which backbone sits in ``general``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from domadapt.features.ssl import LayerWeighting
from domadapt.models import build_backbone


@dataclass
class TaskOutput:
    """Everything one forward pass of one task yields, by name (shapes in the comments)."""

    general: torch.Tensor  # [B, D] general (shared) features
    specific: torch.Tensor  # [B, H] the task's specific features
    logits: torch.Tensor  # [B, K]


class SpecificExtractor(nn.Sequential):
    """Linear + ReLU + Dropout: the per-task "specific feature extractor" (docs/lineage.md)."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float) -> None:
        super().__init__(nn.Linear(in_dim, out_dim), nn.ReLU(), nn.Dropout(dropout))


GENERAL_NORMS = ("none", "batchnorm")
SPECIFIC_KINDS = ("mlp", "none")
INITS = ("torch", "keras")


class TransferModel(nn.Module):
    """A general extractor shared by every task, plus one specific extractor and head per task.

    Args:
        general: backbone module with an ``out_dim`` attribute, ``[B, F, T] -> [B, D]``.
        tasks: task name -> number of classes, e.g. ``{"source:casia": 6, "target": 2}``.
        specific_dim: width H of every specific extractor.
        dropout: dropout of the specific extractors.
        general_norm: ``"batchnorm"`` puts a BatchNorm1d after the general extractor (a
            normalised bottleneck shared by every task and alignment loss); ``"none"``.
        specific: ``"mlp"``: a specific extractor per task (Linear+ReLU+Dropout to
            ``specific_dim``); ``"none"``: each head is one Linear on the general features
            (the official TIM-Net's Dense(K)), and ``specific`` equals ``general``.

    Example:
        >>> model = TransferModel(build_backbone("tim", in_channels=39), {"target": 2},
        ...                       specific_dim=64, dropout=0.2)
        >>> model(x, "target").logits.shape
        torch.Size([B, 2])
    """

    def __init__(
        self, general: nn.Module, tasks: dict[str, int], *, specific_dim: int, dropout: float,
        general_norm: str = "none", specific: str = "mlp",
    ) -> None:
        super().__init__()
        if general_norm not in GENERAL_NORMS:
            raise ValueError(f"general_norm {general_norm!r}: expected one of {', '.join(GENERAL_NORMS)}")
        if specific not in SPECIFIC_KINDS:
            raise ValueError(f"specific {specific!r}: expected one of {', '.join(SPECIFIC_KINDS)}")
        dim = int(general.out_dim)
        if general_norm == "batchnorm":
            # A normalised bottleneck: every task and every alignment loss sees the general
            # features at unit scale (TIM's fused features start at std ~0.002, where an
            # alignment gradient through a scale-free loss is ~1/std times the task's).
            general = nn.Sequential(general, nn.BatchNorm1d(dim))
            general.out_dim = dim
        self.general = general
        self.tasks = dict(tasks)
        # ModuleDict keys may not contain "."; task names are plain words plus ":".
        if specific == "mlp":
            self.specific = nn.ModuleDict({_key(t): SpecificExtractor(dim, specific_dim, dropout) for t in tasks})
        else:
            self.specific = nn.ModuleDict({_key(t): nn.Identity() for t in tasks})
        head_in = specific_dim if specific == "mlp" else dim
        self.heads = nn.ModuleDict({_key(t): nn.Linear(head_in, k) for t, k in tasks.items()})

    def specific_for(self, task: str) -> nn.Module:
        return self.specific[_key(task)]

    def head_for(self, task: str) -> nn.Module:
        return self.heads[_key(task)]

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        """The specific extractor's and the head's parameters of ``task``."""
        return list(self.specific_for(task).parameters()) + list(self.head_for(task).parameters())

    def forward(self, x: torch.Tensor, task: str) -> TaskOutput:
        """``x``: [B, F, T] features of the task's domain."""
        general = self.general(x)
        return self.from_general(general, task)

    def from_general(self, general: torch.Tensor, task: str) -> TaskOutput:
        specific = self.specific_for(task)(general)
        return TaskOutput(general=general, specific=specific, logits=self.head_for(task)(specific))


def apply_init(model: nn.Module, init: str, *, batchnorm_momentum: float, batchnorm_eps: float) -> nn.Module:
    """Re-initialise ``model`` in place as ``init`` says and set every BatchNorm's momentum and eps.

    ``"keras"``: Glorot-uniform weights and zero biases in every ``Conv1d`` and ``Linear``
    (Keras' ``glorot_uniform`` / ``zeros`` defaults; torch's fans of a conv are Keras' too);
    other parameters (TIM's weight layer, BatchNorm's ones and zeros) keep their own.
    ``"torch"``: PyTorch's initialisation, unchanged. ``batchnorm_momentum`` is in PyTorch's
    terms (Keras' 0.99 is 0.01 here).
    """
    if init not in INITS:
        raise ValueError(f"init {init!r}: expected one of {', '.join(INITS)}")
    for module in model.modules():
        if init == "keras" and isinstance(module, (nn.Conv1d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        if isinstance(module, nn.BatchNorm1d):
            module.momentum, module.eps = batchnorm_momentum, batchnorm_eps
    return model


def _key(task: str) -> str:
    return task.replace(":", "__").replace(".", "_")


def build_transfer_model(
    model_cfg: Any, spec: Any, *, input_shape: tuple[int, ...], tasks: dict[str, int]
) -> TransferModel:
    """A fresh model for one run or one model folder: the row's backbone as general
    extractor for windows of ``input_shape`` (``(C, T)``, or ``(L, D, T)`` for every layer of
    an SSL model: a learned layer weighting first), one specific extractor and head per task
    of ``tasks`` (name -> classes). ``model_cfg`` is ``[model]``, ``spec`` the row's MethodSpec."""
    name, options = spec.backbone(model_cfg)
    general = build_backbone(name, in_channels=int(input_shape[-2]), **options)
    if len(input_shape) == 3:
        backbone = general
        general = nn.Sequential(LayerWeighting(int(input_shape[0])), backbone)
        general.out_dim = backbone.out_dim
    m = model_cfg
    model = TransferModel(
        general, dict(tasks), specific_dim=m.specific_dim, dropout=m.dropout, general_norm=m.general_norm, specific=m.specific
    )
    return apply_init(model, m.init, batchnorm_momentum=m.batchnorm_momentum, batchnorm_eps=m.batchnorm_eps)
