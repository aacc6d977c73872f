"""The learners: how a row of each kind is trained on a unit, behind the one interface the
unit calls (:class:`Learner`).

A method class names its learner in ``trained_by``: every torch :class:`~domadapt.methods.Method`
is trained by ``"engine"`` (the training loop over K replicas, with the domain-gap
diagnostic), the classical eGeMAPS baseline by ``"functionals"`` (utterance functionals and a
linear model). A new kind of row registers its own learner in :data:`LEARNERS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from domadapt.config import ExperimentConfig, MethodSpec
from domadapt.corpora.base import Corpus
from domadapt.data import FoldData
from domadapt.device import autocast
from domadapt.diagnostics import GAP_POINTS, HeldOut, gap_probe, measure_gap
from domadapt.engine import Replicas, Run, build_replicas, fit
from domadapt.engine.checkpoint import atomic_save
from domadapt.engine.shared_stages import SharedStages, digest
from domadapt.errors import DomadaptError
from domadapt.features.functionals import UtteranceFeatures, utterance_functionals
from domadapt.methods import METHODS, method_class
from domadapt.registries import LEARNERS
from domadapt.report import plot_feature_space
from domadapt.run.context import RunContext, UnitJob
from domadapt.run.folds import curve_points
from domadapt.run.model import make_method
from domadapt.run.trained_models import save_unit_models
from domadapt.selection import selection_scores


@dataclass
class Trained:
    """What a learner hands the unit for one seed: test probabilities ``[N_test, C]`` (None in
    a sweep's search), the per-epoch history, how it was trained, and extra result keys."""

    probs: torch.Tensor | None
    history: dict[str, list[float]]
    how: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Learner(ABC):
    """Trains every seed of a unit; the unit scores and writes what it returns."""

    #: whether a sweep may tune the row (a search trains on validation scores only), and why not
    searchable: ClassVar[bool] = True
    why_not_searchable: ClassVar[str] = ""

    @abstractmethod
    def train(self, job: UnitJob) -> list[Trained]:
        """One :class:`Trained` per seed of ``job.unit``, in seed order. In a sweep's search
        (``not job.ctx.score_test``) the test fold is never read, and each ``extra`` holds
        ``"objectives"``: the kept model's :func:`~domadapt.selection.selection_scores`."""

    @abstractmethod
    def backbone(self, cfg: ExperimentConfig, spec: MethodSpec) -> str:
        """What the results table shows as the row's backbone."""


def learner_of(spec: MethodSpec) -> Learner:
    """The learner of ``spec``'s method class (its ``trained_by``)."""
    return LEARNERS.get(method_class(spec).trained_by)()


def predict_test(replicas: Replicas, data: FoldData) -> torch.Tensor:
    """Every replica's class probabilities on the fold's test windows ``[K, N, C]``: the
    only place a deep unit reads the test fold's predictions."""
    return replicas.predict(replicas.method.target_logits, data.target_test.x)


@LEARNERS.register("engine")
class EngineLearner(Learner):
    """A torch method: its seeds as replicas through the training loop.

    One vmapped model where the plan said so; resumed from the unit's checkpoint when there
    is one."""

    def backbone(self, cfg: ExperimentConfig, spec: MethodSpec) -> str:
        return spec.backbone_label(cfg.model)

    def train(self, job: UnitJob) -> list[Trained]:
        cfg, seeds = job.ctx.cfg, list(job.unit.seeds)
        replicas = build_replicas(
            lambda: make_method(cfg, job.ctx.domains, job.unit.spec), seeds, job.data, job.ctx.device,
            vmap=len(seeds) > 1, compile=cfg.train.compile, support=job.unit.vmap,
        )
        # the precision fit trains in, for the forward passes outside it
        evaluating = lambda: autocast(job.ctx.device, cfg.train.amp)  # noqa: E731
        shared = SharedStages(job.ctx.out_dir / "shared-stages") if cfg.train.share_source_stages else None
        if not job.ctx.score_test:  # a sweep's search: no gap (it reads the test inputs), no test
            run = Run(
                job.paths.checkpoint, resume=True, checkpoint_every=cfg.train.checkpoint_every, progress=job.ctx.progress,
                shared_stages=shared,
            )
            histories = fit(replicas, cfg.train, run)
            with evaluating():
                scores = selection_scores(replicas, job.data, seed=cfg.eval.seed)
            return [Trained(None, history, extra={"objectives": s}) for history, s in zip(histories, scores)]
        with evaluating():
            gap = GapWatch.start(job, replicas)
        run = Run(
            job.paths.checkpoint, resume=True, checkpoint_every=cfg.train.checkpoint_every, writers=job.writers,
            progress=job.ctx.progress, epoch_probe=gap.probe, shared_stages=shared,
        )
        histories = fit(replicas, cfg.train, run)
        with evaluating():
            probs = predict_test(replicas, job.data)
            extras = gap.finish(job, replicas)
        if cfg.eval.save_models:
            save_unit_models(job.ctx, job.unit, replicas, job.fold, job.data, probs)
        how = "eager" if len(seeds) == 1 else f"vmapped ({len(seeds)} seeds in one pass)"
        computed_in = {"precision": replicas.precision(cfg.train.amp)}
        return [Trained(probs[i], histories[i], how, {**extras[i], **computed_in}) for i in range(len(seeds))]


@dataclass
class GapWatch:
    """A deep unit's domain gap on held-out rows (:mod:`domadapt.diagnostics`): before and
    after training, per epoch on a probe batch, and the row's feature picture (first fold,
    the first seed, the curve's last point) from the same features."""

    held: HeldOut | None
    why_not: str | None
    before: list[dict[str, Any]] | None = None
    first_features: tuple[torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def start(cls, job: UnitJob, replicas: Replicas) -> "GapWatch":
        why_not = HeldOut.why_not(job.data)
        if why_not:
            return cls(None, why_not)
        held = HeldOut.of(job.data)
        # most rows of a fold start from the same model (the seed's initialisation): the first
        # to measure its gap keeps it for the others (a unit starting meanwhile measures it too)
        path = job.ctx.out_dir / "shared-gaps" / f"{cls._starting_point(job, replicas, held)}.pt"
        if path.exists():
            saved = torch.load(path, weights_only=True)
        else:
            features = held.features(replicas)
            saved = {"before": measure_gap(held, features, job.ctx.cfg.eval.seed), "general": features["general"]}
            atomic_save(saved, path)
        watch = cls(held, None, before=saved["before"])
        if watch._pictured(job):
            watch.first_features = saved["general"]
        return watch

    @staticmethod
    def _starting_point(job: UnitJob, replicas: Replicas, held: HeldOut) -> str:
        """A hash of what the gap before training depends on: every tensor of the replicas,
        the method's code that reads the features, the held-out rows, the precision and the
        gap's seed."""
        method, cfg = replicas.method, job.ctx.cfg
        code = [getattr(type(method), name).__qualname__ for name in ("target_features", "source_features")]
        return digest(
            code, type(method.model).__qualname__, GAP_POINTS, cfg.eval.seed, str(replicas.device), replicas.precision(cfg.train.amp),
            *[part for name, tensor in sorted(replicas.state().items()) for part in (name, tensor)],
            *[part for d in held.sources for part in (d.task, d.x)], held.target, held.groups_s, held.groups_t,
        )

    @property
    def probe(self):
        return gap_probe(self.held) if self.held is not None else None

    def finish(self, job: UnitJob, replicas: Replicas) -> list[dict[str, Any]]:
        """Each replica's result keys: the gap before and after, or why it was not measured."""
        if self.held is None:
            return [{"domain_gap_skipped": self.why_not} for _ in range(replicas.k)]
        features = self.held.features(replicas)
        after = measure_gap(self.held, features, job.ctx.cfg.eval.seed)
        if self.first_features is not None:
            self._picture(job, features["general"], after)
        return [{"domain_gap": {"before": b, "after": a}} for b, a in zip(self.before, after)]

    @staticmethod
    def _pictured(job: UnitJob) -> bool:
        cfg, unit = job.ctx.cfg, job.unit
        return unit.fold == 0 and cfg.eval.seed in unit.seeds and unit.point == curve_points(cfg)[-1]

    def _picture(self, job: UnitJob, last: tuple[torch.Tensor, torch.Tensor], after: list[dict[str, Any]]) -> None:
        """The first seed's held-out general features before and after training, with their gap."""
        cfg, seed = job.ctx.cfg, job.ctx.cfg.eval.seed
        i = list(job.unit.seeds).index(seed)
        first = self.first_features
        ad = lambda g: f"A-dist {g['general']['a_distance']:.2f}, MMD {g['general']['mmd']:.3f}"  # noqa: E731
        plot_feature_space(
            {f"before training ({ad(self.before[i])})": (first[0][i].numpy(), first[1][i].numpy()),
             f"after training ({ad(after[i])})": (last[0][i].numpy(), last[1][i].numpy())},
            job.paths.features_picture,
            title=f"{cfg.name} {job.unit.spec.label}: held-out general features, PCA (fold {job.unit.fold}, seed {seed})",
        )


@LEARNERS.register("functionals")
class FunctionalsLearner(Learner):
    """A classical baseline row: utterance functionals and a linear model per seed.

    The functionals of the fold's training, validation and test utterances; each test
    window gets its utterance's probabilities, so it is scored exactly as a deep row."""

    searchable = False
    why_not_searchable = "a classical baseline chooses its C itself; a sweep tunes deep methods"

    def backbone(self, cfg: ExperimentConfig, spec: MethodSpec) -> str:
        return {**METHODS.options(spec.name), **spec.method_options}["model"]  # its linear model

    def train(self, job: UnitJob) -> list[Trained]:
        spec, data = job.unit.spec, job.data
        if not job.ctx.score_test:
            raise DomadaptError(f"{spec.label}: {self.why_not_searchable}")
        cls = method_class(spec)
        options = cls.Options(**METHODS.check(spec.name, spec.method_options))
        target, sources = _functionals(job.ctx, options.features, with_sources=options.use_source)
        tseg = job.ctx.domains.target_segments
        keys = {
            part: [tseg.utterance_keys[u] for u in tseg.utterance.numpy()[d.index]]
            for part, d in (("train", data.target_train), ("val", data.target_val), ("test", data.target_test))
        }
        test_utterances = list(dict.fromkeys(keys["test"]))
        window_row = np.asarray([test_utterances.index(k) for k in keys["test"]])
        out = []
        for seed in job.unit.seeds:
            baseline = cls(options, num_classes=data.target_test.num_classes, seed=seed)
            probs = baseline.fit_predict(
                target, list(dict.fromkeys(keys["train"])), list(dict.fromkeys(keys["val"])), test_utterances, sources=sources
            )
            selection = {k: v for k, v in baseline.model.selection.items() if k != "convergence_warnings"}
            out.append(Trained(torch.as_tensor(probs[window_row], dtype=torch.float32), {}, "scikit-learn", {"selection": selection}))
        return out


def prepare_functionals(ctx: RunContext, *, jobs: int | None) -> None:
    """The utterance functionals of every classical row, computed before the units by
    ``jobs`` worker processes (:func:`utterance_functionals`), so that its units read them
    from the cache. Left to the units when ``jobs`` is 1: there the first unit computes
    them in this process and the others reuse them; in workers, the first unit would
    compute them on one core, and another unit of the row starting meanwhile would again."""
    if jobs == 1 or not ctx.score_test:  # a sweep's search does not train classical rows
        return
    for spec in ctx.cfg.methods:
        if not isinstance(learner_of(spec), FunctionalsLearner):
            continue
        options = method_class(spec).Options(**METHODS.check(spec.name, spec.method_options))
        _functionals(ctx, options.features, with_sources=options.use_source, jobs=jobs)


def _functionals(
    ctx: RunContext, kind: str, *, with_sources: bool, jobs: int | None = 1
) -> tuple[UtteranceFeatures, list[UtteranceFeatures]]:
    """Utterance functionals ``kind`` of the target (and the sources, if asked), cached on
    disk and for the rest of the experiment."""

    def get(corpus: Corpus) -> UtteranceFeatures:
        key = (kind, corpus.name, str(corpus.root))
        if key not in ctx.functionals:
            feats = ctx.cfg.features
            ctx.functionals[key] = utterance_functionals(
                corpus, kind, cfg=feats, cache_dir=ctx.cache_dir, progress=ctx.progress, jobs=jobs
            )
        return ctx.functionals[key]

    return get(ctx.domains.target), [get(c) for c in ctx.domains.sources] if with_sources else []
