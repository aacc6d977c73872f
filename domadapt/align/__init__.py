"""Pluggable alignment losses behind one signature, and the registry that builds them.

Every loss is an :class:`AlignmentLoss` (an ``nn.Module``)::

    loss(f_s, f_t, *, y_s=None, y_t=None, logits_s=None, logits_t=None) -> scalar Tensor
    loss.forward_with_stats(...) -> (scalar Tensor, dict of detached 0-dim tensors)
    loss.set_progress(p)          # training progress in [0, 1], once per step
    loss.has_parameters           # True: the trainer optimises loss.parameters()

Your own loss is one decorated class in your own module; its options are the fields of its
``Options`` dataclass (``feature_dim`` and ``num_classes`` are filled in by the caller)::

    from dataclasses import dataclass
    from domadapt.align import LOSSES, AlignmentLoss
    from domadapt.align.base import LossOptions
    from domadapt.registry import option

    @LOSSES.register("my_loss")
    class MyLoss(AlignmentLoss):
        '''One line for `domadapt list`.'''
        @dataclass(frozen=True)
        class Options(LossOptions):
            scale: float = option(1.0, gt=0.0)

        def __init__(self, *, options: Options | None = None) -> None: ...

Example::

    >>> from domadapt.align import build_loss, list_losses
    >>> loss = build_loss("mmd", feature_dim=64, num_kernels=5)
    >>> value = loss(torch.randn(32, 64), torch.randn(24, 64))
"""

from __future__ import annotations

from torch import nn

from domadapt.align.base import AlignmentLoss, Stats
from domadapt.align.bnm import BatchNuclearNormLoss
from domadapt.align.cdan import CDANELoss, CDANLoss
from domadapt.align.coral import CORALLoss
from domadapt.align.dann import DomainAdversarialLoss, DomainDiscriminator
from domadapt.align.entropy import EntropyLoss, InformationMaximizationLoss
from domadapt.align.homm import HoMMLoss
from domadapt.align.jmmd import JointMMDLoss
from domadapt.align.mcc import MinimumClassConfusionLoss
from domadapt.align.mdd import MarginDisparityDiscrepancyLoss
from domadapt.align.mmd import LinearMMDLoss, LMMDLoss, MMDLoss
from domadapt.align.schedule import SCHEDULES, build_schedule, list_schedules
from domadapt.align.sinkhorn import EnergyLoss, SinkhornLoss
from domadapt.registries import LOSSES

__all__ = [
    "LOSSES",
    "SCHEDULES",
    "AlignmentLoss",
    "BatchNuclearNormLoss",
    "CDANELoss",
    "CDANLoss",
    "CORALLoss",
    "DomainAdversarialLoss",
    "DomainDiscriminator",
    "EnergyLoss",
    "EntropyLoss",
    "HoMMLoss",
    "InformationMaximizationLoss",
    "JointMMDLoss",
    "LMMDLoss",
    "LinearMMDLoss",
    "MMDLoss",
    "MarginDisparityDiscrepancyLoss",
    "MinimumClassConfusionLoss",
    "SinkhornLoss",
    "Stats",
    "build_loss",
    "build_schedule",
    "list_losses",
    "list_schedules",
]

#: name -> loss class. ``feature_dim`` (D) and ``num_classes`` (K) are the caller's
#: arguments, given to the losses that take them; every other keyword is an option.


def list_losses() -> list[str]:
    """The names :func:`build_loss` accepts, sorted."""
    return LOSSES.names()


def build_loss(
    name: str | type, *, feature_dim: int, num_classes: int | None = None, **options: object
) -> nn.Module:
    """Build the alignment loss called ``name`` (or a loss class, registered on first use).

    Args:
        name: a name of :data:`LOSSES` (see :func:`list_losses`).
        feature_dim: width D of the aligned features (used by losses with parameters).
        num_classes: number of classes K (used by class-conditional losses).
        **options: the loss's keyword options (e.g. ``blur=0.1`` for ``"sinkhorn"``),
            overriding its defaults.

    Raises:
        DomadaptError: unknown name (lists the known ones), unknown option (lists the valid
            ones for that loss), a value of the wrong type, or ``num_classes`` missing for a
            loss that needs it.
    """
    given = {"num_classes": num_classes} if num_classes is not None else {}
    return LOSSES.build(LOSSES.adopt(name), feature_dim=feature_dim, **given, **options)
