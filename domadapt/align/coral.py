"""CORAL: second-order statistics alignment, via pytorch-adapt's ``CORALLoss``."""

from __future__ import annotations

from pytorch_adapt.layers import CORALLoss as _PACORALLoss
from torch import Tensor

from domadapt.align.base import DistanceLoss, Stats
from domadapt.registries import LOSSES

__all__ = ["CORALLoss"]


@LOSSES.register("coral")
class CORALLoss(DistanceLoss):
    r"""Deep CORAL: the distance between the source and target feature covariances.

    Sun & Saenko, *Deep CORAL: Correlation Alignment for Deep Domain Adaptation*
    (ECCV 2016 workshops, https://arxiv.org/abs/1607.01719).

    .. math::
        \ell_{CORAL} = \frac{1}{4D^2} \lVert C_s - C_t \rVert_F^2

    with :math:`C_s, C_t` the unbiased (``1/(N-1)``) sample covariances, as ``np.cov``.
    Only second moments are compared: a pure mean shift gives 0 (pair with a mean-matching
    loss when that matters). Handles N ≠ M; exactly 0 on identical batches.

    The covariances are those of the batches after ``normalize``. On raw features the
    value scales with the 4th power of the features' scale: at TIM's initial std of ~0.002
    it is ~1e-8 and its gradient vanishes; standardised with the pooled statistics (the
    default) it compares the domains' covariances in units of their common spread.

    Args:
        normalize: ``"standardize"`` (default), ``"l2"`` or ``"none"`` (the published loss,
            pytorch-adapt's); see :class:`~domadapt.align.base.DistanceLoss`.

    Shape:
        - f_s: :math:`(N, D)`, f_t: :math:`(M, D)`, N, M ≥ 2
        - Output: scalar

    Example::

        >>> loss = CORALLoss()
        >>> value = loss(torch.randn(32, 64), torch.randn(24, 64))
    """

    # Sun & Saenko (2016) weigh CORAL so that it ends on the task loss's scale; DomainBed
    # (Gulrajani & Lopez-Paz 2021) uses 1. Standardised features put it on that scale.
    default_weight = 1.0

    min_batch = 2

    def __init__(self, *, options: DistanceLoss.Options | None = None) -> None:
        super().__init__(options=options)
        self.coral = _PACORALLoss()

    def extra_repr(self) -> str:
        return f"normalize={self.normalize!r}"

    def _compute(self, f_s, f_t, **_) -> tuple[Tensor, Stats]:
        f_s, f_t, stats = self._normalized(f_s, f_t)
        return self.coral(f_s, f_t), stats
