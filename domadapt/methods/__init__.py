"""Training strategies: the notes' experiments as methods, in the one method registry.

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
from domadapt.methods.ddg import DDG
from domadapt.methods.joint import Align, Joint
from domadapt.methods.multitrain_ae import MultitrainAE
from domadapt.methods.pretrain import PretrainFinetune, PretrainFreeze
from domadapt.methods.target_only import SourceOnly, TargetOnly
from domadapt.models.transfer import TransferModel
from domadapt.registry import Registry

METHODS = Registry("method")
METHODS.register("target_only")(TargetOnly)
METHODS.register("source_only")(SourceOnly)
METHODS.register("pretrain_freeze")(PretrainFreeze)
METHODS.register("pretrain_finetune")(PretrainFinetune)
METHODS.register("joint")(Joint)
METHODS.register("align")(Align)
METHODS.register("multitrain_ae")(MultitrainAE)
METHODS.register("ddg")(DDG)


def list_methods() -> list[str]:
    return METHODS.names()


def method_class(spec: MethodSpec) -> type:
    """The registered class of ``spec``'s method (an unknown name lists the known ones)."""
    return METHODS.get(spec.name)


def method_label(spec: MethodSpec) -> str:
    """The row's name in results: the ``label`` option if given, else what the method says
    (``align:mmd``)."""
    if "label" in spec.options:
        return str(spec.options["label"])
    return METHODS.get(spec.name).label(spec.name, spec.method_options)


def build_method(spec: MethodSpec, train: TrainConfig, model: TransferModel) -> Method:
    """A fresh method for one run, owning ``model``; options are checked by the registry."""
    cls = METHODS.get(spec.name)
    options: dict[str, Any] = METHODS.check(spec.name, spec.method_options)
    return cls(model, train, cls.Options(**options))


__all__ = [
    "METHODS",
    "Method",
    "SourceBatch",
    "Stage",
    "StepBatch",
    "StepOutput",
    "build_method",
    "list_methods",
    "method_class",
    "method_label",
]
