"""The contract every registered backbone keeps: [B, F, T] -> [B, out_dim], by name."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from domadapt.errors import DomadaptError
from domadapt.models import BACKBONE_DOCS, BACKBONES, backbone_options, build_backbone, list_backbones

B, F = 4, 8

# Small widths keep the contract tests fast; each backbone's defaults are built once below.
SMALL: dict[str, dict] = {
    "tim": dict(filters=8, levels=3),
    "delta_tim": dict(filters=8, levels=3),
    "at_tim": dict(filters=8, levels=3, d_model=16, n_head=2),
    "at_delta_tim": dict(filters=8, levels=3, d_model=16, n_head=2),
    "multi_tim": dict(filters=8, num_layer=[2, 2]),
    "transformer_tim": dict(filters=8, levels=3, d_model=16, n_head=2, dim_feedforward=32),
    "transformer_delta_tim": dict(filters=8, levels=3, d_model=16, n_head=2, dim_feedforward=32),
    "set": dict(d_model=16, n_head=2, dim_feedforward=32),
    "tcn": dict(filters=8, levels=3),
    "mlp": dict(hidden=[8, 8], dropout=0.1),
}

NAMES = list_backbones()


def no_randomness(name: str) -> dict:
    """Every dropout of ``name`` at 0 and masking off."""
    return {
        key: 0.0
        for key in backbone_options(name)
        if key.endswith("dropout") or key == "mask_prob"
    }


def build(name: str, **extra) -> torch.nn.Module:
    return build_backbone(name, in_channels=F, **{**SMALL[name], **extra})


def test_registry_is_complete_and_documented():
    assert set(SMALL) == set(BACKBONES) == set(BACKBONE_DOCS)
    assert NAMES == sorted(BACKBONES)
    for name, cls in BACKBONES.items():
        assert cls.__doc__ and name in cls.__doc__, name
        assert dataclasses.is_dataclass(cls.Options)
        assert cls.Options.__dataclass_params__.frozen
        assert "\n" not in BACKBONE_DOCS[name]


@pytest.mark.parametrize("name", NAMES)
def test_default_configuration_output_shape(name):
    torch.manual_seed(0)
    model = build_backbone(name, in_channels=39)
    out = model(torch.randn(B, 39, 32))
    assert isinstance(model.out_dim, int)
    assert out.shape == (B, model.out_dim)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_input_and_every_parameter(name):
    torch.manual_seed(0)
    model = build(name, **no_randomness(name)).train()
    x = torch.randn(B, F, 32, requires_grad=True)
    out = model(x)
    # A random projection, not out.sum(): a plain sum can cancel through BatchNorm.
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_model_and_output(name):
    x = torch.randn(B, F, 32)

    def run() -> torch.Tensor:
        torch.manual_seed(123)
        model = build(name, mask_prob=0.2) if "mask_prob" in backbone_options(name) else build(name)
        return model.train()(x)  # dropout and masking draw from the seeded generator

    torch.testing.assert_close(run(), run(), rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_randomness_only_in_training_with_dropout_or_masking(name):
    torch.manual_seed(0)
    x = torch.randn(B, F, 32)
    quiet = build(name, **no_randomness(name))
    # BatchNorm makes train and eval outputs differ; what must hold is that a forward
    # pass is random only in training mode and only when dropout or masking is on.
    torch.testing.assert_close(quiet.train()(x), quiet(x), rtol=0, atol=0)
    noisy = build(name, **{k: 0.5 for k in no_randomness(name)})
    assert not torch.equal(noisy.train()(x), noisy(x))
    noisy.eval()
    torch.testing.assert_close(noisy(x), noisy(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_any_time_length(name):
    torch.manual_seed(0)
    model = build(name).eval()
    for t in (32, 45, 7):
        assert model(torch.randn(B, F, t)).shape == (B, model.out_dim)
    assert model.train()(torch.randn(2, F, 64)).shape == (2, model.out_dim)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(DomadaptError) as err:
        build_backbone("timnet", in_channels=39)
    for name in NAMES:
        assert name in str(err.value)


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(DomadaptError) as err:
        build_backbone("tim", in_channels=39, filter=39)
    message = str(err.value)
    assert "filter" in message
    for key in backbone_options("tim"):
        assert key in message


@pytest.mark.parametrize(
    "options",
    [
        dict(residual="multiply"),
        dict(prepare="bn"),
        dict(fusion="diff"),
        dict(filters="39"),
        dict(levels=2.5),
        dict(dropout=1.0),
        dict(bidiff=True),  # needs a diff_* fusion
        dict(diff_include_prepare=True, prepare="none"),  # in_channels 39 != filters 16
    ],
)
def test_bad_option_values_are_domadapt_errors(options):
    with pytest.raises(DomadaptError):
        build_backbone("tim", in_channels=39, **{"filters": 16, **options})


def test_bad_values_of_other_backbones():
    with pytest.raises(DomadaptError, match="n_head"):
        build_backbone("at_tim", in_channels=39, d_model=30, n_head=4)
    with pytest.raises(DomadaptError, match="num_layer"):
        build_backbone("multi_tim", in_channels=39, num_layer=[3, 4])
    with pytest.raises(DomadaptError, match="activation"):
        build_backbone("set", in_channels=39, activation="tanh")


def test_toml_values_are_accepted():
    model = build_backbone(
        "multi_tim", in_channels=F, filters=8, num_layer=[3, 4], combine="concat", dropout=0
    )
    assert model.options.num_layer == (3, 4)
    assert isinstance(model.options.dropout, float)
    assert model(torch.randn(2, F, 16)).shape == (2, 8)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_runs_on_cuda(name):
    torch.manual_seed(0)
    model = build(name, mask_prob=0.2) if "mask_prob" in backbone_options(name) else build(name)
    model = model.cuda().train()
    x = torch.randn(B, F, 40, device="cuda", requires_grad=True)
    out = model(x)
    out.sum().backward()
    assert out.device.type == "cuda" and x.grad is not None
    assert model.eval()(x).shape == (B, model.out_dim)
