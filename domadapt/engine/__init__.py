"""The training engine: one loop (:mod:`.loop`) over K >= 1 replicas of a method on one fold
(:mod:`.replicas`: eager for one, ``torch.func``-vmapped for several), one checkpoint format
(:mod:`.checkpoint`) and the batches each replica draws (:mod:`.batches`).

Example::

    >>> replicas = build_replicas(lambda: build_method(spec, cfg, make_model()), [0, 1, 2], fold,
    ...                           device, vmap=True)
    >>> histories = fit(replicas, cfg, Run(checkpoint=path, resume=True))
    >>> probs = replicas.predict(replicas.method.target_logits, fold.target_test.x)  # [3, N, C]
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from domadapt.data import FoldData
from domadapt.engine.checkpoint import CHECKPOINT_VERSION, atomic_save
from domadapt.engine.loop import NonFiniteLossError, Run, fit
from domadapt.engine.replicas import EagerReplica, Replicas, VmappedReplicas, predict_proba
from domadapt.engine.scoring import information_maximization, score_probs
from domadapt.engine.vmapping import VmapSupport, clip_grad_norm_per_replica_, vmap_support
from domadapt.methods.base import Method


def build_replicas(
    make_method: Callable[[], Method],
    seeds: list[int],
    data: FoldData,
    device: torch.device | str,
    *,
    vmap: bool = True,
    compile: bool = False,
    support: VmapSupport | None = None,
) -> Replicas:
    """The replicas of ``seeds``: ``make_method()`` is called after ``torch.manual_seed(seed)``
    for each seed (its initialisation comes from the seed). One seed trains eagerly; several
    train as one vmapped model (``vmap=False`` with several seeds is refused: train them one
    replica at a time). ``support``: the method's :func:`vmap_support` when the caller has it
    (the runner probes once per row), else several seeds probe it here."""
    device = torch.device(device)
    if not seeds:
        raise ValueError("build_replicas: no seeds given")
    methods = []
    for seed in seeds:
        torch.manual_seed(seed)
        methods.append(make_method())
    if len(seeds) == 1:
        return EagerReplica(methods[0], seeds[0], data, device, compile=compile)
    if not vmap:
        raise ValueError("build_replicas: several seeds without vmap: build one replica per seed")
    return VmappedReplicas(methods, seeds, data, device, support=support)


__all__ = [
    "CHECKPOINT_VERSION",
    "EagerReplica",
    "NonFiniteLossError",
    "Replicas",
    "Run",
    "VmapSupport",
    "VmappedReplicas",
    "atomic_save",
    "build_replicas",
    "clip_grad_norm_per_replica_",
    "fit",
    "information_maximization",
    "predict_proba",
    "score_probs",
    "vmap_support",
]
