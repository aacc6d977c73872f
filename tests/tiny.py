"""Tiny in-memory folds for trainer and method tests (CPU, a second each)."""

from __future__ import annotations

import numpy as np
import torch

from domadapt.config import MethodSpec, TrainConfig
from domadapt.data import TARGET_TASK, DomainData, FoldData
from domadapt.engine import Run, build_replicas, fit
from domadapt.methods import Method, build_method
from domadapt.models import build_backbone
from domadapt.models.transfer import TransferModel

CPU = torch.device("cpu")

TINY_BACKBONE = {"filters": 8, "levels": 2}


def domain(task: str, n: int, classes: int, *, seed: int, shift: float = 0.0, subjects: int = 6) -> DomainData:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randn(n, 5, 16, generator=g) + shift
    x[:, 0, :] += 1.5 * y[:, None].float()  # learnable: class moves channel 0
    groups = np.arange(n) % subjects
    return DomainData(task=task, x=x, y=y, groups=groups, num_classes=classes)


def tiny_fold(*, shared: bool = False) -> FoldData:
    src_task = TARGET_TASK if shared else "source:toy"
    k_src = 2 if shared else 3
    return FoldData(
        sources=[domain(src_task, 48, k_src, seed=1, shift=0.5)],
        source_val=[domain(src_task, 12, k_src, seed=2, shift=0.5)],
        target_train=domain(TARGET_TASK, 40, 2, seed=3),
        target_val=domain(TARGET_TASK, 12, 2, seed=4),
        target_test=domain(TARGET_TASK, 12, 2, seed=5),
        shared_labels=shared,
    )


def tiny_model(fold: FoldData, *, dropout: float | None = None, **backbone) -> TransferModel:
    """A tiny TIM model for ``fold``'s tasks (seed the global RNG first for its init).
    ``dropout`` sets every dropout (backbone and specific extractors); None = the defaults."""
    tasks = {TARGET_TASK: 2}
    for s in fold.sources:
        tasks.setdefault(s.task, s.num_classes)
    options = {**TINY_BACKBONE, **({} if dropout is None else {"dropout": dropout}), **backbone}
    general = build_backbone("tim", in_channels=5, **options)
    return TransferModel(general, tasks, specific_dim=8, dropout=0.2 if dropout is None else dropout)


def tiny_method(fold: FoldData, s: MethodSpec, cfg: TrainConfig, *, seed: int = 0, **model_kw) -> Method:
    """``s``'s method owning a fresh tiny model, initialised from ``seed``."""
    torch.manual_seed(seed)
    return build_method(s, cfg, tiny_model(fold, **model_kw))


def train(fold: FoldData, s: MethodSpec, cfg: TrainConfig, seeds=(0,), *, run: Run | None = None, **model_kw):
    """Train ``seeds`` (one eager replica, or several vmapped) -> (histories, test probs [K, N, C], replicas)."""
    replicas = build_replicas(lambda: build_method(s, cfg, tiny_model(fold, **model_kw)), list(seeds), fold, CPU)
    histories = fit(replicas, cfg, run)
    return histories, replicas.predict(replicas.method.target_logits, fold.target_test.x), replicas


def tiny_train(**kw) -> TrainConfig:
    # float32: the engine's tests compare eager with vmapped replicas, which are always
    # float32 (tests/engine/test_precision.py tests bf16 autocast)
    base = dict(epochs=3, pretrain_epochs=2, batch_size=16, lr=3e-3, step_size=2, amp=False)
    base.update(kw)
    return TrainConfig(**base)


def spec(name: str, **options) -> MethodSpec:
    return MethodSpec(name, options)
