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

import numpy as np
import torch

from domadapt.config import TrainConfig
from domadapt.engine.checkpoint import atomic_save, random_states, set_random_states
from domadapt.engine.replicas import Replicas
from domadapt.methods.base import Stage

FORMAT = 2  # part of every key: a file of another layout is never found


def digest(*parts: Any) -> str:
    """A hash of ``parts``: a tensor or array by its dtype, shape and bytes, bytes as they
    are, anything else by its ``repr``."""
    h = hashlib.sha256()

    def add(part: Any) -> None:
        h.update(part if isinstance(part, bytes) else repr(part).encode())
        h.update(b"\0")

    for part in parts:
        if isinstance(part, torch.Tensor):
            t = part.detach().cpu().contiguous()
            add(str(t.dtype))
            add(tuple(t.shape))
            add(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(part, np.ndarray):
            add(str(part.dtype))
            add(part.shape)
            add(np.ascontiguousarray(part).tobytes())
        else:
            add(part)
    return h.hexdigest()[:32]


class SharedStages:
    """The source-only stages a run has trained, as files ``<key>.pt`` in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def key(self, replicas: Replicas, stage: Stage, cfg: TrainConfig) -> str | None:
        """The hash of the stage's starting point; None when it cannot be shared (a method
        with state outside its parameters, or a stage that reads more than the source)."""
        if not stage.source_only or stage.on_epoch_start is not None or replicas.extra_state():
            return None
        method = type(replicas.method)
        # what the base class's pre-training step calls: a subclass overriding one is another step
        code = [getattr(method, name).__qualname__ for name in ("source_ce", "cross_entropy", "predictor")]
        names = {id(p): n for n, p in replicas.method.named_parameters()}
        rng = random_states(replicas.generators)
        return digest(
            FORMAT, stage.name, stage.epochs, stage.draw, stage.select, stage.step.__qualname__, code,
            dataclasses.asdict(cfg), str(replicas.device), replicas.precision(cfg.amp), list(replicas.seeds),
            [(sorted(names.get(id(p), "?") for p in params), mult) for params, mult in stage.param_groups],
            [sorted(n for n, _ in module.named_parameters()) for module in stage.frozen],
            *[part for name, tensor in sorted(replicas.state().items()) for part in (name, tensor)],
            rng["torch"], *rng["batches"],
            *[part for domain in [*replicas.data.sources, stage.monitor] for part in (domain.task, domain.x, domain.y)],
        )

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
