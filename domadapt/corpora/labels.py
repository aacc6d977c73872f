"""Label maps: a corpus' classes renamed onto shared classes, the unmapped ones dropped.

Closed-set cross-corpus emotion recognition needs the same classes on both sides: EMODB's
``angry`` and IEMOCAP's ``ang`` must become one class, and EMODB's ``boredom`` (which CASIA
lacks) must go. A recipe says so per corpus in ``[data.label_map]``::

    [data.label_map.emodb]
    angry = "angry"
    happy = "happy"      # boredom, disgust: not mapped, dropped

The classes after mapping are the mapped names, sorted, so two corpora mapped onto the same
names share one label order (and one head).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from domadapt.corpora.base import Corpus
from domadapt.errors import DomadaptError


def corpus_labels(name: str) -> tuple[str, ...] | None:
    """Every class the registered loader ``name`` can yield (under any of its options), or
    None when the loader does not say (``folder``, your own corpora): those are checked
    when loaded."""
    from domadapt.corpora import casia, daic_woz, emodb, emovo, iemocap, modma, ravdess, savee

    known: dict[str, tuple[str, ...]] = {
        "casia": casia.EMOTIONS,
        "casia_target": casia.EMOTIONS,
        "casia_target_powered": casia.EMOTIONS,
        "iemocap": tuple(dict.fromkeys(c for classes in iemocap.CLASSES.values() for c in classes)),
        "modma": modma.CLASSES,
        "daic_woz": daic_woz.CLASSES,
        "emodb": emodb.CLASSES,
        "emovo": emovo.CLASSES,
        "ravdess": tuple(dict.fromkeys(c for classes in ravdess.CLASSES.values() for c in classes)),
        "savee": savee.CLASSES,
    }
    return known.get(name)


def check_label_map(key: str, mapping: Any, labels: tuple[str, ...] | None) -> None:
    """Raise a one-line DomadaptError naming ``key`` (``data.label_map.emodb``) unless
    ``mapping`` is a non-empty table of class -> shared class whose classes are ``labels``'
    (not checked when ``labels`` is None)."""
    if not isinstance(mapping, dict) or not mapping:
        raise DomadaptError(f"{key} = {mapping!r}: expected a table of class = \"shared class\"")
    for label, shared in mapping.items():
        if not isinstance(shared, str) or not shared:
            raise DomadaptError(f"{key}.{label} = {shared!r}: expected the name of a shared class")
        if labels is not None and label not in labels:
            raise DomadaptError(f"{key}.{label}: not a class of this corpus (its classes: {', '.join(labels)})")


def apply_label_map(corpus: Corpus, mapping: dict[str, str], *, key: str) -> Corpus:
    """``corpus`` with its labels renamed by ``mapping`` and the utterances of unmapped
    classes dropped; classes = the mapped names, sorted. The original label stays in each
    utterance's ``meta["original_label"]``. ``key`` names the setting in errors."""
    check_label_map(key, mapping, corpus.classes)
    utterances = [
        dataclasses.replace(u, label=mapping[u.label], meta={**u.meta, "original_label": u.label})
        for u in corpus.utterances
        if u.label in mapping
    ]
    return dataclasses.replace(corpus, classes=tuple(sorted(set(mapping.values()))), utterances=utterances)
