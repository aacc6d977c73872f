"""Corpus loaders and their registry: adding a corpus = one module + one line in CORPORA.

>>> corpus = load_corpus("casia", "/data/CASIA database")
>>> corpus.classes
('angry', 'fear', 'happy', 'neutral', 'sad', 'surprise')
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

from domadapt.corpora.base import Corpus, SkippedFile, Utterance
from domadapt.corpora.casia import load_casia
from domadapt.corpora.daic_woz import load_daic_woz
from domadapt.corpora.folder import load_folder, load_manifest, write_manifest
from domadapt.corpora.iemocap import load_iemocap
from domadapt.corpora.modma import load_modma
from domadapt.errors import DomadaptError

#: File that ``domadapt.corpora.synthetic`` writes into every generated root (its
#: ``MARKER_NAME``; a test keeps the two equal). Spelled out here so that loading a real
#: corpus never imports the generator and scipy.
SYNTHETIC_MARKER = ".domadapt-synthetic.json"

CORPORA: dict[str, Callable[..., Corpus]] = {
    "casia": load_casia,
    "iemocap": load_iemocap,
    "modma": load_modma,
    "daic_woz": load_daic_woz,
    "folder": load_folder,
}


def list_corpora() -> list[str]:
    """Names accepted by :func:`load_corpus`, sorted."""
    return sorted(CORPORA)


def corpus_options(name: str) -> list[str]:
    """The keyword options the loader ``name`` accepts."""
    loader = _loader(name)
    return [
        p.name for p in inspect.signature(loader).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]


def _loader(name: str) -> Callable[..., Corpus]:
    try:
        return CORPORA[name]
    except KeyError:
        raise DomadaptError(
            f"unknown corpus {name!r}; known: {', '.join(list_corpora())}"
        ) from None


def load_corpus(name: str, root: str | Path, **options: Any) -> Corpus:
    """Load corpus ``name`` from ``root`` with the loader's keyword ``options``.

    Raises DomadaptError for an unknown name or option (listing the known ones) and for
    a root the loader cannot read (naming the path and the expected layout). A root that
    holds the synthetic generator's marker file gives a corpus with ``synthetic=True``.
    """
    loader = _loader(name)
    known = corpus_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise DomadaptError(
            f"corpus {name!r}: unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(known) or '(none)'}"
        )
    corpus = loader(root, **options)
    if (Path(root) / SYNTHETIC_MARKER).is_file():
        corpus.synthetic = True
    return corpus


def corpus_from_manifest(path: str | Path, *, name: str = "folder") -> Corpus:
    """A corpus from a CSV manifest ``path,label,subject[,domain][,start,end]``."""
    return load_manifest(path, name=name)


__all__ = [
    "CORPORA",
    "SYNTHETIC_MARKER",
    "Corpus",
    "SkippedFile",
    "Utterance",
    "corpus_from_manifest",
    "corpus_options",
    "list_corpora",
    "load_casia",
    "load_corpus",
    "load_daic_woz",
    "load_folder",
    "load_iemocap",
    "load_manifest",
    "load_modma",
    "write_manifest",
]
