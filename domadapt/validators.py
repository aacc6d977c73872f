"""The label-free model-selection scores (``train.unsupervised_selection``). Each maps a
stage's validation predictions ``probs`` [N, K] to a score, higher is better; the engine
(``domadapt.engine.scoring.score_probs``) calls the entry the recipe names, so a user's own
is one decorated function::

    from domadapt.registries import VALIDATORS

    @VALIDATORS.register("confidence")
    def confidence(probs):
        '''Mean top-class probability.'''
        return float(probs.max(dim=1).values.mean())
"""

from __future__ import annotations

import torch

from domadapt.engine.scoring import information_maximization, soft_neighborhood_density
from domadapt.registries import VALIDATORS

__all__ = ["im", "snd"]


@VALIDATORS.register("im")
def im(probs: torch.Tensor) -> float:
    """Information maximisation: diversity of the mean prediction minus the mean entropy (pytorch-adapt's IMValidator)."""
    return information_maximization(probs)


@VALIDATORS.register("snd")
def snd(probs: torch.Tensor) -> float:
    """Soft neighbourhood density (Saito et al., ICCV 2021; pytorch-adapt's SNDValidator)."""
    return soft_neighborhood_density(probs)
