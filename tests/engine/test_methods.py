"""Every registered method trains through the engine; what each one promises holds."""

import math

import pytest
import torch
from tiny import CPU, spec, tiny_fold, tiny_method, tiny_model, tiny_train, train

from domadapt.engine import EagerReplica, fit
from domadapt.errors import DomadaptError
from domadapt.methods import build_method, list_methods

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
    (history,), probs, _ = train(fold, s, tiny_train())
    assert history and all(math.isfinite(v) for values in history.values() for v in values)
    assert probs.shape == (1, len(fold.target_test), 2)
    assert torch.allclose(probs.sum(-1), torch.ones(1, len(fold.target_test)))


def test_registry_covers_the_notes():
    assert set(list_methods()) >= {
        "target_only", "source_only", "pretrain_freeze", "pretrain_finetune",
        "joint", "align", "multitrain_ae", "ddg",
    }
    fold = tiny_fold()
    with pytest.raises(DomadaptError, match="unknown method 'nope'; known methods: adabn, align"):
        build_method(spec("nope"), tiny_train(), tiny_model(fold))
    with pytest.raises(DomadaptError, match="unknown option.*lr_mult.*general_lr_mult"):
        build_method(spec("pretrain_finetune", lr_mult=0.1), tiny_train(), tiny_model(fold))
    with pytest.raises(DomadaptError, match="at = 'middle'.*general, specific"):
        build_method(spec("align", at="middle"), tiny_train(), tiny_model(fold))
    with pytest.raises(DomadaptError, match="unknown alignment loss 'mmdd'"):
        build_method(spec("align", loss="mmdd"), tiny_train(), tiny_model(fold))


def test_methods_build_their_modules_at_construction():
    # stages() builds closures only: no module appears or changes when it is called
    fold = tiny_fold()
    for s in SPECS:
        method = tiny_method(fold, s, tiny_train())
        before = {k: v.clone() for k, v in method.state_dict().items()}
        method.stages(fold)
        after = method.state_dict()
        assert list(after) == list(before) and all(torch.equal(before[k], after[k]) for k in before), s


def _general_state(model):
    return {k: v.clone() for k, v in model.general.state_dict().items()}


def _fit_with_snapshot_at_stage_two(fold, s, cfg):
    replica = EagerReplica(tiny_method(fold, s, cfg), 0, fold, CPU)
    snapshots = []
    replica.stages[1].on_epoch_start = lambda epoch: snapshots.append(_general_state(replica.method.model)) if epoch == 0 else None
    fit(replica, cfg)
    return snapshots[0], _general_state(replica.method.model)


def test_pretrain_freeze_keeps_the_pretrained_extractor_exactly():
    start, after = _fit_with_snapshot_at_stage_two(tiny_fold(), spec("pretrain_freeze"), tiny_train())
    assert all(torch.equal(start[k], after[k]) for k in after)  # BN stats included


def test_pretrain_finetune_moves_the_extractor():
    start, after = _fit_with_snapshot_at_stage_two(tiny_fold(), spec("pretrain_finetune"), tiny_train())
    assert any(not torch.equal(start[k], after[k]) for k in after)


def test_dann_discriminator_is_trained():
    fold = tiny_fold()
    cfg = tiny_train()
    method = tiny_method(fold, spec("align", loss="dann"), cfg)
    before = [p.clone() for p in method.loss.parameters()]
    assert before, "DANN owns its discriminator"
    fit(EagerReplica(method, 0, fold, CPU), cfg)
    assert any(not torch.equal(b, a) for b, a in zip(before, method.loss.parameters()))


def test_multitrain_ae_frozen_extractor_is_the_pretrained_one_and_stays_frozen():
    fold = tiny_fold()
    cfg = tiny_train()
    replica = EagerReplica(tiny_method(fold, spec("multitrain_ae", refresh_every=2), cfg), 0, fold, CPU)
    start, _ = [], None
    replica.stages[1].on_epoch_start = (lambda inner: lambda e: (start.append(_general_state(replica.method.model)) if e == 0 else None, inner(e)))(replica.stages[1].on_epoch_start)
    fit(replica, cfg)
    frozen = replica.method.frozen_general.state_dict()
    assert all(torch.equal(start[0][k], frozen[k]) for k in frozen)
    assert not any(p.requires_grad for p in replica.method.frozen_general.parameters())


def test_source_only_needs_a_shared_label_set():
    cfg = tiny_train()
    with pytest.raises(DomadaptError, match="share one label set"):
        tiny_method(tiny_fold(shared=False), spec("source_only"), cfg)
    (history,), _, _ = train(tiny_fold(shared=True), spec("source_only"), cfg)
    assert "source/val/uar" in history


@pytest.mark.parametrize("loss", ["mmd", "lmmd"])
def test_unlabelled_target_never_reads_target_labels(loss):
    fold = tiny_fold(shared=loss == "lmmd")
    fold.target_train.y = torch.full_like(fold.target_train.y, 99)  # would crash if read
    (history,), _, _ = train(fold, spec("align", loss=loss, use_target_labels=False), tiny_train())
    assert "joint/val/im" in history and "joint/val/uar" not in history
