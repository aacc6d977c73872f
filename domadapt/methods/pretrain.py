"""Pre-train on the source, then train on the target with the general extractor frozen or
fine-tuned at a smaller learning rate (Yosinski et al., *How transferable are features in
deep neural networks?*, NeurIPS 2014; the lab's runs: docs/lineage.md)."""

from __future__ import annotations

from dataclasses import dataclass

from domadapt.data import FoldData
from domadapt.methods.base import Method, Stage
from domadapt.registries import METHODS
from domadapt.registry import option


@METHODS.register("pretrain_freeze")
class PretrainFreeze(Method):
    """Stage 1: source task on all sources. Stage 2: target task, general extractor frozen
    (no gradient, BatchNorm statistics fixed)."""

    def stages(self, data: FoldData) -> list[Stage]:
        return [self.pretrain_stage(data), self.target_stage(data, general_lr_mult=0.0)]


@METHODS.register("pretrain_finetune")
class PretrainFinetune(Method):
    """Stage 1 as PretrainFreeze; stage 2 fine-tunes the general extractor at
    ``general_lr_mult`` x the learning rate."""

    @dataclass(frozen=True)
    class Options:
        # the pre-trained extractor moves at a tenth of the head's lr, so the new head's first
        # large gradients do not erase what pre-training learned
        general_lr_mult: float = option(0.1, min=0.0)

    def stages(self, data: FoldData) -> list[Stage]:
        mult = float(self.options.general_lr_mult)
        return [self.pretrain_stage(data), self.target_stage(data, general_lr_mult=mult)]
