"""The adaptation methods beyond joint alignment (AdaBN, Tent, self-training, SHOT) and the
newer alignment losses through the engine: each trains on every backbone, vmaps where it
says it can, and keeps the promise of its setting (what it may and may not read)."""

from __future__ import annotations

import math

import pytest
import torch
from tiny import CPU, spec, tiny_fold, tiny_method, tiny_train, train

from domadapt.data import TARGET_TASK, DomainData
from domadapt.engine import EagerReplica, fit, vmap_support
from domadapt.errors import DomadaptError
from domadapt.methods import build_method
from domadapt.methods.self_training import pseudo_label_loss, pseudo_label_stats
from domadapt.models import build_backbone
from domadapt.models.tcn import SequenceBatchNorm
from domadapt.models.transfer import TransferModel

NEW_LOSSES = ["mcc", "bnm", "homm", "jmmd", "cdan", "cdan_e", "mdd"]
METHOD_SPECS = [spec("adabn"), spec("tent"), spec("self_training", warmup=0.3), spec("shot")]
LOSS_SPECS = [spec("align", loss=name, use_target_labels=False) for name in NEW_LOSSES]
BACKBONES = ["tim", "delta_tim"]


def model_for(fold, backbone: str, *, dropout: float = 0.0) -> TransferModel:
    tasks = {TARGET_TASK: 2}
    for s in fold.sources:
        tasks.setdefault(s.task, s.num_classes)
    general = build_backbone(backbone, in_channels=5, filters=8, levels=2, dropout=dropout)
    return TransferModel(general, tasks, specific_dim=8, dropout=dropout)


def fit_one(fold, s, cfg, backbone="tim", seed=0):
    torch.manual_seed(seed)
    replica = EagerReplica(build_method(s, cfg, model_for(fold, backbone)), seed, fold, CPU)
    (history,) = fit(replica, cfg)
    return history, replica


def _id(s):
    return s.options.get("loss", s.name)


class Guarded(DomainData):
    """A domain whose named fields raise when read (its length stays readable), once
    ``armed()`` says so: proof that a run does not read them."""

    def __init__(self, d: DomainData, fields: tuple[str, ...], armed=lambda: True) -> None:
        super().__init__(d.task, d.x, d.y, d.groups, d.num_classes, d.index)
        object.__setattr__(self, "_guard", (fields, armed, len(d.x)))

    def __getattribute__(self, name):
        fields, armed, _ = object.__getattribute__(self, "_guard")
        if name in fields and armed():
            raise AssertionError(f"{self.task if name != 'task' else '?'}: {name} was read")
        return super().__getattribute__(name)

    def __len__(self) -> int:
        return object.__getattribute__(self, "_guard")[2]


# -- every new entry trains, on two backbones ----------------------------------------------
@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("s", METHOD_SPECS + LOSS_SPECS, ids=_id)
def test_trains_on_every_backbone_without_target_labels(s, backbone):
    fold = tiny_fold(shared=True)
    fold.target_train.y = torch.full_like(fold.target_train.y, 99)  # would crash if read
    history, replica = fit_one(fold, s, tiny_train(), backbone)
    assert history and all(math.isfinite(v) for values in history.values() for v in values)
    assert not any(key.endswith("val/uar") and not key.startswith("source/") for key in history)
    probs = replica.predict(replica.method.target_logits, fold.target_test.x)
    assert probs.shape == (1, len(fold.target_test), 2) and torch.isfinite(probs).all()


@pytest.mark.parametrize("s", LOSS_SPECS, ids=_id)
def test_alignment_term_moves_during_training(s):
    history, _ = fit_one(tiny_fold(shared=True), s, tiny_train(epochs=3))
    align = history["joint/train/align"]
    assert all(v != 0.0 for v in align) and len(set(align)) == len(align), align


@pytest.mark.parametrize("s", METHOD_SPECS + LOSS_SPECS, ids=_id)
def test_builds_its_modules_at_construction(s):
    fold = tiny_fold(shared=True)
    method = tiny_method(fold, s, tiny_train())
    before = {k: v.clone() for k, v in method.state_dict().items()}
    method.stages(fold)
    after = method.state_dict()
    assert list(after) == list(before) and all(torch.equal(before[k], after[k]) for k in before)


SHARED_HEAD = {"jmmd", "cdan", "cdan_e", "mdd"}  # compare source and target predictions of one head


@pytest.mark.parametrize("s", METHOD_SPECS + LOSS_SPECS, ids=_id)
def test_different_label_sets_train_or_fail_with_a_clear_error(s):
    fold = tiny_fold(shared=False)
    if s.name != "align":  # every new method predicts the target with the source-trained head
        with pytest.raises(DomadaptError, match="share one label set"):
            tiny_method(fold, s, tiny_train())
    elif _id(s) in SHARED_HEAD:
        with pytest.raises(DomadaptError, match="needs num_classes|needs logits_s"):
            train(fold, s, tiny_train(epochs=1))
    else:  # mcc, bnm (target predictions only) and homm (features only)
        (history,), _, _ = train(fold, s, tiny_train(epochs=1))
        assert all(math.isfinite(v) for values in history.values() for v in values)


VMAPPED = [spec("adabn"), spec("tent"), spec("self_training", warmup=0.3)] + LOSS_SPECS


@pytest.mark.parametrize("s", VMAPPED, ids=_id)
def test_vmapped_seeds_equal_eager_runs(s):
    fold = tiny_fold(shared=True)
    cfg = tiny_train(epochs=2)
    assert vmap_support(tiny_method(fold, s, cfg)).ok
    histories, probs, _ = train(fold, s, cfg, [0, 1], dropout=0.0)
    for i, seed in enumerate([0, 1]):
        (history,), eager, _ = train(fold, s, cfg, [seed], dropout=0.0)
        assert (probs[i] - eager[0]).abs().max().item() < 1e-4
        for key, values in history.items():
            assert histories[i][key] == pytest.approx(values, abs=1e-4), key


def test_shot_says_why_it_cannot_be_vmapped():
    fold = tiny_fold(shared=True)
    support = vmap_support(tiny_method(fold, spec("shot"), tiny_train()))
    assert not support.ok and "epoch start" in support.why


# -- AdaBN ---------------------------------------------------------------------------------
def test_adabn_changes_batchnorm_statistics_only_and_to_the_targets():
    fold = tiny_fold(shared=True)
    cfg = tiny_train(batch_size=20)  # 40 target rows: equal batches, so the mean of batch means is the mean
    torch.manual_seed(0)
    replica = EagerReplica(build_method(spec("adabn"), cfg, model_for(fold, "tim", dropout=0.2)), 0, fold, CPU)
    snapshot = {}
    adapt = replica.stages[1]
    adapt.on_epoch_start = lambda e: snapshot.update({k: v.clone() for k, v in replica.method.state_dict().items()})
    momenta = [m.momentum for m in replica.method.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    fit(replica, cfg)
    after = replica.method.state_dict()
    params = {n for n, _ in replica.method.named_parameters()}
    assert all(torch.equal(snapshot[k], after[k]) for k in params)  # no parameter moved
    assert any(not torch.equal(snapshot[k], after[k]) for k in after if k.endswith("running_mean"))
    first = next(m for m in replica.method.model.modules() if isinstance(m, torch.nn.BatchNorm1d))
    seen = []
    handle = first.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    with torch.no_grad():
        replica.method.eval()
        replica.method.target_logits(fold.target_train.x)
    handle.remove()
    assert isinstance(first, SequenceBatchNorm)  # TIM's: its input is channel-major [C, B, T]
    torch.testing.assert_close(first.running_mean, seen[0].mean(dim=(1, 2)), rtol=1e-4, atol=1e-5)
    # the averaging momentum lives only inside each step: the layers keep their own
    assert [m.momentum for m in replica.method.modules() if isinstance(m, torch.nn.BatchNorm1d)] == momenta


def test_adabn_and_tent_need_a_batchnorm():
    class NoNorm(torch.nn.Module):
        out_dim = 5

        def forward(self, x):
            return x.mean(-1)

    for name in ("adabn", "tent"):
        with pytest.raises(DomadaptError, match=f"method {name} .*no BatchNorm1d"):
            build_method(spec(name), tiny_train(), TransferModel(NoNorm(), {TARGET_TASK: 2}, specific_dim=8, dropout=0.0, general_norm="none"))


# -- Tent ------------------------------------------------------------------------------------
def test_tent_reads_no_target_label_and_no_training_time_target_data_and_trains_affine_only():
    fold = tiny_fold(shared=True)
    fold.target_train = Guarded(fold.target_train, ("x", "y", "take", "subset"))
    fold.target_val = Guarded(fold.target_val, ("x", "y", "take", "subset"))
    fold.target_test = Guarded(fold.target_test, ("y",))  # its rows are what Tent adapts on
    cfg = tiny_train()
    torch.manual_seed(0)
    replica = EagerReplica(build_method(spec("tent"), cfg, model_for(fold, "tim", dropout=0.2)), 0, fold, CPU)
    snapshot = {}
    replica.stages[1].on_epoch_start = lambda e: snapshot.update(
        {k: v.clone() for k, v in replica.method.named_parameters()})
    (history,) = fit(replica, cfg)
    assert "tent/val/im" in history and "tent/train/task" in history
    affine = {n for n, m in replica.method.named_modules() if isinstance(m, torch.nn.BatchNorm1d)}
    moved = {n for n, p in replica.method.named_parameters() if not torch.equal(snapshot[n], p)}
    assert moved and all(n.rsplit(".", 1)[0] in affine for n in moved), moved


# -- self-training ---------------------------------------------------------------------------
def test_pseudo_label_loss_counts_confident_rows_only():
    logits = torch.tensor([[4.0, 0.0], [0.1, 0.0], [0.0, 5.0]], requires_grad=True)
    loss, stats = pseudo_label_loss(logits, 0.9)
    ce = torch.nn.functional.cross_entropy(logits.detach(), torch.tensor([0, 0, 1]), reduction="none")
    assert loss.item() == pytest.approx((ce[0] + ce[2]).item() / 3)
    assert stats["confident"].item() == pytest.approx(2 / 3)
    loss.backward()
    assert logits.grad[1].abs().sum() == 0  # an unconfident row teaches nothing


def test_self_training_switches_pseudo_labels_on_after_the_warm_up():
    history, _ = fit_one(tiny_fold(shared=True), spec("self_training", warmup=0.5, threshold=0.5), tiny_train(epochs=4))
    lam = history["joint/train/lam"]
    assert lam[0] == 0.0 and lam[-1] == 1.0
    # a binary target's top probability is >= 0.5 for every row: all are confident at 0.5
    assert history["joint/train/confident"][-1] == pytest.approx(1.0)


# -- SHOT ------------------------------------------------------------------------------------
def test_shot_reads_no_source_segment_after_saving_the_source_model(tmp_path):
    path = tmp_path / "source.pt"
    fold = tiny_fold(shared=True)
    fold.target_train.y = torch.full_like(fold.target_train.y, 99)  # never read either
    plain_sources, plain_val = fold.sources, fold.source_val
    fold.sources = [Guarded(d, ("x", "y", "take", "subset"), armed=path.exists) for d in plain_sources]
    fold.source_val = [Guarded(d, ("x", "y", "take", "subset"), armed=path.exists) for d in plain_val]
    cfg = tiny_train()
    history, replica = fit_one(fold, spec("shot", source_model=str(path)), cfg)
    assert path.exists() and "source/val/uar" in history and "shot/val/im" in history
    saved = torch.load(path, weights_only=True)
    head = replica.method.model.head_for(TARGET_TASK)
    prefix = next(n for n, m in replica.method.model.named_modules() if m is head)
    for key, value in head.state_dict().items():  # the source hypothesis is kept exactly
        assert torch.equal(saved[f"{prefix}.{key}"], value)
    assert any(not torch.equal(saved[k], v) for k, v in replica.method.model.state_dict().items())

    # A second run starts from the saved model and needs no source data at all.
    fold.sources = [Guarded(d, ("x", "y", "take", "subset")) for d in plain_sources]
    fold.source_val = [Guarded(d, ("x", "y", "take", "subset")) for d in plain_val]
    torch.manual_seed(1)
    method = build_method(spec("shot", source_model=str(path)), cfg, model_for(fold, "tim"))
    assert all(torch.equal(saved[k], v) for k, v in method.model.state_dict().items())
    (history,) = fit(EagerReplica(method, 1, fold, CPU), cfg)
    assert not any(k.startswith("source/") for k in history) and "shot/train/entropy" in history


def test_shot_pseudo_labels_are_nearest_centroids_of_the_epoch_start():
    fold = tiny_fold(shared=True)
    method = tiny_method(fold, spec("shot"), tiny_train(), dropout=0.0)
    labels = method.cluster(fold.target_train.x)
    with torch.no_grad():
        out = method.model(fold.target_train.x, TARGET_TASK)
    f = torch.cat([out.specific, torch.ones(len(out.specific), 1)], 1)
    f = f / f.norm(dim=1, keepdim=True)
    c = method.centroids / method.centroids.norm(dim=1, keepdim=True)
    present = torch.nn.functional.one_hot(out.logits.argmax(1), 2).sum(0) > 0
    d = (1 - f @ c.T).masked_fill(~present, float("inf"))
    assert torch.equal(labels, d.argmin(1))
    hard = torch.nn.functional.one_hot(labels, 2).float()  # centroids are the refined (hard) means
    expected = hard.T @ f / (hard.sum(0)[:, None] + 1e-8)
    torch.testing.assert_close(method.centroids, expected)


def test_shot_refuses_a_source_model_of_another_architecture(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(DomadaptError, match=f"SHOT: source_model {path}"):
        tiny_method(tiny_fold(shared=True), spec("shot", source_model=str(path)), tiny_train())


# -- SND validator ---------------------------------------------------------------------------
def test_snd_matches_the_papers_formula_and_prefers_clustered_predictions():
    import numpy as np

    from domadapt.engine.scoring import soft_neighborhood_density

    probs = torch.softmax(torch.randn(30, 4, generator=torch.Generator().manual_seed(0)) * 2, 1)
    p = probs.double().numpy()
    p = p / np.linalg.norm(p, axis=1, keepdims=True)
    sim = (p @ p.T)[~np.eye(30, dtype=bool)].reshape(30, 29) / 0.05  # others only, temperature 0.05
    soft = np.exp(sim - sim.max(1, keepdims=True))
    soft /= soft.sum(1, keepdims=True)
    ref = -(soft * np.log(soft)).sum(1).mean()
    assert soft_neighborhood_density(probs) == pytest.approx(ref, rel=1e-4)
    clustered = torch.nn.functional.one_hot(torch.arange(30) % 3, 4).float() * 0.97 + 0.01
    assert soft_neighborhood_density(clustered) > soft_neighborhood_density(probs)


def test_unsupervised_selection_snd_replaces_im_and_labelled_stages_keep_labels():
    import dataclasses

    cfg = dataclasses.replace(tiny_train(), unsupervised_selection="snd")
    history, _ = fit_one(tiny_fold(shared=True), spec("align", loss="bnm", use_target_labels=False), cfg)
    assert "joint/val/snd" in history and "joint/val/im" not in history
    assert history["joint/val/score"] == history["joint/val/snd"]
    history, _ = fit_one(tiny_fold(shared=True), spec("adabn"), cfg)
    assert "source/val/uar" in history and "adabn/val/snd" in history


def test_pseudo_label_stats_score_the_argmax_against_the_true_labels():
    logits = torch.tensor([[4.0, 0.0], [0.1, 0.0], [0.0, 5.0], [3.0, 0.0]])
    stats = pseudo_label_stats(logits, torch.tensor([0, 1, 0, 1]), 0.9)
    # argmax 0, 0, 1, 0: right on row 0 only; rows 0, 2, 3 are confident
    assert stats["target_acc"].item() == pytest.approx(1 / 4)
    assert stats["confident_correct"].item() == pytest.approx(1 / 4)


def test_self_training_history_scores_its_pseudo_labels_without_training_on_them():
    """The per-epoch pseudo-label accuracy is in the history; the labels it is scored against
    change nothing else: with all-0 or all-1 training target labels the run is the same and
    the two accuracies add up to 1 (two classes)."""
    histories = []
    for label in (0, 1):
        fold = tiny_fold(shared=True)
        fold.target_train.y = torch.full_like(fold.target_train.y, label)
        history, _ = fit_one(fold, spec("self_training", warmup=0.25, threshold=0.5), tiny_train(epochs=3))
        histories.append(history)
    h0, h1 = histories
    assert h0["joint/train/loss"] == h1["joint/train/loss"]
    for a0, a1 in zip(h0["joint/train/target_acc"], h1["joint/train/target_acc"]):
        assert a0 + a1 == pytest.approx(1.0)
    for c0, c1, conf in zip(h0["joint/train/confident_correct"], h1["joint/train/confident_correct"],
                            h0["joint/train/confident"]):
        assert c0 + c1 == pytest.approx(conf)
