"""Utterance-level feature vectors (one row per utterance) for the classical baselines.

Every paper in the field reports an openSMILE-functionals + linear-model row first; this
module computes the features of that row, and ``domadapt.methods.baseline`` the model.

Kinds (``KINDS``):

* ``"egemaps"`` — openSMILE eGeMAPSv02 functionals, 88 per utterance;
* ``"compare"`` — openSMILE ComParE_2016 functionals, 6373 per utterance;
* ``"mfcc_stats"`` — mean and standard deviation over time of the front-end's MFCC
  (``FeatureConfig.n_mfcc`` = 39 by default, so 78 per utterance), computed by
  ``domadapt.features.frontend.compute_features`` with the configured backend and STFT
  settings over the *whole* utterance (no windows, no padding).

Audio: read with ``domadapt.audio.read_audio`` (soundfile: any rate or bit depth, stereo
down-mixed, ``Utterance.start``/``end`` honoured) and resampled to
``FeatureConfig.sample_rate`` (16 kHz by default) with the front-end's resampler before any
kind is computed — also for openSMILE, so that a 44.1 kHz target corpus and a 16 kHz
source corpus yield features over the same band (ComParE's spectral descriptors depend on
the Nyquist frequency). Only ``sample_rate`` and, for ``mfcc_stats``, the MFCC settings
(``backend n_mfcc n_mels n_fft hop_length stft_pad_mode top_db``) and ``min_seconds`` are
used; window, padding and normalisation settings do not apply to whole-utterance vectors.

Skips (listed in ``UtteranceFeatures.skipped`` as ``SkippedFile``, logged, never raised):
the same rules as the front-end — unreadable / empty / NaN audio, silent (peak below
``frontend.SILENCE_PEAK``), shorter than ``min_seconds`` — plus a file whose whole feature
row is non-finite (openSMILE fills a too-short segment with NaN). So with the same
``FeatureConfig`` the kept utterances are those of ``extract_segments`` (unless
``pad="drop"``, which can drop more there), and ``keys`` are the same ``Utterance.key``
strings as ``SegmentSet.utterance_keys``: ``UtteranceFeatures.rows(keys)`` maps a fold's
segments to utterance rows.

Non-finite values in an otherwise finite row: replaced, per column, by the median of that
column's finite values over the utterances of this corpus (0 where a column has none).
This uses no labels; every replaced cell is counted per file in
``UtteranceFeatures.imputed`` and logged, so nothing is replaced silently.

Cache: ``<cache root>/functionals/<corpus>-<kind>-<key>.pt``, written atomically (temp
file + ``os.replace``). The key hashes the kind, ``FUNCTIONALS_VERSION``, the opensmile
version (openSMILE kinds), the settings used (above), and — through
``domadapt.features.cache.cache_key`` — every utterance's key (path + cut), label,
subject, file size and mtime. Cache root as for the front-end: ``cache_dir``, else
``$DOMADAPT_CACHE``, else ``~/.cache/domadapt``; ``cache_dir=False`` disables it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from domadapt.audio import read_audio
from domadapt.corpora.arrays import VectorCorpus
from domadapt.corpora.base import Corpus, SkippedFile, Utterance
from domadapt.errors import DomadaptError
from domadapt.features import cache as feature_cache
from domadapt.features.config import FUNCTIONAL_KINDS, FeatureConfig
from domadapt.features.frontend import SILENCE_PEAK, compute_features, normalize_features, resample_packed
from domadapt.features.segments import SegmentSet
from domadapt.progress import Progress

log = logging.getLogger("domadapt")

KINDS = FUNCTIONAL_KINDS
# Bump when this module computes different numbers for the same settings and files.
FUNCTIONALS_VERSION = 1
_OPENSMILE_SETS = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}
# FeatureConfig fields each kind depends on; the others keep their defaults in the key.
_USED_FIELDS = {
    "egemaps": ("sample_rate", "min_seconds"),
    "compare": ("sample_rate", "min_seconds"),
    "mfcc_stats": ("sample_rate", "min_seconds", "backend", "n_mfcc", "n_mels", "n_fft",
                   "hop_length", "stft_pad_mode", "top_db"),
}
_LOGGED = 20  # individual warnings before only a summary is logged


@dataclass
class UtteranceFeatures:
    """One feature vector per usable utterance of a corpus.

    Shapes: ``x`` [U, D] float32 (finite); ``y`` [U] int64 index into ``classes``;
    ``keys``/``subjects`` [U] (``Utterance.key``, ``Utterance.subject``); ``names`` [D].
    ``skipped`` lists the loader's skips followed by this module's; ``imputed`` maps a
    file's key to the number of its values replaced (see the module docstring).
    """

    x: np.ndarray
    y: np.ndarray
    keys: tuple[str, ...]
    subjects: tuple[str, ...]
    names: tuple[str, ...]
    classes: tuple[str, ...]
    kind: str
    domain: str
    synthetic: bool = False
    skipped: list[SkippedFile] = field(default_factory=list)
    imputed: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def rows(self, keys: Iterable[str]) -> np.ndarray:
        """Row index [len(keys)] int64 of each utterance key (e.g. from
        ``SegmentSet.utterance_keys``); raises DomadaptError listing keys that have no row."""
        where = {k: i for i, k in enumerate(self.keys)}
        keys = list(keys)
        missing = [k for k in keys if k not in where]
        if missing:
            raise DomadaptError(
                f"{len(missing)} utterance(s) have no {self.kind} row (skipped here?), e.g. "
                + ", ".join(missing[:3])
            )
        return np.fromiter((where[k] for k in keys), dtype=np.int64, count=len(keys))

    def subset(self, rows: np.ndarray | list[int]) -> "UtteranceFeatures":
        """The rows ``rows`` (int indices or a boolean mask)."""
        idx = np.asarray(rows)
        idx = np.flatnonzero(idx) if idx.dtype == bool else idx.astype(np.int64)
        return dataclasses.replace(
            self,
            x=self.x[idx],
            y=self.y[idx],
            keys=tuple(self.keys[i] for i in idx),
            subjects=tuple(self.subjects[i] for i in idx),
            skipped=list(self.skipped),
            imputed=dict(self.imputed),
        )

    def summary(self) -> str:
        return (
            f"{self.domain}: {len(self)} utterances x {self.x.shape[1]} {self.kind} features, "
            f"{len(set(self.subjects))} subjects; {len(self.skipped)} skipped, "
            f"{sum(self.imputed.values())} values imputed" + (" [synthetic]" if self.synthetic else "")
        )


# ---------------------------------------------------------------------------- extractors


@dataclass
class _Extractor:
    """``fn(wave [S] float32 at sample_rate) -> [D]`` and the D feature names."""

    names: tuple[str, ...]
    fn: Callable[[np.ndarray], np.ndarray]


def _opensmile_version() -> str:
    import opensmile

    return str(opensmile.__version__)


@functools.lru_cache(maxsize=4)
def _make_extractor(kind: str, cfg: FeatureConfig) -> _Extractor:
    """The extractor of ``kind``, built once per process (openSMILE's config is parsed here)."""
    if kind in _OPENSMILE_SETS:
        import opensmile

        smile = opensmile.Smile(
            feature_set=opensmile.FeatureSet[_OPENSMILE_SETS[kind]],
            feature_level=opensmile.FeatureLevel.Functionals,
        )

        def run_smile(wave: np.ndarray) -> np.ndarray:
            with warnings.catch_warnings():  # "Segment too short, filling with NaN": handled
                warnings.simplefilter("ignore", UserWarning)
                frame = smile.process_signal(wave, cfg.sample_rate)
            return frame.to_numpy(dtype=np.float32).reshape(-1)

        return _Extractor(tuple(smile.feature_names), run_smile)

    mcfg = cfg.replace(kind="mfcc")

    def mfcc_stats(wave: np.ndarray) -> np.ndarray:
        feats = compute_features(torch.from_numpy(wave)[None], mcfg, torch.device("cpu"))[0]  # [C, T]
        f64 = feats.double()
        return torch.cat([f64.mean(dim=1), f64.std(dim=1, unbiased=False)]).float().numpy()

    names = tuple(f"mfcc{i}_mean" for i in range(cfg.n_mfcc)) + tuple(
        f"mfcc{i}_std" for i in range(cfg.n_mfcc)
    )
    return _Extractor(names, mfcc_stats)


# ---------------------------------------------------------------------------- cache


def functionals_cache_path(
    corpus: Corpus, kind: str, cfg: FeatureConfig, cache_dir: str | Path | None = None
) -> Path:
    """Where the entry for ``(corpus, kind, cfg)`` lives (the file may not exist)."""
    used = {name: getattr(cfg, name) for name in _USED_FIELDS[kind]}
    # Fields a kind does not use stay at their defaults, so changing them reuses the entry.
    key_cfg = FeatureConfig().replace(**used)
    h = hashlib.sha256()
    h.update(json.dumps({
        "functionals_version": FUNCTIONALS_VERSION,
        "kind": kind,
        "opensmile": _opensmile_version() if kind in _OPENSMILE_SETS else None,
        "settings": used,
    }, sort_keys=True).encode())
    h.update(feature_cache.cache_key(corpus, key_cfg).encode())  # file paths, sizes, mtimes
    root = Path(cache_dir).expanduser() if cache_dir is not None else feature_cache.default_cache_dir()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", corpus.name) or "corpus"
    return root / "functionals" / f"{name}-{kind}-{h.hexdigest()[:32]}.pt"


def _to_payload(f: UtteranceFeatures) -> dict:
    return {
        "functionals_version": FUNCTIONALS_VERSION,
        "x": torch.from_numpy(f.x),
        "y": torch.from_numpy(f.y),
        "keys": list(f.keys),
        "subjects": list(f.subjects),
        "names": list(f.names),
        "classes": list(f.classes),
        "kind": f.kind,
        "domain": f.domain,
        "synthetic": bool(f.synthetic),
        "skipped": [[s.path, s.reason] for s in f.skipped],
        "imputed": dict(f.imputed),
    }


def _from_payload(obj: dict) -> UtteranceFeatures:
    if not isinstance(obj, dict) or obj.get("functionals_version") != FUNCTIONALS_VERSION:
        raise ValueError("not a domadapt functionals cache entry of this version")
    f = UtteranceFeatures(
        x=obj["x"].numpy(),
        y=obj["y"].numpy(),
        keys=tuple(obj["keys"]),
        subjects=tuple(obj["subjects"]),
        names=tuple(obj["names"]),
        classes=tuple(obj["classes"]),
        kind=str(obj["kind"]),
        domain=str(obj["domain"]),
        synthetic=bool(obj["synthetic"]),
        skipped=[SkippedFile(str(p), str(r)) for p, r in obj["skipped"]],
        imputed={str(k): int(v) for k, v in obj["imputed"].items()},
    )
    u = f.x.shape[0]
    if f.x.ndim != 2 or f.y.shape != (u,) or len(f.keys) != u or len(f.names) != f.x.shape[1]:
        raise ValueError("inconsistent shapes")
    return f


def _load(path: Path) -> UtteranceFeatures | None:
    if not path.is_file():
        return None
    try:
        return _from_payload(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:  # truncated file, wrong layout: rebuild
        log.warning("functionals cache %s is unreadable (%s); rebuilding it", path, exc)
        return None


def _save(f: UtteranceFeatures, path: Path) -> bool:
    return feature_cache.save_cache_entry(_to_payload(f), path, what="functionals cache")


# ---------------------------------------------------------------------------- extraction


def _where(u: Utterance) -> str:
    return "" if u.start is None and u.end is None else f" [{u.start}-{u.end} s]"


def _resampled(wav: np.ndarray, sr: int, cfg: FeatureConfig) -> np.ndarray:
    if sr == cfg.sample_rate:
        return wav
    flat, _, offsets, lengths = next(resample_packed([wav], sr, cfg, torch.device("cpu")))
    return flat[int(offsets[0]) : int(offsets[0] + lengths[0])].numpy()


def _impute(x: np.ndarray, keys: list[str]) -> dict[str, int]:
    """Replace non-finite cells of ``x`` in place by their column's finite median."""
    bad = ~np.isfinite(x)
    if not bad.any():
        return {}
    with warnings.catch_warnings():  # all-NaN column: "All-NaN slice encountered"
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(np.where(bad, np.nan, x), axis=0)
    med = np.where(np.isfinite(med), med, 0.0).astype(np.float32)
    rows, cols = np.nonzero(bad)
    x[rows, cols] = med[cols]
    per_row = np.bincount(rows, minlength=x.shape[0])
    return {keys[i]: int(n) for i, n in enumerate(per_row) if n}


#: files per task when the files are shared out to worker processes: few enough that the
#: workers finish together, enough that a task's round trip is small beside its files
_FILES_PER_TASK = 16


def _file_rows(shared: tuple[str, FeatureConfig, list[Utterance]], files: range) -> list[np.ndarray | str]:
    """Each of ``files`` (positions in the utterance list): its feature row, or why it is
    skipped. The same for every file wherever it runs, so the rows do not depend on how the
    files are shared out."""
    kind, cfg, utts = shared
    extractor = _make_extractor(kind, cfg)
    out: list[np.ndarray | str] = []
    for i in files:
        u = utts[i]
        try:
            wav, sr = read_audio(u.path, u.start, u.end)  # raises on unreadable / empty / NaN
        except DomadaptError as exc:
            out.append(str(exc))
            continue
        peak = float(np.abs(wav).max())
        if peak < SILENCE_PEAK:
            out.append(f"silent (peak {peak:.1e} < {SILENCE_PEAK:.0e})")
            continue
        seconds = wav.shape[0] / sr
        if seconds < cfg.min_seconds:
            out.append(f"too short ({seconds:.2f} s < min_seconds {cfg.min_seconds} s)")
            continue
        row = np.asarray(extractor.fn(_resampled(wav, sr, cfg)), dtype=np.float32).reshape(-1)
        if row.shape[0] != len(extractor.names):
            raise DomadaptError(
                f"{u.path}: {kind} gave {row.shape[0]} values, expected {len(extractor.names)}"
            )
        if not np.isfinite(row).any():
            out.append(f"{kind}: every feature is NaN/inf (segment too short for openSMILE?)")
            continue
        out.append(row)
    return out


def _rows_of_every_file(
    kind: str, cfg: FeatureConfig, utts: list[Utterance], *, jobs: int | None, bar: Progress
) -> list[np.ndarray | str]:
    """:func:`_file_rows` of every utterance, in corpus order: in this process (``jobs=1``,
    with the caller's torch threads) or shared out to ``jobs`` worker processes (None: one
    per core) with one torch thread each, as a unit's worker has."""
    tasks = [range(i, min(i + _FILES_PER_TASK, len(utts))) for i in range(0, len(utts), _FILES_PER_TASK)]
    results: list[list[np.ndarray | str]] = [[] for _ in tasks]
    if jobs == 1:
        for t, files in enumerate(tasks):
            results[t] = _file_rows((kind, cfg, utts), files)
            bar.update(len(files))
    else:
        from domadapt.executors import preparation_executor  # it imports the registries

        with preparation_executor(jobs) as executor:
            for t, rows in executor.map(_file_rows, (kind, cfg, utts), tasks):
                results[t] = rows
                bar.update(len(rows))
    return [row for rows in results for row in rows]


def utterance_functionals(
    corpus: Corpus,
    kind: str,
    *,
    cfg: FeatureConfig | None = None,
    cache_dir: str | Path | None | bool = None,
    progress: bool = False,
    jobs: int | None = 1,
) -> UtteranceFeatures:
    """One ``kind`` feature vector per usable utterance of ``corpus`` (see the module
    docstring for kinds, skips, non-finite values and the cache).

    ``cfg``: the front-end settings (default ``FeatureConfig()``); ``cache_dir``: the cache
    root (``None``: ``$DOMADAPT_CACHE`` or ``~/.cache/domadapt``; ``False``: no cache);
    ``jobs``: worker processes sharing the files (None: one per core; 1: this process).
    Raises DomadaptError for an unknown kind, a label outside ``corpus.classes``, or when no
    utterance at all is usable (naming the corpus root and a few reasons).
    """
    if kind not in KINDS:
        raise DomadaptError(f"unknown functionals kind {kind!r}; known: {', '.join(KINDS)}")
    if isinstance(corpus, VectorCorpus):  # a recipe's baseline:egemaps row on precomputed vectors
        raise DomadaptError(
            f"corpus {corpus.name} at {corpus.root} holds feature vectors, not audio: {kind} functionals "
            "need audio; leave the row with features = \"{kind}\" out of the recipe"
        )
    cfg = cfg or FeatureConfig()
    utts = corpus.utterances
    if not utts:
        raise DomadaptError(f"corpus {corpus.name} at {corpus.root}: no utterances")
    class_of = {c: k for k, c in enumerate(corpus.classes)}
    bad_labels = sorted({u.label for u in utts} - set(class_of))
    if bad_labels:
        raise DomadaptError(
            f"corpus {corpus.name}: labels {bad_labels} are not among its classes {list(corpus.classes)}"
        )
    path = None
    if cache_dir is not False:
        path = functionals_cache_path(corpus, kind, cfg, None if cache_dir in (None, True) else cache_dir)
        cached = _load(path)
        if cached is not None:
            log.info("%s: %s functionals from cache %s", corpus.name, kind, path)
            return cached

    with Progress(len(utts), f"{corpus.name}: {kind} functionals", unit="utterances", enabled=progress) as bar:
        every_file = _rows_of_every_file(kind, cfg, utts, jobs=jobs, bar=bar)
        skipped: list[SkippedFile] = []
        rows: list[np.ndarray] = []
        kept: list[Utterance] = []
        for u, row in zip(utts, every_file):
            if isinstance(row, str):  # why it is skipped
                skipped.append(SkippedFile(str(u.path), row.removeprefix(f"{u.path}: ") + _where(u)))
                if len(skipped) <= _LOGGED:
                    log.warning("skipping %s: %s", u.path, skipped[-1].reason)
                continue
            rows.append(row)
            kept.append(u)
        bar.update(0, skipped=len(skipped))
    if len(skipped) > _LOGGED:
        log.warning("%s: %d files skipped in all (see UtteranceFeatures.skipped)", corpus.name, len(skipped))
    if not rows:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in skipped[:3])
        raise DomadaptError(
            f"corpus {corpus.name} at {corpus.root}: none of its {len(utts)} utterances gave "
            f"{kind} features (e.g. {reasons})"
        )
    x = np.stack(rows).astype(np.float32)
    keys = [u.key for u in kept]
    imputed = _impute(x, keys)
    if imputed:
        log.warning(
            "%s: %d non-finite %s values in %d files replaced by their column's median (e.g. %s)",
            corpus.name, sum(imputed.values()), kind, len(imputed), next(iter(imputed)),
        )
    feats = UtteranceFeatures(
        x=x,
        y=np.array([class_of[u.label] for u in kept], dtype=np.int64),
        keys=tuple(keys),
        subjects=tuple(u.subject for u in kept),
        names=_make_extractor(kind, cfg).names,
        classes=tuple(corpus.classes),
        kind=kind,
        domain=utts[0].domain,
        synthetic=corpus.synthetic,
        skipped=list(corpus.skipped) + skipped,
        imputed=imputed,
    )
    if progress:
        log.info("%s", feats.summary())
    if path is not None:
        _save(feats, path)
    return feats


def functional_segments(
    corpus: Corpus,
    cfg: FeatureConfig,
    *,
    cache_dir: str | Path | None | bool = None,
    progress: bool = False,
    jobs: int | None = 1,
) -> SegmentSet:
    """``features.kind`` in ``FUNCTIONAL_KINDS``: the corpus' :func:`utterance_functionals`
    (the same rows, and cache entry, as a baseline row of that kind) as a SegmentSet of
    one-frame segments, ``x`` ``[U, D, 1]``, one per usable utterance in corpus order, for a
    backbone that reads vectors. ``cfg.normalize = "corpus"`` standardises over the corpus;
    the training folds' standardisation (``features.standardize``) comes later, as for MFCC."""
    feats = utterance_functionals(corpus, cfg.kind, cfg=cfg, cache_dir=cache_dir, progress=progress, jobs=jobs)
    subjects = tuple(sorted(set(feats.subjects)))
    subject_index = {s: i for i, s in enumerate(subjects)}
    utterance = torch.arange(len(feats), dtype=torch.long)
    skipped = list(feats.skipped)
    for s in sorted({u.subject for u in corpus.utterances} - set(subjects)):  # as extract_segments says it
        skipped.append(SkippedFile(str(corpus.root), f"subject {s}: no usable audio"))
        log.warning("%s: subject %s: no usable audio; left out", corpus.name, s)
    return SegmentSet(
        x=normalize_features(torch.from_numpy(feats.x).unsqueeze(-1), utterance, cfg.normalize).contiguous(),
        y=torch.from_numpy(feats.y),
        subject=torch.tensor([subject_index[s] for s in feats.subjects], dtype=torch.long),
        utterance=utterance,
        classes=feats.classes,
        subjects=subjects,
        utterance_keys=feats.keys,
        domain=feats.domain,
        synthetic=feats.synthetic,
        skipped=skipped,
    )


__all__ = [
    "FUNCTIONALS_VERSION",
    "KINDS",
    "UtteranceFeatures",
    "functional_segments",
    "functionals_cache_path",
    "utterance_functionals",
]
