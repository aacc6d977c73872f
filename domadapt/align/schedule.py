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

import math
from collections.abc import Callable
from dataclasses import dataclass

from domadapt.align.base import check_progress
from domadapt.registries import SCHEDULES
from domadapt.registry import check_fields, option

__all__ = [
    "SCHEDULES",
    "ConstantSchedule",
    "DANNSchedule",
    "LinearWarmupSchedule",
    "Schedule",
    "StepSchedule",
    "build_schedule",
    "list_schedules",
]

Schedule = Callable[[float], float]


@SCHEDULES.register("constant")
@dataclass(frozen=True)
class ConstantSchedule:
    """λ(p) = value."""

    value: float = 1.0

    def __post_init__(self) -> None:
        check_fields(self, where="constant schedule")

    def __call__(self, p: float) -> float:
        check_progress(p)
        return float(self.value)


@SCHEDULES.register("dann")
@dataclass(frozen=True)
class DANNSchedule:
    """λ(p) = value · (2 / (1 + exp(−γ p)) − 1), from 0 at p=0 towards ``value``.

    Ganin et al., *Domain-Adversarial Training of Neural Networks* (JMLR 2016), §5.2.2:
    γ = 10 "to suppress noisy signal from the domain classifier at the early stages".
    """

    gamma: float = option(10.0, gt=0)  # the paper's value; γ ≤ 0 never ramps up
    value: float = 1.0

    def __post_init__(self) -> None:
        check_fields(self, where="dann schedule")

    def __call__(self, p: float) -> float:
        p = check_progress(p)
        return float(self.value) * (2.0 / (1.0 + math.exp(-self.gamma * p)) - 1.0)


@SCHEDULES.register("linear")
@dataclass(frozen=True)
class LinearWarmupSchedule:
    """λ(p) = value · min(1, p / warmup): a linear ramp from 0, then constant.

    ``warmup`` is the fraction of training the ramp lasts (0 → constant ``value``;
    1 → a ramp over the whole run).
    """

    # ramp while the task features are still near random, then hold
    warmup: float = option(0.1, min=0.0, max=1.0)
    value: float = 1.0

    def __post_init__(self) -> None:
        check_fields(self, where="linear schedule")

    def __call__(self, p: float) -> float:
        p = check_progress(p)
        if self.warmup == 0.0:
            return float(self.value)
        return float(self.value) * min(1.0, p / self.warmup)


@SCHEDULES.register("step")
@dataclass(frozen=True)
class StepSchedule:
    """λ(p) = 0 before ``start``, ``value`` from then on: a term switched on after a warm-up
    (self-training's pseudo-labels, once the source-trained head is worth trusting)."""

    start: float = option(0.3, min=0.0, max=1.0)  # fraction of training before the switch
    value: float = 1.0

    def __post_init__(self) -> None:
        check_fields(self, where="step schedule")

    def __call__(self, p: float) -> float:
        p = check_progress(p)
        return float(self.value) if p >= self.start else 0.0


def list_schedules() -> list[str]:
    """The names :func:`build_schedule` accepts, sorted."""
    return SCHEDULES.names()


def build_schedule(name: str, **options: float) -> Schedule:
    """Build the schedule called ``name`` with ``options`` overriding its defaults.

    Raises:
        DomadaptError: unknown name (lists the known ones), unknown option (lists the
            valid ones for that schedule) or a value of the wrong type or range.
    """
    return SCHEDULES.build(name, **options)
