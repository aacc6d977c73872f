"""MDD: margin disparity discrepancy, an adversarial auxiliary classifier behind a GRL."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from domadapt.align.base import Stats
from domadapt.align.dann import AdversarialLoss, AdversarialOptions, positive_int
from domadapt.registries import LOSSES
from domadapt.registry import option

__all__ = ["MarginDisparityDiscrepancyLoss"]


@LOSSES.register("mdd")
class MarginDisparityDiscrepancyLoss(AdversarialLoss):
    r"""Margin disparity discrepancy (MDD); written by hand (pytorch-adapt has no MDD), on
    the GRL shared with DANN, vmappable.

    Zhang et al., *Bridging Theory and Algorithm for Domain Adaptation* (ICML 2019,
    https://arxiv.org/abs/1904.05801); TLlib's ``ClassificationMarginDisparityDiscrepancy``.

    An auxiliary classifier :math:`h'` (the loss's own head, fed the features through the
    gradient reversal :math:`R`) is trained to agree with the main classifier's predictions
    :math:`\hat y = \arg\max z` on the source and to disagree with them on the target:

    .. math::
        \ell = \gamma\,\mathrm{CE}\big(h'(R(f_s)), \hat y_s\big)
            - \frac1M\sum_j \log\big(1 - \mathrm{softmax}(h'(R(f_t)))_{j,\hat y_{t,j}}\big)

    which is TLlib's ``-mdd(y_s, y_s_adv, y_t, y_t_adv)``, the term its training loop adds
    to the task loss. Minimising :math:`\ell` trains :math:`h'`; through :math:`R` the
    features move to *increase* it, i.e. to make :math:`h'` unable to disagree with the
    main classifier on the target while agreeing on the source, which bounds the target
    error. :math:`\hat y` is an argmax: no gradient reaches the logits. The GRL coefficient
    is ``grl_scale · grl_schedule(p)``: TLlib's warm start rises to 0.1; here Ganin's
    ``"dann"`` warm-up (over the run's progress, not TLlib's 1000 iterations) to 0.1.

    Both domains must be predicted by one head (a shared label set): ``logits_s`` and
    ``logits_t`` have the same K.

    Args:
        feature_dim: D. num_classes: K.
        margin: γ. Default: 4 (the paper's and TLlib's value).
        hidden_dim: width of the auxiliary head's hidden layer. Default: 256 (TLlib: 1024,
            with dropout 0.5, left out here so a forward pass is deterministic).
        grl_schedule: as :class:`~domadapt.align.dann.DomainAdversarialLoss`.
        grl_scale: the coefficient's final value. Default: 0.1 (TLlib's ``hi``).

    Inputs (keyword): ``logits_s``, ``logits_t`` (required).

    Stats: ``source_agreement`` and ``target_agreement`` (how often :math:`h'` predicts
    :math:`\hat y` on each domain) and ``grl_coeff``.

    Shape:
        - f_s: :math:`(N, D)`, f_t: :math:`(M, D)`, logits_s: :math:`(N, K)`,
          logits_t: :math:`(M, K)`
        - Output: scalar

    Example::

        >>> loss = MarginDisparityDiscrepancyLoss(feature_dim=64, num_classes=4)
        >>> loss.set_progress(0.5)
        >>> value = loss(f_s, f_t, logits_s=torch.randn(32, 4), logits_t=torch.randn(24, 4))
    """

    # Zhang et al. (2019) and TLlib's mdd example: trade-off 1, the warm-up in the GRL.
    default_weight = 1.0
    default_schedule = "constant"

    uses = frozenset({"f_s", "f_t", "logits_s", "logits_t"})

    @dataclass(frozen=True)
    class Options(AdversarialOptions):
        margin: float = option(4.0, gt=0.0)  # γ of the margin disparity (MDD: 4)
        grl_scale: float = option(0.1, gt=0.0)  # the GRL coefficient's ceiling (TLlib's mdd: 0.1)

    def __init__(self, feature_dim: int, num_classes: int, *, options: Options | None = None) -> None:
        o = options if options is not None else self.Options()
        super().__init__(grl_schedule=o.grl_schedule, grl_scale=o.grl_scale)
        self.options = o
        self.feature_dim = positive_int(self._name(), "feature_dim", feature_dim)
        self.num_classes = positive_int(self._name(), "num_classes", num_classes)
        self.margin = o.margin
        hidden_dim = o.hidden_dim
        self.adversary = nn.Sequential(
            nn.Linear(self.feature_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, self.num_classes)
        )

    def extra_repr(self) -> str:
        return (f"feature_dim={self.feature_dim}, num_classes={self.num_classes}, "
                f"margin={self.margin}, grl_scale={self.grl_scale}")

    def _compute(self, f_s, f_t, *, logits_s, logits_t, **_) -> tuple[Tensor, Stats]:
        self._check_ready(f_s, self.feature_dim, "auxiliary classifier")
        logits_s, logits_t = self._require_shared_head(
            logits_s, logits_t, "the main classifier's predictions", self.num_classes
        )
        n = f_s.shape[0]
        adv = self.adversary(self.grl(torch.cat([f_s, f_t])))
        adv_s, adv_t = adv[:n], adv[n:]
        pred_s, pred_t = logits_s.argmax(1), logits_t.argmax(1)
        source = F.cross_entropy(adv_s, pred_s)
        p_t = torch.softmax(adv_t, dim=1).gather(1, pred_t.unsqueeze(1)).squeeze(1)
        # TLlib's shift_log: log(1 − p + 1e-6), capped at 0, so p = 1 gives log(1e-6), not −inf
        target = -torch.log((1.0 - p_t + 1e-6).clamp(max=1.0)).mean()
        loss = self.margin * source + target
        with torch.no_grad():
            stats = {
                "source_agreement": (adv_s.argmax(1) == pred_s).float().mean(),
                "target_agreement": (adv_t.argmax(1) == pred_t).float().mean(),
                "grl_coeff": self.grl.weight[0].detach().clone(),
            }
        return loss, stats
