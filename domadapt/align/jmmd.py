"""JAN's joint MMD over features and predictions, via pytorch-adapt's ``MMDLoss`` on lists."""

from __future__ import annotations

import torch
from pytorch_adapt.layers import MMDLoss as _PAMMDLoss
from torch import Tensor

from domadapt.align.base import DistanceLoss, Normalize, Stats
from domadapt.align.mmd import _check_bandwidth, _kernel_scales
from domadapt.errors import DomadaptError

__all__ = ["JointMMDLoss"]


class JointMMDLoss(DistanceLoss):
    r"""Joint MMD (JMMD) of Joint Adaptation Networks over features and softmax predictions;
    wraps pytorch-adapt's ``MMDLoss`` called with lists (its JMMD mode).

    Long et al., *Deep Transfer Learning with Joint Adaptation Networks* (ICML 2017,
    https://arxiv.org/abs/1605.06636).

    .. math::
        \widehat{JMMD}^2 = \frac{1}{N(N-1)}\sum_{i \ne j} k_f k_g(s_i, s_j)
            + \frac{1}{M(M-1)}\sum_{i \ne j} k_f k_g(t_i, t_j)
            - \frac{2}{NM}\sum_{i,j} k_f k_g(s_i, t_j)

    with :math:`k_f` the multi-kernel Gaussian of :class:`~domadapt.align.mmd.MMDLoss` on the
    features and :math:`k_g` the same kernel on the predictions :math:`g = \mathrm{softmax}(z)`
    (each layer with its own median bandwidth from its source batch): the tensor-product
    kernel compares the *joint* distributions of features and predictions, so a shift in
    the class-conditional feature distributions counts. Gradients reach the features and the
    logits (JAN trains through both). Like MMD the estimator excludes the within-domain
    diagonals only, so on identical batches it lies in [−2/N, 0].

    Both domains must be predicted by one head (a shared label set): ``logits_s`` and
    ``logits_t`` have the same K.

    Args:
        kernel_low, kernel_high, num_kernels, kernel_base, bandwidth: the kernel of
            :class:`~domadapt.align.mmd.MMDLoss`, used on both layers.
        normalize: applied to the features only (predictions stay probabilities); see
            :class:`~domadapt.align.base.DistanceLoss`.

    Inputs (keyword): ``logits_s``, ``logits_t`` (required).

    Shape:
        - f_s: :math:`(N, D)`, f_t: :math:`(M, D)`, logits_s: :math:`(N, K)`,
          logits_t: :math:`(M, K)`, N, M ≥ 2
        - Output: scalar

    Example::

        >>> loss = JointMMDLoss()
        >>> value = loss(f_s, f_t, logits_s=torch.randn(32, 4), logits_t=torch.randn(24, 4))
    """

    # JAN (Long et al. 2017) and TLlib's jan example: trade-off 1; with the distances' warm-up.
    default_weight = 1.0

    uses = frozenset({"f_s", "f_t", "logits_s", "logits_t"})
    min_batch = 2

    def __init__(
        self,
        *,
        kernel_low: float = -3.0,
        kernel_high: float = 3.0,
        num_kernels: int = 5,
        kernel_base: float = 2.0,
        bandwidth: float | None = None,
        normalize: Normalize = "standardize",
    ) -> None:
        super().__init__(normalize=normalize)
        scales = _kernel_scales(kernel_low, kernel_high, num_kernels, kernel_base)
        self.mmd = _PAMMDLoss(kernel_scales=scales, mmd_type="quadratic", bandwidth=_check_bandwidth(bandwidth))

    def extra_repr(self) -> str:
        return f"normalize={self.normalize!r}"

    def _compute(self, f_s, f_t, *, logits_s, logits_t, **_) -> tuple[Tensor, Stats]:
        logits_s = self._require("logits_s", logits_s, "JMMD's prediction layer (one shared head)")
        logits_t = self._require("logits_t", logits_t, "JMMD's prediction layer (one shared head)")
        if logits_s.shape[1] != logits_t.shape[1]:
            raise DomadaptError(
                f"JointMMDLoss: logits_s has {logits_s.shape[1]} classes and logits_t "
                f"{logits_t.shape[1]}; JMMD needs one head for both domains"
            )
        f_s, f_t, stats = self._normalized(f_s, f_t)
        g_s, g_t = torch.softmax(logits_s, dim=1), torch.softmax(logits_t, dim=1)
        return self.mmd([f_s, g_s], [f_t, g_t]), stats
