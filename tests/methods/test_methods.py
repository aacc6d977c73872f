import math

import pytest
import torch

from domadapt.errors import DomadaptError
from domadapt.methods import build_method, list_methods
from domadapt.train import Trainer, predict_proba
from tiny import spec, tiny_fold, tiny_model, tiny_train

CPU = torch.device("cpu")

SPECS = [
    spec("target_only"),
    spec("pretrain_freeze"),
    spec("pretrain_finetune", general_lr_mult=0.1),
    spec("joint"),
    spec("align", loss="mmd"),
    spec("align", loss="coral"),
    spec("align", loss="dann"),
    spec("align", loss="sinkhorn"),
    spec("align", loss="mmd", at="specific"),
    spec("align", loss="mmd", use_target_labels=False),
    spec("multitrain_ae", refresh_every=2),
    spec("ddg"),
    spec("ddg", dann=True),
]


@pytest.mark.parametrize("s", SPECS, ids=lambda s: f"{s.label}{'-' + '-'.join(map(str, s.options.values())) if s.options else ''}")
def test_every_method_trains_on_different_label_sets(s):
    fold = tiny_fold(shared=False)
    model = tiny_model(fold)
    cfg = tiny_train()
    method = build_method(s, cfg)
    history = Trainer(cfg, device=CPU).fit(model, method, fold, seed=0)
    assert history and all(math.isfinite(v) for values in history.values() for v in values)
    probs = predict_proba(lambda x: method.target_logits(model.eval(), x), fold.target_test.x)
    assert probs.shape == (len(fold.target_test), 2)
    assert torch.allclose(probs.sum(1), torch.ones(len(probs)))


def test_registry_covers_the_notes():
    assert set(list_methods()) == {
        "target_only", "source_only", "pretrain_freeze", "pretrain_finetune",
        "joint", "align", "multitrain_ae", "ddg",
    }
    with pytest.raises(DomadaptError, match="unknown method 'nope'; known: align, ddg"):
        build_method(spec("nope"), tiny_train())
    with pytest.raises(DomadaptError, match="unknown option.*lr_mult.*valid: general_lr_mult"):
        build_method(spec("pretrain_finetune", lr_mult=0.1), tiny_train())


def _general_state(model):
    return {k: v.clone() for k, v in model.general.state_dict().items()}


def _snapshot_at_stage_two(method):
    """Wrap ``method.stages`` so the general extractor is snapshotted when stage 2 starts."""
    original = method.stages
    snapshots = []

    def spy(m, d):
        stages = original(m, d)
        stages[1].on_epoch_start = lambda epoch: snapshots.append(_general_state(m)) if epoch == 0 else None
        return stages

    method.stages = spy
    return snapshots


def test_pretrain_freeze_keeps_the_pretrained_extractor_exactly():
    fold = tiny_fold()
    cfg = tiny_train()
    model = tiny_model(fold)
    method = build_method(spec("pretrain_freeze"), cfg)
    snapshots = _snapshot_at_stage_two(method)
    Trainer(cfg, device=CPU).fit(model, method, fold, seed=0)
    after = _general_state(model)
    assert snapshots and all(torch.equal(snapshots[0][k], after[k]) for k in after)  # BN stats included


def test_pretrain_finetune_moves_the_extractor():
    fold = tiny_fold()
    cfg = tiny_train()
    model = tiny_model(fold)
    method = build_method(spec("pretrain_finetune"), cfg)
    snapshots = _snapshot_at_stage_two(method)
    Trainer(cfg, device=CPU).fit(model, method, fold, seed=0)
    after = _general_state(model)
    assert any(not torch.equal(snapshots[0][k], after[k]) for k in after)


def test_dann_discriminator_is_trained_by_the_trainer():
    fold = tiny_fold()
    cfg = tiny_train()
    model = tiny_model(fold)
    method = build_method(spec("align", loss="dann"), cfg)
    stages = method.stages(model, fold)
    before = [p.clone() for p in method.loss.parameters()]
    assert before, "DANN owns its discriminator"
    method.stages = lambda m, d: stages
    Trainer(cfg, device=CPU).fit(model, method, fold, seed=0)
    assert any(not torch.equal(b, a) for b, a in zip(before, method.loss.parameters()))


def test_source_only_needs_a_shared_label_set():
    cfg = tiny_train()
    fold = tiny_fold(shared=False)
    with pytest.raises(DomadaptError, match="share one label set"):
        Trainer(cfg, device=CPU).fit(tiny_model(fold), build_method(spec("source_only"), cfg), fold, seed=0)
    shared = tiny_fold(shared=True)
    history = Trainer(cfg, device=CPU).fit(tiny_model(shared), build_method(spec("source_only"), cfg), shared, seed=0)
    assert "source/val/uar" in history


def test_unlabelled_target_never_reads_target_labels():
    fold = tiny_fold()
    fold.target_train.y = torch.full_like(fold.target_train.y, 99)  # would crash cross-entropy if read
    cfg = tiny_train()
    method = build_method(spec("align", loss="mmd", use_target_labels=False), cfg)
    history = Trainer(cfg, device=CPU).fit(tiny_model(fold), method, fold, seed=0)
    assert "joint/val/im" in history and "joint/val/uar" not in history
