"""On-device feature augmentation of training batches: SpecAugment-style masking.

SpecAugment (Park et al., Interspeech 2019) zeroes random bands of feature channels and
random spans of frames in each training example; features are standardised per fold
(``domadapt.run.folds.build_fold``), so a zero is the training mean. The masks are
torchaudio's (``FrequencyMasking``, ``TimeMasking`` with ``iid_masks``: one mask per
example), applied to every labelled training batch after it is gathered on the device —
never to validation, test or test-time-adaptation rows, and never to the feature cache,
which stays valid.

torchaudio draws from torch's global generator; each replica's masks are drawn instead
from a generator seeded by that replica's own batch generator, so K seeds trained together
(vmapped) mask exactly as K separate runs would, and a resumed run as an uninterrupted one.

Options (``[train]``): ``spec_augment_freq`` (widest frequency mask, in feature channels;
0 = none), ``spec_augment_time`` (widest time mask, in frames; 0 = none),
``spec_augment_masks`` (masks of each kind per example). Off by default: whether it helps
is measured in benchmarks/RESULTS.md ("Deep rows on two realistic corpora").

Mixup is not offered: it needs soft targets in every method's task loss, which each
method's stage computes from hard labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class SpecAugment:
    """Masks of width ``0..freq`` channels and ``0..time`` frames, ``masks`` of each."""

    freq: int = 0
    time: int = 0
    masks: int = 1

    @property
    def active(self) -> bool:
        return self.masks > 0 and (self.freq > 0 or self.time > 0)

    @classmethod
    def from_config(cls, cfg) -> "SpecAugment | None":
        """The train config's masking, or None when it masks nothing."""
        aug = cls(cfg.spec_augment_freq, cfg.spec_augment_time, cfg.spec_augment_masks)
        return aug if aug.active else None

    def _mask(self, x: Tensor) -> Tensor:
        """``x`` [B, C, T] with each example's masks drawn from torch's global generator."""
        import torchaudio.transforms as T

        for _ in range(self.masks):
            if self.freq > 0:
                x = T.FrequencyMasking(self.freq, iid_masks=True)(x)
            if self.time > 0:
                x = T.TimeMasking(self.time, iid_masks=True)(x)
        return x

    def __call__(self, x: Tensor, generators: list[torch.Generator]) -> Tensor:
        """``x`` masked: [B, C, T] for one replica or [K, B, C, T] for K, replica k's masks
        seeded from ``generators[k]``."""
        one = x.dim() == 3
        parts = [x] if one else list(x.unbind(0))
        if len(parts) != len(generators):
            raise ValueError(f"{len(parts)} replicas in the batch, {len(generators)} generators")
        out = []
        devices = [x.device] if x.device.type == "cuda" else []
        for part, g in zip(parts, generators):
            seed = int(torch.randint(2**62, (1,), generator=g))
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                out.append(self._mask(part))
        return out[0] if one else torch.stack(out)
