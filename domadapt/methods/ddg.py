"""DDG: pre-train on the source, then joint training with MMD applied *after the specific
extractors* (the lab's "ddg4", docs/lineage.md), optionally with DANN on the general features."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domadapt.align import build_loss
from domadapt.data import FoldData
from domadapt.methods.base import Method, Stage
from domadapt.methods.joint import aligned_width, feature_aligner, joint_stage
from domadapt.models.transfer import TransferModel
from domadapt.registries import LOSSES, METHODS


@METHODS.register("ddg")
class DDG(Method):
    """Source pre-training, then joint training with MMD after the specific extractors."""

    @dataclass(frozen=True)
    class Options:
        # off: ddg is MMD after the specific extractors alone; dann adds a discriminator on
        # the general features (Ganin et al., JMLR 2016) as a second, separate term
        dann: bool = False
        loss_options: dict = field(default_factory=dict)  # for the MMD

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        LOSSES.check("mmd", dict(options.get("loss_options", {})))

    def __init__(self, model: TransferModel, train, options=None) -> None:
        super().__init__(model, train, options)
        self.mmd = build_loss("mmd", feature_dim=aligned_width(model, "specific"), **dict(self.options.loss_options))
        self.dann = build_loss("dann", feature_dim=aligned_width(model, "general")) if self.options.dann else None

    def stages(self, data: FoldData) -> list[Stage]:
        mmd_after_specific = feature_aligner(self.mmd, at="specific", shared_labels=self.shared_labels)
        if self.dann is None:
            return [self.pretrain_stage(data), joint_stage(self, data, align=mmd_after_specific)]
        dann_on_general = feature_aligner(self.dann, at="general", shared_labels=self.shared_labels)

        def mmd_and_dann(outs_s, out_t, batch):
            mmd, stats = mmd_after_specific(outs_s, out_t, batch)
            adv, adv_stats = dann_on_general(outs_s, out_t, batch)
            return mmd + adv, {**stats, **{f"dann_{k}": v for k, v in adv_stats.items()}}

        return [self.pretrain_stage(data), joint_stage(self, data, align=mmd_and_dann)]
