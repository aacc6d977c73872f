"""The one training loop on one eager replica: determinism, learning, selection, errors."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from tiny import CPU, spec, tiny_fold, tiny_method, tiny_train, train

from domadapt.engine import EagerReplica, NonFiniteLossError, Run, fit, information_maximization
from domadapt.evaluate import segment_metrics
from domadapt.methods.base import Method, StepOutput


def test_same_seed_same_numbers_twice():
    fold = tiny_fold()
    h1, p1, _ = train(fold, spec("target_only"), tiny_train(), seeds=[3])
    h2, p2, _ = train(fold, spec("target_only"), tiny_train(), seeds=[3])
    assert h1 == h2
    assert torch.equal(p1, p2)
    _, p3, _ = train(fold, spec("target_only"), tiny_train(), seeds=[4])
    assert not torch.equal(p1, p3)


def test_loss_decreases_and_history_has_every_term():
    (history,), _, _ = train(tiny_fold(), spec("target_only"), tiny_train(epochs=6))
    losses = history["target/train/loss"]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert set(history) >= {"target/train/task", "target/val/uar", "target/val/score"}


class Broken(Method):
    def stages(self, data):
        stage = self.target_stage(data)

        def step(batch, p):
            task = self.target_logits(batch.x_t).sum() * 0
            return StepOutput(task=task, align=torch.tensor(math.nan))

        stage.step = step
        return [stage]


def test_nonfinite_loss_names_stage_epoch_batch_seed_and_term():
    fold = tiny_fold()
    cfg = tiny_train()
    method = tiny_method(fold, spec("target_only"), cfg)
    broken = Broken(method.model, cfg)
    with pytest.raises(NonFiniteLossError, match=r"stage 'target', epoch 1, batch 1 \(seed 5\): align term = nan"):
        fit(EagerReplica(broken, 5, fold, CPU), cfg)


def test_best_validation_epoch_is_restored():
    # Model selection keeps the best validation epoch, not the last one.
    fold = tiny_fold()
    (history,), _, replicas = train(fold, spec("target_only"), tiny_train(epochs=4))
    probs = replicas.predict(replicas.method.target_logits, fold.target_val.x)[0]
    uar = segment_metrics(fold.target_val.y.numpy(), probs.argmax(1).numpy(), num_classes=2)["uar"]
    scores = history["target/val/score"]
    assert uar == pytest.approx(max(scores))


@pytest.mark.parametrize("seeds", [[0], [0, 1]], ids=["eager", "vmapped"])
def test_no_validation_rows_keep_the_last_epoch(tmp_path, seeds):
    # train.val_fraction = 0: the target validation set is empty, nothing is scored and
    # every replica ends on its last epoch, as the checkpoint of that epoch holds it.
    fold = tiny_fold()
    fold = dataclasses.replace(fold, target_val=fold.target_val.subset(np.zeros(0, dtype=np.int64)))
    checkpoint = tmp_path / "ckpt.pt"
    histories, _, replicas = train(fold, spec("target_only"), tiny_train(epochs=4), seeds=seeds, run=Run(checkpoint=checkpoint))
    assert not any("/val/" in key for key in histories[0])
    last = torch.load(checkpoint, weights_only=False)["state"]
    for key, value in replicas.state().items():
        assert torch.equal(value, last[key]), key


def test_information_maximization_prefers_confident_diverse_predictions():
    confident = torch.tensor([[0.99, 0.01], [0.01, 0.99]])
    uniform = torch.full((2, 2), 0.5)
    collapsed = torch.tensor([[0.99, 0.01], [0.99, 0.01]])
    assert information_maximization(confident) > information_maximization(uniform)
    assert information_maximization(confident) > information_maximization(collapsed)


def test_tensorboard_rows_per_epoch():
    class Recorder:
        def __init__(self):
            self.rows = []

        def add_scalar(self, tag, value, step):
            self.rows.append((tag, value, step))

    writer = Recorder()
    (history,), _, _ = train(tiny_fold(), spec("joint"), tiny_train(epochs=2), run=Run(writers=[writer]))
    for key, values in history.items():
        assert [(v, s) for t, v, s in writer.rows if t == key] == [(v, i) for i, v in enumerate(values)]


def test_compiled_general_extractor_trains_like_eager_and_keeps_checkpoint_keys(tmp_path):
    # dropout 0: inductor draws dropout masks from its own random stream
    fold = tiny_fold()
    runs = []
    for compiled in (False, True):
        cfg = dataclasses.replace(tiny_train(epochs=2), compile=compiled)
        method = tiny_method(fold, spec("target_only"), cfg, dropout=0.0)
        replica = EagerReplica(method, 0, fold, CPU, compile=compiled)
        checkpoint = tmp_path / f"{compiled}.pt"
        (history,) = fit(replica, cfg, Run(checkpoint=checkpoint))
        assert (getattr(method.model.general, "_compiled_call_impl", None) is not None) == compiled
        saved = torch.load(checkpoint, weights_only=False)
        runs.append((history, replica.predict(method.target_logits, fold.target_test.x), list(saved["state"])))
    (h0, p0, k0), (h1, p1, k1) = runs
    assert k0 == k1  # checkpoints load into an uncompiled model and back
    assert (p0 - p1).abs().max().item() < 1e-4
    for key, values in h0.items():
        assert h1[key] == pytest.approx(values, abs=1e-4), key


def test_the_alignment_weight_is_built_once_per_stage_not_per_epoch(monkeypatch):
    from domadapt.engine import loop

    built = []
    real = loop.build_schedule

    def counting(name, **options):
        built.append(name)
        return real(name, **options)

    monkeypatch.setattr(loop, "build_schedule", counting)
    fold = tiny_fold(shared=True)
    cfg = tiny_train(epochs=3, align_schedule="linear")  # train.align_schedule: built by the loop
    replicas = EagerReplica(tiny_method(fold, spec("align", loss="mmd"), cfg), 0, fold, CPU)
    fit(replicas, cfg)
    assert len(replicas.stages) == 1 and built == ["linear"]  # one stage of three epochs: built once


def test_a_stage_freezes_its_modules_while_it_runs_and_gives_their_flags_back(monkeypatch):
    fold = tiny_fold(shared=True)
    cfg = tiny_train(epochs=1, pretrain_epochs=1)
    method = tiny_method(fold, spec("pretrain_freeze"), cfg)
    replicas = EagerReplica(method, 0, fold, CPU)
    frozen_stage = next(s for s in replicas.stages if s.frozen)
    seen = []
    real_step = frozen_stage.step

    def step(batch, p):
        seen.append([p.requires_grad for m in frozen_stage.frozen for p in m.parameters()])
        return real_step(batch, p)

    frozen_stage.step = step
    fit(replicas, cfg)
    assert seen and not any(any(flags) for flags in seen)  # no gradient into a frozen module
    assert all(p.requires_grad for m in frozen_stage.frozen for p in m.parameters())  # flags back
