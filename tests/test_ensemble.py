"""K seeds in one vmapped pass equal K sequential Trainer runs (dropout 0), and the pieces
that make it so: per-model gradient clipping, Adam over stacked tensors, clear refusals."""

from __future__ import annotations

import pytest
import torch
from tiny import TINY_BACKBONE, spec, tiny_fold, tiny_train

from domadapt.data import TARGET_TASK
from domadapt.ensemble import clip_grad_norm_per_model_, fit_seeds, vmap_supported
from domadapt.errors import DomadaptError
from domadapt.methods import build_method
from domadapt.models import build_backbone
from domadapt.models.transfer import TransferModel
from domadapt.train import Trainer, predict_proba

CPU = torch.device("cpu")
SEEDS = [0, 1, 2]
# Grouped (vmapped) convolutions sum in another order than K single ones: rounding only.
PROB_TOL = 1e-4
HISTORY_TOL = 1e-4


def builder(fold, *, dropout: float = 0.0, **backbone):
    """``seed -> model`` like tests/tiny.py's tiny_model, every dropout set to ``dropout``."""

    def build(seed: int) -> TransferModel:
        tasks = {TARGET_TASK: 2}
        for s in fold.sources:
            tasks.setdefault(s.task, s.num_classes)
        general = build_backbone("tim", in_channels=5, **{**TINY_BACKBONE, "dropout": dropout, **backbone})
        return TransferModel(general, tasks, specific_dim=8, dropout=dropout)

    return build


def sequential(cfg, fold, method_spec, seed, build=None):
    torch.manual_seed(seed)
    model = (build or builder(fold))(seed)
    method = build_method(method_spec, cfg)
    history = Trainer(cfg, device=CPU).fit(model, method, fold, seed=seed)
    model.eval()
    method.eval()
    return history, predict_proba(lambda x: method.target_logits(model, x), fold.target_test.x)


def assert_same_as_sequential(results, cfg, fold, method_spec, build=None):
    assert [r.seed for r in results] == SEEDS
    for r in results:
        history, probs = sequential(cfg, fold, method_spec, r.seed, build)
        assert (r.probs_test - probs).abs().max().item() < PROB_TOL
        assert set(r.history) == set(history)
        for key, values in history.items():
            assert r.history[key] == pytest.approx(values, abs=HISTORY_TOL), key


@pytest.mark.parametrize(
    "name, options, shared",
    [
        ("target_only", {}, False),
        ("align", {"loss": "mmd"}, True),  # class context passed to the loss, shared head
        ("pretrain_finetune", {}, False),  # two stages, lr multiplier, best state per stage
        ("align", {"loss": "sinkhorn", "use_target_labels": False}, False),  # per-model loss, IM selection
    ],
)
def test_vmapped_seeds_equal_sequential_trainer_runs(name, options, shared):
    fold = tiny_fold(shared=shared)
    cfg = tiny_train(epochs=3, grad_clip=0.05)  # a small clip: clipping is active every step
    method_spec = spec(name, **options)
    results = fit_seeds(cfg, builder(fold), method_spec, fold, SEEDS, device=CPU)
    assert_same_as_sequential(results, cfg, fold, method_spec)
    # The seeds really are different models.
    assert not torch.allclose(results[0].probs_test, results[1].probs_test)


def test_frozen_extractor_keeps_its_pretrained_weights_per_model():
    fold = tiny_fold()
    cfg = tiny_train(epochs=2)
    results = fit_seeds(cfg, builder(fold), spec("pretrain_freeze"), fold, SEEDS, device=CPU)
    assert_same_as_sequential(results, cfg, fold, spec("pretrain_freeze"))


def test_result_state_dict_rebuilds_the_model():
    fold = tiny_fold()
    results = fit_seeds(tiny_train(epochs=2), builder(fold), spec("target_only"), fold, [5, 6], device=CPU)
    model = builder(fold)(0)
    model.load_state_dict(results[1].state_dict)
    probs = predict_proba(lambda x: model.eval()(x, TARGET_TASK).logits, fold.target_test.x)
    assert (probs - results[1].probs_test).abs().max().item() < PROB_TOL


def test_methods_that_cannot_be_vmapped_say_why():
    ok, why = vmap_supported(spec("multitrain_ae"))
    assert not ok and "feature banks" in why
    fold = tiny_fold()
    with pytest.raises(DomadaptError, match="cannot train its seeds in one vmapped pass: multitrain_ae"):
        fit_seeds(tiny_train(), builder(fold), spec("multitrain_ae"), fold, SEEDS, device=CPU)
    ok, why = vmap_supported(spec("align", loss="energy"))
    assert ok and "once per model" in why
    assert vmap_supported(spec("joint")) == (True, "vmapped")
    with pytest.raises(DomadaptError, match="no seeds"):
        fit_seeds(tiny_train(), builder(fold), spec("joint"), fold, [], device=CPU)


def test_dann_discriminator_is_stacked_per_seed():
    # Our GradientReversal is plain tensor arithmetic (no autograd.Function), so vmap batches
    # it and the discriminator's parameters are stacked per seed like the model's.
    method_spec = spec("align", loss="dann")
    assert vmap_supported(method_spec) == (True, "vmapped")
    assert vmap_supported(spec("ddg", dann=True)) == (True, "vmapped")
    fold = tiny_fold()
    cfg = tiny_train(epochs=2)
    build = builder(fold, filters=12)  # features 12 wide: the discriminator is built for that width
    results = fit_seeds(cfg, build, method_spec, fold, SEEDS, device=CPU)
    assert_same_as_sequential(results, cfg, fold, method_spec, build=build)
    assert "joint/train/disc_acc" in results[0].history


def test_dropout_trains_but_equality_is_distributional_only():
    fold = tiny_fold()
    results = fit_seeds(tiny_train(epochs=2), builder(fold, dropout=0.3), spec("target_only"), fold, [0, 0], device=CPU)
    # Same seed, same init and batches, but vmap draws each model's dropout masks apart.
    assert all(torch.isfinite(r.probs_test).all() for r in results)
    assert not torch.equal(results[0].probs_test, results[1].probs_test)


def test_clip_grad_norm_per_model_matches_clip_grad_norm_for_each_model():
    g = torch.Generator().manual_seed(0)
    shapes = [(4, 3), (7,), (2, 2, 5)]
    scales = torch.tensor([0.01, 1.0, 10.0])  # model 0 under the limit, the others clipped
    grads = [torch.randn(3, *s, generator=g) * scales.view(3, *([1] * len(s))) for s in shapes]
    stacked = [torch.zeros(3, *s, requires_grad=True) for s in shapes]
    for p, gr in zip(stacked, grads):
        p.grad = gr.clone()
    norms = clip_grad_norm_per_model_(stacked, 1.0)
    for k in range(3):
        single = [torch.zeros(*s, requires_grad=True) for s in shapes]
        for p, gr in zip(single, grads):
            p.grad = gr[k].clone()
        norm = torch.nn.utils.clip_grad_norm_(single, 1.0)
        assert norms[k].item() == pytest.approx(norm.item(), rel=1e-6)
        for p, q in zip(single, stacked):
            torch.testing.assert_close(q.grad[k], p.grad, rtol=1e-6, atol=1e-7)
    assert norms[0] < 1.0 < norms[1]


@pytest.mark.parametrize("kind", [torch.optim.Adam, torch.optim.AdamW])
def test_one_adam_over_stacked_tensors_is_k_adams(kind):
    # Why fit_seeds needs no optimiser of its own: Adam's update is elementwise.
    g = torch.Generator().manual_seed(1)
    init = [torch.randn(3, 4, 5, generator=g), torch.randn(3, 6, generator=g)]
    grads = [[torch.randn_like(t) for t in init] for _ in range(5)]
    stacked = [t.clone().requires_grad_() for t in init]
    opt = kind([{"params": stacked[:1], "lr": 1e-2}, {"params": stacked[1:], "lr": 1e-3}], weight_decay=0.1)
    for step in grads:
        for p, gr in zip(stacked, step):
            p.grad = gr.clone()
        opt.step()
    for k in range(3):
        single = [t[k].clone().requires_grad_() for t in init]
        opt_k = kind([{"params": single[:1], "lr": 1e-2}, {"params": single[1:], "lr": 1e-3}], weight_decay=0.1)
        for step in grads:
            for p, gr in zip(single, step):
                p.grad = gr[k].clone()
            opt_k.step()
        for p, q in zip(single, stacked):
            torch.testing.assert_close(q.detach()[k], p.detach(), rtol=0, atol=1e-7)


class _Killed(Exception):
    pass


@pytest.mark.parametrize("kill_after_save", [1, 2, 4])  # mid stage 1, end of stage 1, mid stage 2
def test_checkpoint_resume_gives_the_uninterrupted_result(tmp_path, monkeypatch, kill_after_save):
    import domadapt.ensemble as ensemble

    fold = tiny_fold()
    cfg = tiny_train(epochs=3, pretrain_epochs=2)
    method_spec = spec("pretrain_finetune")
    build = builder(fold, dropout=0.3)  # dropout on: the random state must be restored too
    plain = fit_seeds(cfg, build, method_spec, fold, SEEDS, device=CPU)

    checkpoint = tmp_path / "fold0-seeds0-2.pt"
    saves = []
    real_save = ensemble.atomic_save

    def save_then_die(obj, path):
        real_save(obj, path)
        saves.append(path)
        if len(saves) == kill_after_save:
            raise _Killed

    monkeypatch.setattr(ensemble, "atomic_save", save_then_die)
    with pytest.raises(_Killed):
        fit_seeds(cfg, build, method_spec, fold, SEEDS, device=CPU, checkpoint=checkpoint)
    monkeypatch.setattr(ensemble, "atomic_save", real_save)
    assert checkpoint.exists()
    resumed = fit_seeds(cfg, build, method_spec, fold, SEEDS, device=CPU, checkpoint=checkpoint, resume=True)
    for a, b in zip(plain, resumed):
        assert a.history == b.history
        assert torch.equal(a.probs_test, b.probs_test)


def test_resume_refuses_a_checkpoint_of_other_seeds(tmp_path):
    fold = tiny_fold()
    cfg = tiny_train(epochs=1)
    checkpoint = tmp_path / "c.pt"
    fit_seeds(cfg, builder(fold), spec("target_only"), fold, [0, 1], device=CPU, checkpoint=checkpoint)
    with pytest.raises(DomadaptError, match=r"c\.pt: checkpoint of seeds \[0, 1\], this run trains seeds \[0, 2\]"):
        fit_seeds(cfg, builder(fold), spec("target_only"), fold, [0, 2], device=CPU, checkpoint=checkpoint, resume=True)


def test_one_tensorboard_row_per_seed_and_epoch():
    class Recorder:
        def __init__(self):
            self.rows = []

        def add_scalar(self, tag, value, step):
            self.rows.append((tag, value, step))

    fold = tiny_fold()
    writers = [Recorder(), Recorder()]
    results = fit_seeds(tiny_train(epochs=2), builder(fold), spec("joint"), fold, [0, 1], device=CPU, writers=writers)
    for w, r in zip(writers, results):
        for key, values in r.history.items():
            assert [(v, s) for t, v, s in w.rows if t == key] == [(v, i) for i, v in enumerate(values)]
    with pytest.raises(DomadaptError, match="1 writers for 2 seeds"):
        fit_seeds(tiny_train(epochs=1), builder(fold), spec("joint"), fold, [0, 1], device=CPU, writers=writers[:1])
