"""One experiment: corpora -> segments -> folds -> units (method x seed group) -> results.

The package, by job, read top-down from :func:`~domadapt.run.plan.run_experiment`:

- :mod:`.corpora`: the corpora loaded, limited and cut into segments;
- :mod:`.folds`: the target's folds (:mod:`domadapt.splits`) and each fold's tensors;
- :mod:`.plan`: the plan (units in fold order) and its dispatch on an executor
  (:mod:`domadapt.executors`: in this process, or as Ray tasks); in a process, a fold's data
  is built and moved to the device once and shared by the fold's units;
- :mod:`.unit`: one unit (a method on a fold, with one seed or with K seeds trained as one
  vmapped model) trained by its row's learner (:mod:`.learners`), scored and written;
- :mod:`.paths`: where each file of a unit goes (:class:`~domadapt.run.paths.RunPaths`).

Finished (method, fold, seed) runs are stored as JSON under ``OUT/runs/`` and never
recomputed on ``resume``; an interrupted unit (a killed run, a Ray worker that died)
continues from its last checkpoint. One live run holds ``OUT``
(:class:`~domadapt.outdir_lock.OutDirLock`). The rows are summarised by
:mod:`domadapt.report.rows`; the domain-gap diagnostic is :mod:`domadapt.diagnostics`.
"""

from __future__ import annotations

from domadapt.run.context import RunContext, Unit, UnitJob
from domadapt.run.corpora import Domains, extract_domains, load_corpora
from domadapt.run.folds import build_fold, curve_points, make_splitter, split_target, with_target_subjects
from domadapt.run.learners import LEARNERS, Learner, Trained, learner_of, predict_test
from domadapt.run.model import build_model, make_method
from domadapt.run.paths import RunPaths, config_fingerprint
from domadapt.run.plan import PlannedRun, plan_run, run_experiment, run_units
from domadapt.run.unit import execute_unit, run_unit

__all__ = [
    "Domains",
    "LEARNERS",
    "Learner",
    "PlannedRun",
    "RunContext",
    "RunPaths",
    "Trained",
    "Unit",
    "UnitJob",
    "build_fold",
    "build_model",
    "config_fingerprint",
    "curve_points",
    "execute_unit",
    "extract_domains",
    "learner_of",
    "load_corpora",
    "make_method",
    "make_splitter",
    "plan_run",
    "predict_test",
    "run_experiment",
    "run_unit",
    "run_units",
    "split_target",
    "with_target_subjects",
]
