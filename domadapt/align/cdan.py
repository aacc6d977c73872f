"""CDAN and CDAN+E: a domain discriminator on the multilinear map of features and predictions."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from domadapt.align.base import Stats
from domadapt.align.dann import AdversarialLoss, AdversarialOptions, DomainDiscriminator, positive_int
from domadapt.registries import LOSSES
from domadapt.registry import option

__all__ = ["CDANELoss", "CDANLoss", "RandomizedMultilinearMap"]

# CDAN (Long et al. 2018, sec. 3.2): the exact map f ⊗ g up to this width, above it the
# randomized map of width `randomized_dim` (TLlib's and the paper's 4096 / 1024).
MULTILINEAR_MAX_DIM = 4096


class RandomizedMultilinearMap(nn.Module):
    r"""The randomized multilinear map :math:`\frac{1}{\sqrt d}(R_f f) \odot (R_g g)` of CDAN.

    Written by hand (pytorch-adapt's ``RandomizedDotProduct`` computes the same product and
    is the agreement test's reference) because its matrices come from the global RNG and
    are re-assigned inside ``forward``; here they are fixed buffers drawn from a generator
    seeded with ``seed``, so every replica of a vmapped run and every resumed run uses the
    same map, and the model's initialisation does not depend on whether CDAN is used.

    Shape:
        - f: :math:`(B, D)`, g: :math:`(B, K)`; Output: :math:`(B, d)`
    """

    def __init__(self, feature_dim: int, num_classes: int, output_dim: int, *, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("rand_f", torch.randn(feature_dim, output_dim, generator=gen))
        self.register_buffer("rand_g", torch.randn(num_classes, output_dim, generator=gen))
        self.output_dim = output_dim

    def forward(self, f: Tensor, g: Tensor) -> Tensor:
        return (f @ self.rand_f.to(f.dtype)) / math.sqrt(self.output_dim) * (g @ self.rand_g.to(g.dtype))


def multilinear_map(f: Tensor, g: Tensor) -> Tensor:
    """The flattened outer product :math:`g \\otimes f` per row: ``(B, K·D)``."""
    return (g.unsqueeze(2) * f.unsqueeze(1)).flatten(1)


@LOSSES.register("cdan")
class CDANLoss(AdversarialLoss):
    r"""Conditional domain-adversarial loss (CDAN); written by hand on our GRL and
    :class:`~domadapt.align.dann.DomainDiscriminator` (shared with DANN), vmappable.

    Long et al., *Conditional Adversarial Domain Adaptation* (NeurIPS 2018,
    https://arxiv.org/abs/1705.10667).

    .. math::
        h = T(f, g),\quad g = \mathrm{softmax}(z)\ \text{(detached)},\qquad
        \ell = \tfrac12\Big(\overline{w\,\mathrm{BCE}(D(R(h_s)), 1)}
            + \overline{w\,\mathrm{BCE}(D(R(h_t)), 0)}\Big)

    :math:`T(f, g) = g \otimes f` (flattened, width K·D) when K·D ≤ 4096, else the
    randomized map :class:`RandomizedMultilinearMap` of width ``randomized_dim`` (1024), as
    in the paper and TLlib. The discriminator thus sees which class a sample is predicted
    as, and aligns the class-conditional distributions. :math:`R` is the gradient reversal
    of DANN (coefficient ``grl_schedule(p)``, Ganin's warm-up by default). The bars are
    weighted means over each domain's own rows, the domains weighed equally as in our DANN;
    :math:`w = 1` for CDAN. :class:`CDANELoss` (CDAN+E) weighs each row by
    :math:`w = 1 + e^{-H(g)}` (detached), so confidently predicted samples count more.
    TLlib normalises these weights over the joint batch instead of per domain; for N = M
    and w = 1 the two agree.

    Both domains must be predicted by one head (a shared label set): ``logits_s`` and
    ``logits_t`` have the same K.

    Args:
        feature_dim: D. num_classes: K.
        hidden_dim: width of the discriminator's two hidden layers. Default: 256.
        randomized_dim: width of the randomized map, used when K·D > 4096. Default: 1024.
        grl_schedule: as :class:`~domadapt.align.dann.DomainAdversarialLoss`.

    Inputs (keyword): ``logits_s``, ``logits_t`` (required).

    Stats: ``disc_acc`` (balanced accuracy of the discriminator) and ``grl_coeff``.

    Shape:
        - f_s: :math:`(N, D)`, f_t: :math:`(M, D)`, logits_s: :math:`(N, K)`,
          logits_t: :math:`(M, K)`
        - Output: scalar

    Example::

        >>> loss = CDANLoss(feature_dim=64, num_classes=4)
        >>> loss.set_progress(step / total_steps)
        >>> value = loss(f_s, f_t, logits_s=torch.randn(32, 4), logits_t=torch.randn(24, 4))
    """

    # Long et al. (2018) and TLlib's cdan example: trade-off 1, the warm-up in the GRL
    # coefficient (as DANN), so the loss weight stays constant.
    default_weight = 1.0
    default_schedule = "constant"

    uses = frozenset({"f_s", "f_t", "logits_s", "logits_t"})
    entropy_weighting = False

    @dataclass(frozen=True)
    class Options(AdversarialOptions):
        # width of the random multilinear map when K·D exceeds MULTILINEAR_MAX_DIM (CDAN: 1024)
        randomized_dim: int = option(1024, min=1)

    def __init__(self, feature_dim: int, num_classes: int, *, options: Options | None = None) -> None:
        o = options if options is not None else self.Options()
        super().__init__(grl_schedule=o.grl_schedule)
        self.options = o
        self.feature_dim = positive_int(self._name(), "feature_dim", feature_dim)
        self.num_classes = positive_int(self._name(), "num_classes", num_classes)
        randomized_dim = self.options.randomized_dim
        product = self.feature_dim * self.num_classes
        self.randomized = product > MULTILINEAR_MAX_DIM
        self.map = RandomizedMultilinearMap(self.feature_dim, self.num_classes, randomized_dim) if self.randomized else None
        width = randomized_dim if self.randomized else product
        self.discriminator = DomainDiscriminator(width, self.options.hidden_dim)

    def extra_repr(self) -> str:
        return (f"feature_dim={self.feature_dim}, num_classes={self.num_classes}, "
                f"randomized={self.randomized}, grl_schedule={self.grl_schedule!r}")

    def _compute(self, f_s, f_t, *, logits_s, logits_t, **_) -> tuple[Tensor, Stats]:
        self._check_ready(f_s, self.feature_dim, "discriminator")
        logits_s, logits_t = self._require_shared_head(
            logits_s, logits_t, "the conditioning predictions", self.num_classes
        )
        f = torch.cat([f_s, f_t])
        g = torch.softmax(torch.cat([logits_s, logits_t]), dim=1).detach()
        h = self.map(f, g) if self.randomized else multilinear_map(f, g)
        d = self.discriminator(self.grl(h)).squeeze(1)
        weights = None
        if self.entropy_weighting:
            entropy = -(g * torch.log(g.clamp_min(torch.finfo(g.dtype).tiny))).sum(1)
            weights = 1.0 + torch.exp(-entropy)
        return self._domain_bce(d, f_s.shape[0], weights)


@LOSSES.register("cdan_e")
class CDANELoss(CDANLoss):
    r"""CDAN+E: :class:`CDANLoss` with entropy conditioning, each row's BCE weighted by
    :math:`1 + e^{-H(g)}` (Long et al., *Conditional Adversarial Domain Adaptation*,
    NeurIPS 2018, sec. 3.3).

    Args, inputs, stats: as :class:`CDANLoss`.

    Shape:
        - f_s: :math:`(N, D)`, f_t: :math:`(M, D)`, logits_s: :math:`(N, K)`,
          logits_t: :math:`(M, K)`
        - Output: scalar

    Example::

        >>> loss = CDANELoss(feature_dim=64, num_classes=4)
        >>> loss.set_progress(0.5)
        >>> value = loss(f_s, f_t, logits_s=torch.randn(32, 4), logits_t=torch.randn(24, 4))
    """

    entropy_weighting = True
