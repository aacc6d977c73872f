"""DANN: a domain discriminator trained through a gradient reversal layer (GRL).

:class:`AdversarialLoss` holds what every loss with an adversary behind a GRL shares
(DANN, CDAN, MDD): the GRL, its coefficient schedule and the per-domain BCE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from domadapt.align.base import AlignmentLoss, LossOptions, Stats, check_progress
from domadapt.align.schedule import build_schedule
from domadapt.errors import DomadaptError
from domadapt.registries import LOSSES
from domadapt.registry import option

__all__ = ["AdversarialLoss", "DomainAdversarialLoss", "DomainDiscriminator", "GradientReversal", "positive_int"]


class GradientReversal(nn.Module):
    r"""Identity forward; the gradient multiplied by :math:`-w` backward.

    Written as plain tensor arithmetic, :math:`y = \bar x - w\,(x - \bar x)` with
    :math:`\bar x` = ``x.detach()``, rather than an ``autograd.Function`` (as
    pytorch-adapt's ``GradientReversal``): the forward value is exactly ``x`` and
    :math:`\partial y/\partial x = -w`, and ``torch.func.vmap`` can batch it, so DANN's
    discriminator trains K seeds in one pass (:mod:`domadapt.engine.replicas`). The coefficient
    is a buffer named ``weight`` (shape ``[1]``), like pytorch-adapt's, so checkpoints
    carry it under the same key.
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("weight", torch.tensor([float(weight)]))

    def update_weight(self, weight: float) -> None:
        self.weight.fill_(float(weight))

    def forward(self, x: Tensor) -> Tensor:
        frozen = x.detach()
        return frozen - self.weight.to(x.dtype) * (x - frozen)

    def extra_repr(self) -> str:
        return f"weight={float(self.weight[0])}"


class DomainDiscriminator(nn.Sequential):
    """MLP ``feature_dim → hidden → hidden → 1`` with ReLUs; outputs a logit, > 0 = source.

    Two hidden layers like TLlib's ``DomainDiscriminator`` (which uses 1024 units and
    BatchNorm). We use 256 units by default (our features are 64–256 wide) and no
    BatchNorm: batch statistics over a concatenated source+target batch let the
    discriminator read the batch's domain mix, and behave differently in eval mode. No
    dropout either, so a forward pass is deterministic.

    Shape:
        - Input: :math:`(B, D)`; Output: :math:`(B, 1)`
    """

    def __init__(self, feature_dim: int, hidden_dim: int = 256) -> None:
        super().__init__(
            nn.Linear(feature_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, 1),
        )


def positive_int(owner: str, arg: str, value: object) -> int:
    """``value`` as an int, or the one-line error naming ``owner`` and ``arg``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < 1:
        raise DomadaptError(f"{owner}: {arg} must be a positive integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class AdversarialOptions(LossOptions):
    """The options every adversarial loss here has (DANN, CDAN, MDD)."""

    hidden_dim: int = option(256, min=1)  # width of the adversary's hidden layer
    # λ(p) of the gradient reversal: a schedule name (domadapt list schedules) or a callable
    grl_schedule: str | Callable[[float], float] = "dann"


class AdversarialLoss(AlignmentLoss):
    """Base of the losses whose adversary sits behind a :class:`GradientReversal` (DANN,
    CDAN, MDD): the GRL coefficient ``grl_scale · grl_schedule(p)`` and the rule that a
    scheduled coefficient must be told the training progress before the first forward.

    Subclasses build their adversary in ``__init__`` and call :meth:`_check_ready` first
    thing in ``_compute``.
    """

    has_parameters = True
    is_divergence = False  # the value is an adversary's loss, not a discrepancy estimate

    def __init__(self, *, grl_schedule: str | Callable[[float], float] = "dann", grl_scale: float = 1.0) -> None:
        super().__init__()
        if isinstance(grl_schedule, str):
            self._schedule_name = grl_schedule
            self.grl_schedule = build_schedule(grl_schedule)
        elif callable(grl_schedule):
            self._schedule_name = None
            self.grl_schedule = grl_schedule
        else:
            raise DomadaptError(
                f"{self._name()}: grl_schedule must be a schedule name or a callable, "
                f"got {grl_schedule!r}"
            )
        self.grl_scale = float(grl_scale)
        # The GRL's coefficient is a buffer: checkpoints carry it.
        self.grl = GradientReversal(weight=self.grl_scale * float(self.grl_schedule(0.0)))
        # A constant schedule needs no progress; any other must be told where training is.
        self._progress_known = self._schedule_name == "constant"

    @property
    def grl_coeff(self) -> float:
        """The current GRL coefficient λ (the reversed gradient is −λ × the gradient)."""
        return float(self.grl.weight[0])

    def set_progress(self, p: float) -> None:
        """Set λ = grl_scale · grl_schedule(p) for the coming steps; ``p`` in [0, 1]."""
        coeff = self.grl_scale * float(self.grl_schedule(check_progress(p)))
        self.grl.update_weight(coeff)
        self._progress_known = True

    def _check_ready(self, f_s: Tensor, width: int, what: str) -> None:
        if not self._progress_known:
            raise DomadaptError(
                f"{self._name()}: call set_progress(p) before the first forward "
                f"(grl_schedule={self.grl_schedule!r} gives λ from the training progress), "
                "or build it with grl_schedule='constant'"
            )
        if f_s.shape[1] != width:
            raise DomadaptError(
                f"{self._name()}: features have dimension {f_s.shape[1]}, "
                f"the {what} was built for feature_dim={width}"
            )

    def _domain_bce(
        self, d: Tensor, n: int, weights: Tensor | None = None
    ) -> tuple[Tensor, Stats]:
        """Source-is-1 BCE of discriminator logits ``d`` [N + M] (first ``n`` rows source),
        each domain averaged over its own rows (weighted by ``weights`` [N + M] when
        given), the two domains weighed equally; with the stats ``disc_acc`` and
        ``grl_coeff``."""
        d_s, d_t = d[:n], d[n:]  # split by size: N and M may differ
        bce_s = F.binary_cross_entropy_with_logits(d_s, torch.ones_like(d_s), reduction="none")
        bce_t = F.binary_cross_entropy_with_logits(d_t, torch.zeros_like(d_t), reduction="none")
        if weights is None:
            loss = 0.5 * (bce_s.mean() + bce_t.mean())
        else:
            w_s, w_t = weights[:n], weights[n:]
            loss = 0.5 * ((w_s * bce_s).sum() / w_s.sum() + (w_t * bce_t).sum() / w_t.sum())
        with torch.no_grad():
            acc = 0.5 * ((d_s > 0).float().mean() + (d_t <= 0).float().mean())
        return loss, {"disc_acc": acc, "grl_coeff": self.grl.weight[0].detach().clone()}


@LOSSES.register("dann")
class DomainAdversarialLoss(AdversarialLoss):
    r"""Domain-adversarial loss (DANN): discriminator BCE behind a gradient reversal layer.

    Ganin et al., *Domain-Adversarial Training of Neural Networks* (ICML 2015 / JMLR 2016,
    https://arxiv.org/abs/1505.07818).

    .. math::
        \ell = \tfrac12\Big(\mathrm{BCE}(D(R(f_s)), 1) + \mathrm{BCE}(D(R(f_t)), 0)\Big)

    Source is label **1**, target label **0** (TLlib's convention); each domain's BCE is
    averaged over its own batch, so unequal N and M weigh the domains equally. :math:`R`
    is :class:`GradientReversal`: identity forward, gradient multiplied by
    :math:`-\lambda` backward. Minimising :math:`\ell` over all parameters therefore trains
    the discriminator :math:`D` to separate the domains while the feature extractor
    receives :math:`-\lambda\,\partial\ell/\partial f` and learns to confuse it.

    The loss owns :math:`D` (``has_parameters = True``): ``loss.parameters()`` are the
    discriminator's, and the trainer optimises them with the model's.

    GRL coefficient :math:`\lambda`: ``grl_coeff`` gives it; the trainer calls
    :meth:`set_progress` (``p`` in [0, 1]) every step, which sets
    :math:`\lambda = \mathrm{schedule}(p)`. The default schedule is Ganin's
    ``"dann"``: :math:`2/(1+e^{-10p}) - 1`, rising from 0. With a schedule other than
    ``"constant"``, calling the loss before the first :meth:`set_progress` raises, rather
    than silently training with :math:`\lambda = 0`. With this schedule on the GRL, keep
    the trainer's loss weight λ constant (the paper schedules one, not both).

    Args:
        feature_dim: D, the width of ``f_s`` / ``f_t``.
        hidden_dim: width of the discriminator's two hidden layers. Default: 256.
        grl_schedule: a schedule name from :mod:`domadapt.align.schedule` (``"dann"``,
            ``"constant"``, ``"linear"``, with default options) or a callable
            ``p -> λ``. Default: ``"dann"``.

    Stats (:meth:`forward_with_stats`): ``disc_acc``, the discriminator's balanced accuracy
    (mean of source and target accuracies; 0.5 = confused), and ``grl_coeff``.

    Shape:
        - f_s: :math:`(N, D)`, f_t: :math:`(M, D)`
        - Output: scalar

    Example::

        >>> loss = DomainAdversarialLoss(feature_dim=64)
        >>> optimizer = torch.optim.Adam([*model.parameters(), *loss.parameters()])
        >>> loss.set_progress(step / total_steps)
        >>> value, stats = loss.forward_with_stats(torch.randn(32, 64), torch.randn(24, 64))
    """

    # Ganin et al. (2016): weight 1, the warm-up lives in the gradient-reversal coefficient
    # (set_progress), so the loss weight itself stays constant.
    default_weight = 1.0
    default_schedule = "constant"

    Options = AdversarialOptions

    def __init__(self, feature_dim: int, *, options: AdversarialOptions | None = None) -> None:
        o = options if options is not None else self.Options()
        super().__init__(grl_schedule=o.grl_schedule)
        self.options = o
        self.feature_dim = positive_int(self._name(), "feature_dim", feature_dim)
        self.discriminator = DomainDiscriminator(self.feature_dim, self.options.hidden_dim)

    def extra_repr(self) -> str:
        return f"feature_dim={self.feature_dim}, grl_schedule={self.grl_schedule!r}"

    def _compute(self, f_s, f_t, **_) -> tuple[Tensor, Stats]:
        self._check_ready(f_s, self.feature_dim, "discriminator")
        d = self.discriminator(self.grl(torch.cat([f_s, f_t], dim=0))).squeeze(1)
        return self._domain_bce(d, f_s.shape[0])
