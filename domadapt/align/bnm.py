"""BNM: batch nuclear-norm maximisation of the target predictions, via pytorch-adapt's ``BNMLoss``."""

from __future__ import annotations

from pytorch_adapt.layers import BNMLoss as _PABNMLoss
from torch import Tensor

from domadapt.align.base import AlignmentLoss, Stats
from domadapt.registries import LOSSES

__all__ = ["BatchNuclearNormLoss"]


@LOSSES.register("bnm")
class BatchNuclearNormLoss(AlignmentLoss):
    r"""Batch nuclear-norm maximisation (BNM) of the target predictions; wraps pytorch-adapt's
    ``BNMLoss``.

    Cui et al., *Towards Discriminability and Diversity: Batch Nuclear-norm Maximization
    under Label Insufficient Situations* (CVPR 2020, https://arxiv.org/abs/2003.12237).

    .. math::
        \ell = -\frac{1}{M}\,\lVert \mathrm{softmax}(z^t) \rVert_*

    The nuclear norm of the :math:`M \times K` prediction matrix grows with both confident
    rows (discriminability) and a high rank, i.e. many classes predicted (diversity).
    For one-hot predictions it is :math:`-\sum_k \sqrt{n_k}/M` (:math:`n_k` rows predicted
    as class k), lowest when the classes are balanced.

    Inputs (keyword): ``logits_t`` (required). Works with any label set (target head only).

    Shape:
        - logits_t: :math:`(M, K)`; f_s, f_t: any valid features (unused)
        - Output: scalar

    Example::

        >>> loss = BatchNuclearNormLoss()
        >>> value = loss(f_s, f_t, logits_t=torch.randn(24, 4))
    """

    # Cui et al. (2020) and TLlib's bnm example: trade-off 1, no warm-up schedule.
    default_weight = 1.0
    default_schedule = "constant"

    is_divergence = False
    uses = frozenset({"logits_t"})

    def __init__(self) -> None:
        super().__init__()
        self.bnm = _PABNMLoss()

    def _compute(self, f_s, f_t, *, logits_t, **_) -> tuple[Tensor, Stats]:
        logits_t = self._require("logits_t", logits_t, "nuclear norm of the target predictions")
        return self.bnm(logits_t), {}
