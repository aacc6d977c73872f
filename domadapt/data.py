"""Segment tensors that live on the training device, and the per-fold data of an experiment.

A corpus' segments (CASIA-size: a few thousand windows of [39, T]) fit in device memory
many times over, so batches are index slices of one resident tensor rather than
DataLoader workers copying from host memory every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from domadapt.features import SegmentSet

#: the task name of the target domain; a source sharing the target's label set uses it too
TARGET_TASK = "target"


@dataclass
class DomainData:
    """Segments of one domain (or one split of it), resident on ``x.device``.

    Shapes: ``x`` [N, C, T] float32, ``y`` [N] int64; ``groups`` [N] subject index (numpy,
    CPU, for subject-level votes and leakage checks).
    """

    task: str
    x: torch.Tensor
    y: torch.Tensor
    groups: np.ndarray
    num_classes: int
    # rows of the corpus' SegmentSet these segments are (None: built in memory, e.g. tests)
    index: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``idx`` (an index tensor on the data's device) as ``(x, y)``."""
        return self.x.index_select(0, idx), self.y.index_select(0, idx)

    def subset(self, idx: np.ndarray) -> "DomainData":
        idx = np.asarray(idx)
        t = torch.as_tensor(idx, dtype=torch.long, device=self.x.device)
        index = None if self.index is None else self.index[idx]
        return DomainData(self.task, self.x[t], self.y[t], self.groups[idx], self.num_classes, index)


def standardize(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Per-channel mean/std from ``train`` ([N, C, T]) applied to ``train`` and ``others``.

    Statistics come from the training portion only, so nothing of the test fold leaks in.
    """
    mean, std = standardization(train)
    return [(t - mean) / std for t in (train, *others)]


def standardization(train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-channel ``(mean, std)`` :func:`standardize` applies, each ``[1, C, 1]`` (a
    model folder keeps them to standardise new recordings as its training data was)."""
    # over rows and time: per channel for [N, C, T], per layer and channel for SSL [N, L, D, T]
    mean = train.mean(dim=(0, -1), keepdim=True)
    std = train.std(dim=(0, -1), keepdim=True).clamp_min(1e-5)
    return mean, std


def domain_from_segments(
    segs: SegmentSet, task: str, idx: np.ndarray | None, device: torch.device
) -> DomainData:
    """The rows ``idx`` (all if None) of ``segs`` moved to ``device``."""
    idx = np.arange(len(segs.y)) if idx is None else np.asarray(idx)
    t = torch.as_tensor(idx, dtype=torch.long)
    return DomainData(
        task=task,
        x=segs.x[t].to(device, non_blocking=True),
        y=segs.y[t].to(device, non_blocking=True),
        groups=segs.subject.numpy()[idx],
        num_classes=len(segs.classes),
        index=idx,
    )


def index_batches(
    n: int, batch_size: int, *, generator: torch.Generator, device: torch.device, shuffle: bool = True
) -> Iterator[torch.Tensor]:
    """Index tensors covering ``range(n)`` in batches (a final partial batch of >= 2 is kept;
    BatchNorm cannot train on a batch of one)."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(device)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        if idx.numel() >= 2:
            yield idx


def cycle_batches(
    n: int, batch_size: int, *, generator: torch.Generator, device: torch.device
) -> Iterator[torch.Tensor]:
    """Endless shuffled batches of ``range(n)`` (for the domain that is not driving the epoch)."""
    while True:
        yielded = False
        for idx in index_batches(n, batch_size, generator=generator, device=device):
            yielded = True
            yield idx
        if not yielded:
            raise ValueError(f"cannot draw batches of >= 2 from {n} rows")


@dataclass
class FoldData:
    """Everything one fold of one experiment trains and evaluates on, on the device.

    ``sources`` train on all their segments but ``source_val`` (a random share used for
    model selection of source pre-training). ``target_val`` is whole *training* subjects
    carved out for model selection; ``target_test`` is looked at once, at the end.
    """

    sources: list[DomainData]
    source_val: list[DomainData]
    target_train: DomainData
    target_val: DomainData
    target_test: DomainData
    shared_labels: bool  # True when every source has the target's label set (one shared head)

    def map(self, fn: Callable[[DomainData], DomainData]) -> FoldData:
        """A fold with ``fn`` applied to every domain (e.g. moved to another device)."""
        return FoldData(
            sources=[fn(d) for d in self.sources],
            source_val=[fn(d) for d in self.source_val],
            target_train=fn(self.target_train),
            target_val=fn(self.target_val),
            target_test=fn(self.target_test),
            shared_labels=self.shared_labels,
        )
