"""Self-training: joint source training plus confident target pseudo-labels after a warm-up."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from domadapt.align import build_schedule
from domadapt.data import FoldData
from domadapt.methods.base import Method, Stage, StepBatch
from domadapt.methods.joint import joint_stage
from domadapt.models.transfer import TaskOutput
from domadapt.registries import METHODS
from domadapt.registry import option

__all__ = ["SelfTraining", "pseudo_label_loss", "pseudo_label_stats"]


def pseudo_label_loss(logits: torch.Tensor, threshold: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Cross-entropy of ``logits`` [M, K] against their own argmax, counted only for rows whose
    top probability reaches ``threshold`` and averaged over all M rows (FixMatch's masked
    mean: few confident rows, a small term). The pseudo-labels and the mask are detached.
    Stats: ``confident``, the fraction of rows over the threshold."""
    with torch.no_grad():
        confidence, pseudo = torch.softmax(logits, dim=1).max(dim=1)
        mask = (confidence >= threshold).to(logits.dtype)
    loss = (F.cross_entropy(logits, pseudo, reduction="none") * mask).mean()
    return loss, {"confident": mask.mean()}


def pseudo_label_stats(logits: torch.Tensor, y: torch.Tensor, threshold: float) -> dict[str, torch.Tensor]:
    """How good the pseudo-labels of ``logits`` [M, K] are against the true labels ``y`` [M]:
    ``target_acc``, the accuracy of every row's argmax, and ``confident_correct``, the
    fraction of rows that pass ``threshold`` *and* are right. A history's epoch means give
    the accuracy of the pseudo-labels trained on as ``confident_correct / confident``.
    Diagnostics only: computed without gradient, never part of the loss."""
    with torch.no_grad():
        confidence, pseudo = torch.softmax(logits, dim=1).max(dim=1)
        right = (pseudo == y).to(logits.dtype)
        confident = (confidence >= threshold).to(logits.dtype)
    return {"target_acc": right.mean(), "confident_correct": (right * confident).mean()}


@METHODS.register("self_training")
class SelfTraining(Method):
    """Joint training on the labelled source; after a warm-up, the target's confident
    predictions (top probability ≥ ``threshold``) become its labels. Reads no target label
    (model selection: the IM validator). Lee, *Pseudo-Label* (ICML-W 2013); the masked mean
    of Sohn et al., *FixMatch* (NeurIPS 2020), without augmentation. Written by hand (one
    masked cross-entropy); vmappable. Needs a shared label set (the source-trained head
    labels the target).

    History (per epoch, ``joint/train/...``): ``confident`` (fraction of target rows over the
    threshold), ``target_acc`` and ``confident_correct`` (:func:`pseudo_label_stats`: the
    training target's labels are read for these two numbers only, never for the loss)."""

    needs_shared_labels = True

    @dataclass(frozen=True)
    class Options:
        # FixMatch uses 0.95 with strong augmentation; without augmentation a slightly
        # lower bar lets pseudo-labels in during a short run.
        threshold: float = option(0.9, gt=0.0, max=1.0)
        # fraction of training on the source alone: the head must be worth trusting first
        warmup: float = option(0.3, min=0.0, lt=1.0)
        weight: float = option(1.0, gt=0.0)  # λ of the pseudo-label term

    def stages(self, data: FoldData) -> list[Stage]:
        o = self.options

        def align(outs_s: list[TaskOutput], out_t: TaskOutput, batch: StepBatch):
            loss, stats = pseudo_label_loss(out_t.logits, float(o.threshold))
            if batch.y_t is not None:  # logged only, no gradient: why pseudo-labels help or hurt
                stats.update(pseudo_label_stats(out_t.logits, batch.y_t, float(o.threshold)))
            return loss, stats

        stage = joint_stage(self, data, align=align, use_target_labels=False)
        stage.align_weight = float(o.weight)
        stage.align_schedule = build_schedule("step", start=float(o.warmup))
        return [stage]
