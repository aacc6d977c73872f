"""Maximum mean discrepancy: multi-kernel MMD (quadratic and linear) and class-conditional LMMD.

The Gaussian kernels follow pytorch-adapt's ``MMDLoss`` (which the two MMD losses wrap):

.. math::
    k(x, y) = \\frac{1}{S} \\sum_{s=1}^{S}
        \\exp\\left(-\\frac{\\lVert x-y \\rVert^2\\, c_s}{b}\\right)

with the kernel scales :math:`c_s` = ``get_kernel_scales(low, high, num_kernels, base)``
= :math:`base^{\\mathrm{linspace}(low, high, S)}` (defaults 2^-3 … 2^3, 5 kernels) and the
bandwidth :math:`b` = the median of the squared distances between *source* features,
the N×N matrix including its zero diagonal (``torch.median``: the lower middle value for
an even count). The scales multiply the inverse bandwidth. Because ``b`` comes from the
source batch only, ``loss(f_s, f_t) != loss(f_t, f_s)`` in general.

Every loss here first applies its ``normalize`` option (:class:`~domadapt.align.base.
DistanceLoss`; default ``"standardize"``: both batches standardised with the pooled
batch's per-feature statistics), so the kernel, the median bandwidth and a fixed
``bandwidth`` all live in normalised units; ``normalize="none"`` is pytorch-adapt's loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pytorch_adapt.layers import MMDLoss as _PAMMDLoss
from pytorch_adapt.layers.utils import get_kernel_scales
from torch import Tensor

from domadapt.align.base import DistanceLoss, Stats
from domadapt.errors import DomadaptError
from domadapt.registries import LOSSES
from domadapt.registry import option

__all__ = ["LMMDLoss", "LinearMMDLoss", "MMDLoss", "gaussian_kernel_matrices"]


@dataclass(frozen=True)
class KernelOptions(DistanceLoss.Options):
    """The Gaussian kernels of every MMD loss here: scales ``base ** linspace(low, high, n)``."""

    kernel_low: float = -3.0
    kernel_high: float = 3.0
    num_kernels: int = option(5, min=1)
    kernel_base: float = option(2.0, gt=0.0)
    bandwidth: float | None = option(None, gt=0.0)  # None: the median heuristic

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.kernel_low <= self.kernel_high:
            raise DomadaptError(
                f"alignment loss option kernel_low={self.kernel_low} must be <= kernel_high={self.kernel_high}"
            )

    def scales(self) -> Tensor:
        return get_kernel_scales(
            low=self.kernel_low, high=self.kernel_high, num_kernels=self.num_kernels, base=self.kernel_base
        )


def _min_rows(options: KernelOptions) -> int:
    """Rows per domain the kernel is defined for. The median bandwidth of N source rows is
    taken over the N x N distances with their zero diagonal, so it is 0 (and the loss NaN)
    unless N² − N > N² / 2, i.e. N ≥ 3; a fixed bandwidth needs 2 (a pair)."""
    return 3 if options.bandwidth is None else 2


def _squared_distances(x: Tensor, y: Tensor) -> Tensor:
    # ‖x‖² + ‖y‖² − 2 x·y, clamped: the expansion can dip below 0 by rounding.
    d2 = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1).unsqueeze(0) - 2.0 * x @ y.T
    return d2.clamp_min(0.0)


def gaussian_kernel_matrices(
    f_s: Tensor, f_t: Tensor, scales: Tensor, bandwidth: float | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """The multi-kernel Gaussian Gram matrices ``(K_ss, K_tt, K_st)`` of the module doc.

    The same kernel as pytorch-adapt's ``MMDLoss`` (median bandwidth of the source batch,
    scales multiplying the inverse bandwidth, kernels averaged), computed once on the
    joint batch so that class-weighted estimators (LMMD) can reuse it.

    Shape:
        - f_s: :math:`(N, D)`, f_t: :math:`(M, D)`, scales: :math:`(S,)`
        - Outputs: :math:`(N, N)`, :math:`(M, M)`, :math:`(N, M)`
    """
    d_ss = _squared_distances(f_s, f_s)
    d_tt = _squared_distances(f_t, f_t)
    d_st = _squared_distances(f_s, f_t)
    with torch.no_grad():  # the bandwidth is a heuristic, not something to optimise
        b = torch.median(d_ss) if bandwidth is None else torch.tensor(bandwidth)
    gamma = (scales.to(device=f_s.device, dtype=f_s.dtype) / b.to(f_s)).view(-1, 1, 1)

    def gram(d2: Tensor) -> Tensor:
        return torch.exp(-d2.unsqueeze(0) * gamma).mean(0)

    return gram(d_ss), gram(d_tt), gram(d_st)


@LOSSES.register("mmd")
class MMDLoss(DistanceLoss):
    r"""Multi-kernel Gaussian MMD² (quadratic-time estimator), via pytorch-adapt's ``MMDLoss``.

    Long et al., *Learning Transferable Features with Deep Adaptation Networks*
    (ICML 2015, https://arxiv.org/abs/1502.02791); Gretton et al., *A Kernel Two-Sample
    Test* (JMLR 2012).

    .. math::
        \widehat{MMD}^2 = \frac{1}{N(N-1)}\sum_{i \ne j} k(s_i, s_j)
            + \frac{1}{M(M-1)}\sum_{i \ne j} k(t_i, t_j) - \frac{2}{NM}\sum_{i,j} k(s_i, t_j)

    The within-domain terms exclude the diagonal and the cross term does not (pytorch-adapt's
    choice, the same as TLlib's DAN). The value can therefore be slightly negative: on
    identical batches it is exactly :math:`2(\bar k - 1)/N \in [-2/N, 0]`, with
    :math:`\bar k` the mean off-diagonal kernel value. Handles N ≠ M.

    Args:
        kernel_low, kernel_high, num_kernels, kernel_base: the kernel scales
            ``kernel_base ** linspace(kernel_low, kernel_high, num_kernels)``
            (pytorch-adapt's ``get_kernel_scales``; its own defaults are −8, 8, 33, 2).
        bandwidth: fixed squared-distance bandwidth ``b`` (in normalised units unless
            ``normalize="none"``); ``None`` = median heuristic. If more than half of the
            source pairs coincide (collapsed features) the median is 0 and the loss is NaN:
            pass a bandwidth then.
        normalize: ``"standardize"`` (default: pooled-batch per-feature standardisation,
            so the value does not depend on the features' scale), ``"l2"`` (unit rows) or
            ``"none"`` (raw features, pytorch-adapt's loss); see
            :class:`~domadapt.align.base.DistanceLoss` for why.

    Shape:
        - f_s: :math:`(N, D)`, f_t: :math:`(M, D)`, N, M ≥ 3 (2 with a fixed ``bandwidth``)
        - Output: scalar

    Example::

        >>> loss = MMDLoss()
        >>> f_s, f_t = torch.randn(32, 64), torch.randn(24, 64)
        >>> value = loss(f_s, f_t)
    """

    # DAN (Long et al. 2015) and TLlib's DAN example weigh MK-MMD by 1.
    default_weight = 1.0

    min_batch = 3  # with the median bandwidth (see _min_rows); set per instance
    _mmd_type = "quadratic"  # pytorch-adapt's mmd_type; the linear subclass overrides it

    Options = KernelOptions

    def __init__(self, *, options: KernelOptions | None = None) -> None:
        super().__init__(options=options)
        o = self.options
        self.mmd = _PAMMDLoss(kernel_scales=o.scales(), mmd_type=self._mmd_type, bandwidth=o.bandwidth)
        self.min_batch = _min_rows(o)

    def _compute(self, f_s, f_t, **_) -> tuple[Tensor, Stats]:
        f_s, f_t, stats = self._normalized(f_s, f_t)
        return self.mmd(f_s, f_t), stats


@LOSSES.register("mmd_linear")
class LinearMMDLoss(MMDLoss):
    r"""Multi-kernel Gaussian MMD², linear-time estimator, via pytorch-adapt's ``MMDLoss``.

    Gretton et al. (JMLR 2012, §6) and Long et al. (ICML 2015): with pairs
    :math:`(s_{2i}, s_{2i+1})`, :math:`(t_{2i}, t_{2i+1})`, :math:`i < B/2`,

    .. math::
        \widehat{MMD}^2_l = \frac{2}{B}\sum_i k(s_{2i}, s_{2i+1}) + k(t_{2i}, t_{2i+1})
            - k(s_{2i}, t_{2i+1}) - k(s_{2i+1}, t_{2i})

    An unbiased but high-variance estimate meant for large batches. pytorch-adapt's linear
    type needs equal batch sizes, so both batches are **truncated to their first
    B = min(N, M) rows** (keep batches shuffled). Note: pytorch-adapt still builds the full
    B×B distance matrices (for the median bandwidth and by indexing), so memory is
    O(B²) even though the estimator only sums O(B) terms. Exactly 0 on identical batches.
    The truncation comes first: ``normalize`` uses the statistics of the 2B rows compared.

    Args: as :class:`MMDLoss`.

    Shape:
        - f_s: :math:`(N, D)`, f_t: :math:`(M, D)`, min(N, M) ≥ 3 (2 with a fixed ``bandwidth``)
        - Output: scalar

    Example::

        >>> loss = LinearMMDLoss()
        >>> value = loss(torch.randn(256, 64), torch.randn(200, 64))  # uses 200 of each
    """

    _mmd_type = "linear"

    def _compute(self, f_s, f_t, **_) -> tuple[Tensor, Stats]:
        b = min(f_s.shape[0], f_t.shape[0])
        f_s, f_t, stats = self._normalized(f_s[:b], f_t[:b])
        return self.mmd(f_s, f_t), stats


@LOSSES.register("lmmd")
class LMMDLoss(DistanceLoss):
    r"""Local (class-conditional) MMD, LMMD, of Deep Subdomain Adaptation Networks (DSAN).

    Zhu et al., *Deep Subdomain Adaptation Network for Image Classification*
    (IEEE TNNLS 2020, https://arxiv.org/abs/2106.09388).

    .. math::
        \widehat{LMMD} = \frac{1}{|C|}\sum_{c \in C} \Big\lVert \sum_i w^s_{ic}\phi(s_i)
            - \sum_j w^t_{jc}\phi(t_j) \Big\rVert^2_{\mathcal H}

    with :math:`w^s_{ic} = [y^s_i = c] / n^s_c` (one-hot source labels normalised per
    class) and :math:`w^t_{jc} = p_{jc} / \sum_j p_{jc}`, where :math:`p` is ``y_t`` one-hot
    when given, else ``softmax(logits_t)`` (soft pseudo-labels). :math:`C` = the classes
    present both in ``y_s`` and in the target labels (``y_t`` or ``argmax(logits_t)``), as in
    DSAN's reference code; with no shared class the loss is 0. The class weights are
    detached (DSAN computes them in numpy): gradients reach ``f_s`` and ``f_t`` through the
    kernel only, never ``logits_t``. The kernel is the multi-kernel Gaussian of
    :func:`gaussian_kernel_matrices` (DSAN instead sums 5 kernels around the mean pairwise
    distance of the joint batch); like :class:`MMDLoss` it is NaN when the median source
    distance is 0 (pass ``bandwidth`` then). Biased (V-statistic) sums: ≥ 0, and exactly 0 for
    identical batches with identical labels. Vectorised over classes and samples.

    Args:
        num_classes: K, the number of classes.
        kernel_low, kernel_high, num_kernels, kernel_base, bandwidth, normalize: as
            :class:`MMDLoss` (the statistics of ``"standardize"`` are those of the whole
            pooled batch, not per class).

    Inputs (keyword): ``y_s`` (required); ``y_t`` or ``logits_t`` (one is required; ``y_t``
    wins when both are given).

    Shape:
        - f_s: :math:`(N, D)`, f_t: :math:`(M, D)`, y_s: :math:`(N,)`, y_t: :math:`(M,)`,
          logits_t: :math:`(M, K)`
        - Output: scalar

    Example::

        >>> loss = LMMDLoss(num_classes=4)
        >>> f_s, f_t = torch.randn(32, 64), torch.randn(24, 64)
        >>> y_s, logits_t = torch.randint(0, 4, (32,)), torch.randn(24, 4)
        >>> value = loss(f_s, f_t, y_s=y_s, logits_t=logits_t)
    """

    uses = frozenset({"f_s", "f_t", "y_s", "y_t", "logits_t"})
    min_batch = 3  # with the median bandwidth (see _min_rows); set per instance

    Options = KernelOptions

    def __init__(self, num_classes: int, *, options: KernelOptions | None = None) -> None:
        super().__init__(options=options)
        if int(num_classes) != num_classes or num_classes < 1:
            raise DomadaptError(
                f"LMMDLoss: num_classes must be a positive integer, got {num_classes!r}"
            )
        self.num_classes = int(num_classes)
        # float64 like pytorch-adapt's scales; cast to the features' dtype at use.
        self.register_buffer("scales", self.options.scales())
        self.bandwidth = self.options.bandwidth
        self.min_batch = _min_rows(self.options)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, bandwidth={self.bandwidth}, "
                f"normalize={self.normalize!r}")

    def _one_hot(self, arg: str, y: Tensor) -> Tensor:
        if y.dtype.is_floating_point or y.dtype == torch.bool:
            raise DomadaptError(f"LMMDLoss: {arg} must hold integer class indices, got {y.dtype}")
        try:  # one_hot checks the range itself, where that costs no device sync (not on CUDA)
            return F.one_hot(y.long(), self.num_classes)
        except RuntimeError as exc:
            raise DomadaptError(
                f"LMMDLoss: {arg} must hold classes in [0, {self.num_classes}), "
                f"got values in [{int(y.min())}, {int(y.max())}]"
            ) from exc

    def _compute(self, f_s, f_t, *, y_s, y_t, logits_t, **_) -> tuple[Tensor, Stats]:
        y_s = self._require("y_s", y_s, "class-conditional alignment needs source labels")
        with torch.no_grad():
            w_s = self._one_hot("y_s", y_s).to(f_s.dtype)  # (N, K)
            if y_t is not None:
                w_t = self._one_hot("y_t", y_t).to(f_t.dtype)  # (M, K)
                present_t = w_t.sum(0) > 0
            else:
                logits_t = self._require(
                    "logits_t or y_t", logits_t, "target pseudo-labels come from logits_t"
                )
                if logits_t.shape[1] != self.num_classes:
                    raise DomadaptError(
                        f"LMMDLoss: logits_t has {logits_t.shape[1]} classes, "
                        f"expected num_classes={self.num_classes}"
                    )
                w_t = torch.softmax(logits_t, dim=1).to(f_t.dtype)
                present_t = F.one_hot(w_t.argmax(1), self.num_classes).sum(0) > 0
            shared = (w_s.sum(0) > 0) & present_t  # (K,) classes seen in both domains
            # Normalise each class column to sum to 1 (empty columns stay 0), keep shared ones.
            w_s = w_s / w_s.sum(0).clamp_min(torch.finfo(w_s.dtype).tiny) * shared
            w_t = w_t / w_t.sum(0).clamp_min(torch.finfo(w_t.dtype).tiny) * shared
            num_shared = shared.sum().clamp_min(1).to(f_s.dtype)

        f_s, f_t, stats = self._normalized(f_s, f_t)
        k_ss, k_tt, k_st = gaussian_kernel_matrices(f_s, f_t, self.scales, self.bandwidth)
        # Σ_c (w_s[:,c]ᵀ K_ss w_s[:,c] + w_t[:,c]ᵀ K_tt w_t[:,c] − 2 w_s[:,c]ᵀ K_st w_t[:,c])
        per_class = (
            ((k_ss @ w_s) * w_s).sum()
            + ((k_tt @ w_t) * w_t).sum()
            - 2.0 * ((k_st @ w_t) * w_s).sum()
        )
        return per_class / num_shared, {**stats, "num_shared_classes": num_shared.detach()}
