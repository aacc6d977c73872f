"""Training strategies: the notes' experiments as methods. One plain dict is the registry."""

from __future__ import annotations

from domadapt.config import MethodSpec, TrainConfig
from domadapt.errors import DomadaptError
from domadapt.methods.base import Method, Stage, StepBatch, StepOutput
from domadapt.methods.ddg import DDG
from domadapt.methods.joint import Align, Joint
from domadapt.methods.multitrain_ae import MultitrainAE
from domadapt.methods.pretrain import PretrainFinetune, PretrainFreeze
from domadapt.methods.target_only import SourceOnly, TargetOnly

METHODS: dict[str, type[Method]] = {
    "target_only": TargetOnly,
    "source_only": SourceOnly,
    "pretrain_freeze": PretrainFreeze,
    "pretrain_finetune": PretrainFinetune,
    "joint": Joint,
    "align": Align,
    "multitrain_ae": MultitrainAE,
    "ddg": DDG,
}


def list_methods() -> list[str]:
    return sorted(METHODS)


def build_method(spec: MethodSpec, train: TrainConfig) -> Method:
    """A fresh method instance for one run (methods hold per-run modules and state)."""
    if spec.name not in METHODS:
        raise DomadaptError(f"unknown method {spec.name!r}; known: {', '.join(list_methods())}")
    return METHODS[spec.name](spec, train)


__all__ = ["METHODS", "Method", "Stage", "StepBatch", "StepOutput", "build_method", "list_methods"]
