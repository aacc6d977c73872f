"""Schedules λ(p) for the alignment-loss weight and the GRL coefficient.

``p`` is the training progress in [0, 1] (step / total steps). A schedule is a plain
callable ``float -> float``; the ones here are frozen dataclasses so that they print their
settings and pickle.

Example::

    >>> from domadapt.align.schedule import build_schedule
    >>> lam = build_schedule("dann", gamma=10.0)
    >>> round(lam(0.0), 3), round(lam(0.5), 3)
    (0.0, 0.987)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

from domadapt.align.base import check_progress
from domadapt.errors import DomadaptError

__all__ = [
    "SCHEDULES",
    "ConstantSchedule",
    "DANNSchedule",
    "LinearWarmupSchedule",
    "Schedule",
    "build_schedule",
    "list_schedules",
]

Schedule = Callable[[float], float]


@dataclass(frozen=True)
class ConstantSchedule:
    """λ(p) = value."""

    value: float = 1.0

    def __call__(self, p: float) -> float:
        check_progress(p)
        return float(self.value)


@dataclass(frozen=True)
class DANNSchedule:
    """λ(p) = value · (2 / (1 + exp(−γ p)) − 1), from 0 at p=0 towards ``value``.

    Ganin et al., *Domain-Adversarial Training of Neural Networks* (JMLR 2016), §5.2.2:
    γ = 10 "to suppress noisy signal from the domain classifier at the early stages".
    """

    gamma: float = 10.0  # the paper's value
    value: float = 1.0

    def __post_init__(self) -> None:
        if not self.gamma > 0:
            raise DomadaptError(f"dann schedule: gamma must be > 0, got {self.gamma}")

    def __call__(self, p: float) -> float:
        p = check_progress(p)
        return float(self.value) * (2.0 / (1.0 + math.exp(-self.gamma * p)) - 1.0)


@dataclass(frozen=True)
class LinearWarmupSchedule:
    """λ(p) = value · min(1, p / warmup): a linear ramp from 0, then constant.

    ``warmup`` is the fraction of training the ramp lasts (0 → constant ``value``;
    1 → a ramp over the whole run).
    """

    warmup: float = 0.1  # ramp while the task features are still near random, then hold
    value: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.warmup <= 1.0:
            raise DomadaptError(f"linear schedule: warmup must be in [0, 1], got {self.warmup}")

    def __call__(self, p: float) -> float:
        p = check_progress(p)
        if self.warmup == 0.0:
            return float(self.value)
        return float(self.value) * min(1.0, p / self.warmup)


SCHEDULES: dict[str, type] = {
    "constant": ConstantSchedule,
    "dann": DANNSchedule,
    "linear": LinearWarmupSchedule,
}


def list_schedules() -> list[str]:
    """The names :func:`build_schedule` accepts, sorted."""
    return sorted(SCHEDULES)


def build_schedule(name: str, **options: float) -> Schedule:
    """Build the schedule called ``name`` with ``options`` overriding its defaults.

    Raises:
        DomadaptError: unknown name (lists the known ones) or unknown option (lists the
            valid ones for that schedule).
    """
    if name not in SCHEDULES:
        raise DomadaptError(
            f"unknown schedule {name!r}; known schedules: {', '.join(list_schedules())}"
        )
    cls = SCHEDULES[name]
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise DomadaptError(
            f"schedule {name!r}: unknown option(s) {', '.join(unknown)}; "
            f"valid options: {', '.join(valid)}"
        )
    return cls(**options)
