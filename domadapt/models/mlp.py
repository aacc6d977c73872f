"""``mlp``: a multi-layer perceptron for feature-vector domains (``domadapt.corpora.arrays``).

A vector is a segment of one frame, ``[B, D, 1]`` (the arrays corpus, or ``features.kind``
``egemaps`` / ``compare`` / ``mfcc_stats``: one vector of functionals per utterance); a longer
input is averaged over its frames first, so the same backbone reads per-frame features (MFCC)
as their mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from domadapt.errors import DomadaptError
from domadapt.registries import BACKBONES
from domadapt.registry import option


@dataclass(frozen=True, kw_only=True)
class MLPOptions:
    """Options of the ``mlp`` backbone."""

    # Ganin et al. (2016)'s two-moons feature extractor is 2 -> 32 -> 32 (ReLU); the head
    # (TransferModel) adds the last Linear
    hidden: tuple[int, ...] = (32, 32)
    dropout: float = option(0.0, min=0.0, lt=1.0)  # after every hidden layer; 0: none (the toy problems need none)

    def __post_init__(self) -> None:
        # a rule over the list's items, which option() bounds (numbers) cannot say
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise DomadaptError(f"backbone option hidden={self.hidden!r}: expected one or more widths >= 1")


@BACKBONES.register(
    "mlp",
    doc="Linear+ReLU per hidden width on the input averaged over time (feature vectors "
    "[B, D, 1]: corpus arrays); out_dim = hidden[-1] (32)",
)
class MLP(nn.Module):
    """``mlp``: Linear + ReLU (+ Dropout) per width in ``hidden``, on the input averaged over time.

    Args:
        in_channels: features per vector (D).
        options: an ``MLPOptions``; defaults when omitted.

    Shape: ``[B, in_channels, T] -> [B, hidden[-1]]``; ``out_dim == hidden[-1]``.

    Example:
        >>> MLP(in_channels=2)(torch.randn(4, 2, 1)).shape
        torch.Size([4, 32])
    """

    Options = MLPOptions
    # reads one vector per example ([B, D, 1]): features.kind "egemaps" & co. are allowed with it
    # (recipe_loader.check_config refuses a backbone without this for those kinds)
    reads_vectors = True

    def __init__(self, *, in_channels: int, options: MLPOptions | None = None) -> None:
        super().__init__()
        self.options = opts = options or MLPOptions()
        layers: list[nn.Module] = []
        width = in_channels
        for h in opts.hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU()]
            if opts.dropout:
                layers.append(nn.Dropout(opts.dropout))
            width = int(h)
        self.layers = nn.Sequential(*layers)
        self.out_dim = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.mean(dim=2))
