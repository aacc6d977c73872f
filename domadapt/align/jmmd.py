"""JAN's joint MMD over features and predictions, via pytorch-adapt's ``MMDLoss`` on lists."""

from __future__ import annotations

import torch
from torch import Tensor

from domadapt.align.base import Stats
from domadapt.align.mmd import MMDLoss
from domadapt.registries import LOSSES

__all__ = ["JointMMDLoss"]


@LOSSES.register("jmmd")
class JointMMDLoss(MMDLoss):
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

    Args: as :class:`~domadapt.align.mmd.MMDLoss` (whose options and pytorch-adapt module it
        inherits); the kernel is used on both layers, ``normalize`` on the features only
        (predictions stay probabilities).

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

    def _compute(self, f_s, f_t, *, logits_s, logits_t, **_) -> tuple[Tensor, Stats]:
        logits_s, logits_t = self._require_shared_head(logits_s, logits_t, "JMMD's prediction layer")
        f_s, f_t, stats = self._normalized(f_s, f_t)
        g_s, g_t = torch.softmax(logits_s, dim=1), torch.softmax(logits_t, dim=1)
        return self.mmd([f_s, g_s], [f_t, g_t]), stats
