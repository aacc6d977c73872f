"""Training strategies as methods, in the one method registry (the lab experiments each
reproduces: docs/lineage.md).

A user's own method is one decorated class in their own module::

    from domadapt.methods import METHODS, Method

    @METHODS.register("my_method")
    class MyMethod(Method):
        '''One line for `domadapt list`.'''
        def stages(self, data): ...
"""

from __future__ import annotations

from typing import Any

from domadapt.config import MethodSpec, TrainConfig
from domadapt.methods.base import Method, SourceBatch, Stage, StepBatch, StepOutput
from domadapt.methods.baseline import FunctionalsBaseline  # noqa: F401 - registers "baseline"
from domadapt.methods.batchnorm import AdaBN, Tent
from domadapt.methods.ddg import DDG
from domadapt.methods.joint import Align, Joint
from domadapt.methods.multitrain_ae import MultitrainAE
from domadapt.methods.pretrain import PretrainFinetune, PretrainFreeze
from domadapt.methods.self_training import SelfTraining
from domadapt.methods.shot import SHOT
from domadapt.methods.target_only import SourceOnly, TargetOnly
from domadapt.models.transfer import TransferModel
from domadapt.registries import METHODS


def list_methods() -> list[str]:
    return METHODS.names()


def method_class(spec: MethodSpec) -> type:
    """The registered class of ``spec``'s method (an unknown name lists the known ones)."""
    return METHODS.get(spec.name)


def build_method(spec: MethodSpec, train: TrainConfig, model: TransferModel) -> Method:
    """A fresh method for one run, owning ``model``; options are checked by the registry."""
    cls = METHODS.get(spec.name)
    options: dict[str, Any] = METHODS.check(spec.name, spec.method_options)
    return cls(model, train, cls.Options(**options))


__all__ = [
    "DDG",
    "METHODS",
    "SHOT",
    "AdaBN",
    "Align",
    "FunctionalsBaseline",
    "Joint",
    "Method",
    "MultitrainAE",
    "PretrainFinetune",
    "PretrainFreeze",
    "SelfTraining",
    "SourceBatch",
    "SourceOnly",
    "Stage",
    "StepBatch",
    "StepOutput",
    "TargetOnly",
    "Tent",
    "build_method",
    "list_methods",
    "method_class",
]
