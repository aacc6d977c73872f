"""Transformer backbones: Transformer_TIM, Transformer_DeltaTIM and the SET baseline.

``transformer_tim`` / ``transformer_delta_tim`` read the TIM levels as a sequence of tokens:
each pooled level (or each DIFF item) is one token, projected to ``d_model``, given a
learned level embedding (mean pooling alone would not know which level is which), passed
through torch's own ``nn.TransformerEncoder`` (Vaswani et al., NeurIPS 2017) and averaged.

``set`` is a Transformer encoder straight on the input frames (the SET baseline), without
positional encoding by default: the frames of one window are pooled by a mean, which ignores
order anyway. docs/lineage.md says which lab runs each variant reproduces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from domadapt.errors import DomadaptError
from domadapt.models.tcn import time_mask
from domadapt.models.tim import (
    BiTIMEncoder,
    TABOptions,
    count_items,
    level_items,
)
from domadapt.registries import BACKBONES
from domadapt.registry import check_fields, option

ACTIVATION_CHOICES = ("relu", "gelu")


@dataclass(frozen=True, kw_only=True)
class EncoderOptions:
    """The ``nn.TransformerEncoder`` settings shared by the Transformer backbones."""

    d_model: int = option(64, min=1)  # small: the tokens are 8 TIM levels or MFCC frames, not words
    n_head: int = option(4, min=1)  # 16 dims per head at d_model=64
    num_layers: int = option(2, min=1)  # shallow, so the TIM part below stays the larger
    dim_feedforward: int = option(128, min=1)  # 2 x d_model, a light feed-forward as the tokens are few
    activation: str = option("relu", choices=ACTIVATION_CHOICES)  # torch's default
    transformer_dropout: float = option(0.1, min=0.0, lt=1.0)  # torch's default dropout inside the encoder layers

    def __post_init__(self) -> None:
        check_fields(self, where="backbone option")
        if self.d_model % self.n_head:
            raise DomadaptError(
                f"backbone option d_model={self.d_model} must be divisible by n_head={self.n_head}"
            )


def build_encoder(opts: EncoderOptions) -> nn.TransformerEncoder:
    """``nn.TransformerEncoder`` of ``opts.num_layers`` batch-first post-norm layers."""
    layer = nn.TransformerEncoderLayer(
        opts.d_model,
        opts.n_head,
        dim_feedforward=opts.dim_feedforward,
        dropout=opts.transformer_dropout,
        activation=opts.activation,
        batch_first=True,
    )
    # The nested-tensor fast path only applies to padded batches in eval; ours are dense.
    return nn.TransformerEncoder(layer, opts.num_layers, enable_nested_tensor=False)


@dataclass(frozen=True, kw_only=True)
class TransformerTIMOptions(TABOptions, EncoderOptions):
    """Options of ``transformer_tim``: the TIM switches, the token kind, the encoder."""

    levels: int = option(8, min=1)  # official TIM depth: 8 tokens
    diff: bool = False  # tokens are the pooled levels (True: the DIFF items, DeltaTIM)
    diff_include_prepare: bool = False  # as in TIM: one extra token, the prepare output
    bidiff: bool = False  # as in TIM: forward and reversed streams as separate tokens

    def __post_init__(self) -> None:
        EncoderOptions.__post_init__(self)  # every field's declaration, then d_model % n_head
        if self.bidiff and not self.diff:
            raise DomadaptError("backbone option bidiff=True needs diff=True")


@dataclass(frozen=True, kw_only=True)
class TransformerDeltaTIMOptions(TransformerTIMOptions):
    """``transformer_delta_tim``: the tokens are the DIFF items."""

    diff: bool = True  # the DIFF items as tokens (docs/lineage.md: Transformer_DeltaTIM)


@BACKBONES.register(
    "transformer_tim",
    doc="TIM pooled levels as tokens into nn.TransformerEncoder, mean over "
    "tokens; out_dim = d_model (64)",
)
class TransformerTIM(nn.Module):
    """``transformer_tim``: TIM level features as tokens into ``nn.TransformerEncoder``.

    prepare -> bidirectional TABs (as ``tim``) -> tokens ``[B, N, filters]`` (the pooled
    levels, or with ``diff=True`` the DIFF items) -> Linear to ``d_model`` + learned level
    embedding -> TransformerEncoder -> mean over tokens.

    Args:
        in_channels: input features per frame.
        options: a ``TransformerTIMOptions``; defaults when omitted.

    Shape: ``[B, in_channels, T] -> [B, d_model]``; ``out_dim == d_model``.
    """

    Options: type[TransformerTIMOptions] = TransformerTIMOptions

    def __init__(self, *, in_channels: int, options: TransformerTIMOptions | None = None) -> None:
        super().__init__()
        opts = options if options is not None else self.Options()
        self.options = opts
        if opts.diff_include_prepare and opts.prepare == "none" and in_channels != opts.filters:
            raise DomadaptError(
                f"backbone option diff_include_prepare=True with prepare='none' needs in_channels "
                f"({in_channels}) == filters ({opts.filters})"
            )
        self.encoder = BiTIMEncoder(in_channels=in_channels, tab=opts, num_layer=(opts.levels,))
        n_tokens = count_items(opts.levels, bidiff=opts.bidiff, include_prepare=opts.diff_include_prepare)
        self.token_proj = nn.Linear(opts.filters, opts.d_model)
        self.level_embedding = nn.Parameter(torch.randn(n_tokens, opts.d_model) * 0.02)
        self.transformer = build_encoder(opts)
        self.out_dim = opts.d_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.encoder(x)
        tokens = level_items(
            out.forward,
            out.backward,
            out.prepare_forward,
            out.prepare_backward,
            diff=self.options.diff,
            bidiff=self.options.bidiff,
            include_prepare=self.options.diff_include_prepare,
        )
        h = self.token_proj(tokens) + self.level_embedding
        return self.transformer(h).mean(dim=1)


@BACKBONES.register(
    "transformer_delta_tim",
    doc="transformer_tim whose tokens are the DIFF items (docs/lineage.md); out_dim = d_model",
)
class TransformerDeltaTIM(TransformerTIM):
    """``transformer_delta_tim``: ``transformer_tim`` whose tokens are the DIFF items.

    Shape: ``[B, in_channels, T] -> [B, d_model]``.
    """

    Options = TransformerDeltaTIMOptions


def sinusoidal_positions(length: int, d_model: int, device: torch.device) -> torch.Tensor:
    """The sine / cosine positional encoding of "Attention Is All You Need", ``[T, d_model]``."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(
        torch.arange(0, d_model, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d_model)
    )
    pe = torch.zeros(length, d_model, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: d_model // 2])
    return pe


@dataclass(frozen=True, kw_only=True)
class SETOptions(EncoderOptions):
    """Options of ``set``, the Transformer-encoder baseline on the input frames."""

    # off: tokens are frames of one stationary window; docs/lineage.md (SET) for the lab's runs
    positional_encoding: bool = False
    mask_prob: float = option(0.0, min=0.0, lt=1.0)  # input frame masking off, as for TIM


@BACKBONES.register(
    "set",
    doc="Transformer encoder on the input frames (optional sinusoidal positions), mean "
    "over time; out_dim = d_model",
)
class SET(nn.Module):
    """``set``: frames -> Linear to ``d_model`` (+ sinusoidal positions) -> TransformerEncoder -> mean.

    Args:
        in_channels: input features per frame.
        options: a ``SETOptions``; defaults when omitted.

    Shape: ``[B, in_channels, T] -> [B, d_model]``; ``out_dim == d_model``.
    """

    Options = SETOptions

    def __init__(self, *, in_channels: int, options: SETOptions | None = None) -> None:
        super().__init__()
        self.options = opts = options if options is not None else SETOptions()
        self.frame_proj = nn.Linear(in_channels, opts.d_model)
        self.transformer = build_encoder(opts)
        self.out_dim = opts.d_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = time_mask(x, self.options.mask_prob, self.training)
        h = self.frame_proj(x.transpose(1, 2))  # [B, T, d_model]
        if self.options.positional_encoding:
            h = h + sinusoidal_positions(h.shape[1], h.shape[2], x.device).to(h.dtype)
        return self.transformer(h).mean(dim=1)
