"""The timnet_paper preset's model and training against the official graph's facts
(Jiaxin-Ye/TIM-Net_SER, Code/TIMNET.py, Model.py, main.py; Keras defaults)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from domadapt.config import MethodSpec, TrainConfig
from domadapt.recipe_loader import build_config, load_recipe
from domadapt.errors import DomadaptError
from domadapt.run import build_model
from domadapt.models.tcn import CausalConv1d
from domadapt.models.transfer import apply_init
from tiny import CPU, spec, tiny_fold, tiny_method, tiny_model


def paper_model(recipe: str, n_classes: int) -> nn.Module:
    """The model the recipe builds for a target of ``n_classes`` (no source), as a run does."""
    cfg = build_config(load_recipe(recipe))
    domains = SimpleNamespace(
        target_segments=SimpleNamespace(x=torch.zeros(2, 39, 172)),
        target=SimpleNamespace(classes=tuple(f"c{k}" for k in range(n_classes))),
        sources=[],
        shared_labels=True,
    )
    torch.manual_seed(0)
    return build_model(cfg, domains, cfg.methods[0])


def trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_casia_preset_has_the_official_trainable_parameter_count():
    model = paper_model("timnet_paper_casia", 6)
    # backbone 104,216 (tests/unit/models/test_tim.py) + Dense(6) on the 39-d vector: 39 * 6 + 6
    assert trainable(model.general) == 104_216
    assert trainable(model) == 104_216 + 39 * 6 + 6 == 104_456
    head = model.head_for("target")
    assert isinstance(head, nn.Linear) and (head.in_features, head.out_features) == (39, 6)
    assert isinstance(model.specific_for("target"), nn.Identity)  # no hidden layer
    assert not isinstance(model.general, nn.Sequential)  # the backbone itself: no bottleneck BatchNorm


def test_iemocap_preset_uses_ten_levels():
    model = paper_model("timnet_paper_iemocap", 4)
    assert model.general.options.levels == 10
    blocks = model.general.encoder.forward_blocks
    assert [b.body[0].dilation[0] for b in blocks] == [2**k for k in range(10)]
    # prepare 3,120 + 10 levels x 2 directions x 6,318 + 10 fusion weights + Dense(4)
    assert trainable(model) == 3_120 + 10 * 2 * 6_318 + 10 + 39 * 4 + 4


def test_batchnorm_is_keras_and_every_tab_has_it():
    model = paper_model("timnet_paper_casia", 6)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(norms) == 8 * 2 * 2  # two per TAB, 8 levels, 2 directions; no bottleneck norm
    assert {(m.momentum, m.eps) for m in norms} == {(0.01, 1e-3)}


def test_keras_initialisation_statistics():
    model = paper_model("timnet_paper_casia", 6)
    convs = [m for m in model.general.modules() if isinstance(m, CausalConv1d) and m.kernel_size == (2,)]
    assert len(convs) == 32
    for m in [*convs, model.head_for("target")]:
        assert torch.count_nonzero(m.bias) == 0
    # Glorot-uniform on a 39 -> 39, k = 2 conv: U(-a, a), a = sqrt(6 / (78 + 78)), std a / sqrt(3)
    w = torch.cat([m.weight.flatten() for m in convs])
    a = math.sqrt(6 / (39 * 2 + 39 * 2))
    assert w.abs().max() <= a
    assert w.std().item() == pytest.approx(a / math.sqrt(3), rel=0.03)
    # PyTorch's default (kaiming_uniform, a = sqrt(5)) would be U(-1/sqrt(78), 1/sqrt(78)): std 0.065, not 0.113
    assert w.std().item() > 1.5 / math.sqrt(78) / math.sqrt(3)
    head = model.head_for("target").weight
    limit = math.sqrt(6 / (39 + 6))
    assert head.abs().max() <= limit and head.abs().max() > 0.8 * limit
    # Keras' "uniform" weight layer is left as built: U(-0.05, 0.05)
    assert model.general.fusion.weight.abs().max() <= 0.05


def test_torch_init_leaves_the_model_as_built():
    fold = tiny_fold()
    torch.manual_seed(0)
    a = tiny_model(fold)
    torch.manual_seed(0)
    b = apply_init(tiny_model(fold), "torch", batchnorm_momentum=0.1, batchnorm_eps=1e-5)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name


def test_label_smoothing_matches_the_official_smooth_labels():
    fold = tiny_fold()
    method = tiny_method(fold, spec("target_only"), TrainConfig(label_smoothing=0.1))
    logits = torch.randn(5, 4)
    y = torch.tensor([0, 3, 1, 1, 2])
    # Model.py: smooth_labels(y, 0.1) = y * 0.9 + 0.1 / K, then categorical cross-entropy
    targets = nn.functional.one_hot(y, 4).float() * 0.9 + 0.1 / 4
    expected = -(targets * logits.log_softmax(1)).sum(1).mean()
    assert method.cross_entropy(logits, y).item() == pytest.approx(expected.item(), rel=1e-6)
    plain = tiny_method(fold, spec("target_only"), TrainConfig())
    assert plain.cross_entropy(logits, y).item() == pytest.approx(nn.functional.cross_entropy(logits, y).item())


def test_adam_betas_reach_the_optimiser_and_are_checked():
    from domadapt.engine import build_replicas
    from domadapt.engine.loop import build_optimizer
    from domadapt.methods import build_method

    fold = tiny_fold()
    cfg = TrainConfig(betas=(0.93, 0.98), weight_decay=0.0)
    replicas = build_replicas(lambda: build_method(MethodSpec("target_only"), cfg, tiny_model(fold)), [0], fold, CPU)
    opt = build_optimizer(replicas, replicas.stages[0], cfg)
    assert {g["betas"] for g in opt.param_groups} == {(0.93, 0.98)}
    assert {g["weight_decay"] for g in opt.param_groups} == {0.0}
    with pytest.raises(DomadaptError, match=r"train.betas = \[0.9\]"):
        TrainConfig(betas=(0.9,))
    with pytest.raises(DomadaptError, match="train.betas"):
        build_config({"train": {"betas": [0.9, 1.5]}})


def test_paper_training_settings():
    cfg = build_config(load_recipe("timnet_paper_casia"))
    t = cfg.train
    assert (t.lr, t.betas, t.batch_size, t.epochs, t.label_smoothing) == (1e-3, (0.93, 0.98), 64, 500, 0.1)
    assert (t.weight_decay, t.scheduler, t.grad_clip, t.amp) == (0.0, "none", 0.0, False)
