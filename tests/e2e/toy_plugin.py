"""A user's own backbone, alignment loss and corpus, registered the way a user module does:
one decorated class or function each. ``test_import_plugins.py`` runs a recipe with
``--import`` of this file. ``CALLS`` counts what ran, so the test can tell it was used."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import torch
from torch import Tensor, nn

from domadapt.align import LOSSES, AlignmentLoss
from domadapt.corpora import CORPORA, Corpus, load_casia
from domadapt.models import BACKBONES

CALLS: Counter = Counter()


@BACKBONES.register("toy_cnn")
class ToyCNN(nn.Module):
    """One 1-D convolution, ReLU, mean over time; out_dim = width."""

    def __init__(self, *, in_channels: int, width: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, width, kernel_size=3, padding=1)
        self.out_dim = width
        CALLS[f"backbone width={width}"] += 1

    def forward(self, x: Tensor) -> Tensor:  # [B, C, T] -> [B, width]
        CALLS["backbone"] += 1
        return torch.relu(self.conv(x)).mean(dim=2)


@LOSSES.register("toy_mean")
class ToyMeanLoss(AlignmentLoss):
    """Squared distance between the two batches' mean features."""

    def __init__(self, *, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def _compute(self, f_s: Tensor, f_t: Tensor, **_) -> tuple[Tensor, dict]:
        CALLS["loss"] += 1
        CALLS[f"loss scale={self.scale}"] += 1
        return self.scale * (f_s.mean(0) - f_t.mean(0)).pow(2).sum(), {}


@CORPORA.register("toy_casia")
def load_toy_casia(root: str | Path, *, speakers: int = 4) -> Corpus:
    """CASIA's <root>/<speaker>/<emotion>/<n>.wav tree, its first ``speakers`` speakers only."""
    CALLS[f"corpus speakers={speakers}"] += 1
    corpus = load_casia(root)
    keep = sorted({u.subject for u in corpus.utterances})[:speakers]
    return dataclasses.replace(
        corpus, name="toy_casia", utterances=[u for u in corpus.utterances if u.subject in keep]
    )
