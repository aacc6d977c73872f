"""What a unit is and what every unit of an experiment shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from domadapt.config import ExperimentConfig, MethodSpec
from domadapt.data import FoldData
from domadapt.engine import VmapSupport
from domadapt.run.corpora import Domains
from domadapt.run.folds import fold_data
from domadapt.run.paths import RunPaths


@dataclass(frozen=True)
class Unit:
    """What one call of the training loop trains: a method on a fold, for one seed or for K
    seeds as one vmapped model."""

    row: int  # index of the method's row in cfg.methods
    spec: MethodSpec
    fold: int
    seeds: tuple[int, ...]
    point: int | str = "all"  # labelled target training subjects (a learning-curve point)
    vmap: VmapSupport | None = None  # how K > 1 seeds train as one model (probed once per row)


@dataclass
class RunContext:
    """What every unit of an experiment shares."""

    cfg: ExperimentConfig
    domains: Domains
    out_dir: Path
    device: torch.device
    resume: bool = False
    progress: bool = False
    cache_dir: Path | None = None
    # False during a sweep's search: units are scored on validation only, the test fold is
    # never predicted (and the domain gap, which reads the test inputs, is not measured)
    score_test: bool = True
    # utterance functionals by (kind, corpus name, root): computed once per experiment
    functionals: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    # the last fold's data in this process: (fold index, data), shared by that fold's units
    _fold: tuple[int, FoldData] | None = field(default=None, repr=False)

    def fold_data(self, fold: Any) -> FoldData:
        """The fold's tensors, built once per fold in this process (units come fold by fold)."""
        if self._fold is None or self._fold[0] != fold.index:
            self._fold = None  # the previous fold's device tensors go before the next is built
            self._fold = (fold.index, fold_data(self.cfg, self.domains, fold, self.device))
        return self._fold[1]

    def paths(self, unit: Unit) -> RunPaths:
        """Where ``unit``'s files go."""
        return RunPaths(
            self.out_dir, unit.spec.key(self.cfg.model), unit.fold, tuple(unit.seeds), unit.point, search=not self.score_test
        )

    def __getstate__(self) -> dict[str, Any]:  # shipped to a worker without built tensors
        return {**self.__dict__, "functionals": {}, "_fold": None}


@dataclass
class UnitJob:
    """One unit ready to train: its context, its fold (the splitter's) and the fold's data
    (at its learning-curve point), its files and one tensorboard writer (or None) per seed."""

    ctx: RunContext
    unit: Unit
    fold: Any
    data: FoldData
    paths: RunPaths
    writers: list[Any]
