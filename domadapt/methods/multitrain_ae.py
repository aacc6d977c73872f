"""Multitrain_ae: a shared latent encoder that maps the source-pretrained feature space and
the target-trained feature space into one intermediate domain.

The lab's design (docs/lineage.md): the general extractor is pre-trained on CASIA and then trained on MODMA; every 8
epochs, general features of *both* domains are extracted with *both* the CASIA-pretrained
and the MODMA-trained general extractor; a shared latent encoder maps the CASIA domain and
the MODMA domain into an intermediate domain, and an MMD loss and a domain-classification
loss are computed on its output.

Our reading (the lab's description does not fix every detail):
- ``G_s``: a frozen copy of the general extractor after source pre-training (a registered
  submodule, loaded from the general extractor when the adapt stage starts).
- ``G_t``: the general extractor, trained on the target task from ``G_s``'s weights.
- Every ``refresh_every`` epochs two feature banks are rebuilt from source + target training
  inputs: the "CASIA domain" ``G_s(x)`` and the "MODMA domain" ``G_t(x)``.
- The latent encoder ``E`` (Linear + ReLU, D -> D) is shared by both banks; the target head
  reads ``E(G_t(x_t))``, so the intermediate domain is what the classifier sees.
- Each step: target cross-entropy + lambda(p) * [MMD(E(bank_s), E(bank_t)) + a domain
  classifier on E's output through gradient reversal (DANN)].
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from domadapt.align import build_loss
from domadapt.data import TARGET_TASK, FoldData
from domadapt.methods.base import Method, Stage, StepBatch, StepOutput
from domadapt.models.transfer import TransferModel
from domadapt.registries import METHODS
from domadapt.registry import option


@METHODS.register("multitrain_ae")
class MultitrainAE(Method):
    """Source pre-training, then target training through a shared latent encoder aligned
    between the source-pretrained and the target-trained feature spaces."""

    @dataclass(frozen=True)
    class Options:
        refresh_every: int = option(8, min=1)  # epochs between bank refreshes (the lab's 8)
        bank_batch: int = option(0, min=0)  # bank rows per step; 0 = the batch size

    vmappable = False
    why_not_vmappable = (
        "multitrain_ae rebuilds its feature banks at epoch starts from a frozen extractor and "
        "draws bank rows from its own generator: state outside the parameters that cannot be stacked"
    )

    def __init__(self, model: TransferModel, train, options=None) -> None:
        super().__init__(model, train, options)
        dim = int(model.general.out_dim)
        self.encoder = nn.Sequential(nn.Linear(dim, dim), nn.ReLU())
        self.mmd = build_loss("mmd", feature_dim=dim)
        self.domain_classifier = build_loss("dann", feature_dim=dim)
        self.frozen_general = copy.deepcopy(model.general).requires_grad_(False)
        # The banks are data-sized and rebuilt during training: extra_state() checkpoints them.
        self._banks: dict[str, torch.Tensor | None] = {"source": None, "target": None}
        self._generator = torch.Generator().manual_seed(0)

    def stages(self, data: FoldData) -> list[Stage]:
        model = self.model
        refresh_every = int(self.options.refresh_every)
        bank_batch = int(self.options.bank_batch) or self.train_cfg.batch_size
        inputs = [d.x for d in data.sources] + [data.target_train.x]

        @torch.no_grad()
        def extract(extractor: nn.Module) -> torch.Tensor:
            was_training = extractor.training
            extractor.eval()
            feats = [extractor(x[i : i + 256]) for x in inputs for i in range(0, len(x), 256)]
            extractor.train(was_training)
            return torch.cat(feats).float()

        def on_epoch_start(epoch: int) -> None:
            if epoch == 0:  # G_s = the general extractor as source pre-training left it
                self.frozen_general.load_state_dict(model.general.state_dict())
            if epoch % refresh_every == 0 or self._banks["source"] is None:
                self._banks = {"source": extract(self.frozen_general), "target": extract(model.general)}
                self._generator.manual_seed(epoch)

        def step(batch: StepBatch, p: float) -> StepOutput:
            task_loss = self.cross_entropy(self.target_logits(batch.x_t), batch.y_t)
            bank_s, bank_t = self._banks["source"], self._banks["target"]
            i_s = torch.randint(len(bank_s), (bank_batch,), generator=self._generator).to(bank_s.device)
            i_t = torch.randint(len(bank_t), (bank_batch,), generator=self._generator).to(bank_t.device)
            # float32 even under bf16 autocast: early in training the banks can hold nearly
            # constant features, whose rows bf16 rounds together, and the MMD's median
            # bandwidth of a batch of coinciding rows is 0
            with torch.autocast(bank_s.device.type, enabled=False):
                z_s, z_t = self.encoder(bank_s[i_s]), self.encoder(bank_t[i_t])
                mmd, _ = self.mmd.forward_with_stats(z_s, z_t)
                adv, stats = self.domain_classifier.forward_with_stats(z_s, z_t)
            return StepOutput(task=task_loss, align=mmd + adv, stats={"mmd": mmd.detach(), **stats})

        adapt = Stage(
            name="adapt",
            epochs=self.train_cfg.epochs,
            draw="target",
            param_groups=[
                (list(model.general.parameters()) + list(self.encoder.parameters()), 1.0),
                (model.task_parameters(TARGET_TASK), 1.0),
            ],
            step=step,
            monitor=data.target_val,
            predict=self.target_logits,
            on_epoch_start=on_epoch_start,
            frozen=[self.frozen_general],
        )
        return [self.pretrain_stage(data), adapt]

    def target_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The target head reads the intermediate domain: ``head(specific(E(G_t(x))))``."""
        return self.model.from_general(self.encoder(self.model.general(x)), TARGET_TASK).logits

    def target_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.model.from_general(self.encoder(self.model.general(x)), TARGET_TASK)
        return {"general": out.general, "specific": out.specific}

    def extra_state(self) -> dict:
        return {"banks": dict(self._banks), "generator": self._generator.get_state()}

    def load_extra_state(self, saved: dict) -> None:
        self._banks = dict(saved["banks"])
        self._generator.set_state(saved["generator"])
