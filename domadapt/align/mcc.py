"""MCC: minimum class confusion of the target predictions, via pytorch-adapt's ``MCCLoss``."""

from __future__ import annotations

from dataclasses import dataclass

from pytorch_adapt.layers import MCCLoss as _PAMCCLoss
from torch import Tensor

from domadapt.align.base import AlignmentLoss, LossOptions, Stats
from domadapt.registries import LOSSES
from domadapt.registry import option

__all__ = ["MinimumClassConfusionLoss"]


@LOSSES.register("mcc")
class MinimumClassConfusionLoss(AlignmentLoss):
    r"""Minimum class confusion (MCC) of the target predictions; wraps pytorch-adapt's ``MCCLoss``.

    Jin et al., *Minimum Class Confusion for Versatile Domain Adaptation* (ECCV 2020,
    https://arxiv.org/abs/1912.03699).

    .. math::
        \hat Y = \mathrm{softmax}(z^t / T),\quad
        C = \hat Y^\top W \hat Y,\quad
        \tilde C_{jj'} = \frac{C_{jj'}}{\sum_{j''} C_{j'j''}},\quad
        \ell = \frac{1}{K}\sum_{j \ne j'} \tilde C_{jj'}

    with :math:`W = \mathrm{diag}(w)`, :math:`w_i \propto 1 + e^{-H(\hat y_i)}` (detached,
    scaled to sum to M): confident samples count more. Minimising it pushes probability mass
    of one target sample away from being shared between two classes. Each column of
    :math:`\tilde C` sums to 1, so :math:`\ell = 1 - \mathrm{tr}(\tilde C)/K \in [0, 1)`:
    0 for one-hot (confusion-free) predictions.

    Args:
        temperature: T. Default 2.5 (the paper's value for unsupervised DA).

    Inputs (keyword): ``logits_t`` (required). Works with any label set (target head only).

    Shape:
        - logits_t: :math:`(M, K)`; f_s, f_t: any valid features (unused)
        - Output: scalar

    Example::

        >>> loss = MinimumClassConfusionLoss()
        >>> value = loss(f_s, f_t, logits_t=torch.randn(24, 4))
    """

    # Jin et al. (2020) and TLlib's mcc example: trade-off 1, no warm-up schedule.
    default_weight = 1.0
    default_schedule = "constant"

    is_divergence = False
    uses = frozenset({"logits_t"})

    @dataclass(frozen=True)
    class Options(LossOptions):
        temperature: float = option(2.5, gt=0.0)  # the softmax temperature T of MCC (paper: 2.5)

    def __init__(self, *, options: Options | None = None) -> None:
        super().__init__()
        self.options = options if options is not None else self.Options()
        self.temperature = self.options.temperature
        self.mcc = _PAMCCLoss(T=self.temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"

    def _compute(self, f_s, f_t, *, logits_t, **_) -> tuple[Tensor, Stats]:
        logits_t = self._require("logits_t", logits_t, "class confusion of the target predictions")
        return self.mcc(logits_t), {}
