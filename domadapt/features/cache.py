"""On-disk cache of extracted segments, keyed by what the features depend on.

The key hashes, for every utterance, its key (path + cut), label, subject, file size and
mtime (ns), plus the corpus' name, classes, domain and loader skips, every
``FeatureConfig`` field and ``FRONTEND_VERSION``, and what a model front-end adds
(``extra``: an SSL checkpoint's SHA-256 in place of its path, a custom extractor's
identity). Touch a file or change a setting and the key changes, so a stale entry is never
read; bump ``FRONTEND_VERSION`` whenever the front-end's numbers change for the same
settings. Model outputs (``kind = "ssl"`` with ``layer = "weighted"``) may be 4-D,
``[N, L, D, T]``.

Files live in ``<cache root>/features/<corpus>-<key>.pt``; the root is the ``cache_dir``
argument, else ``$DOMADAPT_CACHE``, else ``~/.cache/domadapt``. Writes go to a temporary
``*.tmp`` file in the same folder followed by ``os.replace`` (atomic on one file system),
so a crash mid-write leaves at most an orphan ``*.tmp`` that is never read. An entry that
fails to load is logged and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import io
from pathlib import Path
from typing import Any

import torch

from domadapt.corpora.base import Corpus, SkippedFile
from domadapt.features.config import FeatureConfig
from domadapt.features.segments import SegmentSet
from domadapt.files import atomic_write

log = logging.getLogger("domadapt")

# Bump when the front-end computes different numbers for the same settings.
FRONTEND_VERSION = 1
# Fields added to FeatureConfig after version 1 and their defaults: at the default they stay
# out of the key, so that entries written before they existed remain valid.
_LATER_FIELDS = {"model": None, "checkpoint": None, "layer": -1, "clip_samples": None}
# Settings of what happens to the features after the cache (build_fold), never in the key.
_AFTER_CACHE_FIELDS = ("standardize",)


def default_cache_dir() -> Path:
    """``$DOMADAPT_CACHE`` if set, else ``~/.cache/domadapt``."""
    env = os.environ.get("DOMADAPT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "domadapt"


def _file_stamp(path: Path) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)  # missing: the front-end will skip it; the key still differs once it appears
    return (st.st_size, st.st_mtime_ns)


def cache_key(corpus: Corpus, cfg: FeatureConfig, extra: dict[str, Any] | None = None) -> str:
    """Hex SHA-256 over the corpus contents (stamps of every file) and every setting.

    ``extra`` (plain JSON values) replaces or adds settings: ``{"checkpoint": sha256}`` keys
    an SSL front-end by the checkpoint's bytes instead of its path.
    """
    h = hashlib.sha256()
    config = {
        k: v
        for k, v in cfg.to_dict().items()
        if k not in _AFTER_CACHE_FIELDS and (k not in _LATER_FIELDS or v != _LATER_FIELDS[k])
    }
    config.update(extra or {})
    head = {
        "frontend_version": FRONTEND_VERSION,
        "config": config,
        "corpus": corpus.name,
        "classes": list(corpus.classes),
        "synthetic": corpus.synthetic,
        "loader_skipped": [[s.path, s.reason] for s in corpus.skipped],
    }
    h.update(json.dumps(head, sort_keys=True).encode())
    for u in corpus.utterances:
        size, mtime = _file_stamp(u.path)
        h.update(json.dumps([u.key, u.label, u.subject, u.domain, size, mtime]).encode())
        h.update(b"\n")
    return h.hexdigest()


def cache_path(
    corpus: Corpus, cfg: FeatureConfig, cache_dir: str | Path | None = None, extra: dict[str, Any] | None = None
) -> Path:
    """Where the entry for ``(corpus, cfg, extra)`` lives (the file may not exist)."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", corpus.name) or "corpus"
    return root / "features" / f"{name}-{cache_key(corpus, cfg, extra)[:32]}.pt"


def _to_payload(segs: SegmentSet) -> dict:
    return {
        "frontend_version": FRONTEND_VERSION,
        "x": segs.x,
        "y": segs.y,
        "subject": segs.subject,
        "utterance": segs.utterance,
        "classes": list(segs.classes),
        "subjects": list(segs.subjects),
        "utterance_keys": list(segs.utterance_keys),
        "domain": segs.domain,
        "synthetic": bool(segs.synthetic),
        "skipped": [[s.path, s.reason] for s in segs.skipped],
    }


def _from_payload(obj: dict) -> SegmentSet:
    if not isinstance(obj, dict) or obj.get("frontend_version") != FRONTEND_VERSION:
        raise ValueError("not a domadapt feature cache entry of this version")
    segs = SegmentSet(
        x=obj["x"],
        y=obj["y"],
        subject=obj["subject"],
        utterance=obj["utterance"],
        classes=tuple(obj["classes"]),
        subjects=tuple(obj["subjects"]),
        utterance_keys=tuple(obj["utterance_keys"]),
        domain=str(obj["domain"]),
        synthetic=bool(obj["synthetic"]),
        skipped=[SkippedFile(str(p), str(r)) for p, r in obj["skipped"]],
    )
    n = segs.x.shape[0]
    if segs.x.ndim not in (3, 4) or not all(t.shape == (n,) for t in (segs.y, segs.subject, segs.utterance)):
        raise ValueError("inconsistent tensor shapes")
    return segs


def load_segments(path: str | Path) -> SegmentSet | None:
    """The cached SegmentSet at ``path``; None if absent or unreadable (logged, to rebuild)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
        return _from_payload(obj)
    except Exception as exc:  # truncated zip, pickle error, wrong layout: all mean "rebuild"
        log.warning("feature cache %s is unreadable (%s); rebuilding it", path, exc)
        return None


def save_segments(segs: SegmentSet, path: str | Path) -> bool:
    """Write ``segs`` to ``path`` atomically (see :func:`save_cache_entry`)."""
    return save_cache_entry(_to_payload(segs), path, what="feature cache")


def save_cache_entry(payload: object, path: str | Path, *, what: str) -> bool:
    """``torch.save`` ``payload`` to ``path`` atomically (:func:`domadapt.files.atomic_write`).
    A cache that cannot be written is logged and skipped: caching never fails an experiment."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    try:
        atomic_write(path, buf.getvalue())
        return True
    except OSError as exc:
        log.warning("could not write %s %s (%s); continuing without it", what, path, exc)
        return False
