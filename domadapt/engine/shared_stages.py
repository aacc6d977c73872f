"""Source pre-training trained once per run, not once per unit.

A stage with ``source_only`` set (source pre-training) reads nothing of the target fold, so
its outcome is fixed by where it starts: every replica's parameters and buffers, the random
states, the source data and validation rows, the training settings and the code of its
step. ``pretrain_freeze``, ``pretrain_finetune`` and ``ddg`` all start it from the same
initialisation, fold after fold. :class:`SharedStages` keeps each such stage's outcome under
a hash of that starting point in the run's folder, and a unit that reaches the same
starting point loads it instead of training: the trained state, the stage's per-epoch
history (also written to tensorboard) and the random states the stage left, so the unit
goes on exactly as if it had trained the stage itself (``tests/engine/test_shared_stages.py``
compares whole runs with and without). Two units that reach the same stage at the same time
both train it; the second to finish writes the same file again.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import torch

from domadapt.config import TrainConfig
from domadapt.engine.checkpoint import atomic_save, random_states, set_random_states
from domadapt.engine.replicas import Replicas
from domadapt.methods.base import Stage

FORMAT = 2  # part of every key: a file of another layout is never found


class SharedStages:
    """The source-only stages a run has trained, as files ``<key>.pt`` in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def key(self, replicas: Replicas, stage: Stage, cfg: TrainConfig) -> str | None:
        """The hash of the stage's starting point; None when it cannot be shared (a method
        with state outside its parameters, or a stage that reads more than the source)."""
        if not stage.source_only or stage.on_epoch_start is not None or replicas.extra_state():
            return None
        h = hashlib.sha256()

        def add(*parts: Any) -> None:
            for part in parts:
                h.update(part if isinstance(part, bytes) else repr(part).encode())
                h.update(b"\0")

        def add_tensor(t: torch.Tensor) -> None:
            t = t.detach().cpu().contiguous()
            add(str(t.dtype), tuple(t.shape), t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")

        method = type(replicas.method)
        # what the base class's pre-training step calls: a subclass overriding one is another step
        code = [getattr(method, name).__qualname__ for name in ("source_ce", "cross_entropy", "predictor")]
        add(FORMAT, stage.name, stage.epochs, stage.draw, stage.select, stage.step.__qualname__, code)
        add(dataclasses.asdict(cfg), str(replicas.device), replicas.precision(cfg.amp), list(replicas.seeds))
        names = {id(p): n for n, p in replicas.method.named_parameters()}
        add([(sorted(names.get(id(p), "?") for p in params), mult) for params, mult in stage.param_groups])
        add([sorted(n for n, _ in module.named_parameters()) for module in stage.frozen])
        for name, tensor in sorted(replicas.state().items()):
            add(name)
            add_tensor(tensor)
        rng = random_states(replicas.generators)
        add_tensor(rng["torch"])
        for batches in rng["batches"]:
            add_tensor(batches)
        for domain in [*replicas.data.sources, stage.monitor]:
            add(domain.task)
            add_tensor(domain.x)
            add_tensor(domain.y)
        return h.hexdigest()[:32]

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.pt"

    def load(self, key: str, replicas: Replicas, stage: Stage, histories: list[dict], writers: list | None) -> bool:
        """Put the stage's outcome under ``key`` into ``replicas`` (state, random states) and
        ``histories`` (and ``writers``); False when this run has not trained it yet."""
        path = self.path(key)
        if not path.exists():
            return False
        saved = torch.load(path, map_location=replicas.device, weights_only=True)
        replicas.load_state(saved["state"])
        for i, stage_history in enumerate(saved["histories"]):
            histories[i].update(stage_history)
            if writers is not None and writers[i] is not None:
                for name, values in stage_history.items():
                    for epoch, value in enumerate(values):
                        writers[i].add_scalar(name, value, epoch)
        set_random_states(saved["rng"], replicas.generators)
        return True

    def store(self, key: str, replicas: Replicas, stage: Stage, histories: list[dict]) -> None:
        """Keep the outcome of the stage just trained (after its best epoch was restored)."""
        prefix = f"{stage.name}/"
        atomic_save(
            {
                "format": FORMAT,
                "state": {k: v.detach().cpu() for k, v in replicas.state().items()},
                "histories": [{k: v for k, v in h.items() if k.startswith(prefix)} for h in histories],
                "rng": random_states(replicas.generators),
            },
            self.path(key),
        )
