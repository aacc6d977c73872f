"""Optimal-transport and kernel distances between feature clouds, via geomloss ``SamplesLoss``.

geomloss 0.3.1 runs here only with ``backend="tensorized"`` (its ``online`` and
``multiscale`` backends need pykeops and fail with a NameError without it); tensorized keeps
the N×M cost matrix in memory, fine for training batches (≈0.1 s fwd+bwd at 512×256 on CPU).
Both samples get uniform weights, so N ≠ M is fine. Both losses first apply their
``normalize`` option (default ``"standardize"``, see :class:`~domadapt.align.base.
DistanceLoss`), so Sinkhorn's ``blur`` is in units of the pooled batch's spread.
"""

from __future__ import annotations

from dataclasses import dataclass

from geomloss import SamplesLoss
from torch import Tensor

from domadapt.align.base import DistanceLoss, Stats
from domadapt.registries import LOSSES
from domadapt.registry import option

__all__ = ["EnergyLoss", "SinkhornLoss"]


@LOSSES.register("sinkhorn")
class SinkhornLoss(DistanceLoss):
    r"""Debiased Sinkhorn divergence (entropic optimal transport) between the feature clouds.

    Feydy et al., *Interpolating between Optimal Transport and MMD using Sinkhorn
    Divergences* (AISTATS 2019, https://arxiv.org/abs/1810.08278).

    .. math::
        S_\varepsilon(\alpha, \beta) = OT_\varepsilon(\alpha, \beta)
            - \tfrac12 OT_\varepsilon(\alpha, \alpha) - \tfrac12 OT_\varepsilon(\beta, \beta),
        \qquad \varepsilon = \mathrm{blur}^p

    with the ground cost :math:`C(x, y) = \tfrac12\lVert x-y\rVert^2` for ``p=2`` (note the
    ½, geomloss's convention) and :math:`\lVert x-y\rVert` for ``p=1``. Debiasing makes
    :math:`S_\varepsilon(\alpha, \alpha) = 0`: ≈0 (up to the solver's tolerance) on identical
    batches. As blur → 0 it tends to the exact OT cost (W₂²/2 for p=2); as blur → ∞, to an
    energy-distance-like MMD. ``blur`` is in the units of the normalised features: with the
    default ``normalize="standardize"`` one unit is the pooled per-feature std (with
    ``"none"``, raw features of std ~0.002 make a blur of 0.05 cover the whole cloud, and
    the loss is mostly the entropic bias).

    Args:
        p: exponent of the ground cost, 1 or 2. Default: 2.
        blur: the entropic smoothing length scale, > 0. Default: 0.05.
        scaling: ε-scaling ratio in (0, 1); closer to 1 = more iterations, more accurate.
            Default: 0.5.
        normalize: ``"standardize"`` (default), ``"l2"`` or ``"none"`` (geomloss on the raw
            features); see :class:`~domadapt.align.base.DistanceLoss`.

    Shape:
        - f_s: :math:`(N, D)`, f_t: :math:`(M, D)`
        - Output: scalar

    Example::

        >>> loss = SinkhornLoss(options=SinkhornLoss.Options(blur=0.05))
        >>> value = loss(torch.randn(32, 64), torch.randn(24, 64))
    """

    # An entropic OT cost grows with the feature width (a sum over D dimensions): DeepJDOT
    # (Damodaran et al. 2018) weighs its feature-transport term 0.001; 0.01 puts Sinkhorn's
    # gradient near the task's on TIM's 39-d features (benchmarks/align_gradient_ratio.py).
    default_weight = 0.01

    @dataclass(frozen=True)
    class Options(DistanceLoss.Options):
        p: int = option(2, choices=(1, 2))  # exponent of the ground cost
        blur: float = option(0.05, gt=0.0)  # entropic smoothing length, in normalised units
        scaling: float = option(0.5, gt=0.0, lt=1.0)  # ε-scaling ratio; closer to 1 = more iterations

    def __init__(self, *, options: Options | None = None) -> None:
        super().__init__(options=options)
        o = self.options
        self.p, self.blur, self.scaling = o.p, o.blur, o.scaling
        self.samples_loss = SamplesLoss(
            "sinkhorn", p=self.p, blur=self.blur, scaling=self.scaling, backend="tensorized"
        )

    def extra_repr(self) -> str:
        return (f"p={self.p}, blur={self.blur}, scaling={self.scaling}, "
                f"normalize={self.normalize!r}")

    def _compute(self, f_s, f_t, **_) -> tuple[Tensor, Stats]:
        f_s, f_t, stats = self._normalized(f_s, f_t)
        return self.samples_loss(f_s, f_t), stats


@LOSSES.register("energy")
class EnergyLoss(DistanceLoss):
    r"""Energy distance between the feature clouds (geomloss's ``"energy"`` kernel loss).

    Székely & Rizzo, *Energy statistics* (2013); Feydy et al. (AISTATS 2019). geomloss
    computes the kernel norm with :math:`k(x, y) = -\lVert x-y\rVert`, which is **half**
    the usual energy distance:

    .. math::
        \ell = \mathbb{E}\lVert s-t\rVert - \tfrac12\mathbb{E}\lVert s-s'\rVert
            - \tfrac12\mathbb{E}\lVert t-t'\rVert

    with all pairs averaged, diagonals included (V-statistics). geomloss clamps distances
    at :math:`10^{-4}` (to keep the gradient of :math:`\lVert\cdot\rVert` finite at 0), which
    lowers the value by :math:`\tfrac12 10^{-4}(1/N + 1/M)`. Exactly 0 on identical batches;
    no bandwidth to tune. The value is in the features' units (degree 1): ``normalize``
    makes it scale-free.

    Args:
        normalize: ``"standardize"`` (default), ``"l2"`` or ``"none"``; see
            :class:`~domadapt.align.base.DistanceLoss`.

    Shape:
        - f_s: :math:`(N, D)`, f_t: :math:`(M, D)`
        - Output: scalar

    Example::

        >>> loss = EnergyLoss()
        >>> value = loss(torch.randn(32, 64), torch.randn(24, 64))
    """

    # Measured, not from a paper: at 0.1 its gradient is of the task's order on TIM's
    # normalised 39-d features (benchmarks/align_gradient_ratio.py).
    default_weight = 0.1

    def __init__(self, *, options: DistanceLoss.Options | None = None) -> None:
        super().__init__(options=options)
        self.samples_loss = SamplesLoss("energy", backend="tensorized")

    def extra_repr(self) -> str:
        return f"normalize={self.normalize!r}"

    def _compute(self, f_s, f_t, **_) -> tuple[Tensor, Stats]:
        f_s, f_t, stats = self._normalized(f_s, f_t)
        return self.samples_loss(f_s, f_t), stats
