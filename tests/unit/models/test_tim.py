"""TIM-Net and its variants: faithfulness to the official code, the switches, and learning."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from domadapt.models import build_backbone
from domadapt.models.attention import AFTLocal, AFTSimple
from domadapt.models.tcn import CausalConv1d, ChannelDropout, SequenceBatchNorm, time_mask
from domadapt.models.tim import (
    TIM,
    LevelFusion,
    TemporalAwareBlock,
    TIMOptions,
    combine_stacks,
    count_items,
    level_items,
)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_count_of_the_official_default_configuration():
    # in_channels=39, filters=39, kernel_size=2, 8 levels, weight-layer fusion.
    f_in, c, k, levels = 39, 39, 2, 8
    prepare = 2 * (f_in * c * 1 + c)  # one 1x1 conv (weight + bias) per direction = 3,120
    conv = c * c * k + c  # a dilated causal conv of a TAB = 3,081
    bn = 2 * c  # BatchNorm gamma + beta (running stats are buffers) = 78
    tab = 2 * conv + 2 * bn  # two conv -> BN units = 6,318
    tabs = levels * 2 * tab  # 8 levels x 2 directions = 101,088
    weight_layer = levels  # the official [L, 1] kernel, no bias = 8
    expected = prepare + tabs + weight_layer
    assert expected == 104_216
    model = build_backbone("tim", in_channels=39)
    assert n_params(model) == expected
    assert n_params(model.fusion) == weight_layer
    assert n_params(model.encoder.prepare_forward) + n_params(model.encoder.prepare_backward) == prepare


def test_official_layer_order_and_dilations():
    model = TIM(in_channels=39)
    opts = model.options
    assert (opts.filters, opts.kernel_size, opts.levels, opts.dropout) == (39, 2, 8, 0.1)
    assert (opts.residual, opts.prepare, opts.fusion) == ("mul", "conv", "weight")
    for blocks in (model.encoder.forward_blocks, model.encoder.backward_blocks):
        assert [b.body[0].dilation[0] for b in blocks] == [1, 2, 4, 8, 16, 32, 64, 128]
        kinds = [type(m) for m in blocks[0].body]
        assert kinds == [CausalConv1d, SequenceBatchNorm, nn.ReLU, ChannelDropout] * 2
        assert blocks[0].attention is None and isinstance(blocks[0].skip, nn.Identity)
    assert isinstance(model.encoder.prepare_forward[0], CausalConv1d)
    assert model.encoder.prepare_forward[0].kernel_size == (1,)


def test_tab_is_causal():
    torch.manual_seed(0)
    tab = TemporalAwareBlock(4, 4, 2, dilation=4, dropout=0.0, residual="mul", tab="standard").eval()
    x = torch.randn(4, 2, 30)  # channel-major [C, B, T]
    y = x.clone()
    y[..., 20:] += torch.randn(4, 2, 10)
    torch.testing.assert_close(tab(x)[..., :20], tab(y)[..., :20])
    assert not torch.allclose(tab(x)[..., 20:], tab(y)[..., 20:])


def test_mul_and_add_residuals_gate_the_same_body():
    torch.manual_seed(0)
    mul = TemporalAwareBlock(4, 4, 2, dilation=2, dropout=0.0, residual="mul", tab="standard").eval()
    add = TemporalAwareBlock(4, 4, 2, dilation=2, dropout=0.0, residual="add", tab="standard").eval()
    add.load_state_dict(mul.state_dict())
    x = torch.randn(4, 3, 16)  # channel-major [C, B, T]
    gate = torch.sigmoid(mul.body(x))
    torch.testing.assert_close(mul(x), x * gate)
    torch.testing.assert_close(add(x), x + gate)


def test_mul_and_add_tim_differ():
    x = torch.randn(4, 39, 32)
    outs = []
    for residual in ("mul", "add"):
        torch.manual_seed(0)
        outs.append(build_backbone("tim", in_channels=39, residual=residual).eval()(x))
    assert not torch.allclose(outs[0], outs[1])


def test_time_reversed_stream_is_used():
    torch.manual_seed(0)
    model = build_backbone("tim", in_channels=8, filters=8, levels=4).eval()
    x = torch.randn(4, 8, 32)
    before = model(x)
    with torch.no_grad():
        model.encoder.backward_blocks[2].body[0].weight.add_(0.5)
    assert not torch.allclose(model(x), before)
    # With the backward stream's weights equal to the forward ones the model computes
    # g(x) + g(flip(x)): flipping the input must not change the output. Without a real
    # time reversal (g(x) + g(x)) it would.
    enc = model.encoder
    enc.prepare_backward.load_state_dict(enc.prepare_forward.state_dict())
    enc.backward_blocks.load_state_dict(enc.forward_blocks.state_dict())
    torch.testing.assert_close(model(x), model(torch.flip(x, dims=(2,))))
    assert not torch.allclose(model(x), model(torch.roll(x, 5, dims=2)))


def test_weight_layer_is_a_weighted_sum_of_the_bidirectional_levels():
    torch.manual_seed(0)
    model = build_backbone("tim", in_channels=8, filters=8, levels=4).eval()
    x = torch.randn(4, 8, 32)
    out = model.encoder(x)
    levels = out.forward + out.backward  # [B, L, C]
    expected = (levels * model.fusion.weight[None, :, None]).sum(dim=1)
    torch.testing.assert_close(model(x), expected)
    assert model.fusion.weight.abs().max() <= 0.05  # Keras "uniform" initializer


def test_diff_items():
    torch.manual_seed(0)
    lf, lb = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    pf, pb = torch.randn(2, 3), torch.randn(2, 3)
    levels = lf + lb
    items = level_items(lf, lb, pf, pb, diff=True, bidiff=False, include_prepare=False)
    torch.testing.assert_close(items[:, :4], levels[:, 1:] - levels[:, :-1])
    torch.testing.assert_close(items[:, 4], levels[:, -1])
    with_prep = level_items(lf, lb, pf, pb, diff=True, bidiff=False, include_prepare=True)
    torch.testing.assert_close(with_prep[:, 5], pf + pb)
    bi = level_items(lf, lb, pf, pb, diff=True, bidiff=True, include_prepare=True)
    torch.testing.assert_close(bi[:, :4], lf[:, 1:] - lf[:, :-1])
    torch.testing.assert_close(bi[:, 6:10], lb[:, 1:] - lb[:, :-1])
    plain = level_items(lf, lb, pf, pb, diff=False, bidiff=False, include_prepare=False)
    torch.testing.assert_close(plain, levels)
    for bidiff in (False, True):
        for prep in (False, True):
            got = level_items(lf, lb, pf, pb, diff=True, bidiff=bidiff, include_prepare=prep).shape[1]
            assert got == count_items(5, bidiff=bidiff, include_prepare=prep)


def test_combine_stacks_adds_level_by_level():
    levels = torch.randn(2, 6, 3)
    torch.testing.assert_close(combine_stacks(levels, (3, 3), "add"), levels[:, :3] + levels[:, 3:])
    assert combine_stacks(levels, (2, 4), "concat") is levels


@pytest.mark.parametrize("kind", ["weight", "linear", "conv", "pool"])
def test_level_fusion_kinds(kind):
    fusion = LevelFusion(kind, 5, 7)
    items = torch.randn(3, 5, 7)
    assert fusion(items).shape == (3, 7)
    if kind == "pool":
        torch.testing.assert_close(fusion(items), items.mean(dim=1))


@pytest.mark.parametrize(
    "options",
    [
        dict(fusion="diff_linear", bidiff=True, diff_include_prepare=True),
        dict(fusion="diff_conv"),
        dict(fusion="diff_pool"),
        dict(fusion="diff_weight"),
        dict(fusion="linear"),
        dict(tab="bottleneck"),
        dict(prepare="none"),  # in_channels 6 != filters 8: the first TAB's skip is a 1x1 conv
        dict(prepare="conv+bn+relu", residual="add", mask_prob=0.2),
        dict(prepare="conv+bn"),
    ],
)
def test_tim_switches(options):
    torch.manual_seed(0)
    model = build_backbone("tim", in_channels=6, filters=8, levels=3, **options)
    out = model.train()(torch.randn(4, 6, 20))
    assert out.shape == (4, 8)
    out.pow(2).sum().backward()


def paired_blocks(model: TIM) -> list[bool]:
    enc = model.encoder
    return [f.pairs_with(b) for f, b in zip(enc.forward_blocks, enc.backward_blocks)]


@pytest.mark.parametrize(
    "options",
    [
        {},
        dict(dropout=0.0),
        dict(tab="bottleneck"),
        dict(prepare="none"),  # in_channels 6 != filters 8: the first TAB's skip is a 1x1 conv, paired too
        dict(prepare="conv+bn+relu", residual="add", mask_prob=0.2),
    ],
)
@pytest.mark.parametrize("training", [True, False])
def test_both_streams_in_one_pass_equal_the_streams_one_after_the_other(options, training):
    """The paired pass (TemporalAwareBlock.paired): the same output, parameter and input
    gradients, running statistics and dropout draws as the two streams one after the other."""
    torch.manual_seed(0)
    model = build_backbone("tim", in_channels=6, filters=8, levels=3, dropout=options.pop("dropout", 0.3), **options)
    with torch.no_grad():  # running statistics of their own, so that evaluation reads them
        for m in model.modules():
            if isinstance(m, SequenceBatchNorm):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    model.train(training)
    twin = copy.deepcopy(model)
    twin.encoder.pair_streams = False
    assert all(paired_blocks(model))
    x = torch.randn(5, 6, 23) * 2
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    weights = torch.randn(5, 8)
    torch.manual_seed(1)
    got = model(x1)
    (got * weights).sum().backward()
    torch.manual_seed(1)
    expected = twin(x2)
    (expected * weights).sum().backward()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-6)
    twin_params = dict(twin.named_parameters())
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, twin_params[name].grad, rtol=1e-5, atol=1e-6, msg=name)
    twin_buffers = dict(twin.named_buffers())
    for name, buffer in model.named_buffers():
        torch.testing.assert_close(buffer, twin_buffers[name], rtol=1e-5, atol=1e-6, msg=name)
    if training and model.encoder.forward_blocks[0].body[3].p > 0:  # the draws mattered: another seed differs
        torch.manual_seed(2)
        assert not torch.allclose(model(x), got)


def test_attention_blocks_run_their_streams_one_after_the_other():
    model = build_backbone("at_tim", in_channels=6, filters=8, levels=2, d_model=16, n_head=2)
    assert not any(paired_blocks(model))
    plain = build_backbone("tim", in_channels=6, filters=8, levels=2)
    plain.encoder.backward_blocks[1].body[1].momentum = None  # a cumulative average: not paired, the rest is
    assert paired_blocks(plain) == [True, False]


def test_a_hook_on_a_block_s_module_is_called_the_streams_then_run_one_after_the_other():
    model = build_backbone("tim", in_channels=6, filters=8, levels=2)
    norm = model.encoder.backward_blocks[1].body[1]
    seen = []
    handle = norm.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    assert paired_blocks(model) == [True, False]
    model(torch.randn(3, 6, 11))
    assert seen == [(8, 3, 11)]
    handle.remove()
    assert all(paired_blocks(model))


def test_paired_streams_under_vmap_draw_and_keep_each_replicas_own():
    """Two replicas stacked (torch.func, as domadapt's vmapped seeds): the paired pass gives
    each replica the output and running statistics of the streams one after the other."""
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(build_backbone("tim", in_channels=6, filters=8, levels=3, dropout=0.3).train())
    base = copy.deepcopy(models[0]).to("meta")
    x = torch.randn(2, 4, 6, 17)

    def run(pair_streams: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        base.encoder.pair_streams = pair_streams
        params, buffers = torch.func.stack_module_state(models)
        call = lambda p, b, x: torch.func.functional_call(base, (p, b), (x,))  # noqa: E731
        torch.manual_seed(3)
        return torch.func.vmap(call, randomness="different")(params, buffers, x), buffers

    got, got_buffers = run(True)
    expected, expected_buffers = run(False)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    for name, buffer in expected_buffers.items():
        torch.testing.assert_close(got_buffers[name], buffer, rtol=1e-5, atol=1e-6, msg=name)
    assert not torch.equal(got_buffers["encoder.forward_blocks.0.body.1.running_mean"], models[0].encoder.forward_blocks[0].body[1].running_mean)


@pytest.mark.parametrize("attention", ["mha", "aft_local", "aft_simple"])
def test_at_tim_attention_kinds(attention):
    torch.manual_seed(0)
    model = build_backbone(
        "at_tim", in_channels=6, filters=8, levels=2, attention=attention, d_model=16, n_head=2, aft_window=3
    )
    assert model.encoder.forward_blocks[0].attention is not None
    assert model(torch.randn(4, 6, 20)).shape == (4, 8)


def test_at_delta_tim_is_the_notes_final_choice():
    model = build_backbone("at_delta_tim", in_channels=39)
    opts = model.options
    assert (opts.attention, opts.d_model, opts.n_head) == ("mha", 128, 4)
    assert (opts.fusion, opts.residual) == ("diff_linear", "mul")
    assert model.diff and model.fusion.kind == "linear"


def test_aft_local_matches_the_explicit_formula():
    torch.manual_seed(0)
    aft = AFTLocal(5, d_model=6, window=3)
    with torch.no_grad():
        aft.rel_bias.normal_()
    x = torch.randn(2, 5, 9)
    q, k, v = aft.qkv(x.transpose(1, 2)).chunk(3, dim=-1)
    t = torch.arange(9)
    offset = t[None, :] - t[:, None]
    w = torch.where(offset.abs() < 3, aft.rel_bias[(offset + 2).clamp(0, 4)], torch.zeros(()))
    weights = torch.exp(k[:, None, :, :] + w[None, :, :, None])  # [B, T, T', d]
    y = torch.sigmoid(q) * (weights * v[:, None]).sum(2) / weights.sum(2)
    torch.testing.assert_close(aft(x), aft.proj_out(y).transpose(1, 2))


def test_aft_simple_matches_the_explicit_formula():
    torch.manual_seed(0)
    aft = AFTSimple(5, d_model=6)
    x = torch.randn(2, 5, 9)
    q, k, v = aft.qkv(x.transpose(1, 2)).chunk(3, dim=-1)
    weights = torch.exp(k)
    y = torch.sigmoid(q) * (weights * v).sum(1, keepdim=True) / weights.sum(1, keepdim=True)
    torch.testing.assert_close(aft(x), aft.proj_out(y).transpose(1, 2))


def test_time_mask_drops_whole_frames_in_training_only():
    torch.manual_seed(0)
    x = torch.randn(8, 5, 100) + 10.0
    masked = time_mask(x, 0.3, training=True)
    dropped = (masked == 0).all(dim=1)  # [B, T]
    kept = (masked == x).all(dim=1)
    assert (dropped | kept).all()
    assert 0.15 < dropped.float().mean() < 0.45
    assert time_mask(x, 0.3, training=False) is x


def test_options_are_frozen_and_keyword_only():
    opts = TIMOptions(levels=6)
    with pytest.raises(Exception):
        opts.levels = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        TIMOptions(39)  # type: ignore[misc]


@pytest.mark.parametrize(
    "name, options",
    [
        ("tim", dict(filters=16, levels=4)),
        ("at_delta_tim", dict(filters=16, levels=4, d_model=16, n_head=2)),
        ("multi_tim", dict(filters=16, num_layer=[2, 2])),
        ("transformer_delta_tim", dict(filters=16, levels=4, d_model=16, n_head=2, dim_feedforward=32)),
    ],
)
def test_learns_a_tiny_two_class_problem(name, options):
    torch.manual_seed(0)
    y = torch.arange(64) % 2
    x = torch.randn(64, 8, 32) + 0.5 * y[:, None, None].float()  # class 1 shifts the mean
    backbone = build_backbone(name, in_channels=8, **options)
    model = nn.Sequential(backbone, nn.Linear(backbone.out_dim, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            return nn.functional.cross_entropy(model(x), y).item()

    losses = [eval_loss()]
    for _ in range(10):
        model.train()
        for i in range(0, 64, 16):
            loss = nn.functional.cross_entropy(model(x[i : i + 16]), y[i : i + 16])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        losses.append(eval_loss())
    assert losses[-1] < 0.6 * losses[0], losses
    assert min(losses[-3:]) < min(losses[:3]), losses
