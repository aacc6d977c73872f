"""Prediction-based target losses: entropy minimisation and information maximisation.

Both read only ``logits_t``; ``f_s`` and ``f_t`` are accepted (the common signature) and
ignored. They are not divergences: their value does not compare the two domains.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytorch_adapt.layers import DiversityLoss as _PADiversityLoss
from pytorch_adapt.layers import EntropyLoss as _PAEntropyLoss
from torch import Tensor

from domadapt.align.base import AlignmentLoss, LossOptions, Stats
from domadapt.registries import LOSSES
from domadapt.registry import option

__all__ = ["EntropyLoss", "InformationMaximizationLoss"]


@LOSSES.register("entropy")
class EntropyLoss(AlignmentLoss):
    r"""Mean Shannon entropy of the target predictions, via pytorch-adapt's ``EntropyLoss``.

    Grandvalet & Bengio, *Semi-supervised Learning by Entropy Minimization* (NeurIPS 2004);
    used for adaptation by Long et al., *Unsupervised Domain Adaptation with Residual
    Transfer Networks* (NeurIPS 2016).

    .. math::
        \ell = -\frac{1}{M}\sum_j \sum_k p_{jk} \log p_{jk}, \qquad p_j = \mathrm{softmax}(z^t_j)

    Minimising it pushes target predictions to be confident. Computed from logits with
    ``log_softmax`` (no ``log(0)``). In nats; in [0, log K].

    Inputs (keyword): ``logits_t`` (required).

    Shape:
        - logits_t: :math:`(M, K)`; f_s, f_t: any valid features (unused)
        - Output: scalar

    Example::

        >>> loss = EntropyLoss()
        >>> value = loss(f_s, f_t, logits_t=torch.randn(24, 4))
    """

    # Entropy minimisation as a regulariser: 0.1 (Grandvalet & Bengio 2004; Long et al.'s
    # RTN and DIRT-T use 0.1 and below), so it cannot outweigh the supervised loss early.
    default_weight = 0.1

    is_divergence = False
    uses = frozenset({"logits_t"})

    def __init__(self) -> None:
        super().__init__()
        self.entropy = _PAEntropyLoss()

    def _compute(self, f_s, f_t, *, logits_t, **_) -> tuple[Tensor, Stats]:
        logits_t = self._require("logits_t", logits_t, "entropy of the target predictions")
        return self.entropy(logits_t), {}


@LOSSES.register("im")
class InformationMaximizationLoss(AlignmentLoss):
    r"""Information maximisation: confident *and* diverse target predictions.

    Liang et al., *Do We Really Need to Access the Source Data? Source Hypothesis
    Transfer for Unsupervised Domain Adaptation* (SHOT, ICML 2020); Hu et al. (ICML 2017).

    .. math::
        \ell = \underbrace{\frac{1}{M}\sum_j H(p_j)}_{\text{entropy}}
            - w \cdot \underbrace{H\Big(\frac{1}{M}\sum_j p_j\Big)}_{\text{diversity}}

    (pytorch-adapt's ``EntropyLoss`` + ``w`` × its ``DiversityLoss``, which returns
    :math:`-H(\bar p)`.) The diversity term stops the trivial solution of entropy
    minimisation (every target sample in one class). For w = 1 the value lies in
    [−log K, 0] and equals minus the mutual information between inputs and predicted class.

    Args:
        diversity_weight: w. Default: 1.0 (SHOT's value).

    Inputs (keyword): ``logits_t`` (required).

    Stats: ``entropy`` and ``diversity`` (the two H terms above).

    Shape:
        - logits_t: :math:`(M, K)`; f_s, f_t: any valid features (unused)
        - Output: scalar

    Example::

        >>> loss = InformationMaximizationLoss()
        >>> value, stats = loss.forward_with_stats(f_s, f_t, logits_t=torch.randn(24, 4))
    """

    is_divergence = False
    uses = frozenset({"logits_t"})

    @dataclass(frozen=True)
    class Options(LossOptions):
        diversity_weight: float = option(1.0, min=0.0)  # weight of the diversity term (SHOT: 1)

    def __init__(self, *, options: Options | None = None) -> None:
        super().__init__()
        self.options = options if options is not None else self.Options()
        self.diversity_weight = self.options.diversity_weight
        self.entropy = _PAEntropyLoss()
        self.neg_diversity = _PADiversityLoss()  # returns −H(mean prediction)

    def extra_repr(self) -> str:
        return f"diversity_weight={self.diversity_weight}"

    def _compute(self, f_s, f_t, *, logits_t, **_) -> tuple[Tensor, Stats]:
        logits_t = self._require("logits_t", logits_t, "information maximisation of predictions")
        entropy = self.entropy(logits_t)
        diversity = -self.neg_diversity(logits_t)
        loss = entropy - self.diversity_weight * diversity
        return loss, {"entropy": entropy.detach(), "diversity": diversity.detach()}
