"""Model selection scores of a stage's validation predictions (higher is better)."""

from __future__ import annotations

import torch

from domadapt.errors import DomadaptError
from domadapt.evaluate import segment_metrics
from domadapt.methods.base import Stage
from domadapt.registries import VALIDATORS


def information_maximization(probs: torch.Tensor) -> float:
    """Unsupervised validation score of predictions ``probs`` [N, K]: pytorch-adapt's
    ``IMValidator`` (diversity of the mean prediction minus the mean entropy), so model
    selection on an unlabelled target never reads a label."""
    from pytorch_adapt.validators import IMValidator

    logits = probs.clamp_min(1e-12).log()  # softmax(log p) = p
    return float(IMValidator()(target_train={"logits": logits}))


def soft_neighborhood_density(probs: torch.Tensor) -> float:
    """Unsupervised validation score of predictions ``probs`` [N, K]: pytorch-adapt's
    ``SNDValidator`` (Saito et al., *Tune it the Right Way: Unsupervised Validation of Domain
    Adaptation via Soft Neighborhood Density*, ICCV 2021): the mean entropy of each sample's
    softmax (temperature 0.05) over its cosine similarities to the other samples'
    predictions. High when predictions form dense neighbourhoods (clusters), so it prefers
    models whose target predictions cluster; labels are never read."""
    from pytorch_adapt.validators import SNDValidator

    return float(SNDValidator()(target_train={"preds": probs.float()}))


def score_probs(stage: Stage, probs: torch.Tensor, *, unsupervised: str | None = None) -> dict[str, float]:
    """A stage's validation score of ``probs`` [N, K] on ``stage.monitor``: UAR on labelled
    validation data (``select="labels"``), or the registered validator named by the stage
    (``VALIDATORS``: information maximisation ``"im"``, soft neighbourhood density
    ``"snd"``, or a user's own). ``unsupervised`` (a validator's name) replaces the stage's
    own unsupervised validator; a labelled stage keeps its labels."""
    select = stage.select if stage.select == "labels" or unsupervised is None else unsupervised
    if select == "labels":
        y = stage.monitor.y.cpu().numpy()
        m = segment_metrics(y, probs.argmax(1).numpy(), num_classes=stage.monitor.num_classes)
        return {"score": float(m["uar"]), "uar": float(m["uar"]), "accuracy": float(m["accuracy"])}
    if select not in VALIDATORS:
        raise DomadaptError(
            f"stage {stage.name!r}: select must be labels or a validator ({', '.join(VALIDATORS.names())}), got {select!r}"
        )
    score = float(VALIDATORS.get(select)(probs))
    return {"score": score, select: score}
