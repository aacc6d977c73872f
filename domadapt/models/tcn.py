"""Causal convolutions, the ``prepare`` projection, time masking and a plain dilated TCN.

The pieces every TIM variant is built from live here (small before large, nanoGPT-style):
``CausalConv1d`` (zero history before the first frame, as Keras ``padding="causal"``) with
the ``SequenceBatchNorm`` and ``ChannelDropout`` that follow it, ``ConvUnits`` (such units in
series, each dropout folded into its BatchNorm by ``norm_relu_dropout``; two such bodies of one
shape, a bidirectional TIM's two streams, in one pass by ``paired_conv_units``), ``build_prepare`` (the 1x1
projection of the input features to ``filters`` channels), ``time_mask`` (input masking
augmentation) and ``check_choice`` (a building block's guard). Inside a backbone the
sequences are channel-major, ``[C, B, T]``: a backbone takes ``[B, C, T]`` features and
permutes them once, so that each causal conv is one matrix product with the long B*T side
as its columns and each BatchNorm reads every channel as one contiguous run (measured in
benchmarks/RESULTS.md, "The TIM step"). The ``TCN`` backbone at the bottom is the
unidirectional, ungated baseline (Bai et al., 2018; "TCN" in docs/lineage.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from domadapt.errors import DomadaptError
from domadapt.registries import BACKBONES
from domadapt.registry import check_fields, option

PREPARE_CHOICES = ("none", "conv", "conv+bn", "conv+bn+relu")


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Raise DomadaptError naming the switch and its valid values when ``value`` is not one: the
    guard of a building block constructed directly (a backbone's options are declared with
    :func:`~domadapt.registry.option` and checked before any block is built)."""
    if value not in choices:
        raise DomadaptError(f"backbone option {name}={value!r}: expected one of {', '.join(choices)}")


def channel_major(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, T]`` features as the ``[C, B, T]`` sequence the blocks read (a copy)."""
    return x.permute(1, 0, 2).contiguous()


def pool_time(h: torch.Tensor) -> torch.Tensor:
    """The mean over time of a ``[C, B, T]`` sequence, ``[B, C]`` (of a pair ``[2, C, B, T]``,
    ``[2, B, C]``).

    Summed as a product with ones: its gradient, the outer product with ones, comes back
    channel-major like ``h``, where ``mean``'s would follow the ``[B, C]`` layout of the
    gradient arriving from the head and leave every elementwise op of the backward pass
    mixing two layouts (2-4x slower each on the CPU: benchmarks/RESULTS.md, "The default run:
    channel-major TIM, on two hosts")."""
    return (h @ h.new_ones(h.shape[-1])).transpose(-1, -2) / h.shape[-1]


class CausalConv1d(nn.Conv1d):
    """Causal dilated convolution of a channel-major sequence: the output at t sees the
    inputs at t, t-d, ..., t-(k-1)d only, with zeros before the first frame, exactly like
    Keras ``Conv1D(padding="causal")`` used by the official TIM-Net.

    The parameters are ``nn.Conv1d``'s (weight ``[C_out, C_in, k]``). Written by hand as one
    matrix product: the k taps are k time-shifted copies of the sequence stacked along the
    channels, ``[k*C_in, B*T]``, and the flattened kernel times them is the output. On the
    CPU that single GEMM is faster than the small dilated convolution it replaces, in
    float32 and more so under bf16 autocast (benchmarks/RESULTS.md, "The TIM step"); a tap
    shifted by T or more frames reads only the zero history and is skipped.

    Shape: ``[C_in, B, T] -> [C_out, B, T]`` (channel-major, as every TIM and TCN block inside).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, dilation: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, padding=0)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return causal_conv((self,), h)


def causal_conv(convs: Sequence[CausalConv1d], h: torch.Tensor) -> torch.Tensor:
    """``convs[0](h)`` for one conv, ``[C_in, B, T] -> [C_out, B, T]``; for a pair of convs of
    one shape (a bidirectional TIM's two streams), each on its own sequence of ``h``
    ``[2, C_in, B, T] -> [2, C_out, B, T]`` in one batched product: the two convs' values,
    up to the rounding of a batched GEMM's sums (:func:`paired_conv_units`)."""
    first = convs[0]
    frames = h.shape[-1]
    k, d = first.kernel_size[0], first.dilation[0]
    taps, kernels = [], [[] for _ in convs]
    for j in range(k):
        shift = (k - 1 - j) * d
        if shift >= frames:
            continue
        taps.append(h if shift == 0 else F.pad(h[..., : frames - shift], (shift, 0)))
        for conv, kernel in zip(convs, kernels):
            kernel.append(conv.weight[:, :, j])
    x = taps[0] if len(taps) == 1 else torch.cat(taps, dim=-3)
    x = x.reshape(*x.shape[:-2], -1)
    w = [kernel[0] if len(kernel) == 1 else torch.cat(kernel, dim=1) for kernel in kernels]
    if len(convs) == 1:
        out = torch.mm(w[0], x) if first.bias is None else torch.addmm(first.bias[:, None], w[0], x)
    elif first.bias is None:
        out = torch.bmm(torch.stack(w), x)
    else:
        out = torch.baddbmm(torch.stack([conv.bias for conv in convs])[:, :, None], torch.stack(w), x)
    return out.view(*out.shape[:-1], *h.shape[-2:])


class SequenceBatchNorm(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` for a channel-major ``[C, B, T]`` sequence: each channel normalised
    over every frame of the batch, the same statistics as ``nn.BatchNorm1d`` on ``[B, C, T]``
    (read here as one sequence of B*T frames, ``[1, C, B*T]``).

    ``scale`` (training only) multiplies the affine weight and bias, so the output is
    ``scale`` times nn.BatchNorm1d's at the cost of two products of ``[C]`` vectors; the
    running statistics are updated exactly as nn.BatchNorm1d's (:func:`norm_relu_dropout`).
    """

    def forward(self, h: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        x = h.reshape(1, h.shape[0], -1)
        if scale == 1.0:
            return super().forward(x).view_as(h)
        if not (self.training and self.affine and self.track_running_stats):
            raise DomadaptError("SequenceBatchNorm: a scale needs training mode, an affine and running statistics")
        self.num_batches_tracked.add_(1)  # as nn.BatchNorm1d's training forward
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight * scale, self.bias * scale, True, factor, self.eps
        ).view_as(h)


def paired_batch_norm(norms: Sequence[SequenceBatchNorm], h: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Two :class:`SequenceBatchNorm` of one width, each on its own sequence of ``h``
    ``[2, C, B, T]``, as one ``F.batch_norm`` over their ``2C`` channels side by side (every
    channel's statistics are its own): the values, gradients and running statistics of the
    two one after the other. Needs affine norms with running statistics and a momentum
    (:func:`pairable`); ``scale`` as :meth:`SequenceBatchNorm.forward`'s."""
    first = norms[0]
    training = first.training
    cat = lambda name: torch.cat([getattr(norm, name) for norm in norms])  # noqa: E731
    mean, var = cat("running_mean"), cat("running_var")
    weight, bias = cat("weight"), cat("bias")
    if scale != 1.0:
        weight, bias = weight * scale, bias * scale
    if training:
        for norm in norms:
            norm.num_batches_tracked.add_(1)  # as nn.BatchNorm1d's training forward
    x = h.reshape(1, -1, h.shape[-2] * h.shape[-1])
    out = F.batch_norm(x, mean, var, weight, bias, training, first.momentum, first.eps)
    if training:  # the batch's statistics went into the joined copies: back into each norm's own
        with torch.no_grad():
            for norm, m, v in zip(norms, mean.chunk(len(norms)), var.chunk(len(norms))):
                norm.running_mean.copy_(m)
                norm.running_var.copy_(v)
    return out.view_as(h)


class ChannelDropout(nn.Dropout1d):
    """Keras ``SpatialDropout1D`` on a channel-major ``[C, B, T]`` sequence: whole channels of
    each sequence are dropped (``nn.Dropout1d``'s masks, drawn as on ``[B, C, T]``).

    The ``[B, C, 1]`` mask is spread to the sequence's full size before multiplying: on the
    CPU a bf16 multiply that broadcasts is several times slower than an elementwise one
    (benchmarks/RESULTS.md, "The default run: channel-major TIM, on two hosts")."""

    def mask(self, h: torch.Tensor) -> torch.Tensor:
        """This step's mask of ``h`` (training, p > 0), ``[C, B, 1]``: 0 for a dropped channel
        of a sequence, 1/(1-p) for a kept one (nn.Dropout1d's draw on ``[B, C, 1]``)."""
        # ones_like: the masks are per replica under vmap, like h
        return super().forward(torch.ones_like(h[..., :1]).transpose(0, 1)).transpose(0, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return h
        return h * self.mask(h).expand_as(h).contiguous()


def build_prepare(kind: str, in_channels: int, filters: int) -> nn.Module:
    """The ``prepare`` step: project ``in_channels`` input features to ``filters`` channels.

    ``none``: identity (the first block then sees ``in_channels``); ``conv``: a 1x1 conv (the
    official TIM-Net's first layer); ``conv+bn`` / ``conv+bn+relu``: a normalised projection,
    so the first block sees zero-mean, unit-scale inputs whatever the features' scale
    (Ioffe & Szegedy, ICML 2015; the lab's runs: docs/lineage.md).
    """
    check_choice("prepare", kind, PREPARE_CHOICES)
    if kind == "none":
        return nn.Identity()
    layers: list[nn.Module] = [CausalConv1d(in_channels, filters, 1)]
    if kind in ("conv+bn", "conv+bn+relu"):
        layers.append(SequenceBatchNorm(filters))
    if kind == "conv+bn+relu":
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def prepare_channels(kind: str, in_channels: int, filters: int) -> int:
    """Channels coming out of ``build_prepare(kind, in_channels, filters)``."""
    return in_channels if kind == "none" else filters


def time_mask(x: torch.Tensor, prob: float, training: bool) -> torch.Tensor:
    """Zero whole frames of ``x`` [B, C, T] with probability ``prob`` each, in training only.

    A frame-level dropout of the input, akin to SpecAugment's time masks (Park et al.,
    Interspeech 2019) but per frame (the lab's trial: docs/lineage.md). Every feature of a dropped
    frame is zeroed; no rescaling, since the frames are features, not activations.
    """
    if not training or prob <= 0.0:
        return x
    keep = torch.rand(x.shape[0], 1, x.shape[2], device=x.device) >= prob
    return x * keep.to(x.dtype)


def conv_bn_relu_drop(
    in_channels: int, out_channels: int, kernel_size: int, *, dilation: int, dropout: float
) -> list[nn.Module]:
    """Causal conv -> BatchNorm -> ReLU -> spatial dropout (whole channels), the TAB unit,
    on channel-major ``[C, B, T]`` sequences."""
    return [
        CausalConv1d(in_channels, out_channels, kernel_size, dilation=dilation),
        SequenceBatchNorm(out_channels),
        nn.ReLU(),
        ChannelDropout(dropout),
    ]


def _folded(norm: SequenceBatchNorm, dropout: ChannelDropout) -> bool:
    """Whether :func:`norm_relu_dropout` folds the unit's dropout into its BatchNorm: a
    dropout that drops, a BatchNorm in training with an affine and running statistics."""
    return dropout.training and dropout.p > 0.0 and norm.training and norm.affine and norm.track_running_stats


def norm_relu_dropout(norm: SequenceBatchNorm, dropout: ChannelDropout, y: torch.Tensor) -> torch.Tensor:
    """``dropout(relu(norm(y)))`` of a conv output ``y`` ``[C, B, T]``, without multiplying by a
    full-size mask.

    The mask is 0 or 1/(1-p) per channel of a sequence, so ``relu(z) * mask`` equals
    ``relu(z * mask)``: the kept channels' 1/(1-p) goes into BatchNorm's affine, and the
    dropped channels are zeroed in place before the ReLU, outside autograd, because the
    ReLU's backward already gives them no gradient (its output there is 0). The same values
    and gradients without the dropout's full-size multiplies, forward and backward, and its
    mask spread to full size (benchmarks/RESULTS.md, "Spatial dropout folded into BatchNorm").
    """
    if not _folded(norm, dropout):
        return dropout(F.relu(norm(y)))
    dropped = dropout.mask(y) == 0  # drawn before the BatchNorm, which draws nothing: the same masks
    z = norm(y, scale=1.0 / (1.0 - dropout.p))
    with torch.no_grad():
        z.masked_fill_(dropped, 0.0)
    return F.relu(z)


class ConvUnits(nn.Sequential):
    """Units of :func:`conv_bn_relu_drop` in series, each computed by :func:`norm_relu_dropout`.

    A ``Sequential`` of the units' modules, four by four, so the parameters keep their names
    (``body.0.weight`` the first conv's, ``body.1.weight`` its BatchNorm's, ...).
    Shape: ``[in_channels, B, T] -> [out_channels, B, T]`` (channel-major).
    """

    def __init__(self, *layers: nn.Module) -> None:
        unit = (CausalConv1d, SequenceBatchNorm, nn.ReLU, ChannelDropout)
        if len(layers) % 4 or any(not isinstance(m, unit[i % 4]) for i, m in enumerate(layers)):
            raise DomadaptError(f"ConvUnits: expected ({', '.join(t.__name__ for t in unit)}) units, got "
                                f"{[type(m).__name__ for m in layers]}")
        super().__init__(*layers)

    def __getitem__(self, idx):  # a slice need not hold whole units: a plain Sequential of its modules
        return nn.Sequential(*list(self)[idx]) if isinstance(idx, slice) else super().__getitem__(idx)

    def units(self) -> list[tuple[CausalConv1d, SequenceBatchNorm, nn.ReLU, ChannelDropout]]:
        layers = list(self)
        return [tuple(layers[i : i + 4]) for i in range(0, len(layers), 4)]  # type: ignore[misc]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for conv, norm, _, dropout in self.units():
            h = norm_relu_dropout(norm, dropout, conv(h))
        return h


def hooked(*modules: nn.Module) -> bool:
    """Whether a forward or backward hook waits on any of ``modules`` (their own or every
    module's): a pass that does not call them would skip it."""
    own = any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks for m in modules)
    return own or nn.modules.module._has_any_global_hook()


def pairable(bodies: Sequence[ConvUnits]) -> bool:
    """Whether :func:`paired_conv_units` computes ``bodies`` now: two bodies of one shape whose
    BatchNorms are affine with running statistics and a momentum, each unit's dropout either
    folded into its BatchNorm or doing nothing (evaluation, p = 0), the same in both, and no
    module of theirs :func:`hooked` (the paired pass calls none of them)."""
    if len(bodies) != 2:
        return False
    first, second = (body.units() for body in bodies)
    if len(first) != len(second) or hooked(*bodies, *(m for unit in first + second for m in unit)):
        return False
    for (conv, norm, _, dropout), (conv2, norm2, _, dropout2) in zip(first, second):
        if conv.weight.shape != conv2.weight.shape or conv.dilation != conv2.dilation or (conv.bias is None) != (conv2.bias is None):
            return False
        for n in (norm, norm2):
            if not (n.affine and n.track_running_stats and n.momentum is not None):
                return False
        if (norm.training, norm.momentum, norm.eps, dropout.p) != (norm2.training, norm2.momentum, norm2.eps, dropout2.p):
            return False
        active = dropout.training and dropout.p > 0.0
        if active != (dropout2.training and dropout2.p > 0.0) or (active and not _folded(norm, dropout)):
            return False
    return True


def paired_conv_units(bodies: Sequence[ConvUnits], h: torch.Tensor) -> torch.Tensor:
    """``bodies[0](h[0])`` and ``bodies[1](h[1])`` stacked, ``[2, C, B, T]``, for two
    :func:`pairable` bodies: each unit's two convs one batched product, their BatchNorms one
    (:func:`causal_conv`, :func:`paired_batch_norm`), so each operator on the activations runs
    once on both streams instead of once per stream; a few more small ones join the two
    streams' weights (benchmarks/RESULTS.md, "The two directions of TIM in one pass"). The
    values, gradients, running statistics and dropout draws of the bodies one after the other
    (the masks are drawn first, in the order the bodies would draw them), up to the rounding of
    the batched products: under bf16 autocast bit for bit at most batch sizes, not all (a
    weight gradient's long sum may be split otherwise)."""
    units = [body.units() for body in bodies]
    batch = h[0][:1, :, :1]  # [1, B, 1], per replica under vmap like h
    dropped = [
        [dropout.mask(batch.expand(conv.out_channels, -1, -1)) == 0 if _folded(norm, dropout) else None
         for conv, norm, _, dropout in body_units]
        for body_units in units
    ]
    for j, layers in enumerate(zip(*units)):
        convs, norms = [unit[0] for unit in layers], [unit[1] for unit in layers]
        y = causal_conv(convs, h)
        if dropped[0][j] is None:  # the dropout does nothing: evaluation, or p = 0
            h = F.relu(paired_batch_norm(norms, y))
            continue
        z = paired_batch_norm(norms, y, scale=1.0 / (1.0 - layers[0][3].p))
        with torch.no_grad():  # as norm_relu_dropout: the ReLU gives the dropped channels no gradient
            z.masked_fill_(torch.stack([drops[j] for drops in dropped]), 0.0)
        h = F.relu(z)
    return h


@dataclass(frozen=True, kw_only=True)
class TCNOptions:
    """Options of the plain dilated TCN (``tcn``)."""

    filters: int = option(39, min=1)  # as TIM-Net: 39 channels, one per MFCC coefficient
    kernel_size: int = option(2, min=1)  # as TIM-Net: dilation doubles per level, so k=2 covers every frame
    levels: int = option(8, min=1)  # dilations 1..128: a receptive field of 256 frames
    dropout: float = option(0.1, min=0.0, lt=1.0)  # TIM-Net's default spatial dropout
    # BatchNorm + ReLU after the 1x1 projection: a TCN trained from scratch has no
    # pre-trained prepare step to lean on (docs/lineage.md, "prepare")
    prepare: str = option("conv+bn+relu", choices=PREPARE_CHOICES)
    mask_prob: float = option(0.0, min=0.0, lt=1.0)  # input time masking: off by default

    def __post_init__(self) -> None:
        check_fields(self, where="backbone option")


class TemporalBlock(nn.Module):
    """Two causal dilated conv units and an additive residual, ``relu(skip + body(x))``.

    The classic TCN block (Bai et al., 2018); a 1x1 conv fits the skip when the widths differ.
    Shape: ``[in_channels, B, T] -> [filters, B, T]`` (channel-major).
    """

    def __init__(
        self, in_channels: int, filters: int, kernel_size: int, *, dilation: int, dropout: float
    ) -> None:
        super().__init__()
        self.body = ConvUnits(
            *conv_bn_relu_drop(in_channels, filters, kernel_size, dilation=dilation, dropout=dropout),
            *conv_bn_relu_drop(filters, filters, kernel_size, dilation=dilation, dropout=dropout),
        )
        self.skip = nn.Identity() if in_channels == filters else CausalConv1d(in_channels, filters, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.skip(x) + self.body(x))


@BACKBONES.register(
    "tcn",
    doc="plain unidirectional dilated TCN (additive residual) with a prepare step, mean "
    "over time; out_dim = filters",
)
class TCN(nn.Module):
    """``tcn``: a plain unidirectional dilated TCN, globally average-pooled.

    prepare -> ``levels`` TemporalBlocks (dilation 1, 2, ..., 2^(levels-1)) -> mean over time.
    No gate, no time reversal, no level fusion: the baseline TIM-Net improves on.

    Args:
        in_channels: input features per frame (39 for MFCC-39).
        options: a ``TCNOptions``; defaults when omitted.

    Shape: ``[B, in_channels, T] -> [B, filters]``; ``out_dim == filters``.

    Example:
        >>> TCN(in_channels=39)(torch.randn(4, 39, 64)).shape
        torch.Size([4, 39])
    """

    Options = TCNOptions

    def __init__(self, *, in_channels: int, options: TCNOptions | None = None) -> None:
        super().__init__()
        self.options = opts = options or TCNOptions()
        self.prepare = build_prepare(opts.prepare, in_channels, opts.filters)
        width = prepare_channels(opts.prepare, in_channels, opts.filters)
        blocks = []
        for level in range(opts.levels):
            blocks.append(
                TemporalBlock(width, opts.filters, opts.kernel_size, dilation=2**level, dropout=opts.dropout)
            )
            width = opts.filters
        self.blocks = nn.Sequential(*blocks)
        self.out_dim = opts.filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = time_mask(x, self.options.mask_prob, self.training)
        return pool_time(self.blocks(self.prepare(channel_major(x))))
