"""Corpus loaders and their registry: a corpus is one loader function registered in CORPORA.

>>> corpus = load_corpus("casia", "/data/CASIA database")
>>> corpus.classes
('angry', 'fear', 'happy', 'neutral', 'sad', 'surprise')

A loader is ``load(root, *, option=default, ...) -> Corpus``; its keyword options are what
a recipe's ``[data.options.NAME]`` may set. Your own corpus, in your own module::

    from domadapt.corpora import CORPORA, Corpus

    @CORPORA.register("my_clinic")
    def load_my_clinic(root, *, min_seconds: float = 1.0) -> Corpus:
        '''My clinic's recordings: <root>/<subject>/<n>.wav, labels in <root>/labels.csv.'''
        ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domadapt.corpora.arrays import VectorCorpus, load_arrays, load_arrays_target
from domadapt.corpora.base import Corpus, SkippedFile, Utterance
from domadapt.corpora.casia import load_casia, load_casia_target, load_casia_target_powered
from domadapt.corpora.daic_woz import load_daic_woz
from domadapt.corpora.emodb import load_emodb
from domadapt.corpora.emovo import load_emovo
from domadapt.corpora.folder import load_folder, load_manifest, write_manifest
from domadapt.corpora.iemocap import load_iemocap
from domadapt.corpora.modma import load_modma
from domadapt.corpora.ravdess import load_ravdess
from domadapt.corpora.savee import load_savee
from domadapt.registries import CORPORA

#: File that ``domadapt.corpora.synthetic`` writes into every generated root (its
#: ``MARKER_NAME``; a test keeps the two equal). Spelled out here so that loading a real
#: corpus never imports the generator and scipy.
SYNTHETIC_MARKER = ".domadapt-synthetic.json"


def list_corpora() -> list[str]:
    """Names accepted by :func:`load_corpus`, sorted."""
    return CORPORA.names()


def corpus_options(name: str) -> list[str]:
    """The keyword options the loader ``name`` accepts."""
    return list(CORPORA.options(name))


def load_corpus(name: str | Any, root: str | Path, **options: Any) -> Corpus:
    """Load corpus ``name`` (a registered name, or a loader function to register) from
    ``root`` with the loader's keyword ``options``.

    Raises DomadaptError for an unknown name or option (listing the known ones), an option
    value of the wrong type, and a root the loader cannot read (naming the path and the
    expected layout). A root that holds the synthetic generator's marker file gives a
    corpus with ``synthetic=True``.
    """
    corpus = CORPORA.build(CORPORA.adopt(name), root, **options)
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
    "VectorCorpus",
    "corpus_from_manifest",
    "corpus_options",
    "list_corpora",
    "load_arrays",
    "load_arrays_target",
    "load_casia",
    "load_casia_target",
    "load_corpus",
    "load_daic_woz",
    "load_emodb",
    "load_emovo",
    "load_folder",
    "load_iemocap",
    "load_manifest",
    "load_modma",
    "load_ravdess",
    "load_savee",
    "write_manifest",
]
