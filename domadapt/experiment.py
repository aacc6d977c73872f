"""One experiment: corpora -> segments -> folds -> units (method x seed group) -> results.

The plan: every unit (a method on a fold, with one seed or with K seeds trained as one
vmapped model) runs through :func:`execute_unit`, on the executor the run was given
(:mod:`domadapt.executors`: in this process, or as Ray tasks); in a process, a fold's data
is built and moved to the device once and shared by the fold's units. Finished (method,
fold, seed) runs are stored as JSON under ``OUT/runs/`` and never recomputed on
``resume``; an interrupted unit (a killed run, a Ray worker that died) continues from its
last checkpoint. One live run holds ``OUT`` (:class:`~domadapt.outdir_lock.OutDirLock`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import random
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from domadapt.config import ExperimentConfig, MethodSpec
from domadapt.corpora import load_corpus
from domadapt.corpora.base import Corpus
from domadapt.corpora.labels import apply_label_map
from domadapt.corpora.synthetic import synthetic_root
from domadapt.data import TARGET_TASK, DomainData, FoldData, domain_from_segments, standardize
from domadapt.errors import DomadaptError
from domadapt.evaluate import evaluate_predictions, subject_predictions, summarize_runs
from domadapt.executors import Executor, LocalExecutor
from domadapt.features import SegmentSet, extract_segments
from domadapt.diagnostics import domain_gap, standardized_mmd
from domadapt.engine import Replicas, Run, build_replicas, fit, vmap_support
from domadapt.methods import METHODS, build_method, is_torch_method, method_class
from domadapt.models import build_backbone
from domadapt.methods.base import Method
from domadapt.models.transfer import TransferModel, apply_init
from domadapt.outdir_lock import OutDirLock
from domadapt.progress import Progress
from domadapt.report import load_results, plot_confusion, plot_curves, plot_feature_space, plot_learning_curve, write_results
from domadapt.splits import build_splitter, carve_validation

log = logging.getLogger("domadapt")

#: metrics summarised (mean, std, runs) in every results row
REPORTED_METRICS = (
    "accuracy",
    "uar",
    "macro_f1",
    "subject_accuracy",
    "subject_uar",
    "subject_macro_f1",
    "subject_accuracy_meanprob",
)
SOURCE_VAL_FRACTION = 0.1  # random share of each source held out to select pre-training epochs


@dataclass
class Domains:
    """The loaded corpora of an experiment and their segment sets."""

    sources: list[Corpus]
    target: Corpus
    source_segments: list[SegmentSet]
    target_segments: SegmentSet

    @property
    def synthetic(self) -> bool:
        return self.target.synthetic or any(c.synthetic for c in self.sources)

    @property
    def shared_labels(self) -> bool:
        return all(s.classes == self.target.classes for s in self.sources)


def _limit(corpus: Corpus, *, per_subject: int | None, per_class: int | None, seed: int) -> Corpus:
    """A deterministic random subset: at most ``per_subject`` utterances of each subject and
    ``per_class`` of each class (None = no limit). Used by ``--quick`` to stay small."""
    if per_subject is None and per_class is None:
        return corpus
    order = list(range(len(corpus.utterances)))
    random.Random(seed).shuffle(order)
    by_subject: dict[str, int] = {}
    by_class: dict[str, int] = {}
    keep = set()
    for i in order:
        u = corpus.utterances[i]
        if per_subject is not None and by_subject.get(u.subject, 0) >= per_subject:
            continue
        if per_class is not None and by_class.get(u.label, 0) >= per_class:
            continue
        by_subject[u.subject] = by_subject.get(u.subject, 0) + 1
        by_class[u.label] = by_class.get(u.label, 0) + 1
        keep.add(i)
    subset = dataclasses.replace(corpus, utterances=[u for i, u in enumerate(corpus.utterances) if i in keep])
    return subset


def load_corpora(
    cfg: ExperimentConfig,
    *,
    source_roots: list[Path | None],
    target_root: Path | None,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> tuple[list[Corpus], Corpus]:
    """Load the recipe's corpora; a missing root means the embedded synthetic stand-in of that
    corpus (generated once into the cache, its files counted when ``progress``).
    ``data.label_map`` and then the ``data.max_*`` limits are applied here."""
    names = list(cfg.data.source)
    if len(source_roots) not in (0, len(names)):
        raise DomadaptError(
            f"{len(source_roots)} --source-root given for {len(names)} source corpora ({', '.join(names)})"
        )
    roots = source_roots or [None] * len(names)
    for root in [*roots, target_root]:  # fail before spending minutes on the other corpora
        if root is not None and not Path(root).is_dir():
            raise DomadaptError(f"{root}: no such corpus folder")

    def load(name: str, root: Path | None) -> Corpus:
        options = dict(cfg.data.options.get(name, {}))
        if root is None:
            corpus = load_corpus(name, synthetic_root(name, cache_dir=cache_dir, progress=progress), **options)
            corpus.synthetic = True
        else:
            corpus = load_corpus(name, root, **options)
        if name in cfg.data.label_map:
            corpus = apply_label_map(corpus, cfg.data.label_map[name], key=f"data.label_map.{name}")
        return corpus

    sources = [
        _limit(load(n, r), per_subject=None, per_class=cfg.data.max_source_per_class, seed=cfg.eval.seed)
        for n, r in zip(names, roots)
    ]
    target = _limit(
        load(cfg.data.target, target_root),
        per_subject=cfg.data.max_utterances_per_subject,
        per_class=None,
        seed=cfg.eval.seed,
    )
    return sources, target


def extract_domains(
    cfg: ExperimentConfig,
    sources: list[Corpus],
    target: Corpus,
    *,
    device: torch.device,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> Domains:
    """Segments of every corpus, computed on ``device`` and cached on disk."""
    feats = cfg.features
    source_segments = [
        extract_segments(c, feats, device=device, cache_dir=cache_dir, progress=progress) for c in sources
    ]
    target_segments = extract_segments(target, feats, device=device, cache_dir=cache_dir, progress=progress)
    return Domains(list(sources), target, source_segments, target_segments)


def source_task(corpus: Corpus, shared: bool) -> str:
    return TARGET_TASK if shared else f"source:{corpus.name}"


def make_splitter(cfg: ExperimentConfig, domains: Domains):
    """The target's splitter from ``[eval]``; each protocol gets only the options it takes."""
    ev = cfg.eval
    if ev.splitter == "official":
        official = domains.target.official_split
        if not official:
            raise DomadaptError(f"eval.splitter = 'official': corpus {domains.target.name!r} has no official split")
        subjects = domains.target_segments.subjects
        return build_splitter("official", assignment={i: official[s] for i, s in enumerate(subjects) if s in official})
    if ev.splitter == "subject_kfold":
        return build_splitter("subject_kfold", n_splits=ev.folds, seed=ev.seed)
    if ev.splitter == "utterance_kfold":
        return build_splitter(
            "utterance_kfold", n_splits=ev.folds, seed=ev.seed, allow_subject_overlap=ev.allow_subject_overlap
        )
    return build_splitter(ev.splitter)


def split_target(cfg: ExperimentConfig, domains: Domains) -> list[Any]:
    """The target's folds. Each protocol gets the groups it splits by: subjects; sessions
    (leave-one-session-out: both speakers of an IEMOCAP session are held out together);
    utterances (utterance k-fold: the windows of one recording never straddle train/test)."""
    tseg = domains.target_segments
    y, subjects = tseg.y.numpy(), tseg.subject.numpy()
    splitter = make_splitter(cfg, domains)
    if getattr(splitter, "groups_by", "subject") == "session":
        return list(splitter.split(y, _sessions(domains), subjects=subjects))
    if cfg.eval.splitter == "utterance_kfold":
        return list(splitter.split(y, subjects, utterances=tseg.utterance.numpy()))
    return list(splitter.split(y, subjects))


def _sessions(domains: Domains) -> np.ndarray:
    """Each target segment's session (``Utterance.meta["session"]``), as indices."""
    tseg, target = domains.target_segments, domains.target
    session_of = {u.key: u.meta.get("session") for u in target.utterances}
    names = [session_of.get(key) for key in tseg.utterance_keys]
    missing = sorted({key for key, name in zip(tseg.utterance_keys, names) if name is None})
    if missing:
        raise DomadaptError(
            f"eval.splitter = 'leave_one_session_out': corpus {target.name!r} has no session for "
            f"{len(missing)} utterance(s) (e.g. {missing[0]}); expected meta['session'] as IEMOCAP's loader sets it"
        )
    per_utterance = np.unique(np.asarray(names), return_inverse=True)[1]
    return per_utterance[tseg.utterance.numpy()]


def build_fold(
    domains: Domains, fold: Any, *, val_fraction: float, seed: int, device: torch.device, standardize_features: bool = True
) -> FoldData:
    """Device tensors of one fold; features standardised with training-only statistics
    (unless ``standardize_features`` is false: raw features, as TIM-Net fed them).

    The validation subjects come from the fold (an official dev set) or are carved out of
    the fold's training subjects; with ``val_fraction == 0`` there are none (the target
    validation set is empty and the training stages keep their last epoch). A fold whose
    subjects overlap by design (the utterance k-fold) carves whole *utterances* instead:
    carving subjects there would take speakers out of training that its test side still holds.
    """
    tseg = domains.target_segments
    y = tseg.y.numpy()
    groups = tseg.subject.numpy()
    if fold.val is not None:
        fit_idx, val_idx = fold.train, fold.val
    elif val_fraction == 0:
        fit_idx, val_idx = np.asarray(fold.train), np.zeros(0, dtype=np.int64)
    else:
        carve_by = tseg.utterance.numpy() if getattr(fold, "subject_overlap", False) else groups
        fit_idx, val_idx = carve_validation(fold.train, y, carve_by, fraction=val_fraction, seed=seed)
    train = domain_from_segments(tseg, TARGET_TASK, fit_idx, device)
    val = domain_from_segments(tseg, TARGET_TASK, val_idx, device)
    test = domain_from_segments(tseg, TARGET_TASK, fold.test, device)
    scale = standardize if standardize_features else (lambda *xs: list(xs))
    train.x, val.x, test.x = scale(train.x, val.x, test.x)

    shared = domains.shared_labels
    sources, source_val = [], []
    rng = np.random.default_rng(seed)
    for corpus, seg in zip(domains.sources, domains.source_segments):
        order = rng.permutation(len(seg.y))
        n_val = max(2, int(round(SOURCE_VAL_FRACTION * len(order))))
        s_train = domain_from_segments(seg, source_task(corpus, shared), np.sort(order[n_val:]), device)
        s_val = domain_from_segments(seg, source_task(corpus, shared), np.sort(order[:n_val]), device)
        s_train.x, s_val.x = scale(s_train.x, s_val.x)
        sources.append(s_train)
        source_val.append(s_val)
    return FoldData(sources, source_val, train, val, test, shared_labels=shared)


def build_model(cfg: ExperimentConfig, domains: Domains, spec: MethodSpec) -> TransferModel:
    """A fresh model for one run: the row's backbone as general extractor, one specific
    extractor and head per task."""
    x = domains.target_segments.x
    name, options = spec.backbone(cfg.model)
    general = build_backbone(name, in_channels=int(x.shape[-2]), **options)
    if x.dim() == 4:  # SSL features of every layer [N, L, D, T]: a learned layer weighting first
        from domadapt.features.ssl import LayerWeighting

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


# --------------------------------------------------------------------------- domain gap

GAP_POINTS = ("general", "specific")  # the features a method aligns
PROBE_ROWS = 128  # rows per domain of the fixed per-epoch probe batch


@dataclass
class HeldOut:
    """Held-out segments of both domains (never training rows): the source hold-out and the
    target's validation + test subjects, with subject groups kept distinct per domain."""

    sources: list[DomainData]
    target: torch.Tensor
    groups_s: np.ndarray
    groups_t: np.ndarray

    @staticmethod
    def why_not(data: FoldData) -> str | None:
        """Why the domain gap cannot be measured on ``data``, or None: it needs a source and
        two held-out subjects per domain (its domain classifier is cross-validated by subject)."""
        if not data.source_val:
            return "no source corpus"
        n_t = len(np.unique(np.concatenate([data.target_val.groups, data.target_test.groups])))
        n_s = sum(len(np.unique(d.groups)) for d in data.source_val)
        if n_t < 2 or n_s < 2:
            return f"held-out subjects: {n_s} source, {n_t} target (the subject-grouped domain classifier needs 2 each)"
        return None

    @classmethod
    def of(cls, data: FoldData) -> "HeldOut":
        groups_s = np.concatenate([d.groups + 100_000 * j for j, d in enumerate(data.source_val)])
        return cls(
            sources=list(data.source_val),
            target=torch.cat([data.target_val.x, data.target_test.x]),
            groups_s=groups_s,
            groups_t=np.concatenate([data.target_val.groups, data.target_test.groups]),
        )

    def features(self, replicas: Replicas, point: str, *, rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Every replica's features at ``point``: source ``[K, N, D]`` and target ``[K, M, D]``."""
        replicas.eval_mode()
        method = replicas.method
        f_s = torch.cat(
            [replicas.outputs(lambda x, t=d.task: method.source_features(x, t)[point], d.x[:rows]) for d in self.sources],
            dim=1,
        )
        f_t = replicas.outputs(lambda x: method.target_features(x)[point], self.target[:rows])
        return f_s, f_t


def measure_gap(replicas: Replicas, held: HeldOut, seed: int) -> list[dict[str, dict[str, float]]]:
    """Per replica and alignment point: the proxy A-distance (subject-grouped) and the
    standardised MMD between the held-out source and target features."""
    gaps: list[dict[str, dict[str, float]]] = [{} for _ in range(replicas.k)]
    for point in GAP_POINTS:
        f_s, f_t = held.features(replicas, point)
        for i in range(replicas.k):
            gap = domain_gap(f_s[i].numpy(), f_t[i].numpy(), groups_s=held.groups_s, groups_t=held.groups_t, seed=seed)
            gaps[i][point] = {"a_distance": gap["a_distance"], "mmd": gap["mmd"]}
    return gaps


def gap_probe(held: HeldOut) -> Callable[[Replicas], list[dict[str, float]]]:
    """The per-epoch probe: standardised MMD of the general features on a fixed small batch."""

    def probe(replicas: Replicas) -> list[dict[str, float]]:
        f_s, f_t = held.features(replicas, "general", rows=PROBE_ROWS)
        return [{"gap/mmd_general": standardized_mmd(f_s[i].numpy(), f_t[i].numpy())} for i in range(replicas.k)]

    return probe


def git_hash() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def config_fingerprint(cfg: ExperimentConfig) -> str:
    text = json.dumps(cfg.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


def _writer(out_dir: Path, key: str, name: str):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency, but a run must not die for a log
        log.warning("tensorboard is not importable: no event files written")
        return None
    return SummaryWriter(str(out_dir / "tensorboard" / key / name))


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Unit:
    """What one call of the training loop trains: a method on a fold, for one seed or for K
    seeds as one vmapped model."""

    row: int  # index of the method's row in cfg.methods
    spec: MethodSpec
    fold: int
    seeds: tuple[int, ...]
    point: int | str = "all"  # labelled target training subjects (a learning-curve point)


def seed_plan(cfg: ExperimentConfig, domains: Domains, spec: MethodSpec, n_seeds: int) -> tuple[bool, str]:
    """Whether the seeds of ``spec`` train as one vmapped model, and a line saying so or why not."""
    if n_seeds < 2:
        return False, "one seed"
    if not cfg.train.vmap_seeds:
        return False, f"{n_seeds} seeds one after another (train.vmap_seeds = false)"
    if not method_class(spec).vmappable:
        return False, f"{n_seeds} seeds one after another: {method_class(spec).why_not_vmappable}"
    ok, why = vmap_support(make_method(cfg, domains, spec))  # losses are probed on a built method
    if not ok:
        return False, f"{n_seeds} seeds one after another: {why}"
    return True, f"{n_seeds} seeds in one vmapped pass" + ("" if why == "vmapped" else f" ({why})")


def plan_units(cfg: ExperimentConfig, domains: Domains, folds: list[Any], *, say=print) -> list[Unit]:
    """Folds outside, methods inside: every unit of a fold shares that fold's data."""
    seeds = tuple(cfg.eval.seed + i for i in range(cfg.eval.seeds))
    groups: list[list[tuple[int, ...]]] = []
    for spec in cfg.methods:
        vmapped, line = seed_plan(cfg, domains, spec, len(seeds))
        if len(seeds) > 1:
            say(f"  {spec.key(cfg.model)}: {line}")
        groups.append([seeds] if vmapped else [(s,) for s in seeds])
    return [
        Unit(row, spec, fold.index, group, point)
        for fold in folds
        for point in curve_points(cfg)
        for row, spec in enumerate(cfg.methods)
        for group in groups[row]
    ]


def curve_points(cfg: ExperimentConfig) -> list[int | str]:
    """The learning curve's points (labelled target subjects per fold); ["all"] = no curve."""
    return list(cfg.eval.target_subjects) or ["all"]


def with_target_subjects(data: FoldData, n: int | str, *, seed: int) -> FoldData:
    """``data`` with the labelled target training rows limited to ``n`` subjects.

    The subjects are taken in one stratified order per fold (shuffled within each label,
    then interleaved in proportion), so the subsets are nested (the 4 are among the 8) and
    every method and seed of a point sees the same ones. Validation and test are unchanged;
    the training features keep the standardisation of the whole (unlabelled) partition.
    """
    train = data.target_train
    subjects, first = np.unique(train.groups, return_index=True)
    if n == "all" or n >= len(subjects):
        return data
    labels = train.y.cpu().numpy()[first]
    rng = np.random.default_rng(seed)
    rank = np.empty(len(subjects))
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        rank[members] = (np.arange(len(members)) + 0.5) / len(members)  # spread over [0, 1]
    keep = set(subjects[np.argsort(rank, kind="stable")[:n]])
    rows = np.flatnonzero(np.isin(train.groups, list(keep)))
    return dataclasses.replace(data, target_train=train.subset(rows))


# --------------------------------------------------------------------------- one unit


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
            self._fold = (fold.index, _fold_data(self.cfg, self.domains, fold, self.device))
        return self._fold[1]

    def __getstate__(self) -> dict[str, Any]:  # shipped to a worker without built tensors
        return {**self.__dict__, "functionals": {}, "_fold": None}


def _result_path(ctx: RunContext, spec: MethodSpec, fold: int, seed: int, point: int | str = "all") -> Path:
    at = "" if point == "all" else f"-n{point}"
    folder = "runs" if ctx.score_test else "validation"
    return ctx.out_dir / folder / spec.key(ctx.cfg.model) / f"fold{fold}{at}-seed{seed}.json"


def _checkpoint_path(ctx: RunContext, unit: Unit) -> Path:
    at = "" if unit.point == "all" else f"-n{unit.point}"
    seeds = unit.seeds
    name = f"fold{unit.fold}{at}-seed{seeds[0]}" + (f"-{seeds[-1]}" if len(seeds) > 1 else "")
    return ctx.out_dir / "checkpoints" / unit.spec.key(ctx.cfg.model) / f"{name}.pt"


def execute_unit(ctx: RunContext, job: tuple[Unit, Any]) -> list[dict[str, Any]]:
    """The one function every executor runs per unit: ``job = (unit, fold)``, on the fold's
    data (with the unit's learning-curve point)."""
    unit, fold = job
    data = with_target_subjects(ctx.fold_data(fold), unit.point, seed=ctx.cfg.eval.seed + fold.index)
    return run_unit(ctx, unit, data, fold)


def run_unit(ctx: RunContext, unit: Unit, data: FoldData, fold: Any) -> list[dict[str, Any]]:
    """Train and test one unit on its fold's ``data``; one result JSON per seed (atomic).

    With ``resume`` finished seeds are read back. A unit continues from its checkpoint
    whenever one exists: a fresh run removes its units' stale checkpoints before any unit
    starts (:func:`plan_run`), so one found here is this run's own (``--resume`` of a killed
    run, or a Ray task retried after its worker died). A vmapped unit's seeds train
    together and finish together. Without ``ctx.score_test`` (a sweep's search) the unit
    returns its validation scores and never predicts the test fold.
    """
    if not is_torch_method(unit.spec):
        return run_classical_unit(ctx, unit, data, fold)
    cfg, spec, seeds = ctx.cfg, unit.spec, list(unit.seeds)
    paths = [_result_path(ctx, spec, unit.fold, s, unit.point) for s in seeds]
    done = {s: json.loads(p.read_text()) for s, p in zip(seeds, paths) if ctx.resume and p.exists()}
    if len(done) == len(seeds):
        return [done[s] for s in seeds]
    key = spec.key(cfg.model)
    at = "" if unit.point == "all" else f"-n{unit.point}"
    checkpoint = _checkpoint_path(ctx, unit)
    replicas = build_replicas(
        lambda: make_method(cfg, ctx.domains, spec), seeds, data, ctx.device,
        vmap=len(seeds) > 1, compile=cfg.train.compile,
    )
    if not ctx.score_test:
        histories = fit(replicas, cfg.train, Run(checkpoint, resume=True, progress=ctx.progress))
        results = [done.get(seed) or _validated(ctx, unit, fold, seed, histories[i]) for i, seed in enumerate(seeds)]
        checkpoint.unlink(missing_ok=True)
        return results
    no_gap = HeldOut.why_not(data)
    held = None if no_gap else HeldOut.of(data)
    before = measure_gap(replicas, held, cfg.eval.seed) if held else None
    picture = held is not None and unit.fold == 0 and cfg.eval.seed in seeds and unit.point == curve_points(cfg)[-1]
    first_features = held.features(replicas, "general") if picture else None
    writers = [_writer(ctx.out_dir, key, f"fold{unit.fold}{at}-seed{s}") for s in seeds]
    try:
        run = Run(checkpoint, resume=True, writers=writers, progress=ctx.progress, epoch_probe=gap_probe(held) if held else None)
        histories = fit(replicas, cfg.train, run)
        probs = predict_test(replicas, data)
        after = measure_gap(replicas, held, cfg.eval.seed) if held else None
        if picture:
            i = seeds.index(cfg.eval.seed)
            _picture(ctx, spec, unit.fold, cfg.eval.seed, first_features, held.features(replicas, "general"), i, (before[i], after[i]))
        trained = "eager" if len(seeds) == 1 else f"vmapped ({len(seeds)} seeds in one pass)"
        results = [  # a seed finished before keeps its file as it is
            done.get(seed)
            or _finish(
                ctx, spec, fold, seed, data, probs[i], histories[i], writer=writers[i], trained=trained,
                point=unit.point,
                extra={"domain_gap": {"before": before[i], "after": after[i]}} if held else {"domain_gap_skipped": no_gap},
            )
            for i, seed in enumerate(seeds)
        ]
    finally:
        for writer in writers:
            if writer is not None:
                writer.close()
    checkpoint.unlink(missing_ok=True)
    return results


def predict_test(replicas: Replicas, data: FoldData) -> torch.Tensor:
    """Every replica's class probabilities on the fold's test windows ``[K, N, C]``: the
    only place a deep unit reads the test fold's predictions."""
    return replicas.predict(replicas.method.target_logits, data.target_test.x)


def _validated(ctx: RunContext, unit: Unit, fold: Any, seed: int, history: dict[str, list[float]]) -> dict[str, Any]:
    """A search unit's result for one seed: the validation UA of the model it kept."""
    result = {
        "method": unit.spec.label,
        "fold": int(fold.index),
        "seed": int(seed),
        "validation_uar": selected_validation_ua({"history": history}),
        "history": history,
    }
    if result["validation_uar"] is None:
        raise DomadaptError(
            f"{unit.spec.label}: selects its model without target labels, so it has no validation UA to tune on"
        )
    _write_json(_result_path(ctx, unit.spec, fold.index, seed, unit.point), result)
    return result


def run_classical_unit(ctx: RunContext, unit: Unit, data: FoldData, fold: Any) -> list[dict[str, Any]]:
    """A classical baseline row on the fold: utterance functionals of the same training,
    validation and test utterances; each test window gets its utterance's probabilities."""
    cls = METHODS.get(unit.spec.name)
    options = cls.Options(**METHODS.check(unit.spec.name, unit.spec.method_options))
    target, sources = _functionals(ctx, options.features, with_sources=options.use_source)
    tseg = ctx.domains.target_segments
    keys = {
        part: [tseg.utterance_keys[u] for u in tseg.utterance.numpy()[d.index]]
        for part, d in (("train", data.target_train), ("val", data.target_val), ("test", data.target_test))
    }
    test_utterances = list(dict.fromkeys(keys["test"]))
    window_row = np.asarray([test_utterances.index(k) for k in keys["test"]])
    if not ctx.score_test:
        raise DomadaptError(f"{unit.spec.label}: a classical baseline chooses its C itself; a sweep tunes deep methods")
    results = []
    for seed in unit.seeds:
        path = _result_path(ctx, unit.spec, unit.fold, seed, unit.point)
        if ctx.resume and path.exists():
            results.append(json.loads(path.read_text()))
            continue
        baseline = cls(options, num_classes=data.target_test.num_classes, seed=seed)
        probs = baseline.fit_predict(
            target, list(dict.fromkeys(keys["train"])), list(dict.fromkeys(keys["val"])), test_utterances, sources=sources
        )
        selection = {k: v for k, v in baseline.model.selection.items() if k != "convergence_warnings"}
        results.append(
            _finish(ctx, unit.spec, fold, seed, data, torch.as_tensor(probs[window_row], dtype=torch.float32), {},
                    writer=None, trained="scikit-learn", point=unit.point, extra={"selection": selection})
        )
    return results


def _functionals(ctx: RunContext, kind: str, *, with_sources: bool) -> tuple[Any, list[Any]]:
    """Utterance functionals ``kind`` of the target (and the sources, if asked), cached on
    disk and for the rest of the experiment."""
    from domadapt.features.functionals import utterance_functionals

    def get(corpus: Corpus) -> Any:
        key = (kind, corpus.name, str(corpus.root))
        if key not in ctx.functionals:
            feats = ctx.cfg.features
            ctx.functionals[key] = utterance_functionals(corpus, kind, cfg=feats, cache_dir=ctx.cache_dir, progress=ctx.progress)
        return ctx.functionals[key]

    return get(ctx.domains.target), [get(c) for c in ctx.domains.sources] if with_sources else []


def _finish(
    ctx: RunContext, spec: MethodSpec, fold: Any, seed: int, data: FoldData, probs: torch.Tensor,
    history: dict[str, list[float]], *, writer: Any, trained: str, point: int | str = "all",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Test metrics of one seed; its result JSON is written atomically."""
    test = data.target_test
    metrics = evaluate_predictions(probs.numpy(), test.y.cpu().numpy(), test.groups, num_classes=test.num_classes)
    if writer is not None:
        for name, value in metrics.items():
            if isinstance(value, (int, float)):
                writer.add_scalar(f"test/{name}", float(value), 0)
    result = {
        "method": spec.label,
        "fold": int(fold.index),
        "seed": int(seed),
        "trained": trained,
        "metrics": metrics,
        "history": history,
        "n_train": len(data.target_train),
        "n_val": len(data.target_val),
        "n_test": len(test),
        "target_subjects": point,
        "n_train_subjects": int(len(np.unique(data.target_train.groups))),
        "n_val_subjects": int(len(np.unique(data.target_val.groups))),
        "n_test_subjects": int(len(np.unique(test.groups))),
        "test_subjects": _test_subjects(ctx, probs.numpy(), test),
        **(extra or {}),
    }
    if writer is not None:
        writer.add_hparams(*run_hparams(ctx.cfg, spec, result), run_name=".")  # "." = this run's own folder
    _write_json(_result_path(ctx, spec, fold.index, seed, point), result)
    return result


def run_hparams(cfg: ExperimentConfig, spec: MethodSpec, result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """One run's row of tensorboard's HParams tab: what may differ between runs (method, its
    options, backbone, training settings, fold, seed) and what it scored (test and selected
    validation UA; NaN when selected without target labels). Values tensorboard cannot show
    (None, lists, tables) go in as their JSON text."""
    train = cfg.train
    hparams = {
        "method": spec.label, "backbone": spec.backbone_label(cfg.model), "fold": result["fold"], "seed": result["seed"],
        "target_subjects": str(result["target_subjects"]), "lr": train.lr, "epochs": train.epochs,
        "pretrain_epochs": train.pretrain_epochs, "batch_size": train.batch_size, "align_weight": train.align_weight,
        **{f"option.{key}": value for key, value in spec.method_options.items()},
    }
    hparams = {k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v) for k, v in hparams.items()}
    val_ua = selected_validation_ua(result)
    metrics = {"hparam/test_uar": float(result["metrics"]["uar"]), "hparam/val_uar": float("nan") if val_ua is None else val_ua}
    return hparams, metrics


def _test_subjects(ctx: RunContext, probs: np.ndarray, test: DomainData) -> dict[str, list]:
    """The test subjects (by name) with their labels and predictions."""
    subjects = subject_predictions(probs, test.y.cpu().numpy(), test.groups)
    subjects["ids"] = [ctx.domains.target_segments.subjects[g] for g in subjects["ids"]]
    return subjects


def _picture(ctx: RunContext, spec: MethodSpec, fold: int, seed: int, first, last, i: int, gaps) -> None:
    """Replica ``i``'s held-out general features before and after training, with their gap."""
    before, after = gaps
    ad = lambda g: f"A-dist {g['general']['a_distance']:.2f}, MMD {g['general']['mmd']:.3f}"  # noqa: E731
    plot_feature_space(
        {f"before training ({ad(before)})": (first[0][i].numpy(), first[1][i].numpy()),
         f"after training ({ad(after)})": (last[0][i].numpy(), last[1][i].numpy())},
        ctx.out_dir / "plots" / f"{spec.key(ctx.cfg.model)}-features.png",
        title=f"{ctx.cfg.name} {spec.label}: held-out general features, PCA (fold {fold}, seed {seed})",
    )


# --------------------------------------------------------------------------- the experiment


def run_experiment(
    cfg: ExperimentConfig,
    domains: Domains,
    *,
    out_dir: Path,
    device: torch.device,
    resume: bool = False,
    progress: bool = False,
    cache_dir: Path | None = None,
    baseline: str | None = None,
    executor: Executor | None = None,
    annotate: dict[str, Any] | None = None,
    say=print,
) -> dict[str, Any]:
    """Run every method of ``cfg`` over folds x seeds on ``domains`` and write the results
    files into ``out_dir``; returns the results dict (see :mod:`domadapt.report`), with the
    paired comparisons against the ``baseline`` row when one is named.

    The units run on ``executor`` (default: in this process); ``annotate`` adds top-level
    keys to results.json (a sweep's ``"selected_by": "validation"``). A second live run on
    ``out_dir`` is refused (:class:`~domadapt.outdir_lock.OutDirLock`).
    """
    executor = executor or LocalExecutor()
    with OutDirLock(out_dir):
        plan = plan_run(
            cfg, domains, out_dir=out_dir, device=executor.device(device), resume=resume, progress=progress,
            cache_dir=cache_dir, say=say,
        )
        runs: dict[tuple[int, int | str], list[dict[str, Any]]] = {}
        for unit, results in zip(plan.units, run_units(executor, plan, say=say)):
            runs.setdefault((unit.row, unit.point), []).extend(results)  # plan order, whatever finished first
        points = curve_points(cfg)
        rows = [_row(cfg, domains, spec, runs[row, points[-1]], out_dir) for row, spec in enumerate(cfg.methods)]
        results = {
            "recipe": cfg.name,
            "data": "synthetic" if domains.synthetic else "real",
            "title": f"{cfg.name}: " + (f"{'+'.join(cfg.data.source)} -> " if cfg.data.source else "") + cfg.data.target,
            "subject_overlap": plan.subject_overlap,
            "config": cfg.to_dict(),
            "git": git_hash(),
            "skipped": _skipped(domains),
            "rows": rows,
            **(annotate or {}),
        }
        if len(points) > 1:
            results["curve"] = learning_curve(cfg, runs, points)
            plot_learning_curve(results["curve"], out_dir / "plots" / "learning-curve.png", title=f"{cfg.name}: learning curve")
        # the statistics are computed once, from the per-run files, as the files are written
        write_results(out_dir, results, baseline=baseline or cfg.eval.baseline)
        return load_results(out_dir)


@dataclass
class PlannedRun:
    """One experiment ready to dispatch: its context, its folds and its units in plan order."""

    ctx: RunContext
    folds: list[Any]
    units: list[Unit]

    @property
    def subject_overlap(self) -> bool:
        return any(getattr(f, "subject_overlap", False) for f in self.folds)


def plan_run(
    cfg: ExperimentConfig,
    domains: Domains,
    *,
    out_dir: Path,
    device: torch.device,
    resume: bool = False,
    progress: bool = False,
    cache_dir: Path | None = None,
    score_test: bool = True,
    say=print,
) -> PlannedRun:
    """config.json, the folds and the units of one run in ``out_dir`` (the caller holds it).

    A fresh run (no ``resume``) removes its units' checkpoints first: one left by an earlier
    killed run in the same folder is not this run's, and every unit resumes from a
    checkpoint it finds (a Ray task retried after its worker died).
    """
    ctx = RunContext(cfg, domains, out_dir, device, resume, progress, cache_dir, score_test)
    _write_config(ctx)
    _describe(domains, say)
    folds = split_target(cfg, domains)
    plan = PlannedRun(ctx, folds, [])
    say(
        f"  {len(cfg.methods)} methods x {len(folds)} folds x {cfg.eval.seeds} seeds on {device}; split: "
        f"{cfg.eval.splitter}{' (SUBJECTS OVERLAP)' if plan.subject_overlap else ', subject-independent'}"
    )
    plan.units = plan_units(cfg, domains, folds, say=say)
    if not resume:
        for unit in plan.units:
            _checkpoint_path(ctx, unit).unlink(missing_ok=True)
    return plan


def run_units(executor: Executor, plan: PlannedRun, *, say=print) -> list[list[dict[str, Any]]]:
    """Every unit of ``plan`` through ``executor``; per unit (in plan order, whatever
    finished first) its per-seed results."""
    ctx = plan.ctx
    folds = {f.index: f for f in plan.folds}
    jobs = [(unit, folds[unit.fold]) for unit in plan.units]
    out: list[Any] = [None] * len(jobs)
    # a line per unit (said), the record a log and a terminal's scrollback keep; a bar besides on a terminal
    progress_units = Progress(len(jobs), "units (method x fold x seeds)", unit="units", enabled=ctx.progress, log_lines=False)
    with progress_units as clock:
        say_above = clock.above(say)
        # units at once would interleave their per-epoch bars: then only the unit lines show
        shared = dataclasses.replace(ctx, progress=False) if executor.parallel else ctx
        for j, results in executor.map(execute_unit, shared, jobs):
            unit = plan.units[j]
            if executor.remote:  # the driver keeps its own copy: results need no disk shared with the workers
                for result in results:
                    _write_json(_result_path(ctx, unit.spec, unit.fold, result["seed"], unit.point), result)
            out[j] = results
            for result in results:
                _say_result(say_above, unit.spec.key(ctx.cfg.model), result)
            clock.update(last=f"{unit.spec.label} fold {unit.fold}")
            say_above(f"  [{clock.line()}]")
    return out


def learning_curve(cfg: ExperimentConfig, runs: dict, points: list[int | str]) -> dict[str, Any]:
    """UA and subject accuracy per method and point (mean, std and runs over folds x seeds)."""
    rows = []
    for row, spec in enumerate(cfg.methods):
        per_point = {}
        for point in points:
            point_runs = runs[row, point]
            per_point[str(point)] = {
                "n_train_subjects": float(np.mean([r["n_train_subjects"] for r in point_runs])),
                **{m: summarize_runs([float(r["metrics"][m]) for r in point_runs]) for m in ("uar", "subject_accuracy")},
            }
        rows.append({"method": spec.label, "points": per_point})
    return {"points": [str(p) for p in points], "rows": rows}


def _fold_data(cfg: ExperimentConfig, domains: Domains, fold: Any, device: torch.device) -> FoldData:
    """The fold's tensors. The validation subjects and the source hold-out are carved with
    ``eval.seed``, the same for every seed: seeds vary initialisation, batch order and
    dropout on one split (so K seeds can train as one vmapped model); folds vary the split."""
    return build_fold(
        domains, fold, val_fraction=cfg.train.val_fraction, seed=cfg.eval.seed, device=device,
        standardize_features=cfg.features.standardize,
    )


def _write_config(ctx: RunContext) -> None:
    """config.json; a resume with another configuration is refused."""
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = config_fingerprint(ctx.cfg)
    path = ctx.out_dir / "config.json"
    if ctx.resume and path.exists():
        previous = json.loads(path.read_text()).get("fingerprint")
        if previous != fingerprint:
            raise DomadaptError(
                f"{path}: --resume with a different configuration (fingerprint {previous} vs "
                f"{fingerprint}); use a new --out or the same settings"
            )
    _write_json(path, {"fingerprint": fingerprint, "git": git_hash(), "config": ctx.cfg.to_dict()})


def _describe(domains: Domains, say) -> None:
    for corpus, seg in zip([*domains.sources, domains.target], [*domains.source_segments, domains.target_segments]):
        say(
            f"  {corpus.name:<8} {'SYNTHETIC' if corpus.synthetic else 'real':<9} {corpus.root}: "
            f"{len(corpus.utterances)} utterances, {len(corpus.subjects())} subjects, "
            f"{len(seg.y)} segments {tuple(seg.x.shape[1:])}, classes {', '.join(corpus.classes)}"
        )


def _say_result(say, key: str, result: dict[str, Any]) -> None:
    if "metrics" not in result:  # a sweep's search: scored on validation only
        say(f"  {key:<18} fold {result['fold']} seed {result['seed']}: validation UA {result['validation_uar']:.3f}")
        return
    m = result["metrics"]
    say(
        f"  {key:<18} fold {result['fold']} seed {result['seed']}: acc {m['accuracy']:.3f} "
        f"UA {m['uar']:.3f} F1 {m['macro_f1']:.3f} subject-acc {m['subject_accuracy']:.3f}"
    )


def _row(cfg: ExperimentConfig, domains: Domains, spec: MethodSpec, runs: list[dict[str, Any]], out_dir: Path) -> dict:
    """One results row: metrics over folds x seeds, the summed confusion and the row's plots."""
    key = spec.key(cfg.model)
    metrics = {m: summarize_runs([float(r["metrics"][m]) for r in runs]) for m in REPORTED_METRICS if m in runs[0]["metrics"]}
    confusion = np.sum([np.asarray(r["metrics"]["confusion"]) for r in runs], axis=0)
    plots = out_dir / "plots"
    plot_confusion(
        confusion, list(domains.target.classes), plots / f"{key}-confusion.png",
        title=f"{cfg.name} {spec.label}: segment confusion, all folds x seeds",
    )
    first = min(runs, key=lambda r: (r["fold"], r["seed"]))
    if first["history"]:  # a classical baseline has no epochs
        title = f"{cfg.name} {spec.label}: fold {first['fold']} seed {first['seed']}"
        plot_curves(first["history"], plots / f"{key}-curves.png", title=title)
    extra: dict[str, Any] = {"validation": _validation_summary(runs, len(domains.target.classes))}
    if all("domain_gap" in r for r in runs):
        extra["domain_gap"] = {
            point: {
                measure: {when: summarize_runs([r["domain_gap"][when][point][measure] for r in runs]) for when in ("before", "after")}
                for measure in ("a_distance", "mmd")
            }
            for point in GAP_POINTS
        }
    # a classical row's "backbone" is its linear model
    backbone = spec.backbone_label(cfg.model) if is_torch_method(spec) else {**METHODS.options(spec.name), **spec.method_options}["model"]
    return {
        "method": spec.label, "key": key, "backbone": backbone, "metrics": metrics, "confusion": confusion.tolist(), **extra
    }


#: a run whose selected validation UA is below chance (1/K) + this margin has not learned
CHANCE_MARGIN = 0.05


def selected_validation_ua(result: dict[str, Any]) -> float | None:
    """The validation UA of the model a run kept (its last stage's best epoch), or None when
    it was selected without target labels (information maximisation)."""
    if "selection" in result:  # a classical baseline: the validation UA of the chosen C
        return max(result["selection"]["ua_by_c"].values()) if result["selection"].get("criterion") == "validation UA" else None
    stages = list(dict.fromkeys(key.split("/")[0] for key in result["history"]))
    values = result["history"].get(f"{stages[-1]}/val/uar") if stages else None
    return max(values) if values else None


def _validation_summary(runs: list[dict[str, Any]], num_classes: int) -> dict[str, Any]:
    """The selected validation UA over a row's runs and how many of them are still at chance."""
    scores = [selected_validation_ua(r) for r in runs]
    known = [v for v in scores if v is not None]
    at_chance = sum(v < 1.0 / num_classes + CHANCE_MARGIN for v in known)
    return {
        "uar": summarize_runs(known) if known else None,
        "runs_at_chance": at_chance,
        "runs_judged": len(known),
        "at_chance": bool(known) and at_chance * 2 > len(known),
    }


def _skipped(domains: Domains) -> list[dict[str, str]]:
    return [
        {"path": s.path, "reason": s.reason}
        for seg in [*domains.source_segments, domains.target_segments]
        for s in seg.skipped
    ]
