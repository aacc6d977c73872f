"""Source pre-training shared between units: a unit that loads the stage goes on exactly as
if it had trained it, and a different starting point is never loaded."""

from __future__ import annotations

import torch
from tiny import spec, tiny_fold, tiny_train, train

from domadapt.engine import Run
from domadapt.engine.shared_stages import SharedStages


def test_a_loaded_pretraining_gives_the_numbers_of_a_trained_one(tmp_path):
    fold, cfg = tiny_fold(), tiny_train()
    shared = SharedStages(tmp_path / "shared")
    # pretrain_freeze trains the stage and keeps it; pretrain_finetune starts from the same
    # initialisation, loads it, and must end where its own pre-training would have led it
    train(fold, spec("pretrain_freeze"), cfg, seeds=[3], run=Run(shared_stages=shared))
    assert len(list((tmp_path / "shared").glob("*.pt"))) == 1
    (h_loaded,), p_loaded, _ = train(fold, spec("pretrain_finetune"), cfg, seeds=[3], run=Run(shared_stages=shared))
    assert len(list((tmp_path / "shared").glob("*.pt"))) == 1  # loaded, not trained again
    (h_own,), p_own, _ = train(fold, spec("pretrain_finetune"), cfg, seeds=[3])
    assert h_loaded == h_own  # the pre-training's history too, and every later epoch
    assert torch.equal(p_loaded, p_own)
    assert any(k.startswith("pretrain/") for k in h_own) and any(k.startswith("target/") for k in h_own)


def test_another_starting_point_trains_its_own(tmp_path):
    fold, cfg = tiny_fold(), tiny_train()
    shared = SharedStages(tmp_path / "shared")
    train(fold, spec("pretrain_freeze"), cfg, seeds=[3], run=Run(shared_stages=shared))
    # another seed (initialisation and batch order), and other settings: two more entries
    (h_seed,), p_seed, _ = train(fold, spec("pretrain_freeze"), cfg, seeds=[4], run=Run(shared_stages=shared))
    (h_lr,), p_lr, _ = train(fold, spec("pretrain_freeze"), tiny_train(lr=1e-3), seeds=[3], run=Run(shared_stages=shared))
    assert len(list((tmp_path / "shared").glob("*.pt"))) == 3
    (h_seed_own,), p_seed_own, _ = train(fold, spec("pretrain_freeze"), cfg, seeds=[4])
    assert h_seed == h_seed_own and torch.equal(p_seed, p_seed_own)
    (h_lr_own,), p_lr_own, _ = train(fold, spec("pretrain_freeze"), tiny_train(lr=1e-3), seeds=[3])
    assert h_lr == h_lr_own and torch.equal(p_lr, p_lr_own)


def test_source_only_stages_run_no_target_probe(tmp_path):
    calls: list[str] = []

    def probe(replicas):
        calls.append("probe")
        return [{"gap/probe": 0.0} for _ in range(replicas.k)]

    (history,), _, _ = train(tiny_fold(), spec("pretrain_finetune"), tiny_train(), run=Run(epoch_probe=probe))
    assert "target/gap/probe" in history and "pretrain/gap/probe" not in history
    assert len(calls) == len(history["target/gap/probe"])
