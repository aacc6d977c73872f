"""Model selection scores of a stage's validation predictions (higher is better)."""

from __future__ import annotations

import torch

from domadapt.evaluate import segment_metrics
from domadapt.methods.base import Stage

SELECTIONS = ("labels", "im")


def information_maximization(probs: torch.Tensor) -> float:
    """Unsupervised validation score of predictions ``probs`` [N, K]: pytorch-adapt's
    ``IMValidator`` (diversity of the mean prediction minus the mean entropy), so model
    selection on an unlabelled target never reads a label."""
    from pytorch_adapt.validators import IMValidator

    logits = probs.clamp_min(1e-12).log()  # softmax(log p) = p
    return float(IMValidator()(target_train={"logits": logits}))


def score_probs(stage: Stage, probs: torch.Tensor) -> dict[str, float]:
    """A stage's validation score of ``probs`` [N, K] on ``stage.monitor``: UAR on labelled
    validation data, or the information-maximisation score with ``select="im"``."""
    if stage.select == "im":
        im = information_maximization(probs)
        return {"score": im, "im": im}
    y = stage.monitor.y.cpu().numpy()
    m = segment_metrics(y, probs.argmax(1).numpy(), num_classes=stage.monitor.num_classes)
    return {"score": float(m["uar"]), "uar": float(m["uar"]), "accuracy": float(m["accuracy"])}
