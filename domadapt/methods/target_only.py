"""Baselines without transfer: train on the target only, or on the source only."""

from __future__ import annotations

from domadapt.data import FoldData
from domadapt.methods.base import Method, Stage
from domadapt.registries import METHODS


@METHODS.register("target_only")
class TargetOnly(Method):
    """Supervised training on the target's training subjects; no source data at all."""

    def stages(self, data: FoldData) -> list[Stage]:
        return [self.target_stage(data)]


@METHODS.register("source_only")
class SourceOnly(Method):
    """Train on the labelled source(s) only and test on the target (same label set): the
    lower bound of unsupervised domain adaptation. Model selection on the source share."""

    needs_shared_labels = True

    def stages(self, data: FoldData) -> list[Stage]:
        return [self.pretrain_stage(data, epochs=self.train_cfg.epochs, name="source")]
