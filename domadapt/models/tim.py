"""TIM-Net and its variants: AT_TAB, DIFF fusion (DeltaTIM), MultiTIM (docs/lineage.md).

TIM-Net (Ye et al., "Temporal Modeling Matters: A Novel Temporal Emotional Modeling Approach
for Speech Emotion Recognition", ICASSP 2023; official code github.com/Jiaxin-Ye/TIM-Net_SER)::

    x ──► prepare (1x1 conv) ──► TAB(d=1) ─► TAB(d=2) ─► ... ─► TAB(d=2^(L-1))    forward
    flip(x) ─► prepare (1x1) ──► TAB(d=1) ─► TAB(d=2) ─► ... ─► TAB(d=2^(L-1))    time-reversed
                                    │ add        │ add                 │ add
                                   GAP          GAP                   GAP   (mean over time)
                                    └──────── stack [B, L, C] ─────────┘
                                                 │ fusion ("weight layer")
                                               [B, C]

A Temporal-Aware Block (TAB) is two dilated causal convs (each conv -> BatchNorm -> ReLU ->
spatial dropout), a sigmoid gate, and a residual that multiplies the block input by the gate.
The two directions have their own weights. The official weight layer is ``sum_k w_k h_k``
over the L pooled levels (a ``[L, 1]`` kernel, no bias); the class head comes after it and
belongs to ``domadapt.models.transfer``, not to the backbone.

Variants (all switches of one code path):
- ``residual="add"``: ``x + sigmoid(h)`` instead of ``x * sigmoid(h)`` (``torch.mul`` ->
  ``torch.add``).
- ``prepare``: none | conv (official) | conv+bn | conv+bn+relu.
- ``tab="bottleneck"``: 1x1 -> dilated k -> 1x1 convs (width filters // 2) instead of two
  dilated convs (fewer parameters; docs/lineage.md for the lab's runs).
- AT_TAB (``ATTIM``): self-attention over time inside every TAB, after the convs and
  before the gate: ``h = h + attn(h)``.
- DIFF fusion (DeltaTIM): the fused items are ``level[k+1] - level[k]`` for consecutive
  levels plus the last level (+ the prepare output); ``bidiff`` keeps the forward and the
  time-reversed streams apart instead of differencing their sum.
- MultiTIM: several stacks in series (dilations restart at 1 in each), level outputs of
  the stacks added level by level ("add + DIFF").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from domadapt.errors import DomadaptError
from domadapt.models.attention import ATTENTION_CHOICES, build_attention
from domadapt.models.tcn import (
    PREPARE_CHOICES,
    CausalConv1d,
    ConvUnits,
    build_prepare,
    causal_conv,
    channel_major,
    check_choice,
    conv_bn_relu_drop,
    hooked,
    pairable,
    paired_conv_units,
    pool_time,
    prepare_channels,
    time_mask,
)
from domadapt.registries import BACKBONES
from domadapt.registry import check_fields, option

RESIDUAL_CHOICES = ("mul", "add")
TAB_CHOICES = ("standard", "bottleneck")
FUSION_CHOICES = (
    "weight", "linear", "conv", "pool", "diff_weight", "diff_linear", "diff_conv", "diff_pool"
)
COMBINE_CHOICES = ("add", "concat")


# ---------------------------------------------------------------------------- options


@dataclass(frozen=True, kw_only=True)
class TABOptions:
    """The Temporal-Aware-Block switches every TIM variant shares."""

    filters: int = option(39, min=1)  # official filter_size: one channel per MFCC-39 coefficient
    kernel_size: int = option(2, min=1)  # official: with dilations 1, 2, 4, ... k=2 covers every past frame
    dropout: float = option(0.1, min=0.0, lt=1.0)  # official spatial dropout rate
    # official gate: x * sigmoid(h); "add" (x + sigmoid(h)) is the variant docs/lineage.md compares
    residual: str = option("mul", choices=RESIDUAL_CHOICES)
    prepare: str = option("conv", choices=PREPARE_CHOICES)  # official: a 1x1 causal conv per direction, no BN / ReLU
    tab: str = option("standard", choices=TAB_CHOICES)  # official two dilated convs; "bottleneck" = 1x1 + k + 1x1
    mask_prob: float = option(0.0, min=0.0, lt=1.0)  # input frame masking: off, as in the official model

    def __post_init__(self) -> None:
        check_fields(self, where="backbone option")


@dataclass(frozen=True, kw_only=True)
class FusionOptions:
    """How the pooled level outputs become one vector."""

    fusion: str = option("weight", choices=FUSION_CHOICES)  # official weight layer: sum_k w_k level_k
    # the last level plus the L-1 differences already determine every level (a telescoping
    # sum), so the prepare output adds no information the levels lack
    diff_include_prepare: bool = False
    bidiff: bool = False  # one DIFF stream of the summed directions, as DeltaTIM's default

    def __post_init__(self) -> None:
        check_fields(self, where="backbone option")
        if self.bidiff and not self.fusion.startswith("diff_"):
            raise DomadaptError(
                f"backbone option bidiff=True needs a diff_* fusion, not fusion={self.fusion!r}"
            )


@dataclass(frozen=True, kw_only=True)
class TIMOptions(TABOptions, FusionOptions):
    """Options of ``tim`` (official defaults) and base of the other single-stack variants."""

    levels: int = option(8, min=1)  # official dilation_size 8 (10 for IEMOCAP there)

    def __post_init__(self) -> None:
        FusionOptions.__post_init__(self)  # every field's declaration, then the bidiff rule


@dataclass(frozen=True, kw_only=True)
class DeltaTIMOptions(TIMOptions):
    """``delta_tim``: TIM with DIFF fusion (the "Vanilla+DIFF" row of docs/lineage.md)."""

    fusion: str = option("diff_linear", choices=FUSION_CHOICES)  # a Linear over the DIFF items


@dataclass(frozen=True, kw_only=True)
class ATTIMOptions(TIMOptions):
    """``at_tim``: attention inside every Temporal-Aware Block (AT_TAB)."""

    attention: str = option("mha", choices=ATTENTION_CHOICES)  # torch's MultiheadAttention
    d_model: int = option(128, min=1)  # width of the attention (docs/lineage.md: AT-DeltaTIM)
    n_head: int = option(4, min=1)  # d_model / n_head = 32 per head
    aft_window: int = option(8, min=1)  # AFT-local window: +-7 frames, one TAB's span at dilation 8

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.attention == "mha" and self.d_model % self.n_head:
            raise DomadaptError(
                f"backbone option d_model={self.d_model} must be divisible by n_head={self.n_head}"
            )


@dataclass(frozen=True, kw_only=True)
class ATDeltaTIMOptions(ATTIMOptions):
    """``at_delta_tim``: AT_TAB + DIFF (linear) + MHA 128/4 + mul (docs/lineage.md)."""

    fusion: str = option("diff_linear", choices=FUSION_CHOICES)


@dataclass(frozen=True, kw_only=True)
class MultiTIMOptions(TABOptions, FusionOptions):
    """``multi_tim``: several TIM stacks in series, their levels combined, then fused."""

    num_layer: tuple[int, ...] = (3, 3)  # levels per stack; two stacks of 3 (docs/lineage.md)
    # "add" sums the stacks level by level (so they need equal depths); "concat" keeps them
    combine: str = option("add", choices=COMBINE_CHOICES)
    fusion: str = option("diff_linear", choices=FUSION_CHOICES)  # the "DIFF" of "add + DIFF"

    def __post_init__(self) -> None:
        FusionOptions.__post_init__(self)
        if not self.num_layer or any(int(n) < 1 for n in self.num_layer):
            raise DomadaptError(f"backbone option num_layer={list(self.num_layer)}: expected positive ints")
        if self.combine == "add" and len(set(self.num_layer)) > 1:
            raise DomadaptError(
                f"backbone option num_layer={list(self.num_layer)}: combine='add' adds the stacks "
                "level by level, so every stack needs the same number of levels (or combine='concat')"
            )


# ---------------------------------------------------------------------------- blocks


class TemporalAwareBlock(nn.Module):
    """TAB: dilated causal convs -> (attention) -> sigmoid gate -> gated residual.

    Args:
        in_channels: channels of the block input.
        filters: channels of the block output.
        kernel_size: taps of the dilated convs.
        dilation: dilation of the dilated convs.
        dropout: spatial dropout after each conv unit.
        residual: ``mul`` -> ``skip(x) * sigmoid(h)`` (official), ``add`` -> ``skip(x) + sigmoid(h)``.
        tab: ``standard`` (two dilated convs, official) or ``bottleneck`` (1x1, dilated, 1x1).
        attention: a ``[B, C, T] -> [B, C, T]`` module (AT_TAB), or None.

    ``skip`` is the identity, or a 1x1 conv when ``in_channels != filters`` (as the official
    Keras block does).

    Shape: ``[in_channels, B, T] -> [filters, B, T]`` (channel-major).
    """

    def __init__(
        self,
        in_channels: int,
        filters: int,
        kernel_size: int,
        *,
        dilation: int,
        dropout: float,
        residual: str,
        tab: str,
        attention: nn.Module | None = None,
    ) -> None:
        super().__init__()
        check_choice("residual", residual, RESIDUAL_CHOICES)
        check_choice("tab", tab, TAB_CHOICES)
        if tab == "standard":
            layers = [
                *conv_bn_relu_drop(in_channels, filters, kernel_size, dilation=dilation, dropout=dropout),
                *conv_bn_relu_drop(filters, filters, kernel_size, dilation=dilation, dropout=dropout),
            ]
        else:
            width = max(1, filters // 2)
            layers = [
                *conv_bn_relu_drop(in_channels, width, 1, dilation=1, dropout=dropout),
                *conv_bn_relu_drop(width, width, kernel_size, dilation=dilation, dropout=dropout),
                *conv_bn_relu_drop(width, filters, 1, dilation=1, dropout=dropout),
            ]
        self.body = ConvUnits(*layers)
        self.attention = attention
        self.skip = nn.Identity() if in_channels == filters else CausalConv1d(in_channels, filters, 1)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        if self.attention is not None:  # attention blocks read [B, C, T]
            h = h + self.attention(h.transpose(0, 1)).transpose(0, 1)
        return self._gated(self.skip(x), h)

    def pairs_with(self, other: "TemporalAwareBlock") -> bool:
        """Whether :meth:`paired` computes this block and ``other`` now (no attention, no hook
        on either block or skip; bodies :func:`~domadapt.models.tcn.pairable`)."""
        return (
            self.attention is None and other.attention is None and self.residual == other.residual
            and type(self.skip) is type(other.skip) and not hooked(self, other, self.skip, other.skip)
            and pairable((self.body, other.body))
        )

    def paired(self, other: "TemporalAwareBlock", x: torch.Tensor) -> torch.Tensor:
        """This block on ``x[0]`` and ``other`` on ``x[1]``, ``[2, C, B, T]``, in one pass
        (:func:`~domadapt.models.tcn.paired_conv_units`); both :meth:`pairs_with`."""
        h = paired_conv_units((self.body, other.body), x)
        skip = x if isinstance(self.skip, nn.Identity) else causal_conv((self.skip, other.skip), x)
        return self._gated(skip, h)

    def _gated(self, skip: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(h)
        return skip * gate if self.residual == "mul" else skip + gate


@dataclass
class LevelOutputs:
    """What the bidirectional TAB stacks yield, each level pooled over time (by name)."""

    forward: torch.Tensor  # [B, L, C] forward stream, level by level
    backward: torch.Tensor  # [B, L, C] time-reversed stream, level by level
    prepare_forward: torch.Tensor  # [B, C'] the forward prepare output (C' = C unless prepare=none)
    prepare_backward: torch.Tensor  # [B, C'] the time-reversed prepare output


class BiTIMEncoder(nn.Module):
    """Prepare + TAB stacks run on ``x`` and on ``flip(x)``, every level pooled over time.

    Each direction has its own prepare and its own blocks. Stacks run in series; in each the
    dilation restarts at 1 and doubles per level (``num_layer=(8,)`` is the official TIM).

    Args:
        in_channels: input features per frame.
        tab: the TAB switches (``TABOptions`` or a subclass).
        num_layer: levels per stack.
        attention: builds one attention block for ``filters`` channels (AT_TAB), or None.

    Shape: ``[B, in_channels, T] ->`` ``LevelOutputs`` with ``L = sum(num_layer)``.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        tab: TABOptions,
        num_layer: tuple[int, ...],
        attention: Callable[[int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.mask_prob = tab.mask_prob
        self.prepare_forward = build_prepare(tab.prepare, in_channels, tab.filters)
        self.prepare_backward = build_prepare(tab.prepare, in_channels, tab.filters)
        self.prepare_dim = prepare_channels(tab.prepare, in_channels, tab.filters)
        self.forward_blocks = nn.ModuleList()
        self.backward_blocks = nn.ModuleList()
        width = self.prepare_dim
        for n_levels in num_layer:
            for level in range(n_levels):
                for blocks in (self.forward_blocks, self.backward_blocks):
                    blocks.append(
                        TemporalAwareBlock(
                            width,
                            tab.filters,
                            tab.kernel_size,
                            dilation=2**level,
                            dropout=tab.dropout,
                            residual=tab.residual,
                            tab=tab.tab,
                            attention=attention(tab.filters) if attention is not None else None,
                        )
                    )
                width = tab.filters
        self.num_layer = tuple(num_layer)
        # both streams in one pass where every block pair allows it (TemporalAwareBlock.paired):
        # one stream after the other (False) up to rounding, each operator on the activations
        # run once for both
        self.pair_streams = True

    def forward(self, x: torch.Tensor) -> LevelOutputs:
        x = channel_major(time_mask(x, self.mask_prob, self.training))
        fwd = self.prepare_forward(x)
        # The reversed stream is never flipped back: every level is averaged over time, so
        # the alignment of the two streams does not change anything downstream.
        bwd = self.prepare_backward(torch.flip(x, dims=(2,)))
        prep_f, prep_b = pool_time(fwd), pool_time(bwd)
        blocks = list(zip(self.forward_blocks, self.backward_blocks))
        if self.pair_streams and blocks and all(block_f.pairs_with(block_b) for block_f, block_b in blocks):
            h, pooled = torch.stack([fwd, bwd]), []
            for block_f, block_b in blocks:
                h = block_f.paired(block_b, h)
                pooled.append(pool_time(h))
            levels = torch.stack(pooled, dim=2)  # [2, B, L, C]
            return LevelOutputs(forward=levels[0], backward=levels[1], prepare_forward=prep_f, prepare_backward=prep_b)
        pooled_f, pooled_b = [], []
        for block_f, block_b in blocks:
            fwd, bwd = block_f(fwd), block_b(bwd)
            pooled_f.append(pool_time(fwd))
            pooled_b.append(pool_time(bwd))
        return LevelOutputs(
            forward=torch.stack(pooled_f, dim=1),
            backward=torch.stack(pooled_b, dim=1),
            prepare_forward=prep_f,
            prepare_backward=prep_b,
        )


def combine_stacks(levels: torch.Tensor, num_layer: tuple[int, ...], mode: str) -> torch.Tensor:
    """``[B, sum(num_layer), C]`` -> ``[B, n, C]``: add the stacks level by level, or keep all."""
    if mode == "concat" or len(num_layer) == 1:
        return levels
    b, _, c = levels.shape
    return levels.reshape(b, len(num_layer), num_layer[0], c).sum(dim=1)


def level_items(
    levels_f: torch.Tensor,
    levels_b: torch.Tensor,
    prep_f: torch.Tensor,
    prep_b: torch.Tensor,
    *,
    diff: bool,
    bidiff: bool,
    include_prepare: bool,
) -> torch.Tensor:
    """The items to fuse, ``[B, N, C]``, from the pooled levels ``[B, L, C]`` of both streams.

    Without ``diff``: the L levels of ``forward + backward`` (official). With ``diff``:
    ``level[k+1] - level[k]`` for k = 1..L-1, then the last level (L items). With
    ``include_prepare``: the prepare output is appended. With ``bidiff``: the forward and
    the reversed streams are differenced separately and their items concatenated (2x).
    Pooling is linear, so differencing pooled levels equals pooling differenced sequences.
    """
    if bidiff:
        streams = [(levels_f, prep_f), (levels_b, prep_b)]
    else:
        streams = [(levels_f + levels_b, prep_f + prep_b)]
    items: list[torch.Tensor] = []
    for levels, prep in streams:
        if diff:
            items += [levels[:, 1:] - levels[:, :-1], levels[:, -1:]]
        else:
            items.append(levels)
        if include_prepare:
            items.append(prep[:, None, :])
    return torch.cat(items, dim=1)


def count_items(n_levels: int, *, bidiff: bool, include_prepare: bool) -> int:
    """N of ``level_items`` for ``n_levels`` levels (diff or not: L-1 differences + last = L)."""
    return (n_levels + int(include_prepare)) * (2 if bidiff else 1)


class LevelFusion(nn.Module):
    """Fuse N items ``[B, N, C] -> [B, C]``.

    - ``weight``: the official weight layer, ``sum_n w_n item_n`` (N parameters, no bias;
      Keras ``initializer="uniform"`` = U(-0.05, 0.05)).
    - ``linear``: ``Linear(N * C -> C)`` on the flattened items.
    - ``conv``: a per-channel weighting over the items, ``Conv1d(C, C, kernel_size=N, groups=C)``.
    - ``pool``: the mean of the items (no parameters).
    """

    def __init__(self, kind: str, n_items: int, channels: int) -> None:
        super().__init__()
        check_choice("fusion", kind, ("weight", "linear", "conv", "pool"))
        self.kind = kind
        if kind == "weight":
            self.weight = nn.Parameter(torch.empty(n_items).uniform_(-0.05, 0.05))
        elif kind == "linear":
            self.linear = nn.Linear(n_items * channels, channels)
        elif kind == "conv":
            self.conv = nn.Conv1d(channels, channels, kernel_size=n_items, groups=channels)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        if self.kind == "weight":
            return torch.einsum("bnc,n->bc", items, self.weight)
        if self.kind == "linear":
            return self.linear(items.flatten(1))
        if self.kind == "conv":
            return self.conv(items.transpose(1, 2)).squeeze(2)
        return items.mean(dim=1)


# ---------------------------------------------------------------------------- backbones


def _attention_builder(opts: TABOptions) -> Callable[[int], nn.Module] | None:
    """AT_TAB's per-block attention factory when ``opts`` has attention options, else None."""
    if not isinstance(opts, ATTIMOptions):
        return None
    return lambda channels: build_attention(
        opts.attention,
        channels,
        d_model=opts.d_model,
        n_head=opts.n_head,
        window=opts.aft_window,
        dropout=opts.dropout,
    )


@BACKBONES.register(
    "tim",
    doc="TIM-Net's official graph without its head: 1x1 prepare, 8 bidirectional gated TABs "
    "(mul), per-level GAP, weight-layer fusion; out_dim = filters (39)",
)
class TIM(nn.Module):
    """``tim``: TIM-Net's official graph up to the fused vector (Ye et al., ICASSP 2023).

    The same layers and 104,216 trainable parameters as the official Keras model without
    its Dense(K) head; that head, Keras' BatchNorm settings and initialisation are model
    options (``model.specific = "none"``, ``model.init = "keras"``, ``batchnorm_*``), set
    by the ``timnet_paper`` recipes.

    prepare (1x1 conv per direction) -> ``levels`` bidirectional TABs (dilation 1..2^(L-1),
    gated ``mul`` residual, forward + time-reversed streams added per level) -> global
    average pooling per level -> weight-layer fusion. Every switch of ``TIMOptions`` turns
    it into a variant (``fusion="diff_linear"`` is DeltaTIM).

    Args:
        in_channels: input features per frame (39 for MFCC-39).
        options: a ``TIMOptions`` (or the subclass of this backbone); defaults when omitted.

    Shape: ``[B, in_channels, T] -> [B, filters]``; ``out_dim == filters``.

    Example:
        >>> TIM(in_channels=39)(torch.randn(4, 39, 64)).shape
        torch.Size([4, 39])
    """

    Options: type[TIMOptions] = TIMOptions

    def __init__(self, *, in_channels: int, options: TIMOptions | None = None) -> None:
        super().__init__()
        opts = options if options is not None else self.Options()
        self.options = opts
        num_layer = self._num_layer(opts)
        self.combine = getattr(opts, "combine", "add")
        prepare_dim = prepare_channels(opts.prepare, in_channels, opts.filters)
        if opts.diff_include_prepare and prepare_dim != opts.filters:
            raise DomadaptError(
                f"backbone option diff_include_prepare=True with prepare='none' needs in_channels "
                f"({in_channels}) == filters ({opts.filters})"
            )
        self.encoder = BiTIMEncoder(
            in_channels=in_channels, tab=opts, num_layer=num_layer, attention=_attention_builder(opts)
        )
        n_levels = sum(num_layer) if self.combine == "concat" else num_layer[0]
        self.diff = opts.fusion.startswith("diff_")
        n_items = count_items(n_levels, bidiff=opts.bidiff, include_prepare=opts.diff_include_prepare)
        self.fusion = LevelFusion(opts.fusion.removeprefix("diff_"), n_items, opts.filters)
        self.out_dim = opts.filters

    @staticmethod
    def _num_layer(opts: TIMOptions) -> tuple[int, ...]:
        return (opts.levels,)

    def items(self, x: torch.Tensor) -> torch.Tensor:
        """The level items before fusion, ``[B, N, C]`` (levels or DIFF items)."""
        out = self.encoder(x)
        num_layer = self.encoder.num_layer
        return level_items(
            combine_stacks(out.forward, num_layer, self.combine),
            combine_stacks(out.backward, num_layer, self.combine),
            out.prepare_forward,
            out.prepare_backward,
            diff=self.diff,
            bidiff=self.options.bidiff,
            include_prepare=self.options.diff_include_prepare,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fusion(self.items(x))


@BACKBONES.register(
    "delta_tim",
    doc="TIM with DIFF fusion: consecutive level differences + last level, Linear "
    "('Vanilla+DIFF' of docs/lineage.md); out_dim = filters",
)
class DeltaTIM(TIM):
    """``delta_tim``: TIM with DIFF fusion (consecutive level differences + last level, Linear).

    Same code as ``tim``; only the default ``fusion="diff_linear"`` differs.
    Shape: ``[B, in_channels, T] -> [B, filters]``.
    """

    Options = DeltaTIMOptions


@BACKBONES.register(
    "at_tim",
    doc="TIM with self-attention inside every TAB (AT_TAB: mha 128/4 | aft_local | "
    "aft_simple); out_dim = filters",
)
class ATTIM(TIM):
    """``at_tim``: TIM whose every TAB holds a self-attention block over time (AT_TAB).

    ``attention``: ``mha`` (d_model=128, n_head=4), ``aft_local`` (window ``aft_window``)
    or ``aft_simple``; added to the conv output before the sigmoid gate.
    Shape: ``[B, in_channels, T] -> [B, filters]``.
    """

    Options = ATTIMOptions


@BACKBONES.register(
    "at_delta_tim",
    doc="AT_TAB + DIFF Linear fusion + MHA(128, 4) + mul residual: the lab's "
    "final choice (docs/lineage.md); out_dim = filters",
)
class ATDeltaTIM(ATTIM):
    """``at_delta_tim``: AT_TAB + DIFF with Linear fusion + MHA(128, 4) + ``mul`` residual.

    The lab's final choice (docs/lineage.md). Shape: ``[B, in_channels, T] -> [B, filters]``.
    """

    Options = ATDeltaTIMOptions


@BACKBONES.register(
    "multi_tim",
    doc="TIM stacks in series (num_layer=[3,3]), levels added stack to stack, DIFF "
    "Linear fusion; out_dim = filters",
)
class MultiTIM(TIM):
    """``multi_tim``: TIM stacks in series (``num_layer=[3, 3]``), levels added, DIFF-fused.

    Stack s+1 continues from stack s's last output in each direction with dilations
    restarting at 1; the pooled level k of every stack are added (``combine="add"``) or all
    levels kept (``combine="concat"``); the result is fused like TIM (default DIFF linear).
    Shape: ``[B, in_channels, T] -> [B, filters]``.
    """

    Options = MultiTIMOptions

    @staticmethod
    def _num_layer(opts: MultiTIMOptions) -> tuple[int, ...]:  # type: ignore[override]
        return tuple(int(n) for n in opts.num_layer)
