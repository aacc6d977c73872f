"""The registry of every pluggable kind, in one module that imports no torch.

A registry names its built-ins' module (``builtins``) and imports it on first use, so a
recipe can be checked, and ``domadapt list`` can show every entry, from here; each built-in
registers itself in its own module with the same decorator a user's entry uses::

    from domadapt.registries import LOSSES

    @LOSSES.register("my_loss")
    class MyLoss(AlignmentLoss): ...

Shaped after timm's ``models/_registry.py``: the registry is data that imports no model.
"""

from __future__ import annotations

from domadapt.registry import Registry

__all__ = ["BACKBONES", "CORPORA", "EXECUTORS", "FEATURE_EXTRACTORS", "LEARNERS", "LOSSES", "METHODS", "SCHEDULES", "SPLITTERS", "VALIDATORS"]

#: name -> corpus loader; ``root`` is the caller's argument, the loader's keywords its options
CORPORA = Registry("corpus", plural="corpora", passed=("root",), builtins="domadapt.corpora")
#: name -> backbone class ``[B, C, T] -> [B, out_dim]``
BACKBONES = Registry("backbone", passed=("in_channels",), builtins="domadapt.models")
#: name -> alignment loss class
LOSSES = Registry(
    "alignment loss", plural="alignment losses", passed=("feature_dim", "num_classes"), builtins="domadapt.align"
)
#: name -> schedule λ(p) dataclass (``train.align_schedule``, a loss's ``grl_schedule``)
SCHEDULES = Registry("schedule", builtins="domadapt.align.schedule")
#: name -> training method (a row of ``[[methods]]``)
METHODS = Registry("method", builtins="domadapt.methods")
#: name -> :class:`~domadapt.run.learners.Learner`: how a row is trained (a method class's ``trained_by``)
LEARNERS = Registry("learner", builtins="domadapt.run.learners")
#: name -> :class:`~domadapt.splits.Splitter` class or factory (``eval.splitter``); the runner
#: gives each the ones of eval.folds / eval.seed / eval.allow_subject_overlap it declares
SPLITTERS = Registry("splitter", builtins="domadapt.splits")
#: name -> where the units run (``--executor``)
EXECUTORS = Registry("executor", builtins="domadapt.executors")
#: name -> label-free model-selection score ``probs [N, K] -> float``, higher is better
#: (``train.unsupervised_selection``, a stage's ``select``); the engine calls the entry
VALIDATORS = Registry("validator", builtins="domadapt.validators")
#: name -> custom front-end (``features.kind = "custom"``, ``features.model = NAME``); none built in
FEATURE_EXTRACTORS = Registry("feature extractor", passed=("sample_rate",))
