import dataclasses
import math

import pytest
import torch

from domadapt.methods import build_method
from domadapt.methods.base import Method, StepOutput
from domadapt.train import NonFiniteLossError, Trainer, information_maximization, predict_proba
from tiny import spec, tiny_fold, tiny_model, tiny_train

CPU = torch.device("cpu")


def _fit(method_name="target_only", seed=0, **train_kw):
    fold = tiny_fold()
    model = tiny_model(fold, seed=seed)
    cfg = tiny_train(**train_kw)
    method = build_method(spec(method_name), cfg)
    history = Trainer(cfg, device=CPU).fit(model, method, fold, seed=seed)
    probs = predict_proba(lambda x: method.target_logits(model.eval(), x), fold.target_test.x)
    return history, probs


def test_same_seed_same_numbers_twice():
    h1, p1 = _fit(seed=3)
    h2, p2 = _fit(seed=3)
    assert h1 == h2
    assert torch.equal(p1, p2)
    _, p3 = _fit(seed=4)
    assert not torch.equal(p1, p3)


def test_loss_decreases_and_history_has_every_term():
    history, _ = _fit(epochs=6)
    losses = history["target/train/loss"]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert set(history) >= {"target/train/task", "target/val/uar", "target/val/score"}


def test_nonfinite_loss_names_stage_epoch_batch_and_term():
    class Broken(Method):
        def stages(self, model, data):
            stage = self.target_stage(model, data)

            def step(batch, p):
                task = model(batch.x_t, "target").logits.sum() * 0
                return StepOutput(task=task, align=torch.tensor(math.nan))

            stage.step = step
            return [stage]

    fold = tiny_fold()
    cfg = tiny_train()
    with pytest.raises(NonFiniteLossError, match=r"stage 'target', epoch 1, batch 1: align term = nan"):
        Trainer(cfg, device=CPU).fit(tiny_model(fold), Broken(spec("broken"), cfg), fold, seed=0)


def test_best_validation_epoch_is_restored(monkeypatch):
    # Model selection keeps the best validation epoch, not the last one.
    fold = tiny_fold()
    cfg = tiny_train(epochs=4)
    model = tiny_model(fold)
    method = build_method(spec("target_only"), cfg)
    history = Trainer(cfg, device=CPU).fit(model, method, fold, seed=0)
    scores = history["target/val/score"]
    probs = predict_proba(lambda x: method.target_logits(model.eval(), x), fold.target_val.x)
    from domadapt.evaluate import segment_metrics

    uar = segment_metrics(fold.target_val.y.numpy(), probs.argmax(1).numpy(), num_classes=2)["uar"]
    assert uar == pytest.approx(max(scores))


def test_information_maximization_prefers_confident_diverse_predictions():
    confident = torch.tensor([[0.99, 0.01], [0.01, 0.99]])
    uniform = torch.full((2, 2), 0.5)
    collapsed = torch.tensor([[0.99, 0.01], [0.99, 0.01]])
    assert information_maximization(confident) > information_maximization(uniform)
    assert information_maximization(confident) > information_maximization(collapsed)


def test_unknown_optimizer_and_scheduler_are_named():
    from domadapt.errors import DomadaptError

    with pytest.raises(DomadaptError, match="train.optimizer 'sgdd'"):
        _fit(optimizer="sgdd")
    with pytest.raises(DomadaptError, match="train.scheduler 'poly'"):
        _fit(scheduler="poly")


def test_compiled_general_extractor_trains_like_eager_and_keeps_checkpoint_keys(tmp_path):
    # dropout 0: inductor draws dropout masks from its own random stream
    fold = tiny_fold()
    cfg = tiny_train(epochs=2)
    runs = []
    for compiled in (False, True):
        model = tiny_model(fold)
        for m in model.modules():
            if isinstance(m, torch.nn.modules.dropout._DropoutNd):
                m.p = 0.0
        method = build_method(spec("target_only"), cfg)
        checkpoint = tmp_path / f"{compiled}.pt"
        trainer = Trainer(dataclasses.replace(cfg, compile=compiled), device=CPU, checkpoint=checkpoint)
        history = trainer.fit(model, method, fold, seed=0)
        assert (getattr(model.general, "_compiled_call_impl", None) is not None) == compiled
        saved = torch.load(checkpoint, weights_only=False)
        probs = predict_proba(lambda x, m=method, net=model: m.target_logits(net.eval(), x), fold.target_test.x)
        runs.append((history, probs, list(saved["model"])))
    (h0, p0, k0), (h1, p1, k1) = runs
    assert k0 == k1  # checkpoints load into an uncompiled model and back
    assert (p0 - p1).abs().max().item() < 1e-4
    for key, values in h0.items():
        assert h1[key] == pytest.approx(values, abs=1e-4), key
