"""Which rows each training step reads: index batches drawn per replica.

A step's batch is a set of row indices into the fold's resident tensors (one per domain the
stage draws); each replica has its own ``torch.Generator``, so K replicas trained together
see exactly the batches K separate runs would. Gathering the rows is the replicas' job (one
gather for K replicas at once in the vmapped case).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from domadapt.data import FoldData, cycle_batches, index_batches
from domadapt.errors import DomadaptError
from domadapt.methods.base import Stage

DRAWS = ("target", "source", "joint", "test")


@dataclass
class IndexBatch:
    """Row indices of one step: into ``target_train`` and into each source (in order)."""

    target: torch.Tensor | None = None  # [B]
    sources: list[torch.Tensor] = field(default_factory=list)  # one [B] per source domain
    test: torch.Tensor | None = None  # [B] into ``target_test``: test-time adaptation only


def draw_batches(
    stage: Stage, data: FoldData, batch_size: int, generator: torch.Generator, device: torch.device
) -> Iterator[IndexBatch]:
    """One epoch of ``stage``'s index batches. An epoch is one pass over the driving domain
    (the target for target stages, the largest source for source stages, the largest of
    all for joint stages, so a joint epoch sees every source row once like a source epoch
    does); the other domains cycle alongside. A ``"test"`` stage (test-time adaptation,
    e.g. Tent) reads the target's test rows and nothing else."""
    if stage.draw not in DRAWS:
        raise DomadaptError(f"stage {stage.name!r}: unknown draw {stage.draw!r}; expected one of {', '.join(DRAWS)}")
    if stage.draw == "target":
        for idx in index_batches(len(data.target_train), batch_size, generator=generator, device=device):
            yield IndexBatch(target=idx)
        return
    if stage.draw == "test":
        for idx in index_batches(len(data.target_test), batch_size, generator=generator, device=device):
            yield IndexBatch(test=idx)
        return
    domains = [*data.sources, data.target_train] if stage.draw == "joint" else list(data.sources)
    driver = max(range(len(domains)), key=lambda i: len(domains[i]))
    lead = index_batches(len(domains[driver]), batch_size, generator=generator, device=device)
    cycles = [cycle_batches(len(d), batch_size, generator=generator, device=device) for d in domains]
    for idx in lead:
        rows = [idx if i == driver else next(cycles[i]) for i in range(len(domains))]
        if stage.draw == "joint":
            yield IndexBatch(target=rows[-1], sources=rows[:-1])
        else:
            yield IndexBatch(sources=rows)


def count_batches(stage: Stage, data: FoldData, batch_size: int) -> int:
    """Steps per epoch: batches of the domain that drives the stage (partial ones of < 2 dropped)."""
    lengths = {"target": [len(data.target_train)], "source": [len(s) for s in data.sources],
               "test": [len(data.target_test)]}
    lengths["joint"] = lengths["source"] + lengths["target"]
    n = max(lengths[stage.draw])
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= 2 else 0)
