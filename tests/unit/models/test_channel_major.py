"""The channel-major building blocks compute what torch's own layers compute on ``[B, C, T]``:
the causal conv as Keras' left-padded ``Conv1D``, the BatchNorm's statistics and running
buffers, the spatial dropout's masks, and a conv unit with its dropout folded into the
BatchNorm what the unit's modules compute one after another."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from domadapt.errors import DomadaptError
from domadapt.models.tcn import (
    CausalConv1d,
    ChannelDropout,
    ConvUnits,
    SequenceBatchNorm,
    channel_major,
    conv_bn_relu_drop,
    norm_relu_dropout,
    pool_time,
)


def reference_causal_conv(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """Keras ``padding="causal"`` on ``[B, C, T]``: left zero-padding of ``(k - 1) * d``."""
    pad = (conv.kernel_size[0] - 1) * conv.dilation[0]
    return F.conv1d(F.pad(x, (pad, 0)), conv.weight, conv.bias, dilation=conv.dilation)


# dilations below, at and beyond the sequence length (a tap shifted past it is skipped)
@pytest.mark.parametrize("kernel_size,dilation", [(1, 1), (2, 1), (2, 4), (3, 5), (2, 11), (2, 12), (2, 40), (3, 6)])
def test_causal_conv_equals_the_left_padded_convolution(kernel_size, dilation):
    torch.manual_seed(0)
    conv = CausalConv1d(5, 7, kernel_size, dilation=dilation)
    x = torch.randn(3, 5, 12)
    expected = reference_causal_conv(x, conv)
    got = conv(channel_major(x)).permute(1, 0, 2)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # and its gradients with respect to the input and the weights
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    conv(channel_major(x1)).square().sum().backward()
    g_weight = conv.weight.grad.clone()
    conv.weight.grad = None
    reference_causal_conv(x2, conv).square().sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g_weight, conv.weight.grad, rtol=1e-5, atol=1e-5)


def test_causal_conv_never_reads_the_future():
    torch.manual_seed(0)
    conv = CausalConv1d(4, 4, 2, dilation=3)
    x = torch.randn(4, 2, 20)  # channel-major [C, B, T]
    y = x.clone()
    y[..., 15:] += 1.0
    torch.testing.assert_close(conv(x)[..., :15], conv(y)[..., :15])
    assert not torch.allclose(conv(x)[..., 15:], conv(y)[..., 15:])


def test_sequence_batchnorm_equals_batchnorm1d_on_channels_first():
    torch.manual_seed(0)
    ours, theirs = SequenceBatchNorm(6), nn.BatchNorm1d(6)
    for _ in range(3):  # training: batch statistics, and the running buffers they update
        x = torch.randn(4, 6, 10) * 3 + 1
        torch.testing.assert_close(ours(channel_major(x)).permute(1, 0, 2), theirs(x))
    torch.testing.assert_close(ours.running_mean, theirs.running_mean)
    torch.testing.assert_close(ours.running_var, theirs.running_var)
    ours.eval(), theirs.eval()
    x = torch.randn(4, 6, 10)
    torch.testing.assert_close(ours(channel_major(x)).permute(1, 0, 2), theirs(x))


def test_channel_dropout_drops_the_channels_dropout1d_drops():
    x = torch.randn(5, 8, 30) + 3.0  # [B, C, T], no zeros of its own
    torch.manual_seed(1)
    theirs = nn.Dropout1d(0.5)(x)
    torch.manual_seed(1)
    ours = ChannelDropout(0.5)(channel_major(x)).permute(1, 0, 2)
    torch.testing.assert_close(ours, theirs)
    dropped = (ours == 0).all(dim=2)  # whole channels of each sequence, and only whole ones
    assert dropped.any() and not dropped.all()
    assert ((ours == 0).any(dim=2) == dropped).all()


def test_pool_time_is_the_mean_over_frames_per_sequence():
    x = torch.randn(3, 5, 7)  # [B, C, T]
    torch.testing.assert_close(pool_time(channel_major(x)), x.mean(dim=2))


@pytest.mark.parametrize("p,training", [(0.3, True), (0.0, True), (0.3, False)])
def test_dropout_folded_into_batchnorm_equals_the_modules_in_series(p, training):
    """norm_relu_dropout: the values, input and parameter gradients, running statistics and
    random draws of BatchNorm -> ReLU -> ChannelDropout applied one after another."""
    torch.manual_seed(0)
    norm, dropout = SequenceBatchNorm(6).train(training), ChannelDropout(p).train(training)
    twin_norm, twin_dropout = SequenceBatchNorm(6).train(training), ChannelDropout(p).train(training)
    twin_norm.load_state_dict(norm.state_dict())
    with torch.no_grad():  # an affine of its own, so a wrong scale of either term shows
        for n in (norm, twin_norm):
            n.weight.copy_(torch.linspace(0.5, 2.0, 6))
            n.bias.copy_(torch.linspace(-0.3, 0.4, 6))
    y = torch.randn(6, 5, 9) * 2 + 0.5  # a conv output [C, B, T]
    y1, y2 = y.clone().requires_grad_(), y.clone().requires_grad_()
    weights = torch.randn(6, 5, 9)
    torch.manual_seed(1)
    expected = twin_dropout(F.relu(twin_norm(y1)))
    torch.manual_seed(1)
    got = norm_relu_dropout(norm, dropout, y2)
    torch.testing.assert_close(got, expected)
    (expected * weights).sum().backward()
    (got * weights).sum().backward()
    torch.testing.assert_close(y2.grad, y1.grad)
    torch.testing.assert_close(norm.weight.grad, twin_norm.weight.grad)
    torch.testing.assert_close(norm.bias.grad, twin_norm.bias.grad)
    for name, buffer in twin_norm.named_buffers():
        torch.testing.assert_close(getattr(norm, name), buffer, msg=name)
    if p and training:  # channels of some sequences were dropped, and the same ones
        dropped = (got == 0).all(dim=2)
        assert dropped.any() and not dropped.all()
        assert torch.equal(dropped, (expected == 0).all(dim=2))


def test_conv_units_run_the_folded_units_and_keep_the_sequential_names():
    torch.manual_seed(0)
    layers = [*conv_bn_relu_drop(4, 6, 2, dilation=2, dropout=0.2), *conv_bn_relu_drop(6, 6, 2, dilation=2, dropout=0.2)]
    units, series = ConvUnits(*layers), nn.Sequential(*layers)  # the same modules
    assert list(units.state_dict()) == list(series.state_dict())
    assert "1.running_mean" in units.state_dict() and "4.weight" in units.state_dict()
    x = torch.randn(4, 3, 16)
    torch.manual_seed(5)
    expected = series(x)
    for m in series:  # the first call moved the running statistics: take them back
        if isinstance(m, SequenceBatchNorm):
            m.reset_running_stats()
    torch.manual_seed(5)
    torch.testing.assert_close(units(x), expected)
    with pytest.raises(DomadaptError, match="ConvUnits: expected"):
        ConvUnits(*layers[:3])
