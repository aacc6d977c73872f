"""domadapt.augment: SpecAugment masks whole channel bands and frame spans of each training
example, on labelled training batches only, reproducibly per replica (vmapped = eager)."""

from __future__ import annotations

import pytest
import torch
from tiny import CPU, spec, tiny_fold, tiny_model, tiny_train, train

from domadapt.augment import SpecAugment
from domadapt.config import TrainConfig
from domadapt.recipe_loader import build_config
from domadapt.engine import build_replicas
from domadapt.engine.batches import IndexBatch
from domadapt.errors import DomadaptError
from domadapt.methods import build_method


def _masked_channels(x: torch.Tensor) -> torch.Tensor:
    return (x == 0).all(dim=-1)  # [.., C]


def _masked_frames(x: torch.Tensor) -> torch.Tensor:
    return (x == 0).all(dim=-2)  # [.., T]


def test_masks_are_whole_bands_and_spans_within_the_widths():
    x = torch.randn(64, 39, 50) + 5.0  # no zero by chance
    y = SpecAugment(freq=6, time=12, masks=1)(x, [torch.Generator().manual_seed(0)])
    zero = y == 0
    # every zero lies in a fully masked channel or a fully masked frame
    assert torch.equal(zero, _masked_channels(y)[:, :, None] | _masked_frames(y)[:, None, :])
    assert (_masked_channels(y).sum(1) <= 6).all() and (_masked_frames(y).sum(1) <= 12).all()
    # one contiguous band each, drawn per example
    for row in _masked_channels(y):
        idx = torch.nonzero(row).flatten()
        assert len(idx) == 0 or idx[-1] - idx[0] + 1 == len(idx)
    assert len({tuple(torch.nonzero(r).flatten().tolist()) for r in _masked_frames(y)}) > 10
    assert torch.equal(y[~zero], x[~zero])  # the rest untouched
    assert _masked_channels(y).any() and _masked_frames(y).any()


def test_off_unless_a_width_is_set():
    assert SpecAugment.from_config(TrainConfig()) is None
    assert SpecAugment.from_config(TrainConfig(spec_augment_time=4)) == SpecAugment(0, 4, 1)
    with pytest.raises(DomadaptError, match="train.spec_augment_freq"):
        build_config({}, overrides={"train.spec_augment_freq": -1})
    cfg = build_config({}, overrides={"train.spec_augment_time": 10, "train.spec_augment_masks": 2})
    assert SpecAugment.from_config(cfg.train) == SpecAugment(0, 10, 2)


def test_replicas_mask_as_separate_runs_and_the_generator_decides():
    x = torch.randn(2, 16, 5, 30) + 5.0
    aug = SpecAugment(freq=2, time=8, masks=2)
    both = aug(x, [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)])
    for k in (0, 1):
        assert torch.equal(both[k], aug(x[k], [torch.Generator().manual_seed(k)]))
    assert not torch.equal(both[0] == 0, both[1] == 0)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    aug(x[0], [torch.Generator().manual_seed(0)])
    assert torch.equal(torch.rand(1), before)  # torch's global generator is left as it was


def test_only_labelled_training_rows_are_masked():
    fold = tiny_fold()
    fold.target_train.x += 5.0
    fold.target_test.x += 5.0
    for s in fold.sources:
        s.x += 5.0
    cfg = tiny_train(spec_augment_freq=2, spec_augment_time=6)
    replicas = build_replicas(lambda: build_method(spec("joint"), cfg, tiny_model(fold)), [0], fold, CPU)
    replicas.augment = SpecAugment.from_config(cfg)
    idx = torch.arange(16)
    step = replicas.gather([IndexBatch(target=idx, sources=[idx])])
    assert (step.x_t == 0).any() and (step.sources[0].x == 0).any()
    rows = torch.arange(len(fold.target_test))
    test_step = replicas.gather([IndexBatch(test=rows)])  # test-time adaptation reads test rows
    assert torch.equal(test_step.x_t, fold.target_test.x)


def test_training_with_masks_trains_otherwise_and_vmapped_equals_eager():
    fold = tiny_fold()
    plain = tiny_train(epochs=2)
    masked = tiny_train(epochs=2, spec_augment_freq=2, spec_augment_time=6)
    _, p_plain, _ = train(fold, spec("target_only"), plain, [0], dropout=0.0)
    _, p_masked, _ = train(fold, spec("target_only"), masked, [0], dropout=0.0)
    assert not torch.allclose(p_plain, p_masked)
    _, p_two, _ = train(fold, spec("target_only"), masked, [0, 1], dropout=0.0)
    _, p_one, _ = train(fold, spec("target_only"), masked, [1], dropout=0.0)
    assert (p_two[0] - p_masked[0]).abs().max() < 1e-4
    assert (p_two[1] - p_one[0]).abs().max() < 1e-4
