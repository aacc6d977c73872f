"""A fresh model and method for one run of a row."""

from __future__ import annotations

from torch import nn

from domadapt.config import ExperimentConfig, MethodSpec
from domadapt.data import TARGET_TASK
from domadapt.features.ssl import LayerWeighting
from domadapt.methods import build_method
from domadapt.methods.base import Method
from domadapt.models import build_backbone
from domadapt.models.transfer import TransferModel, apply_init
from domadapt.run.corpora import Domains, source_task


def build_model(cfg: ExperimentConfig, domains: Domains, spec: MethodSpec) -> TransferModel:
    """A fresh model for one run: the row's backbone as general extractor, one specific
    extractor and head per task."""
    x = domains.target_segments.x
    name, options = spec.backbone(cfg.model)
    general = build_backbone(name, in_channels=int(x.shape[-2]), **options)
    if x.dim() == 4:  # SSL features of every layer [N, L, D, T]: a learned layer weighting first
        backbone = general
        general = nn.Sequential(LayerWeighting(int(x.shape[1])), backbone)
        general.out_dim = backbone.out_dim
    tasks = {TARGET_TASK: len(domains.target.classes)}
    for corpus in domains.sources:
        tasks.setdefault(source_task(corpus, domains.shared_labels), len(corpus.classes))
    m = cfg.model
    model = TransferModel(
        general, tasks, specific_dim=m.specific_dim, dropout=m.dropout, general_norm=m.general_norm, specific=m.specific
    )
    return apply_init(model, m.init, batchnorm_momentum=m.batchnorm_momentum, batchnorm_eps=m.batchnorm_eps)


def make_method(cfg: ExperimentConfig, domains: Domains, spec: MethodSpec) -> Method:
    """A fresh model and the row's method owning it (seed the global RNG first)."""
    return build_method(spec, cfg.train, build_model(cfg, domains, spec))
