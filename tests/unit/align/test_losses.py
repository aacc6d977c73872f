"""Each alignment loss against the library it wraps or a direct formula, on the same inputs.

References are written independently here (numpy or explicit loops), in float64. The
distance losses are checked against their references with ``normalize="none"`` (the
published losses on raw features); the ``normalize`` options are checked at the end: each
equals ``"none"`` on the inputs normalised by hand, and ``"standardize"`` is scale-free.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from geomloss import SamplesLoss

from domadapt.align import (
    CORALLoss,
    DomainAdversarialLoss,
    EnergyLoss,
    EntropyLoss,
    InformationMaximizationLoss,
    LinearMMDLoss,
    LMMDLoss,
    MMDLoss,
    SinkhornLoss,
)
from domadapt.errors import DomadaptError

SCALES = 2.0 ** np.linspace(-3, 3, 5)  # get_kernel_scales(-3, 3, 5), our default


def _batches(n=24, m=16, d=6, shift=0.7, seed=0):
    g = torch.Generator().manual_seed(seed)
    f_s = torch.randn(n, d, generator=g, dtype=torch.float64)
    f_t = 1.3 * torch.randn(m, d, generator=g, dtype=torch.float64) + shift
    return f_s, f_t


# -- MMD ------------------------------------------------------------------------------
def _sqdist(a, b):
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


def _lower_median(x):
    # torch.median returns the lower of the two middle values (np.median would average).
    flat = np.sort(x.ravel())
    return flat[(flat.size - 1) // 2]


def _kernels(s, t, scales=SCALES, bandwidth=None):
    """Multi-kernel Gaussian Gram matrices with pytorch-adapt's bandwidth rule."""
    d_ss, d_tt, d_st = _sqdist(s, s), _sqdist(t, t), _sqdist(s, t)
    b = _lower_median(d_ss) if bandwidth is None else bandwidth  # source-only, diagonal included

    def k(d2):
        return np.mean([np.exp(-d2 * c / b) for c in scales], axis=0)

    return k(d_ss), k(d_tt), k(d_st)


def _mmd_quadratic_ref(s, t, **kw):
    k_ss, k_tt, k_st = _kernels(s, t, **kw)
    n, m = len(s), len(t)
    off = lambda k: (k.sum() - np.trace(k))  # noqa: E731
    return off(k_ss) / (n * (n - 1)) + off(k_tt) / (m * (m - 1)) - 2 * k_st.mean()


def test_mmd_matches_direct_multi_kernel_formula():
    f_s, f_t = _batches()
    got = MMDLoss(options=MMDLoss.Options(normalize="none"))(f_s, f_t).item()
    assert got == pytest.approx(_mmd_quadratic_ref(f_s.numpy(), f_t.numpy()), rel=1e-9, abs=1e-12)


def test_mmd_options_reach_the_kernel():
    f_s, f_t = _batches(seed=1)
    loss = MMDLoss(options=MMDLoss.Options(kernel_low=-1, kernel_high=2, num_kernels=4, kernel_base=3.0, bandwidth=5.0, normalize="none"))
    ref = _mmd_quadratic_ref(
        f_s.numpy(), f_t.numpy(), scales=3.0 ** np.linspace(-1, 2, 4), bandwidth=5.0
    )
    assert loss(f_s, f_t).item() == pytest.approx(ref, rel=1e-9)


def test_mmd_identical_batches_value_is_the_documented_offset():
    f_s, _ = _batches()
    k_ss, _, _ = _kernels(f_s.numpy(), f_s.numpy())
    n = len(f_s)
    k_bar = (k_ss.sum() - n) / (n * (n - 1))
    got = MMDLoss(options=MMDLoss.Options(normalize="none"))(f_s, f_s.clone()).item()
    assert got == pytest.approx(2 * (k_bar - 1) / n, rel=1e-9)
    assert -2 / n <= got <= 0


def test_mmd_linear_truncates_and_matches_pairwise_formula():
    f_s, f_t = _batches(n=24, m=17)
    b = 17
    s, t = f_s.numpy()[:b], f_t.numpy()[:b]
    k_ss, k_tt, k_st = _kernels(s, t)  # bandwidth from the truncated source batch
    pairs = [(2 * i, 2 * i + 1) for i in range(b // 2)]
    total = sum(k_ss[i, j] + k_tt[i, j] - k_st[i, j] - k_st[j, i] for i, j in pairs)
    assert LinearMMDLoss(options=LinearMMDLoss.Options(normalize="none"))(f_s, f_t).item() == pytest.approx(
        total / (b // 2), rel=1e-9)


def test_mmd_bandwidth_is_source_only():
    f_s, f_t = _batches()
    loss = MMDLoss(options=MMDLoss.Options(normalize="none"))
    assert loss(f_s, f_t).item() != pytest.approx(loss(f_t, f_s).item())


# -- LMMD -----------------------------------------------------------------------------
def _lmmd_loop_ref(s, t, y_s, p_t, t_labels, num_classes):
    """Plain loops: for each shared class, ‖Σ_i ws_i φ(s_i) − Σ_j wt_j φ(t_j)‖²."""
    k_ss, k_tt, k_st = _kernels(s, t)
    in_s, in_t = set(y_s.tolist()), set(t_labels.tolist())
    shared = [c for c in range(num_classes) if c in in_s and c in in_t]
    total = 0.0
    for c in shared:
        ws = [(1.0 if y_s[i] == c else 0.0) for i in range(len(s))]
        ns = sum(ws)
        ws = [w / ns for w in ws]
        pc = [p_t[j][c] for j in range(len(t))]
        wt = [p / sum(pc) for p in pc]
        for i in range(len(s)):
            for i2 in range(len(s)):
                total += ws[i] * ws[i2] * k_ss[i, i2]
        for j in range(len(t)):
            for j2 in range(len(t)):
                total += wt[j] * wt[j2] * k_tt[j, j2]
        for i in range(len(s)):
            for j in range(len(t)):
                total -= 2 * ws[i] * wt[j] * k_st[i, j]
    return total / max(len(shared), 1)


def test_lmmd_with_soft_pseudo_labels_matches_loop_reference():
    f_s, f_t = _batches(n=20, m=14)
    g = torch.Generator().manual_seed(3)
    k = 4
    y_s = torch.randint(0, 3, (20,), generator=g)  # class 3 absent from the source
    logits_t = 2 * torch.randn(14, k, generator=g, dtype=torch.float64)
    p_t = torch.softmax(logits_t, 1).numpy()
    ref = _lmmd_loop_ref(f_s.numpy(), f_t.numpy(), y_s.numpy(), p_t, p_t.argmax(1), k)
    got = LMMDLoss(num_classes=k, options=LMMDLoss.Options(normalize="none"))(f_s, f_t, y_s=y_s, logits_t=logits_t)
    assert got.item() == pytest.approx(ref, rel=1e-9)


def test_lmmd_with_target_labels_matches_loop_reference_and_ignores_logits():
    f_s, f_t = _batches(n=20, m=14, seed=4)
    g = torch.Generator().manual_seed(5)
    y_s, y_t = torch.randint(0, 3, (20,), generator=g), torch.randint(0, 3, (14,), generator=g)
    p_t = np.eye(3)[y_t.numpy()]
    ref = _lmmd_loop_ref(f_s.numpy(), f_t.numpy(), y_s.numpy(), p_t, y_t.numpy(), 3)
    loss = LMMDLoss(num_classes=3, options=LMMDLoss.Options(normalize="none"))
    got = loss(f_s, f_t, y_s=y_s, y_t=y_t, logits_t=torch.randn(14, 3, dtype=torch.float64))
    assert got.item() == pytest.approx(ref, rel=1e-9)


def test_lmmd_with_one_class_is_biased_mmd():
    f_s, f_t = _batches()
    k_ss, k_tt, k_st = _kernels(f_s.numpy(), f_t.numpy())
    biased = k_ss.mean() + k_tt.mean() - 2 * k_st.mean()
    got = LMMDLoss(num_classes=1, options=LMMDLoss.Options(normalize="none"))(
        f_s, f_t, y_s=torch.zeros(24, dtype=torch.long), y_t=torch.zeros(16, dtype=torch.long)
    )
    assert got.item() == pytest.approx(biased, rel=1e-9)


def test_lmmd_no_gradient_through_pseudo_label_weights():
    f_s, f_t = _batches()
    logits_t = torch.randn(16, 3, dtype=torch.float64, requires_grad=True)
    f_t.requires_grad_(True)
    LMMDLoss(num_classes=3)(f_s, f_t, y_s=torch.arange(24) % 3, logits_t=logits_t).backward()
    assert logits_t.grad is None and f_t.grad.abs().sum() > 0


def test_lmmd_no_shared_class_gives_zero():
    f_s, f_t = _batches()
    y_s, y_t = torch.zeros(24, dtype=torch.long), torch.ones(16, dtype=torch.long)
    assert LMMDLoss(num_classes=2)(f_s, f_t, y_s=y_s, y_t=y_t).item() == 0.0


@pytest.mark.parametrize(
    "context, message",
    [
        ({}, "y_s"),
        ({"y_s": torch.zeros(24, dtype=torch.long)}, "logits_t or y_t"),
        ({"y_s": torch.full((24,), 5), "y_t": torch.zeros(16, dtype=torch.long)}, r"\[0, 3\)"),
        (
            {"y_s": torch.zeros(24, dtype=torch.long), "logits_t": torch.randn(16, 4)},
            "num_classes=3",
        ),
    ],
)
def test_lmmd_missing_or_bad_context_raises(context, message):
    f_s, f_t = _batches()
    with pytest.raises(DomadaptError, match=message):
        LMMDLoss(num_classes=3)(f_s, f_t, **context)


# -- CORAL ----------------------------------------------------------------------------
def test_coral_matches_np_cov_formula():
    f_s, f_t = _batches(d=7)
    c_s, c_t = np.cov(f_s.numpy(), rowvar=False), np.cov(f_t.numpy(), rowvar=False)
    ref = np.sum((c_s - c_t) ** 2) / (4 * 7**2)
    assert CORALLoss(options=CORALLoss.Options(normalize="none"))(f_s, f_t).item() == pytest.approx(ref, rel=1e-9)


def test_coral_is_blind_to_a_pure_mean_shift():
    f_s, _ = _batches()
    for normalize in ("none", "standardize"):  # one affine map for both: still blind
        assert CORALLoss(options=CORALLoss.Options(normalize=normalize))(f_s, f_s + 3.0).item() == pytest.approx(
            0.0, abs=1e-10)


# -- Sinkhorn / energy ----------------------------------------------------------------
def test_energy_matches_direct_formula_with_geomloss_half_convention():
    f_s, f_t = _batches()
    s, t = f_s.numpy(), f_t.numpy()
    dist = lambda a, b: np.sqrt(_sqdist(a, b))  # noqa: E731
    energy_distance = 2 * dist(s, t).mean() - dist(s, s).mean() - dist(t, t).mean()
    # geomloss = ½ · energy distance, minus ½·1e-4·(1/N + 1/M) from its distance clamp.
    got = EnergyLoss(options=EnergyLoss.Options(normalize="none"))(f_s, f_t).item()
    assert got == pytest.approx(0.5 * energy_distance, abs=1e-5)


def test_energy_gradient_matches_autograd_of_direct_formula():
    f_s, f_t = _batches()
    f_s.requires_grad_(True)
    EnergyLoss(options=EnergyLoss.Options(normalize="none"))(f_s, f_t).backward()
    got = f_s.grad.clone()
    f_s.grad = None

    def dist(a, b):
        d2 = ((a[:, None] - b[None]) ** 2).sum(-1)
        return torch.sqrt(d2.clamp_min(1e-8))

    ref = dist(f_s, f_t).mean() - 0.5 * dist(f_s, f_s).mean() - 0.5 * dist(f_t, f_t).mean()
    ref.backward()
    torch.testing.assert_close(got, f_s.grad, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("p, blur, scaling", [(2, 0.05, 0.5), (1, 0.2, 0.8)])
def test_sinkhorn_matches_geomloss_called_directly(p, blur, scaling):
    f_s, f_t = _batches()
    direct = SamplesLoss("sinkhorn", p=p, blur=blur, scaling=scaling, backend="tensorized")
    got = SinkhornLoss(options=SinkhornLoss.Options(p=p, blur=blur, scaling=scaling, normalize="none"))(f_s, f_t)
    assert got.item() == pytest.approx(direct(f_s, f_t).item(), rel=1e-12)


def test_sinkhorn_small_blur_approaches_exact_ot():
    g = torch.Generator().manual_seed(7)
    s = torch.randn(5, 2, generator=g, dtype=torch.float64)
    t = torch.randn(5, 2, generator=g, dtype=torch.float64)
    t[:, 0] += 2.0
    cost = (_sqdist(s.numpy(), t.numpy()) / 2)  # geomloss's p=2 cost: ½‖x−y‖²
    exact = min(
        np.mean([cost[i, j] for i, j in enumerate(perm)])
        for perm in itertools.permutations(range(5))
    )
    got = SinkhornLoss(options=SinkhornLoss.Options(blur=1e-3, scaling=0.9, normalize="none"))(s, t).item()
    assert got == pytest.approx(exact, rel=1e-3)


# -- normalize (the distance losses) -------------------------------------------------
DISTANCE_LOSSES = {
    "mmd": lambda **kw: MMDLoss(options=MMDLoss.Options(**kw)),
    "mmd_linear": lambda **kw: LinearMMDLoss(options=LinearMMDLoss.Options(**kw)),
    "lmmd": lambda **kw: LMMDLoss(num_classes=3, options=LMMDLoss.Options(**kw)),
    "coral": lambda **kw: CORALLoss(options=CORALLoss.Options(**kw)),
    "sinkhorn": lambda **kw: SinkhornLoss(options=SinkhornLoss.Options(**kw)),
    "energy": lambda **kw: EnergyLoss(options=EnergyLoss.Options(**kw)),
}


def _labels(f_s, f_t):
    return {"y_s": torch.arange(len(f_s)) % 3, "y_t": torch.arange(len(f_t)) % 3}


def _value(name, f_s, f_t, **kw):
    return DISTANCE_LOSSES[name](**kw)(f_s, f_t, **_labels(f_s, f_t))


def _standardized_by_hand(s, t):
    pooled = np.concatenate([s, t])
    var = pooled.var(0)  # biased, over both batches
    scale = 1 / np.sqrt(var + 1e-4 * var.mean())
    return (s - pooled.mean(0)) * scale, (t - pooled.mean(0)) * scale


@pytest.mark.parametrize("name", DISTANCE_LOSSES)
def test_default_normalize_is_pooled_standardization(name):
    f_s, f_t = _batches()
    if name == "mmd_linear":  # truncated first: the statistics are those of the rows compared
        f_s = f_s[:16]
    assert DISTANCE_LOSSES[name]().normalize == "standardize"
    s, t = _standardized_by_hand(f_s.numpy(), f_t.numpy())
    ref = _value(name, torch.from_numpy(s), torch.from_numpy(t), normalize="none")
    assert _value(name, f_s, f_t).item() == pytest.approx(ref.item(), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", DISTANCE_LOSSES)
def test_l2_normalize_is_unit_rows(name):
    f_s, f_t = _batches()
    unit = lambda x: x / x.norm(dim=1, keepdim=True)  # noqa: E731
    ref = _value(name, unit(f_s), unit(f_t), normalize="none")
    assert _value(name, f_s, f_t, normalize="l2").item() == pytest.approx(
        ref.item(), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", DISTANCE_LOSSES)
def test_standardize_is_invariant_to_a_tiny_feature_scale_and_clearly_nonzero(name):
    # TIM's features have a std of ~0.002 at initialisation: scale both batches by 1e-3.
    f_s, f_t = _batches()
    value = _value(name, f_s, f_t).item()
    assert _value(name, 1e-3 * f_s, 1e-3 * f_t).item() == pytest.approx(value, rel=1e-6)
    small32 = _value(name, 1e-3 * f_s.float(), 1e-3 * f_t.float())
    assert small32.dtype == torch.float32
    assert small32.item() == pytest.approx(value, rel=1e-3)
    same = _value(name, f_s, f_s.clone()).item()  # 0, or MMD's documented -2/N offset
    assert value > 0.03 and value - same > 0.03  # clearly non-zero for shifted batches


def test_without_normalize_coral_and_sinkhorn_vanish_at_a_tiny_scale():
    # What the option fixes (issue #13): raw CORAL scales with scale^4, Sinkhorn with ^2.
    f_s, f_t = (1e-3 * x for x in _batches())
    assert _value("coral", f_s, f_t, normalize="none").item() < 1e-11
    assert _value("sinkhorn", f_s, f_t, normalize="none").item() < 1e-5
    assert _value("coral", f_s, f_t).item() > 0.03
    assert _value("sinkhorn", f_s, f_t).item() > 1.0


@pytest.mark.parametrize("name", DISTANCE_LOSSES)
def test_standardize_gradient_has_no_pull_on_the_feature_scale(name):
    # The pooled statistics are not detached: the loss is invariant to scaling the features,
    # so its gradient scales as 1/c and is orthogonal to the scaling direction (shrinking
    # the features cannot lower it).
    f_s, f_t = _batches()

    def grads(c):
        s, t = (c * f_s).requires_grad_(True), (c * f_t).requires_grad_(True)
        _value(name, s, t).backward()
        return s.grad, t.grad

    g_s, g_t = grads(1.0)
    small_s, small_t = grads(1e-3)
    torch.testing.assert_close(1e-3 * small_s, g_s, rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(1e-3 * small_t, g_t, rtol=1e-5, atol=1e-9)
    radial = (f_s * g_s).sum() + (f_t * g_t).sum()
    assert abs(radial.item()) < 1e-6 * (g_s.norm() + g_t.norm()).item() * f_s.norm().item()
    assert g_s.abs().sum() > 0 and g_t.abs().sum() > 0


@pytest.mark.parametrize("name", DISTANCE_LOSSES)
def test_normalize_stat_and_bad_value(name):
    f_s, f_t = _batches()
    _, stats = DISTANCE_LOSSES[name]().forward_with_stats(f_s, f_t, **_labels(f_s, f_t))
    if name == "mmd_linear":
        f_s = f_s[:16]
    raw = torch.cat([f_s, f_t]).std(0, unbiased=False).mean()
    assert stats["feature_std"].item() == pytest.approx(raw.item(), rel=1e-9)
    with pytest.raises(DomadaptError, match="normalize = 'zscore': expected one of none, standardize, l2"):
        DISTANCE_LOSSES[name](normalize="zscore")


# -- entropy / IM ---------------------------------------------------------------------
def _entropy_rows(logits):
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return -(p * np.log(p)).sum(1), p


def test_entropy_matches_formula_and_ignores_features():
    logits = 3 * torch.randn(16, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    h, _ = _entropy_rows(logits.numpy())
    f = torch.zeros(16, 5)
    assert EntropyLoss()(f, f, logits_t=logits).item() == pytest.approx(h.mean(), rel=1e-9)


def test_information_maximization_matches_formula():
    logits = 3 * torch.randn(16, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    h, p = _entropy_rows(logits.numpy())
    p_bar = p.mean(0)
    h_bar = -(p_bar * np.log(p_bar)).sum()
    f = torch.zeros(16, 5)
    loss, stats = InformationMaximizationLoss().forward_with_stats(f, f, logits_t=logits)
    assert loss.item() == pytest.approx(h.mean() - h_bar, rel=1e-6)
    assert stats["entropy"].item() == pytest.approx(h.mean(), rel=1e-9)
    assert stats["diversity"].item() == pytest.approx(h_bar, rel=1e-6)
    half = InformationMaximizationLoss(options=InformationMaximizationLoss.Options(diversity_weight=0.5))(f, f, logits_t=logits)
    assert half.item() == pytest.approx(h.mean() - 0.5 * h_bar, rel=1e-6)
    assert -math.log(4) <= loss.item() <= 0


@pytest.mark.parametrize("cls", [EntropyLoss, InformationMaximizationLoss])
def test_prediction_losses_need_logits_t(cls):
    f = torch.zeros(3, 5)
    with pytest.raises(DomadaptError, match="logits_t"):
        cls()(f, f, logits_s=torch.randn(3, 2))


# -- DANN -----------------------------------------------------------------------------
def _dann(**kw):
    torch.manual_seed(0)
    return DomainAdversarialLoss(feature_dim=6, options=DomainAdversarialLoss.Options(**kw))


def test_dann_matches_bce_formula_with_source_label_one():
    loss = _dann(grl_schedule="constant")
    f_s, f_t = _batches()
    f_s, f_t = f_s.float(), f_t.float()
    with torch.no_grad():
        z_s, z_t = loss.discriminator(f_s).squeeze(1), loss.discriminator(f_t).squeeze(1)
    sig = lambda z: 1 / (1 + np.exp(-z.numpy().astype(np.float64)))  # noqa: E731
    ref = 0.5 * (-np.log(sig(z_s)).mean() - np.log(1 - sig(z_t)).mean())
    value, stats = loss.forward_with_stats(f_s, f_t)
    assert value.item() == pytest.approx(ref, rel=1e-5)
    acc = 0.5 * ((z_s > 0).float().mean() + (z_t <= 0).float().mean())
    assert stats["disc_acc"].item() == pytest.approx(acc.item())
    assert stats["grl_coeff"].item() == 1.0


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_dann_grl_gradient_is_minus_coeff_times_discriminator_gradient(p):
    loss = _dann()
    loss.set_progress(p)
    coeff = 2 / (1 + math.exp(-10 * p)) - 1
    assert loss.grl_coeff == pytest.approx(coeff, rel=1e-6)
    f_s, f_t = (x.float().requires_grad_(True) for x in _batches())

    loss(f_s, f_t).backward()
    got_s, got_t = f_s.grad.clone(), f_t.grad.clone()
    got_params = [q.grad.clone() for q in loss.parameters()]
    f_s.grad = f_t.grad = None
    loss.zero_grad()

    # The same loss without the GRL: the discriminator's own gradient.
    d = loss.discriminator(torch.cat([f_s, f_t])).squeeze(1)
    plain = 0.5 * (
        F.binary_cross_entropy_with_logits(d[:24], torch.ones(24))
        + F.binary_cross_entropy_with_logits(d[24:], torch.zeros(16))
    )
    plain.backward()
    torch.testing.assert_close(got_s, -coeff * f_s.grad)
    torch.testing.assert_close(got_t, -coeff * f_t.grad)
    for got, q in zip(got_params, loss.parameters()):  # the discriminator itself is not reversed
        torch.testing.assert_close(got, q.grad)


def test_gradient_reversal_is_exact_identity_forward_and_matches_pytorch_adapts():
    from pytorch_adapt.layers import GradientReversal as PAGradientReversal

    from domadapt.align.dann import GradientReversal

    x = torch.randn(7, 5, dtype=torch.float64) * 1e3
    ours, theirs = GradientReversal(weight=0.37), PAGradientReversal(weight=0.37)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]  # checkpoint key
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out = ours(a)
    assert torch.equal(out, x)  # bit for bit, not approximately
    g = torch.randn_like(x)
    out.backward(g)
    theirs(b).backward(g)
    torch.testing.assert_close(a.grad, b.grad)
    torch.testing.assert_close(a.grad, -0.37 * g)
    ours.update_weight(2.0)
    assert float(ours.weight[0]) == 2.0


def test_dann_parameters_are_the_discriminators():
    loss = _dann()
    params = list(loss.parameters())
    assert loss.has_parameters and params
    assert {id(q) for q in params} == {id(q) for q in loss.discriminator.parameters()}
    assert loss.discriminator[0].in_features == 6 and loss.discriminator[0].out_features == 256
    assert "grl.weight" in loss.state_dict()


def test_dann_refuses_to_run_before_set_progress():
    loss = _dann()
    f_s, f_t = (x.float() for x in _batches())
    with pytest.raises(DomadaptError, match="set_progress"):
        loss(f_s, f_t)
    loss.set_progress(0.5)
    loss(f_s, f_t)


def test_dann_accepts_a_callable_schedule_and_checks_feature_dim():
    loss = _dann(grl_schedule=lambda p: 0.25 + p)
    loss.set_progress(0.5)
    assert loss.grl_coeff == pytest.approx(0.75)
    with pytest.raises(DomadaptError, match="feature_dim=6"):
        loss(torch.randn(4, 5), torch.randn(4, 5))
    with pytest.raises(DomadaptError, match="progress"):
        loss.set_progress(1.5)


def test_dann_trained_discriminator_separates_larger_shifts_better():
    def trained(shift):
        loss = _dann(grl_schedule="constant", hidden_dim=64)  # small: keeps the test fast
        g = torch.Generator().manual_seed(11)
        draw = lambda n, mu: torch.randn(n, 6, generator=g) + mu  # noqa: E731
        f_s, f_t = draw(96, 0.0), draw(64, shift)
        opt = torch.optim.Adam(loss.parameters(), lr=3e-3)
        for _ in range(40):
            opt.zero_grad()
            loss(f_s, f_t).backward()
            opt.step()
        with torch.no_grad():  # held-out samples: what the discriminator learnt, not memorised
            return loss.forward_with_stats(draw(200, 0.0), draw(200, shift))

    (far, far_stats), (near, near_stats) = trained(2.0), trained(0.5)
    assert far < near  # lower BCE: the domains are easier to tell apart
    assert far_stats["disc_acc"] > 0.9 > near_stats["disc_acc"] > 0.5


# -- MCC, BNM (prediction geometry) -----------------------------------------------------
def _logits(m=20, k=4, seed=3, scale=2.0):
    return scale * torch.randn(m, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_mcc_matches_the_papers_formula():
    from domadapt.align import MinimumClassConfusionLoss

    z = _logits()
    y = _softmax(z.numpy() / 2.5)
    h = -(y * np.log(y)).sum(1)
    w = 1 + np.exp(-h)
    w = w / w.sum() * len(w)  # weights scaled to sum to the batch size
    c = (y * w[:, None]).T @ y
    c = c / c.sum(1)  # the reference code's category normalisation (C is symmetric)
    ref = (c.sum() - np.trace(c)) / c.shape[0]
    f = torch.zeros(20, 3, dtype=torch.float64)
    assert MinimumClassConfusionLoss()(f, f, logits_t=z).item() == pytest.approx(ref, rel=1e-10)
    one_hot = 50.0 * F.one_hot(torch.arange(20) % 4, 4).double()  # confident: no confusion
    assert MinimumClassConfusionLoss()(f, f, logits_t=one_hot).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(DomadaptError, match="temperature"):
        MinimumClassConfusionLoss(options=MinimumClassConfusionLoss.Options(temperature=0.0))


def test_bnm_matches_nuclear_norm_and_rewards_balanced_confident_predictions():
    from domadapt.align import BatchNuclearNormLoss

    z = _logits()
    ref = -np.linalg.svd(_softmax(z.numpy()), compute_uv=False).sum() / 20
    f = torch.zeros(20, 3, dtype=torch.float64)
    loss = BatchNuclearNormLoss()
    assert loss(f, f, logits_t=z).item() == pytest.approx(ref, rel=1e-10)
    balanced = 50.0 * F.one_hot(torch.arange(20) % 4, 4).double()  # 5 rows per class
    collapsed = 50.0 * F.one_hot(torch.zeros(20, dtype=torch.long), 4).double()
    assert loss(f, f, logits_t=balanced).item() == pytest.approx(-4 * math.sqrt(5) / 20, rel=1e-9)
    assert loss(f, f, logits_t=collapsed).item() == pytest.approx(-math.sqrt(20) / 20, rel=1e-9)


# -- HoMM -------------------------------------------------------------------------------
def _homm_adatime(xs, xt):
    """AdaTime's HoMM_loss written out: per-sample third-order outer products, averaged."""
    def moment(x):
        c = x - x.mean(0)
        return (c[:, :, None, None] * c[:, None, :, None] * c[:, None, None, :]).mean(0)

    return ((moment(xs) - moment(xt)) ** 2).mean()


def test_homm_matches_adatimes_outer_product_formula():
    from domadapt.align import HoMMLoss

    f_s, f_t = _batches()
    f_t = f_t ** 2  # skewed, so the third moments differ
    got = HoMMLoss(options=HoMMLoss.Options(normalize="none"))(f_s, f_t).item()
    assert got == pytest.approx(_homm_adatime(f_s.numpy(), f_t.numpy()), rel=1e-10)


def test_homm_is_blind_to_a_pure_mean_shift_and_sees_skew():
    from domadapt.align import HoMMLoss

    f_s, _ = _batches()
    loss = HoMMLoss(options=HoMMLoss.Options(normalize="none"))
    assert loss(f_s, f_s + 3.0).item() == pytest.approx(0.0, abs=1e-12)
    assert loss(f_s, f_s.exp()).item() > 1.0


# -- JMMD (JAN) ---------------------------------------------------------------------------
def test_jmmd_matches_product_kernel_formula_and_trains_the_logits():
    from domadapt.align import JointMMDLoss

    f_s, f_t = _batches()
    z_s, z_t = _logits(24, 3, seed=4), _logits(16, 3, seed=5)
    s, t = f_s.numpy(), f_t.numpy()
    g_s, g_t = _softmax(z_s.numpy()), _softmax(z_t.numpy())
    kf, kg = _kernels(s, t), _kernels(g_s, g_t)  # each layer with its own source median
    k_ss, k_tt, k_st = (a * b for a, b in zip(kf, kg))
    n, m = len(s), len(t)
    ref = ((k_ss.sum() - np.trace(k_ss)) / (n * (n - 1)) + (k_tt.sum() - np.trace(k_tt)) / (m * (m - 1))
           - 2 * k_st.mean())
    z_t = z_t.clone().requires_grad_(True)
    value = JointMMDLoss(options=JointMMDLoss.Options(normalize="none"))(f_s, f_t, logits_s=z_s, logits_t=z_t)
    assert value.item() == pytest.approx(ref, rel=1e-9, abs=1e-12)
    value.backward()
    assert z_t.grad.abs().sum() > 0  # JAN adapts through the prediction layer too
    # with constant predictions the prediction kernel is 1 everywhere: JMMD = MMD
    flat_s, flat_t = torch.zeros(24, 3, dtype=torch.float64), torch.zeros(16, 3, dtype=torch.float64)
    flat = JointMMDLoss(options=JointMMDLoss.Options(normalize="none", bandwidth=1.0))(f_s, f_t, logits_s=flat_s, logits_t=flat_t)
    assert flat.item() == pytest.approx(MMDLoss(options=MMDLoss.Options(normalize="none", bandwidth=1.0))(f_s, f_t).item(), rel=1e-9)


def test_jmmd_needs_one_head_for_both_domains():
    from domadapt.align import JointMMDLoss

    f_s, f_t = _batches()
    with pytest.raises(DomadaptError, match="needs logits_s"):
        JointMMDLoss()(f_s, f_t, logits_t=_logits(16, 3))
    with pytest.raises(DomadaptError, match="one head"):
        JointMMDLoss()(f_s, f_t, logits_s=_logits(24, 2), logits_t=_logits(16, 3))


# -- CDAN, CDAN+E ---------------------------------------------------------------------------
def _cdan(cls_name="CDANLoss", d=6, k=3, **kw):
    import domadapt.align as align

    torch.manual_seed(0)
    cls = getattr(align, cls_name)
    return cls(feature_dim=d, num_classes=k, options=cls.Options(grl_schedule="constant", **kw))


@pytest.mark.parametrize("entropy", [False, True])
def test_cdan_matches_weighted_bce_on_the_outer_product(entropy):
    loss = _cdan("CDANELoss" if entropy else "CDANLoss")
    assert not loss.randomized and loss.discriminator[0].in_features == 18  # K·D ≤ 4096: exact map
    f_s, f_t = (x.float() for x in _batches())
    z_s, z_t = _logits(24, 3, seed=4).float(), _logits(16, 3, seed=5).float()
    g = _softmax(torch.cat([z_s, z_t]).double().numpy())
    h = (g[:, :, None] * torch.cat([f_s, f_t]).double().numpy()[:, None, :]).reshape(40, -1)  # g ⊗ f
    with torch.no_grad():
        z = loss.discriminator(torch.from_numpy(h).float()).squeeze(1).double().numpy()
    sig = 1 / (1 + np.exp(-z))
    w = 1 + np.exp((g * np.log(g)).sum(1)) if entropy else np.ones(40)
    bce_s, bce_t = -np.log(sig[:24]), -np.log(1 - sig[24:])
    ref = 0.5 * ((w[:24] * bce_s).sum() / w[:24].sum() + (w[24:] * bce_t).sum() / w[24:].sum())
    value, stats = loss.forward_with_stats(f_s, f_t, logits_s=z_s, logits_t=z_t)
    assert value.item() == pytest.approx(ref, rel=1e-5)
    assert stats["disc_acc"].item() == pytest.approx(0.5 * ((z[:24] > 0).mean() + (z[24:] <= 0).mean()))


def test_cdan_e_differs_from_cdan_only_through_the_weights():
    f_s, f_t = (x.float() for x in _batches())
    z_s, z_t = _logits(24, 3, seed=4).float(), _logits(16, 3, seed=5).float()
    plain = _cdan()(f_s, f_t, logits_s=z_s, logits_t=z_t)
    weighted = _cdan("CDANELoss")(f_s, f_t, logits_s=z_s, logits_t=z_t)
    assert not torch.allclose(plain, weighted)
    uniform = torch.zeros_like(z_s), torch.zeros_like(z_t)  # equal entropy: equal weights
    assert torch.allclose(_cdan()(f_s, f_t, logits_s=uniform[0], logits_t=uniform[1]),
                          _cdan("CDANELoss")(f_s, f_t, logits_s=uniform[0], logits_t=uniform[1]))


def test_cdan_randomized_map_above_4096_matches_pytorch_adapts_randomized_dot_product():
    from pytorch_adapt.layers import RandomizedDotProduct

    loss = _cdan(d=1400, k=3, randomized_dim=64, hidden_dim=16)  # 4200 > 4096
    assert loss.randomized and loss.discriminator[0].in_features == 64
    assert _cdan(d=1365, k=3, hidden_dim=16).discriminator[0].in_features == 4095  # exact below
    theirs = RandomizedDotProduct([1400, 3], out_dim=64)
    theirs.rand_mat0.copy_(loss.map.rand_f)
    theirs.rand_mat1.copy_(loss.map.rand_g)
    f, g = torch.randn(5, 1400), torch.softmax(torch.randn(5, 3), 1)
    torch.testing.assert_close(loss.map(f, g), theirs(f, g))
    again = _cdan(d=1400, k=3, randomized_dim=64, hidden_dim=16)
    assert torch.equal(again.map.rand_f, loss.map.rand_f)  # a fixed map, not the global RNG's


def test_cdan_gradient_is_reversed_and_the_predictions_are_not_trained():
    loss = _cdan()
    loss.grl.update_weight(0.5)
    f_s, f_t = (x.float().requires_grad_(True) for x in _batches())
    z_s, z_t = (_logits(24, 3, seed=4).float().requires_grad_(True), _logits(16, 3, seed=5).float().requires_grad_(True))
    loss(f_s, f_t, logits_s=z_s, logits_t=z_t).backward()
    got = f_s.grad.clone()
    assert z_s.grad is None and z_t.grad is None  # g is detached (conditioning only)
    f_s.grad = None
    g = torch.softmax(torch.cat([z_s, z_t]), 1).detach()
    h = (g.unsqueeze(2) * torch.cat([f_s, f_t]).unsqueeze(1)).flatten(1)
    d = loss.discriminator(h).squeeze(1)
    plain = 0.5 * (F.binary_cross_entropy_with_logits(d[:24], torch.ones(24))
                   + F.binary_cross_entropy_with_logits(d[24:], torch.zeros(16)))
    plain.backward()
    torch.testing.assert_close(got, -0.5 * f_s.grad)


def test_cdan_needs_a_shared_head():
    loss = _cdan()
    f_s, f_t = (x.float() for x in _batches())
    with pytest.raises(DomadaptError, match="needs logits_s"):
        loss(f_s, f_t, logits_t=torch.randn(16, 3))
    with pytest.raises(DomadaptError, match="num_classes=3"):
        loss(f_s, f_t, logits_s=torch.randn(24, 2), logits_t=torch.randn(16, 2))


# -- MDD ------------------------------------------------------------------------------------
def test_mdd_matches_tllibs_formula_and_reverses_a_tenth_of_the_gradient():
    from domadapt.align import MarginDisparityDiscrepancyLoss

    torch.manual_seed(0)
    loss = MarginDisparityDiscrepancyLoss(feature_dim=6, num_classes=3)
    loss.set_progress(1.0)
    assert loss.grl_coeff == pytest.approx(0.1 * (2 / (1 + math.exp(-10)) - 1))
    f_s, f_t = (x.float().requires_grad_(True) for x in _batches())
    z_s, z_t = (_logits(24, 3, seed=4).float().requires_grad_(True), _logits(16, 3, seed=5).float().requires_grad_(True))
    value, stats = loss.forward_with_stats(f_s, f_t, logits_s=z_s, logits_t=z_t)
    with torch.no_grad():
        a_s = _softmax(loss.adversary(f_s).double().numpy())
        a_t = _softmax(loss.adversary(f_t).double().numpy())
    y_s, y_t = z_s.argmax(1).numpy(), z_t.argmax(1).numpy()
    source = -np.log(a_s[np.arange(24), y_s]).mean()  # cross-entropy with the main head's labels
    target = -np.log(np.minimum(1 - a_t[np.arange(16), y_t] + 1e-6, 1)).mean()  # TLlib's shift_log
    assert value.item() == pytest.approx(4.0 * source + target, rel=1e-5)
    assert stats["target_agreement"].item() == pytest.approx((a_t.argmax(1) == y_t).mean())
    value.backward()
    assert z_s.grad is None and z_t.grad is None  # the main predictions enter as argmax labels
    got = f_t.grad.clone()
    f_t.grad = None
    plain = 4.0 * F.cross_entropy(loss.adversary(f_s), z_s.argmax(1)) - torch.log(
        (1 - torch.softmax(loss.adversary(f_t), 1).gather(1, z_t.argmax(1, keepdim=True)).squeeze(1) + 1e-6).clamp(max=1)
    ).mean()
    plain.backward()
    torch.testing.assert_close(got, -loss.grl_coeff * f_t.grad)


def test_mdd_adversary_learns_to_agree_on_source_and_disagree_on_target():
    from domadapt.align import MarginDisparityDiscrepancyLoss

    torch.manual_seed(0)
    loss = MarginDisparityDiscrepancyLoss(feature_dim=6, num_classes=3, options=MarginDisparityDiscrepancyLoss.Options(hidden_dim=32, grl_schedule="constant"))
    f_s, f_t = (x.float() for x in _batches())
    z_s, z_t = _logits(24, 3, seed=4).float(), _logits(16, 3, seed=5).float()
    opt = torch.optim.Adam(loss.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        value, stats = loss.forward_with_stats(f_s, f_t, logits_s=z_s, logits_t=z_t)
        value.backward()
        opt.step()
    assert stats["source_agreement"] > 0.9 and stats["target_agreement"] < 0.2
