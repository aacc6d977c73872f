"""Domain-gap diagnostics against known answers: same distribution, separated domains,
speaker-only separability, scale invariance, and a hand-computed gradient ratio."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from domadapt.diagnostics import (
    domain_gap,
    gradient_norm_ratio,
    proxy_a_distance,
    standardized_mmd,
)
from domadapt.errors import DomadaptError


def gaussians(n_s: int, n_t: int, d: int, shift: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_s, d)), rng.standard_normal((n_t, d)) + shift


def speakers(n_subjects: int, rows: int, d: int, rng: np.random.Generator, first_id: int):
    """Rows of ``n_subjects`` speakers, each with its own offset (std 3) around the same
    distribution; ids ``first_id...``."""
    offsets = 3.0 * rng.standard_normal((n_subjects, d))
    x = np.repeat(offsets, rows, axis=0) + rng.standard_normal((n_subjects * rows, d))
    ids = np.repeat(np.arange(first_id, first_id + n_subjects), rows)
    return x, ids


def test_identical_distributions_have_no_gap() -> None:
    x_s, x_t = gaussians(300, 200, 10, shift=0.0)
    assert proxy_a_distance(x_s, x_t) < 0.3
    assert abs(standardized_mmd(x_s, x_t)) < 0.01


def test_separated_gaussians_have_a_large_gap() -> None:
    x_s, x_t = gaussians(300, 200, 10, shift=1.5)
    assert proxy_a_distance(x_s, x_t) > 1.8
    assert standardized_mmd(x_s, x_t) > 0.3


def test_grouping_stops_a_classifier_that_only_recognises_speakers() -> None:
    # Source and target speakers come from the same offset distribution: the domains differ
    # only in *which* people speak. Unseen speakers are indistinguishable.
    rng = np.random.default_rng(1)
    x_s, g_s = speakers(20, 20, 60, rng, first_id=0)
    x_t, g_t = speakers(20, 20, 60, rng, first_id=0)  # same ids, other people: made distinct
    grouped = proxy_a_distance(x_s, x_t, groups_s=g_s, groups_t=g_t)
    ungrouped = proxy_a_distance(x_s, x_t)
    assert grouped < 0.5, grouped
    # (grouped: 0.0-0.2 over seeds 0-4 of this set-up; 20 speakers a side is a noisy test set)
    assert ungrouped > 1.8, ungrouped


def test_unequal_domain_sizes_do_not_fake_a_gap() -> None:
    # 10:1 imbalance: an always-"source" classifier has 9% plain error but 50% balanced error.
    x_s, x_t = gaussians(1000, 100, 5, shift=0.0, seed=3)
    assert proxy_a_distance(x_s, x_t) < 0.3


def test_mmd_is_invariant_to_scaling_both_domains() -> None:
    x_s, x_t = gaussians(150, 120, 8, shift=0.5, seed=2)
    base = standardized_mmd(x_s, x_t)
    assert base > 0.05
    assert standardized_mmd(1000 * x_s, 1000 * x_t) == pytest.approx(base, rel=1e-9)
    assert standardized_mmd(1e-3 * x_s, 1e-3 * x_t) == pytest.approx(base, rel=1e-9)


def test_mmd_matches_a_direct_unbiased_estimate() -> None:
    rng = np.random.default_rng(4)
    x_s, x_t = rng.standard_normal((7, 3)), rng.standard_normal((5, 3)) + 0.7
    pooled = np.concatenate([x_s, x_t])
    z = (pooled - pooled.mean(0)) / pooled.std(0)
    d2 = ((z[:, None] - z[None]) ** 2).sum(-1)
    h = np.median(d2[~np.eye(12, dtype=bool)])
    k = np.exp(-d2 / h)
    pairs_ss = [k[i, j] for i in range(7) for j in range(7) if i != j]
    pairs_tt = [k[7 + i, 7 + j] for i in range(5) for j in range(5) if i != j]
    expected = np.mean(pairs_ss) + np.mean(pairs_tt) - 2 * k[:7, 7:].mean()
    assert standardized_mmd(x_s, x_t) == pytest.approx(expected, rel=1e-12)


def test_domain_gap_accepts_torch_and_subsamples_deterministically() -> None:
    x_s, x_t = gaussians(1500, 400, 6, shift=1.5, seed=5)
    g_s, g_t = np.arange(1500) % 15, np.arange(400) % 8
    gap = domain_gap(torch.from_numpy(x_s).float(), torch.from_numpy(x_t).float(),
                     groups_s=g_s, groups_t=g_t)
    assert set(gap) == {"a_distance", "mmd", "n_source", "n_target"}
    assert (gap["n_source"], gap["n_target"]) == (1000, 400)
    assert gap["a_distance"] > 1.5 and gap["mmd"] > 0.1
    # float32 vs float64 may move a row across the boundary: one row moves it by 0.005.
    assert domain_gap(x_s, x_t, groups_s=g_s, groups_t=g_t) == pytest.approx(gap, abs=0.02)
    again = domain_gap(x_s, x_t, groups_s=g_s, groups_t=g_t)
    assert again == domain_gap(x_s, x_t, groups_s=g_s, groups_t=g_t)


def test_bad_inputs_are_named() -> None:
    x = np.zeros((10, 3))
    with pytest.raises(DomadaptError, match="both domains"):
        proxy_a_distance(x, x, groups_s=np.zeros(10))
    with pytest.raises(DomadaptError, match="2 subjects per domain"):
        proxy_a_distance(x, x, groups_s=np.zeros(10), groups_t=np.arange(10))
    with pytest.raises(DomadaptError, match="features"):
        standardized_mmd(x, np.zeros((10, 4)))
    with pytest.raises(DomadaptError, match=r"\(N, D\)"):
        standardized_mmd(np.zeros(10), x)


def test_gradient_norm_ratio_by_hand() -> None:
    # shared layer w = (w1, w2) = (1, 2); task = w1^2 + w2^2 -> grad (2, 4), norm sqrt(20);
    # align = 3 w1 + 4 w2 -> grad (3, 4), norm 5; an unrelated b only the task reaches:
    # task also has b^2 at b = 1 -> grad 2; total task norm sqrt(24).
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor(1.0, requires_grad=True)
    task = (w**2).sum() + b**2
    align = 3 * w[0] + 4 * w[1]
    assert gradient_norm_ratio(task, align, [w, b]) == pytest.approx(5 / math.sqrt(24))
    assert gradient_norm_ratio(task, align, [w]) == pytest.approx(5 / math.sqrt(20))
    # The graphs survive and no .grad was written.
    assert w.grad is None
    (task + align).backward()
    assert torch.allclose(w.grad, torch.tensor([5.0, 8.0]))


def test_gradient_norm_ratio_of_a_loss_that_does_nothing() -> None:
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    task = (w**2).sum()
    assert gradient_norm_ratio(task, 1e-8 * w.sum(), [w]) < 1e-8
    assert gradient_norm_ratio(task, torch.tensor(0.0), [w]) == 0.0
    assert math.isinf(gradient_norm_ratio(torch.tensor(0.0), w.sum(), [w]))


def test_domain_gap_is_skipped_with_its_reason_when_one_subject_is_held_out():
    # leave-one-subject-out with train.val_fraction = 0 holds out one target subject: the
    # run goes on without the gap (its grouped domain classifier needs two), saying why.
    import dataclasses

    from tiny import tiny_fold

    from domadapt.diagnostics import HeldOut

    fold = tiny_fold()
    assert HeldOut.why_not(fold) is None
    one = fold.target_test.subset(np.flatnonzero(fold.target_test.groups == fold.target_test.groups[0]))
    loso = dataclasses.replace(fold, target_val=fold.target_val.subset(np.zeros(0, dtype=np.int64)), target_test=one)
    assert HeldOut.why_not(loso) == (
        "held-out subjects: "
        f"{sum(len(np.unique(d.groups)) for d in fold.source_val)} source, 1 target "
        "(the subject-grouped domain classifier needs 2 each)"
    )
    assert HeldOut.why_not(dataclasses.replace(fold, sources=[], source_val=[])) == "no source corpus"
