"""The contract every registered alignment loss keeps, run over the whole registry.

Tolerance on identical batches: |loss| ≤ 1e-5, except ``mmd`` and ``jmmd``, whose quadratic
estimator (pytorch-adapt's, the same as TLlib's DAN and JAN) excludes the within-domain
diagonals but not the cross-domain one and so gives exactly 2(k̄ − 1)/N ∈ [−2/N, 0] on
identical batches.
"""

from __future__ import annotations

import copy
import inspect

import pytest
import torch

from domadapt.align import LOSSES, AlignmentLoss, build_loss, list_losses
from domadapt.errors import DomadaptError

N, M, D, K = 24, 16, 8, 3
NAMES = list_losses()
DIVERGENCES = [n for n in NAMES if LOSSES[n].is_divergence]
IDENTICAL_TOL = {"mmd": 2.0 / N, "jmmd": 2.0 / N}  # see the module docstring
DEFAULT_IDENTICAL_TOL = 1e-5
# CORAL and HoMM compare centred moments only: a pure mean shift leaves them at 0 by design
# (test_losses checks that), so they are shifted in scale instead.
SECOND_ORDER_ONLY = {"coral", "homm"}


def make(name: str) -> AlignmentLoss:
    torch.manual_seed(0)  # DANN's discriminator initialisation
    loss = build_loss(name, feature_dim=D, num_classes=K)
    loss.set_progress(1.0)  # what the trainer does every step
    return loss


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _head() -> torch.Tensor:
    return torch.randn(D, K, generator=_gen(99))


def inputs(f_s: torch.Tensor, f_t: torch.Tensor, *, y_t: torch.Tensor | None = None) -> dict:
    """Features plus the full context, every float tensor a leaf that records gradients."""
    w = _head()
    return {
        "f_s": f_s.detach().clone().requires_grad_(True),
        "f_t": f_t.detach().clone().requires_grad_(True),
        "y_s": torch.arange(f_s.shape[0]) % K,
        "y_t": y_t,
        "logits_s": (f_s @ w).detach().requires_grad_(True),
        "logits_t": (f_t @ w).detach().requires_grad_(True),
    }


def call(loss: AlignmentLoss, x: dict) -> torch.Tensor:
    return loss(x["f_s"], x["f_t"], **{k: v for k, v in x.items() if k not in ("f_s", "f_t")})


def identical() -> dict:
    f = torch.randn(N, D, generator=_gen(1))
    x = inputs(f, f)
    x["y_t"] = x["y_s"]  # same labels too: a class-conditional divergence is then 0
    return x


def shifted(name: str, shift: float) -> dict:
    f_s = torch.randn(N, D, generator=_gen(1))
    base_t = torch.randn(M, D, generator=_gen(2))  # independent of f_s; the same for every shift
    f_t = base_t * (1.0 + shift) if name in SECOND_ORDER_ONLY else base_t + shift
    return inputs(f_s, f_t)


# -- the registry -----------------------------------------------------------------------
def test_registry_lists_every_loss_sorted():
    assert NAMES == sorted(LOSSES) and len(NAMES) >= 9
    expected = {"mmd", "mmd_linear", "lmmd", "coral", "dann", "sinkhorn", "energy", "entropy", "im",
                "mcc", "bnm", "homm", "jmmd", "cdan", "cdan_e", "mdd"}
    assert expected <= set(NAMES)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(DomadaptError) as err:
        build_loss("wasserstein", feature_dim=D)
    for name in NAMES:
        assert name in str(err.value)


def test_unknown_option_lists_the_valid_ones():
    expected = r"unknown option\(s\) bluur.*valid options: normalize, p, blur, scaling"
    with pytest.raises(DomadaptError, match=expected):
        build_loss("sinkhorn", feature_dim=D, bluur=0.1)
    with pytest.raises(DomadaptError, match=r"valid options: normalize$"):
        build_loss("coral", feature_dim=D, foo=1)
    with pytest.raises(DomadaptError, match=r"valid options: \(none\)"):
        build_loss("entropy", feature_dim=D, foo=1)


def test_options_reach_the_loss_and_num_classes_is_required_where_needed():
    assert build_loss("sinkhorn", feature_dim=D, blur=0.2, p=1).blur == 0.2
    assert build_loss("dann", feature_dim=5, hidden_dim=32).discriminator[0].weight.shape == (32, 5)
    with pytest.raises(DomadaptError, match="needs num_classes"):
        build_loss("lmmd", feature_dim=D)


@pytest.mark.parametrize("name", NAMES)
def test_class_is_documented_alignment_loss(name):
    cls = LOSSES[name]
    assert issubclass(cls, AlignmentLoss)
    doc = inspect.getdoc(cls) or ""
    for section in ("Shape:", "Example::"):
        assert section in doc, f"{cls.__name__} docstring lacks {section}"
    assert "et al." in doc or "&" in doc  # cites its paper


# -- the contract -----------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_scalar_finite_deterministic_with_unequal_batches(name):
    loss = make(name)
    x = shifted(name, 0.5)
    assert x["f_s"].shape[0] == N != x["f_t"].shape[0] == M
    first, second = call(loss, x), call(loss, x)
    assert first.shape == () and first.device.type == "cpu"
    assert torch.isfinite(first)
    assert torch.equal(first, second)


@pytest.mark.parametrize("name", NAMES)
def test_forward_with_stats_returns_the_same_value_and_detached_scalars(name):
    loss = make(name)
    x = shifted(name, 0.5)
    value, stats = loss.forward_with_stats(
        x["f_s"], x["f_t"], y_s=x["y_s"], logits_s=x["logits_s"], logits_t=x["logits_t"]
    )
    assert torch.equal(value, call(loss, x))
    assert isinstance(stats, dict)
    for key, stat in stats.items():
        assert isinstance(key, str) and stat.shape == () and not stat.requires_grad


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_used_inputs_only(name):
    loss = make(name)
    x = shifted(name, 0.5)
    call(loss, x).backward()
    used = LOSSES[name].uses
    targets = ["f_s", "f_t"] if {"f_s", "f_t"} <= used else ["logits_t"]
    for arg in targets:
        grad = x[arg].grad
        assert grad is not None, f"no gradient reached {arg}"
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0, f"zero gradient at {arg}"
    for arg in ("f_s", "f_t", "logits_s", "logits_t"):
        if arg not in used:
            grad = x[arg].grad
            assert grad is None or not grad.any(), f"{arg} is unused yet got a gradient"


@pytest.mark.parametrize("name", NAMES)
def test_has_parameters_matches_parameters(name):
    loss = make(name)
    assert loss.has_parameters == bool(list(loss.parameters()))


@pytest.mark.parametrize("name", DIVERGENCES)
def test_divergence_is_zero_on_identical_batches(name):
    value = call(make(name), identical()).item()
    assert abs(value) <= IDENTICAL_TOL.get(name, DEFAULT_IDENTICAL_TOL), value


@pytest.mark.parametrize("name", DIVERGENCES)
def test_divergence_grows_with_the_shift(name):
    loss = make(name)
    same = call(loss, identical()).item()
    near = call(loss, shifted(name, 0.5)).item()
    far = call(loss, shifted(name, 2.0)).item()
    assert far > near > same, (far, near, same)


NORMALIZED = [n for n in NAMES if "normalize" in LOSSES.options(n)]


def test_every_distance_loss_normalizes_by_default():
    expected = {"mmd", "mmd_linear", "lmmd", "coral", "sinkhorn", "energy", "homm", "jmmd"}
    assert expected <= set(NORMALIZED)
    assert all(LOSSES.options(n)["normalize"] == "standardize" for n in NORMALIZED)


@pytest.mark.parametrize("normalize", ["none", "standardize", "l2"])
@pytest.mark.parametrize("name", NORMALIZED)
def test_contract_holds_for_every_normalize_mode(name, normalize):
    torch.manual_seed(0)
    loss = build_loss(name, feature_dim=D, num_classes=K, normalize=normalize)
    loss.set_progress(1.0)
    value = call(loss, identical()).item()
    assert abs(value) <= IDENTICAL_TOL.get(name, DEFAULT_IDENTICAL_TOL), value
    x = shifted(name, 0.5)
    if normalize == "l2" and name in SECOND_ORDER_ONLY:  # unit rows erase a pure scale shift
        x = inputs(x["f_s"], x["f_t"] + 0.5)
    out = call(loss, x)
    assert out.shape == () and torch.isfinite(out) and out.item() > value
    out.backward()
    for arg in ("f_s", "f_t"):
        grad = x[arg].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, arg


@pytest.mark.parametrize("name", NAMES)
def test_half_precision_inputs_are_computed_in_float32(name):
    loss = make(name)
    x = shifted(name, 0.5)
    for arg in ("f_s", "f_t", "logits_s", "logits_t"):
        x[arg] = x[arg].detach().to(torch.bfloat16)
    value = call(loss, x)
    assert value.dtype == torch.float32 and torch.isfinite(value)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_gives_the_same_value(name):
    loss = make(name)
    x = shifted(name, 0.5)
    clone = copy.deepcopy(loss)
    torch.manual_seed(123)  # a differently initialised twin, then loaded
    twin = build_loss(name, feature_dim=D, num_classes=K)
    twin.set_progress(1.0)
    twin.load_state_dict(loss.state_dict())
    assert torch.equal(call(twin, x), call(loss, x))
    assert torch.equal(call(clone, x), call(loss, x))


@pytest.mark.parametrize("name", NAMES)
def test_missing_context_is_a_domadapt_error_or_not_needed(name):
    loss = make(name)
    x = shifted(name, 0.5)
    try:
        value = loss(x["f_s"], x["f_t"])
    except DomadaptError as err:
        assert "needs" in str(err)
    else:
        assert torch.isfinite(value)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "f_s, f_t, message",
    [
        (torch.randn(N), torch.randn(M, D), "shape"),
        (torch.randn(N, D), torch.randn(M, D + 1), "same feature dimension"),
        (torch.randint(0, 3, (N, D)), torch.randn(M, D), "floating point"),
        (torch.randn(1, D), torch.randn(1, D), None),  # tiny batches: a value or a clear error
    ],
)
def test_bad_features_raise_domadapt_error(name, f_s, f_t, message):
    loss = make(name)
    context = {
        "y_s": torch.zeros(f_s.shape[0], dtype=torch.long),
        "logits_s": torch.randn(len(f_s), K),
        "logits_t": torch.randn(len(f_t), K),
    }
    if message is None:
        try:
            assert torch.isfinite(loss(f_s, f_t, **context))
        except DomadaptError as err:
            assert "at least" in str(err)
        return
    with pytest.raises(DomadaptError, match=message):
        loss(f_s, f_t, **context)


@pytest.mark.parametrize("name", NAMES)
def test_set_progress_validates_its_argument(name):
    loss = make(name)
    for bad in (-0.1, 1.5, float("nan"), "half"):
        with pytest.raises(DomadaptError, match="progress"):
            loss.set_progress(bad)
