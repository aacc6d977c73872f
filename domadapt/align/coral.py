"""CORAL: second-order statistics alignment, via pytorch-adapt's ``CORALLoss``."""

from __future__ import annotations

from pytorch_adapt.layers import CORALLoss as _PACORALLoss
from torch import Tensor

from domadapt.align.base import AlignmentLoss, Stats

__all__ = ["CORALLoss"]


class CORALLoss(AlignmentLoss):
    r"""Deep CORAL: the distance between the source and target feature covariances.

    Sun & Saenko, *Deep CORAL: Correlation Alignment for Deep Domain Adaptation*
    (ECCV 2016 workshops, https://arxiv.org/abs/1607.01719).

    .. math::
        \ell_{CORAL} = \frac{1}{4D^2} \lVert C_s - C_t \rVert_F^2

    with :math:`C_s, C_t` the unbiased (``1/(N-1)``) sample covariances, as ``np.cov``.
    Only second moments are compared: a pure mean shift gives 0 (pair with a mean-matching
    loss when that matters). Handles N ≠ M; exactly 0 on identical batches.

    Shape:
        - f_s: :math:`(N, D)`, f_t: :math:`(M, D)`, N, M ≥ 2
        - Output: scalar

    Example::

        >>> loss = CORALLoss()
        >>> value = loss(torch.randn(32, 64), torch.randn(24, 64))
    """

    min_batch = 2

    def __init__(self) -> None:
        super().__init__()
        self.coral = _PACORALLoss()

    def _compute(self, f_s, f_t, **_) -> tuple[Tensor, Stats]:
        return self.coral(f_s, f_t), {}
