"""HoMM: higher-order (third-order) moment matching, as AdaTime uses it."""

from __future__ import annotations

import torch
from torch import Tensor

from domadapt.align.base import DistanceLoss, Stats
from domadapt.registries import LOSSES

__all__ = ["HoMMLoss"]


def third_moment(x: Tensor) -> Tensor:
    """The centred third-moment tensor :math:`\\frac1N\\sum_i c_i \\otimes c_i \\otimes c_i`,
    :math:`c_i = x_i - \\bar x`, as one einsum (never the N×D×D×D per-sample tensor).

    Shape:
        - x: :math:`(N, D)`; Output: :math:`(D, D, D)`
    """
    c = x - x.mean(0)
    return torch.einsum("ni,nj,nk->ijk", c, c, c) / x.shape[0]


@LOSSES.register("homm")
class HoMMLoss(DistanceLoss):
    r"""Higher-order moment matching (order 3); written by hand (pytorch-adapt has no HoMM).

    Chen et al., *HoMM: Higher-order Moment Matching for Unsupervised Domain Adaptation*
    (AAAI 2020, https://arxiv.org/abs/1912.11976); order 3 with each domain centred on its
    own mean, as AdaTime's ``HoMM_loss`` (Ragab et al., *ADATIME*, TKDD 2023).

    .. math::
        \ell = \frac{1}{D^3} \big\lVert M^3_s - M^3_t \big\rVert_F^2, \qquad
        M^3 = \frac1N \sum_i c_i \otimes c_i \otimes c_i,\ c_i = x_i - \bar x

    AdaTime builds the N×D×D×D tensor of per-sample outer products and averages it; the
    einsum here gives the same :math:`M^3` in O(D³) memory. Like CORAL it is blind to a pure
    mean shift (each domain is centred on its own mean); it compares skewness, which
    symmetric distributions lack, so it is meant alongside, not instead of, lower moments.
    Exactly 0 on identical batches; N ≠ M fine. Memory is D³ floats (256-wide features:
    16.7 M, 67 MB).

    Args:
        normalize: ``"standardize"`` (default, the pooled standardisation of the other
            distances), ``"l2"`` or ``"none"`` (AdaTime's loss on raw features); see
            :class:`~domadapt.align.base.DistanceLoss`.

    Shape:
        - f_s: :math:`(N, D)`, f_t: :math:`(M, D)`, N, M ≥ 2
        - Output: scalar

    Example::

        >>> loss = HoMMLoss()
        >>> value = loss(torch.randn(32, 64), torch.randn(24, 64))
    """

    # Weight 1 like the other standardised distances (MMD, CORAL): on standardised
    # features the value no longer carries the raw features' scale that the paper's
    # weights compensate for; a warm-up as for the other distances.
    default_weight = 1.0

    min_batch = 2

    def __init__(self, *, options: DistanceLoss.Options | None = None) -> None:
        super().__init__(options=options)

    def extra_repr(self) -> str:
        return f"normalize={self.normalize!r}"

    def _compute(self, f_s, f_t, **_) -> tuple[Tensor, Stats]:
        f_s, f_t, stats = self._normalized(f_s, f_t)
        return (third_moment(f_s) - third_moment(f_t)).pow(2).mean(), stats
