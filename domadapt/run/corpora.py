"""The corpora of an experiment: loaded (a missing root: the synthetic stand-in), limited
(``data.max_*``, what ``--quick`` uses) and cut into segments (cached on disk)."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from domadapt.config import ExperimentConfig
from domadapt.corpora import load_corpus
from domadapt.corpora.base import Corpus
from domadapt.corpora.labels import apply_label_map
from domadapt.corpora.synthetic import synthetic_root
from domadapt.data import TARGET_TASK
from domadapt.errors import DomadaptError
from domadapt.features import SegmentSet, extract_segments


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
    jobs: int | None = 1,
) -> tuple[list[Corpus], Corpus]:
    """Load the recipe's corpora; a missing root means the embedded synthetic stand-in of that
    corpus (generated once into the cache by ``jobs`` worker processes, its files counted
    when ``progress``).
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
            corpus = load_corpus(name, synthetic_root(name, cache_dir=cache_dir, progress=progress, jobs=jobs), **options)
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
    jobs: int | None = 1,
) -> Domains:
    """Segments of every corpus, computed on ``device`` and cached on disk; ``jobs``: worker
    processes of a functional kind (``None``: one per core), as the baseline rows' functionals."""
    feats = cfg.features
    extract = lambda c: extract_segments(c, feats, device=device, cache_dir=cache_dir, progress=progress, jobs=jobs)  # noqa: E731
    source_segments = [extract(c) for c in sources]
    target_segments = extract(target)
    return Domains(list(sources), target, source_segments, target_segments)


def source_task(corpus: Corpus, shared: bool) -> str:
    return TARGET_TASK if shared else f"source:{corpus.name}"
