"""Pluggable alignment losses behind one signature, and the registry that builds them.

Every loss is an :class:`AlignmentLoss` (an ``nn.Module``)::

    loss(f_s, f_t, *, y_s=None, y_t=None, logits_s=None, logits_t=None) -> scalar Tensor
    loss.forward_with_stats(...) -> (scalar Tensor, dict of detached 0-dim tensors)
    loss.set_progress(p)          # training progress in [0, 1], once per step
    loss.has_parameters           # True: the trainer optimises loss.parameters()

Adding a loss = one file (or class) + one line in :data:`LOSSES`.

Example::

    >>> from domadapt.align import build_loss, list_losses
    >>> loss = build_loss("mmd", feature_dim=64, num_kernels=5)
    >>> value = loss(torch.randn(32, 64), torch.randn(24, 64))
"""

from __future__ import annotations

import inspect

from torch import nn

from domadapt.align.base import AlignmentLoss, Stats
from domadapt.align.coral import CORALLoss
from domadapt.align.dann import DomainAdversarialLoss, DomainDiscriminator
from domadapt.align.entropy import EntropyLoss, InformationMaximizationLoss
from domadapt.align.mmd import LinearMMDLoss, LMMDLoss, MMDLoss
from domadapt.align.schedule import SCHEDULES, build_schedule, list_schedules
from domadapt.align.sinkhorn import EnergyLoss, SinkhornLoss
from domadapt.errors import DomadaptError

__all__ = [
    "LOSSES",
    "SCHEDULES",
    "AlignmentLoss",
    "CORALLoss",
    "DomainAdversarialLoss",
    "DomainDiscriminator",
    "EnergyLoss",
    "EntropyLoss",
    "InformationMaximizationLoss",
    "LMMDLoss",
    "LinearMMDLoss",
    "MMDLoss",
    "SinkhornLoss",
    "Stats",
    "build_loss",
    "build_schedule",
    "list_losses",
    "list_schedules",
]

LOSSES: dict[str, type[AlignmentLoss]] = {
    "mmd": MMDLoss,  # multi-kernel Gaussian MMD², quadratic estimator (N ≠ M fine)
    "mmd_linear": LinearMMDLoss,  # linear-time MMD² estimator, batches truncated to min(N, M)
    "lmmd": LMMDLoss,  # class-conditional MMD (DSAN); needs y_s and logits_t or y_t
    "coral": CORALLoss,  # covariance alignment (Deep CORAL)
    "dann": DomainAdversarialLoss,  # domain discriminator behind a GRL; owns parameters
    "sinkhorn": SinkhornLoss,  # debiased entropic OT (geomloss)
    "energy": EnergyLoss,  # energy distance (geomloss, ½ convention)
    "entropy": EntropyLoss,  # target prediction entropy; needs logits_t
    "im": InformationMaximizationLoss,  # entropy − diversity (SHOT); needs logits_t
}

# Arguments build_loss fills in itself; everything else a constructor takes is an option.
_DERIVED = ("feature_dim", "num_classes")


def list_losses() -> list[str]:
    """The names :func:`build_loss` accepts, sorted."""
    return sorted(LOSSES)


def build_loss(
    name: str, *, feature_dim: int, num_classes: int | None = None, **options: object
) -> nn.Module:
    """Build the alignment loss called ``name``.

    Args:
        name: a key of :data:`LOSSES` (see :func:`list_losses`).
        feature_dim: width D of the aligned features (used by losses with parameters).
        num_classes: number of classes K (used by class-conditional losses).
        **options: the loss's keyword options (e.g. ``blur=0.1`` for ``"sinkhorn"``),
            overriding its defaults.

    Raises:
        DomadaptError: unknown name (lists the known ones), unknown option (lists the valid
            ones for that loss), or ``num_classes`` missing for a loss that needs it.
    """
    if name not in LOSSES:
        raise DomadaptError(
            f"unknown alignment loss {name!r}; known losses: {', '.join(list_losses())}"
        )
    cls = LOSSES[name]
    params = {
        p.name: p
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    valid = [p for p in params if p not in _DERIVED]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise DomadaptError(
            f"alignment loss {name!r}: unknown option(s) {', '.join(unknown)}; "
            f"valid options: {', '.join(valid) if valid else '(none)'}"
        )
    kwargs = dict(options)
    if "feature_dim" in params:
        kwargs["feature_dim"] = feature_dim
    if "num_classes" in params:
        if num_classes is None and params["num_classes"].default is inspect.Parameter.empty:
            raise DomadaptError(f"alignment loss {name!r} needs num_classes; it was not given")
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
    return cls(**kwargs)
