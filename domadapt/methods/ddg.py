"""DDG: pre-train on the source, then joint training with MMD applied *after the specific
extractors* (notes: "ddg4", the best runs), optionally with DANN on the general features."""

from __future__ import annotations


from domadapt.align import build_loss
from domadapt.data import FoldData
from domadapt.methods.base import Method, Stage
from domadapt.methods.joint import feature_aligner, joint_stage
from domadapt.models.transfer import TransferModel


class DDG(Method):
    """Options: ``dann`` (bool, default false: the notes found MMD alone after the specific
    extractor may be better), ``loss_options`` for the MMD."""

    option_names = ("dann", "loss_options")

    def stages(self, model: TransferModel, data: FoldData) -> list[Stage]:
        task_t = self.target_task(data)
        self.mmd = build_loss(
            "mmd",
            feature_dim=model.specific_for(task_t)[0].out_features,
            **dict(self.options.get("loss_options", {})),
        )
        mmd_after_specific = feature_aligner(self.mmd, at="specific", shared_labels=data.shared_labels)
        align = mmd_after_specific
        if self.options.get("dann", False):
            self.dann = build_loss("dann", feature_dim=model.general.out_dim)
            dann_on_general = feature_aligner(self.dann, at="general", shared_labels=data.shared_labels)

            def align(outs_s, out_t, batch):
                mmd, stats = mmd_after_specific(outs_s, out_t, batch)
                adv, adv_stats = dann_on_general(outs_s, out_t, batch)
                return mmd + adv, {**stats, **{f"dann_{k}": v for k, v in adv_stats.items()}}

        return [self.pretrain_stage(model, data), joint_stage(self, model, data, align=align)]
