"""The one interface every alignment loss implements: :class:`AlignmentLoss`.

A loss is an ``nn.Module`` called as ``loss(f_s, f_t, *, y_s, y_t, logits_s, logits_t)``
and returning a scalar tensor. Context a loss does not use is ignored; context it needs
and does not get raises :class:`~domadapt.errors.DomadaptError`. Diagnostics come back
explicitly from :meth:`AlignmentLoss.forward_with_stats`, never through attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import ClassVar, Literal, get_args

import torch
from torch import Tensor, nn

from domadapt.errors import DomadaptError
from domadapt.registry import check_fields

__all__ = [
    "NORMALIZATIONS",
    "AlignmentLoss",
    "DistanceLoss",
    "Normalize",
    "Stats",
    "check_progress",
    "normalize_pair",
]

Stats = dict[str, Tensor]
"""Diagnostics of one call: detached 0-dim tensors (no host sync; the caller logs them)."""

# Half-precision inputs (AMP on CUDA) are computed in float32: exponentials of
# distances (MMD), covariance differences (CORAL) and Sinkhorn's log-sum-exps lose
# too much in float16.
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def check_progress(p: float) -> float:
    """Return ``p`` as a float, or raise if it is not a training progress in [0, 1]."""
    try:
        value = float(p)
    except (TypeError, ValueError):
        raise DomadaptError(f"training progress must be a number in [0, 1], got {p!r}") from None
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise DomadaptError(f"training progress must be in [0, 1], got {value}")
    return value


#: How a distance loss rescales the two feature batches before comparing them.
Normalize = Literal["none", "standardize", "l2"]
NORMALIZATIONS: tuple[str, ...] = get_args(Normalize)
# Variance floor of "standardize", relative to the mean variance over features: a feature
# with < 0.01% of the typical variance (a nearly dead unit) is not blown up to unit
# variance. Relative, so that the result stays exactly invariant to the features' scale.
_REL_VAR_FLOOR = 1e-4


def normalize_pair(f_s: Tensor, f_t: Tensor, mode: str) -> tuple[Tensor, Tensor]:
    """Rescale ``(f_s, f_t)`` as a distance loss's ``normalize`` option says.

    * ``"none"``: unchanged.
    * ``"standardize"``: both batches standardised with the *pooled* batch's per-feature
      mean and std (biased, over the N + M rows; a floor of 1e-4 x the mean variance keeps
      nearly constant features near 0). One affine map for both, so the shift between
      them is kept, in units of the pooled spread. The statistics are *not* detached: the
      loss is then invariant to the scale of the features in its gradient as well as its
      value, so it cannot be lowered by shrinking the features (detached statistics would
      push them to collapse -- the argument of the BatchNorm paper, Ioffe & Szegedy 2015,
      sec. 2, for normalising inside the gradient).
    * ``"l2"``: each row divided by its L2 norm (direction only; a pure difference of
      norms between the domains is then invisible).

    Shape:
        - f_s: :math:`(N, D)`, f_t: :math:`(M, D)`; outputs the same shapes.
    """
    if mode == "none":
        return f_s, f_t
    if mode == "standardize":
        pooled = torch.cat([f_s, f_t])
        mean = pooled.mean(0)
        var = pooled.var(0, unbiased=False)
        floor = _REL_VAR_FLOOR * var.mean() + torch.finfo(var.dtype).tiny
        scale = torch.rsqrt(var + floor)
        return (f_s - mean) * scale, (f_t - mean) * scale
    if mode == "l2":
        eps = torch.finfo(f_s.dtype).tiny
        return (f_s / f_s.norm(dim=1, keepdim=True).clamp_min(eps),
                f_t / f_t.norm(dim=1, keepdim=True).clamp_min(eps))
    raise DomadaptError(
        f"normalize must be one of {', '.join(NORMALIZATIONS)}, got {mode!r}"
    )


def _upcast(x: Tensor | None) -> Tensor | None:
    if x is not None and x.dtype in _LOW_PRECISION:
        return x.float()
    return x


class AlignmentLoss(nn.Module):
    """Base class of the alignment losses: validation, precision and the stats protocol.

    Subclasses implement :meth:`_compute` and set the class attributes below.

    Attributes:
        has_parameters: ``True`` when the loss owns trainable parameters (DANN's domain
            discriminator). The trainer optimises ``loss.parameters()`` together with the
            model's, so nothing is left for a script to add by hand.
        is_divergence: ``True`` when the value is a discrepancy between the two feature
            batches: ≈0 for identical batches and growing with a shift between them.
        uses: the inputs the value depends on (names of :meth:`forward`'s arguments).
            A trainer may skip computing ``logits_t`` for a loss that does not use it.
        min_batch: the smallest batch size (per domain) the estimator is defined for.
        default_weight / default_schedule: λ and λ(p)'s shape as the loss's literature
            uses it, for recipes that do not set ``train.align_weight``/``align_schedule``.
        per_replica: ``True`` on a parameter-free loss that cannot run under
            ``torch.func.vmap`` (geomloss's Sinkhorn and energy: a data-dependent ε-schedule
            read with ``.item()``, an old-style ``autograd.Function``) while K replicas train
            as one vmapped model: :meth:`forward_with_stats` then evaluates it once per
            replica inside the vmapped step. Set by ``domadapt.engine``'s
            ``VmappedReplicas`` on the losses its ``VmapSupport.per_replica`` names.
    """

    has_parameters: ClassVar[bool] = False
    is_divergence: ClassVar[bool] = True
    # The loss family's own defaults for ``loss = task + λ(p)·align`` (used when the recipe
    # leaves train.align_weight / train.align_schedule unset); each subclass says its source.
    default_weight: ClassVar[float] = 1.0
    default_schedule: ClassVar[str] = "dann"  # Ganin et al.'s 2/(1+exp(-10p))-1 warm-up
    uses: ClassVar[frozenset[str]] = frozenset({"f_s", "f_t"})
    min_batch: ClassVar[int] = 1
    per_replica: bool = False

    def forward(
        self,
        f_s: Tensor,
        f_t: Tensor,
        *,
        y_s: Tensor | None = None,
        y_t: Tensor | None = None,
        logits_s: Tensor | None = None,
        logits_t: Tensor | None = None,
    ) -> Tensor:
        """Return the loss as a scalar tensor (see :meth:`forward_with_stats`)."""
        loss, _ = self.forward_with_stats(
            f_s, f_t, y_s=y_s, y_t=y_t, logits_s=logits_s, logits_t=logits_t
        )
        return loss

    def forward_with_stats(
        self,
        f_s: Tensor,
        f_t: Tensor,
        *,
        y_s: Tensor | None = None,
        y_t: Tensor | None = None,
        logits_s: Tensor | None = None,
        logits_t: Tensor | None = None,
    ) -> tuple[Tensor, Stats]:
        """Return ``(loss, stats)``: the scalar loss and a dict of detached diagnostics.

        Args:
            f_s: source features.
            f_t: target features.
            y_s: source class labels (int64).
            y_t: target class labels, when known (else pseudo-labels come from ``logits_t``).
            logits_s: source classifier outputs (before softmax).
            logits_t: target classifier outputs (before softmax).

        Shape:
            - f_s: :math:`(N, D)`, f_t: :math:`(M, D)`; N and M may differ.
            - y_s: :math:`(N,)`, y_t: :math:`(M,)`.
            - logits_s: :math:`(N, K)`, logits_t: :math:`(M, K)`.
            - Output: scalar; stats values are 0-dim tensors.
        """
        context = {"y_s": y_s, "y_t": y_t, "logits_s": logits_s, "logits_t": logits_t}
        if self.per_replica:
            return _once_per_replica(self._one_replica, f_s, f_t, context)
        return self._one_replica(f_s, f_t, **context)

    def _one_replica(
        self,
        f_s: Tensor,
        f_t: Tensor,
        *,
        y_s: Tensor | None = None,
        y_t: Tensor | None = None,
        logits_s: Tensor | None = None,
        logits_t: Tensor | None = None,
    ) -> tuple[Tensor, Stats]:
        """:meth:`forward_with_stats` of one model: inputs checked, float32, :meth:`_compute`."""
        self._check_inputs(f_s, f_t, y_s, y_t, logits_s, logits_t)
        # Alignment losses always run in float32 or wider, even inside an autocast region.
        with torch.autocast(device_type=f_s.device.type, enabled=False):
            return self._compute(
                _upcast(f_s),
                _upcast(f_t),
                y_s=y_s,
                y_t=y_t,
                logits_s=_upcast(logits_s),
                logits_t=_upcast(logits_t),
            )

    def set_progress(self, p: float) -> None:
        """Tell the loss how far training is (``p`` in [0, 1]); called once per step.

        A no-op except for losses with a schedule of their own (DANN's GRL coefficient).
        """
        check_progress(p)

    def _compute(
        self,
        f_s: Tensor,
        f_t: Tensor,
        *,
        y_s: Tensor | None,
        y_t: Tensor | None,
        logits_s: Tensor | None,
        logits_t: Tensor | None,
    ) -> tuple[Tensor, Stats]:
        raise NotImplementedError

    # -- validation ---------------------------------------------------------------
    def _name(self) -> str:
        return type(self).__name__

    def _check_inputs(
        self,
        f_s: Tensor,
        f_t: Tensor,
        y_s: Tensor | None,
        y_t: Tensor | None,
        logits_s: Tensor | None,
        logits_t: Tensor | None,
    ) -> None:
        name = self._name()
        for arg, x in (("f_s", f_s), ("f_t", f_t)):
            if not isinstance(x, Tensor):
                raise DomadaptError(f"{name}: {arg} must be a tensor, got {type(x).__name__}")
            if x.dim() != 2:
                raise DomadaptError(
                    f"{name}: {arg} must have shape (batch, feature_dim), got {tuple(x.shape)}"
                )
            if not x.is_floating_point():
                raise DomadaptError(f"{name}: {arg} must be floating point, got {x.dtype}")
            if x.shape[0] < self.min_batch:
                raise DomadaptError(
                    f"{name}: {arg} has {x.shape[0]} rows; this loss needs at least "
                    f"{self.min_batch} per domain"
                )
        if f_s.shape[1] != f_t.shape[1]:
            raise DomadaptError(
                f"{name}: f_s and f_t must have the same feature dimension, got "
                f"{f_s.shape[1]} and {f_t.shape[1]}"
            )
        n, m = f_s.shape[0], f_t.shape[0]
        for arg, y, rows in (("y_s", y_s, n), ("y_t", y_t, m)):
            if y is not None and (y.dim() != 1 or y.shape[0] != rows):
                raise DomadaptError(
                    f"{name}: {arg} must have shape ({rows},), got {tuple(y.shape)}"
                )
        for arg, z, rows in (("logits_s", logits_s, n), ("logits_t", logits_t, m)):
            if z is not None and (z.dim() != 2 or z.shape[0] != rows):
                raise DomadaptError(
                    f"{name}: {arg} must have shape ({rows}, num_classes), got {tuple(z.shape)}"
                )

    def _require(self, arg: str, value: Tensor | None, why: str) -> Tensor:
        """Return ``value`` or raise the error that says which argument is missing."""
        if value is None:
            raise DomadaptError(f"{self._name()} needs {arg}= ({why}); it was not given")
        return value

    def _require_shared_head(
        self, logits_s: Tensor | None, logits_t: Tensor | None, why: str, num_classes: int | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(logits_s, logits_t)`` of one head shared by both domains (the same K, equal to
        ``num_classes`` when given), or the error naming what is missing or mismatched."""
        logits_s = self._require("logits_s", logits_s, why)
        logits_t = self._require("logits_t", logits_t, why)
        expected = logits_t.shape[1] if num_classes is None else num_classes
        for arg, z in (("logits_s", logits_s), ("logits_t", logits_t)):
            if z.shape[1] != expected:
                raise DomadaptError(
                    f"{self._name()}: {arg} has {z.shape[1]} classes, expected {expected} "
                    f"(num_classes={num_classes}; one head for both domains)"
                )
        return logits_s, logits_t


@dataclass(frozen=True)
class LossOptions:
    """Base of a loss's ``Options`` dataclass: every field declared with
    :func:`~domadapt.registry.option` (type, choices, range) and checked on construction, so
    a loss built directly obeys the same rules as one a recipe names."""

    def __post_init__(self) -> None:
        check_fields(self, where="alignment loss option")


class _PerReplica(torch.autograd.Function):
    """Runs a parameter-free loss once per replica when called under ``vmap``.

    Its ``vmap`` rule receives the stacked tensors and loops over the K replicas with plain,
    differentiable calls; autograd records those, so no backward of its own is needed.
    """

    @staticmethod
    def forward(fn, names, keys, *tensors):  # pragma: no cover - only the vmap rule runs
        raise RuntimeError("_PerReplica is only called under vmap")

    @staticmethod
    def setup_context(ctx, inputs, output):  # pragma: no cover
        pass

    @staticmethod
    def vmap(info, in_dims, fn, names, keys, *tensors):
        outs = []
        for k in range(info.batch_size):
            args = [t if d is None else t.select(d, k) for t, d in zip(tensors, in_dims[3:])]
            kw = {n: a for n, a in zip(names, args[2:]) if a is not None}
            value, stats = fn(args[0], args[1], **kw)
            if not keys.names:
                keys.names.extend(stats)
            outs.append((value, *(stats[key] for key in keys.names)))
        stacked = tuple(torch.stack(col) for col in zip(*outs))
        return stacked, (0,) * len(stacked)


def _once_per_replica(
    fn: Callable[..., tuple[Tensor, Stats]], f_s: Tensor, f_t: Tensor, context: dict[str, Tensor | None]
) -> tuple[Tensor, Stats]:
    """``fn(f_s, f_t, **context)`` under ``vmap``, evaluated once per replica (:class:`_PerReplica`)."""
    names = tuple(context)
    # not a list: apply() flattens list arguments (pytrees) and the rule would fill a copy
    keys = SimpleNamespace(names=[])
    out = _PerReplica.apply(fn, names, keys, f_s, f_t, *context.values())
    return out[0], dict(zip(keys.names, out[1:]))


class DistanceLoss(AlignmentLoss):
    """An alignment loss that is a distance between the two feature batches (MMD, CORAL,
    Sinkhorn, energy), with the ``normalize`` option every such loss shares.

    Why ``normalize="standardize"`` is the default: a distance between raw features is in
    the features' units, and a backbone's features can be tiny (TIM's have a std of
    ~0.002 at initialisation, where CORAL's value is ~1e-8 and a Sinkhorn blur of 0.05
    covers the whole cloud), so the loss, its gradient and any fixed bandwidth or blur
    depend on a scale that changes during training. Standardised with the pooled batch's
    statistics, the loss measures the shift between the domains relative to their spread:
    the same value at any scale, clearly non-zero for shifted batches. ``"none"`` gives
    the original (published) losses; ``"l2"`` compares directions only.

    Subclasses call :meth:`_normalized` first thing in :meth:`_compute`.
    """

    @dataclass(frozen=True)
    class Options(LossOptions):
        """The option every distance loss has; a subclass's ``Options`` extends it."""

        normalize: Normalize = "standardize"

    def __init__(self, *, options: Options | None = None) -> None:
        super().__init__()
        self.options = options if options is not None else self.Options()
        self.normalize: str = self.options.normalize

    def _normalized(self, f_s: Tensor, f_t: Tensor) -> tuple[Tensor, Tensor, Stats]:
        """``(f_s, f_t)`` normalised, and the stat ``feature_std``: the mean per-feature std
        of the *raw* pooled batch (detached), so a log shows the scale the loss is shielded
        from."""
        with torch.no_grad():
            raw_std = torch.cat([f_s, f_t]).std(0, unbiased=False).mean()
        f_s, f_t = normalize_pair(f_s, f_t, self.normalize)
        return f_s, f_t, {"feature_std": raw_std}
