"""K replicas in one vmapped pass equal K eager runs (dropout 0), and the pieces that make
it so: per-replica gradient clipping, Adam over stacked tensors, clear refusals."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from tiny import CPU, spec, tiny_fold, tiny_method, tiny_model, tiny_train, train

from domadapt.engine import EagerReplica, VmappedReplicas, VmapSupport, clip_grad_norm_per_replica_, fit, vmap_support
from domadapt.errors import DomadaptError
from domadapt.methods import METHODS, Method, build_method

SEEDS = [0, 1, 2]
# Grouped (vmapped) convolutions sum in another order than K single ones: rounding only.
PROB_TOL = 1e-4
HISTORY_TOL = 1e-4


def assert_same_as_eager(fold, method_spec, cfg, seeds=SEEDS, **model_kw):
    histories, probs, _ = train(fold, method_spec, cfg, seeds, dropout=0.0, **model_kw)
    for i, seed in enumerate(seeds):
        (history,), eager_probs, _ = train(fold, method_spec, cfg, [seed], dropout=0.0, **model_kw)
        assert (probs[i] - eager_probs[0]).abs().max().item() < PROB_TOL
        assert set(histories[i]) == set(history)
        for key, values in history.items():
            assert histories[i][key] == pytest.approx(values, abs=HISTORY_TOL), key
    return histories, probs


@pytest.mark.parametrize(
    "name, options, shared",
    [
        ("target_only", {}, False),
        ("align", {"loss": "mmd"}, True),  # class context passed to the loss, shared head
        ("pretrain_finetune", {}, False),  # two stages, lr multiplier, best state per stage
        ("pretrain_freeze", {}, False),  # a frozen extractor keeps its pre-trained weights per replica
        ("align", {"loss": "sinkhorn", "use_target_labels": False}, False),  # per-replica loss, IM selection
    ],
)
def test_vmapped_replicas_equal_eager_runs(name, options, shared):
    fold = tiny_fold(shared=shared)
    cfg = tiny_train(epochs=3, grad_clip=0.05)  # a small clip: clipping is active every step
    _, probs = assert_same_as_eager(fold, spec(name, **options), cfg)
    assert not torch.allclose(probs[0], probs[1])  # the seeds really are different models


def test_one_vmapped_replica_equals_one_eager_replica():
    fold = tiny_fold()
    cfg = tiny_train(epochs=2)
    make = lambda: tiny_method(fold, spec("pretrain_finetune"), cfg, seed=4, dropout=0.0)  # noqa: E731
    vm, eager = VmappedReplicas([make()], [4], fold, CPU), EagerReplica(make(), 4, fold, CPU)
    h_v, h_e = fit(vm, cfg), fit(eager, cfg)
    for key, values in h_e[0].items():
        assert h_v[0][key] == pytest.approx(values, abs=HISTORY_TOL), key
    p_v = vm.predict(vm.method.target_logits, fold.target_test.x)
    p_e = eager.predict(eager.method.target_logits, fold.target_test.x)
    assert (p_v - p_e).abs().max().item() < PROB_TOL


def test_exported_replica_predicts_what_the_stack_predicts():
    fold = tiny_fold()
    _, probs, replicas = train(fold, spec("target_only"), tiny_train(epochs=2), [5, 6])
    method = replicas.export(1)
    method.eval()
    exported = EagerReplica(method, 6, fold, CPU).predict(method.target_logits, fold.target_test.x)
    assert (exported[0] - probs[1]).abs().max().item() < PROB_TOL


def test_methods_that_cannot_be_vmapped_say_why():
    fold = tiny_fold()
    cfg = tiny_train()
    support = vmap_support(tiny_method(fold, spec("multitrain_ae"), cfg))
    assert not support.ok and "feature banks" in support.why
    with pytest.raises(DomadaptError, match="MultitrainAE cannot train its seeds in one vmapped pass"):
        VmappedReplicas([tiny_method(fold, spec("multitrain_ae"), cfg, seed=s) for s in SEEDS], SEEDS, fold, CPU)
    support = vmap_support(tiny_method(fold, spec("align", loss="energy"), cfg))
    assert support.ok and "once per replica" in support.why and support.per_replica == ("loss",)
    assert vmap_support(tiny_method(fold, spec("joint"), cfg)) == VmapSupport(True, "vmapped")


def test_dann_discriminator_is_stacked_per_replica():
    # Our GradientReversal is plain tensor arithmetic (no autograd.Function), so vmap batches
    # it and the discriminator's parameters are stacked per replica like the model's.
    fold = tiny_fold()
    cfg = tiny_train(epochs=2)
    assert vmap_support(tiny_method(fold, spec("ddg", dann=True), cfg)) == VmapSupport(True, "vmapped")
    histories, _ = assert_same_as_eager(fold, spec("align", loss="dann"), cfg, filters=12)
    assert "joint/train/disc_acc" in histories[0]


def test_dropout_trains_but_equality_is_distributional_only():
    _, probs, _ = train(tiny_fold(), spec("target_only"), tiny_train(epochs=2), [0, 0], dropout=0.3)
    # Same seed, same init and batches, but vmap draws each replica's dropout masks apart.
    assert torch.isfinite(probs).all()
    assert not torch.equal(probs[0], probs[1])


@dataclass(frozen=True)
class _Scale:
    weight: float = 0.5


def test_a_method_registered_in_a_test_module_runs_through_both_paths():
    @METHODS.register("test_scaled_target", doc="target-only with its loss scaled (test)")
    class ScaledTarget(Method):
        Options = _Scale

        def stages(self, data):
            stage = self.target_stage(data)
            inner = stage.step

            def step(batch, p):
                out = inner(batch, p)
                out.task = out.task * self.options.weight
                return out

            stage.step = step
            return [stage]

    try:
        fold = tiny_fold()
        cfg = tiny_train(epochs=2)
        s = spec("test_scaled_target", weight=0.25)
        assert isinstance(build_method(s, cfg, tiny_model(fold)), ScaledTarget)
        histories, _ = assert_same_as_eager(fold, s, cfg, seeds=[0, 1])
        (plain,), _, _ = train(fold, spec("target_only"), cfg, [0], dropout=0.0)
        assert histories[0]["target/train/task"][0] == pytest.approx(0.25 * plain["target/train/task"][0], abs=HISTORY_TOL)
    finally:
        METHODS._entries.pop("test_scaled_target", None)


def test_clip_grad_norm_per_replica_matches_clip_grad_norm_for_each_model():
    g = torch.Generator().manual_seed(0)
    shapes = [(4, 3), (7,), (2, 2, 5)]
    scales = torch.tensor([0.01, 1.0, 10.0])  # replica 0 under the limit, the others clipped
    grads = [torch.randn(3, *s, generator=g) * scales.view(3, *([1] * len(s))) for s in shapes]
    stacked = [torch.zeros(3, *s, requires_grad=True) for s in shapes]
    for p, gr in zip(stacked, grads):
        p.grad = gr.clone()
    norms = clip_grad_norm_per_replica_(stacked, 1.0)
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
    # Why the vmapped replicas need no optimiser of their own: Adam's update is elementwise.
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


def test_replicas_given_the_rows_vmap_support_probe_no_loss_again(monkeypatch):
    # The runner probes a row once (plan) and hands the result to every unit it builds.
    from domadapt.engine import vmapping

    fold = tiny_fold()
    cfg = tiny_train()
    s = spec("align", loss="energy")
    support = vmap_support(tiny_method(fold, s, cfg))

    def no_probe(*args, **kwargs):
        raise AssertionError("a loss was probed again")

    monkeypatch.setattr(vmapping, "probe_loss", no_probe)
    replicas = VmappedReplicas([tiny_method(fold, s, cfg, seed=i) for i in SEEDS], SEEDS, fold, CPU, support=support)
    loss = dict(replicas.method.named_modules())[support.per_replica[0]]
    assert loss.per_replica  # the geomloss loss runs once per replica (its declared flag, no patched method)
    assert "forward_with_stats" not in vars(loss)
    with pytest.raises(AssertionError, match="probed again"):  # without it, the replicas probe
        VmappedReplicas([tiny_method(fold, s, cfg, seed=i) for i in SEEDS], SEEDS, fold, CPU)
