"""A fresh model and method for one run of a row."""

from __future__ import annotations

from domadapt.config import ExperimentConfig, MethodSpec
from domadapt.data import TARGET_TASK
from domadapt.methods import build_method
from domadapt.methods.base import Method
from domadapt.models.transfer import TransferModel, build_transfer_model
from domadapt.run.corpora import Domains, source_task


def build_model(cfg: ExperimentConfig, domains: Domains, spec: MethodSpec) -> TransferModel:
    """A fresh model for one run: the row's backbone as general extractor, one specific
    extractor and head per task."""
    tasks = {TARGET_TASK: len(domains.target.classes)}
    for corpus in domains.sources:
        tasks.setdefault(source_task(corpus, domains.shared_labels), len(corpus.classes))
    return build_transfer_model(cfg.model, spec, input_shape=tuple(domains.target_segments.x.shape[1:]), tasks=tasks)


def make_method(cfg: ExperimentConfig, domains: Domains, spec: MethodSpec) -> Method:
    """A fresh model and the row's method owning it (seed the global RNG first)."""
    return build_method(spec, cfg.train, build_model(cfg, domains, spec))
