"""The target's folds and each fold's tensors: the split (:mod:`domadapt.splits`), the
validation subjects carved from the training ones, the source hold-out, the standardisation
with training-only statistics, and a learning-curve point's subset of training subjects."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from domadapt.config import ExperimentConfig
from domadapt.data import TARGET_TASK, FoldData, domain_from_segments, standardize
from domadapt.errors import DomadaptError
from domadapt.run.corpora import Domains, source_task
from domadapt.registries import SPLITTERS
from domadapt.splits import Splitter, build_splitter, carve_validation

SOURCE_VAL_FRACTION = 0.1  # random share of each source held out to select pre-training epochs


def make_splitter(cfg: ExperimentConfig) -> Splitter:
    """The target's splitter from ``[eval]``: each protocol gets those of ``eval.folds``,
    ``eval.seed`` and ``eval.allow_subject_overlap`` that it declares as options."""
    ev = cfg.eval
    offered = {"n_splits": ev.folds, "seed": ev.seed, "allow_subject_overlap": ev.allow_subject_overlap}
    declared = SPLITTERS.options(ev.splitter)
    splitter = build_splitter(ev.splitter, **{key: value for key, value in offered.items() if key in declared})
    if not isinstance(splitter, Splitter):
        raise DomadaptError(
            f"eval.splitter = {ev.splitter!r}: builds a {type(splitter).__name__}, expected a domadapt.splits.Splitter"
        )
    return splitter


def split_target(cfg: ExperimentConfig, domains: Domains) -> list[Any]:
    """The target's folds: every splitter gets each segment's class and subject, and the
    per-segment inputs it declares in ``uses`` (utterances: the windows of one recording never
    straddle train/test; sessions: both speakers of an IEMOCAP session are held out together;
    roles: the corpus's own train/dev/test split)."""
    tseg = domains.target_segments
    splitter = make_splitter(cfg)
    inputs = {
        "utterances": lambda: tseg.utterance.numpy(),
        "sessions": lambda: _sessions(domains),
        "roles": lambda: _official_roles(domains),
    }
    given = {name: inputs[name]() for name in splitter.uses}
    return list(splitter.split(tseg.y.numpy(), tseg.subject.numpy(), **given))


def _official_roles(domains: Domains) -> np.ndarray:
    """Each target segment's role in the corpus's own split ("train", "dev", "test"; None
    for a subject the split does not name)."""
    official = domains.target.official_split
    if not official:
        raise DomadaptError(f"eval.splitter = 'official': corpus {domains.target.name!r} has no official split")
    names = domains.target_segments.subjects
    return np.array([official.get(names[g]) for g in domains.target_segments.subject.numpy()], dtype=object)


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


def fold_data(cfg: ExperimentConfig, domains: Domains, fold: Any, device: torch.device) -> FoldData:
    """The fold's tensors. The validation subjects and the source hold-out are carved with
    ``eval.seed``, the same for every seed: seeds vary initialisation, batch order and
    dropout on one split (so K seeds can train as one vmapped model); folds vary the split."""
    return build_fold(
        domains, fold, val_fraction=cfg.train.val_fraction, seed=cfg.eval.seed, device=device,
        standardize_features=cfg.features.standardize,
    )


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
