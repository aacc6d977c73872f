"""Multitrain_ae: a shared latent encoder that maps the source-pretrained feature space and
the target-trained feature space into one intermediate domain.

The notes: the general extractor is pre-trained on CASIA and then trained on MODMA; every 8
epochs, general features of *both* domains are extracted with *both* the CASIA-pretrained
and the MODMA-trained general extractor; a shared latent encoder maps the CASIA domain and
the MODMA domain into an intermediate domain, and an MMD loss and a domain-classification
loss are computed on its output.

Our reading (the notes do not fix every detail; this is documented in the README):
- ``G_s``: a frozen copy of the general extractor after source pre-training.
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

import torch
from torch import nn
from torch.nn import functional as F

from domadapt.align import build_loss
from domadapt.data import TARGET_TASK, FoldData
from domadapt.methods.base import Method, Stage, StepBatch, StepOutput
from domadapt.models.transfer import TransferModel


class MultitrainAE(Method):
    """Options: ``refresh_every`` (epochs between feature-bank refreshes, notes: 8),
    ``bank_batch`` (bank rows drawn per step, default = batch size)."""

    option_names = ("refresh_every", "bank_batch")

    def stages(self, model: TransferModel, data: FoldData) -> list[Stage]:
        dim = int(model.general.out_dim)
        task_t = self.target_task(data)
        self.encoder = nn.Sequential(nn.Linear(dim, dim), nn.ReLU())
        self.mmd = build_loss("mmd", feature_dim=dim)
        self.domain_classifier = build_loss("dann", feature_dim=dim)
        # Neither G_s nor the banks are parameters; extra_state() carries them in checkpoints.
        self._state: dict = {"frozen": None, "bank_s": None, "bank_t": None, "model": model}
        refresh_every = int(self.options.get("refresh_every", 8))
        bank_batch = int(self.options.get("bank_batch", self.train_cfg.batch_size))
        self._generator = generator = torch.Generator().manual_seed(0)
        inputs = [d.x for d in data.sources] + [data.target_train.x]

        @torch.no_grad()
        def extract(extractor: nn.Module) -> torch.Tensor:
            was_training = extractor.training
            extractor.eval()
            feats = [extractor(x[i : i + 256]) for x in inputs for i in range(0, len(x), 256)]
            extractor.train(was_training)
            return torch.cat(feats).float()

        def on_epoch_start(epoch: int) -> None:
            state = self._state
            if state["frozen"] is None:
                state["frozen"] = copy.deepcopy(model.general).requires_grad_(False).eval()
            if epoch % refresh_every == 0 or state["bank_s"] is None:
                state["bank_s"] = extract(state["frozen"])
                state["bank_t"] = extract(model.general)
                generator.manual_seed(epoch)

        def step(batch: StepBatch, p: float) -> StepOutput:
            out = model.from_general(self.encoder(model.general(batch.x_t)), task_t)
            task_loss = F.cross_entropy(out.logits, batch.y_t)
            bank_s, bank_t = self._state["bank_s"], self._state["bank_t"]
            i_s = torch.randint(len(bank_s), (bank_batch,), generator=generator).to(bank_s.device)
            i_t = torch.randint(len(bank_t), (bank_batch,), generator=generator).to(bank_t.device)
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
                (model.task_parameters(task_t), 1.0),
            ],
            step=step,
            monitor=data.target_val,
            predict=self.predictor(model, task_t),
            on_epoch_start=on_epoch_start,
        )
        return [self.pretrain_stage(model, data), adapt]

    def target_logits(self, model: TransferModel, x: torch.Tensor) -> torch.Tensor:
        """The target head reads the intermediate domain: ``head(specific(E(G_t(x))))``."""
        return model.from_general(self.encoder(model.general(x)), TARGET_TASK).logits

    def extra_state(self) -> dict:
        state = self._state
        return {
            "frozen": None if state["frozen"] is None else state["frozen"].state_dict(),
            "bank_s": state["bank_s"],
            "bank_t": state["bank_t"],
            "generator": self._generator.get_state(),
        }

    def load_extra_state(self, saved: dict) -> None:
        state = self._state
        if saved["frozen"] is not None:
            state["frozen"] = copy.deepcopy(state["model"].general).requires_grad_(False).eval()
            state["frozen"].load_state_dict(saved["frozen"])
        state["bank_s"], state["bank_t"] = saved["bank_s"], saved["bank_t"]
        self._generator.set_state(saved["generator"])
