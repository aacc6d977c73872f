"""What every corpus loader returns: a list of utterances with label, subject and domain."""

from __future__ import annotations

import collections
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from domadapt.errors import DomadaptError


@dataclass(frozen=True)
class Utterance:
    """One labelled stretch of audio.

    ``start``/``end`` (seconds) cut a turn out of a long recording (DAIC-WOZ); ``None`` means
    the whole file. ``subject`` is unique within the corpus (CASIA speaker, IEMOCAP "1F",
    MODMA 8-digit id, DAIC participant id). ``meta`` holds corpus-specific strings such as
    ``{"task": "interview"}`` (MODMA) or ``{"session": "1"}`` (IEMOCAP).
    """

    path: Path
    label: str
    subject: str
    domain: str
    start: float | None = None
    end: float | None = None
    meta: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """A stable id for caching and reports: the path plus the cut, if any."""
        if self.start is None and self.end is None:
            return str(self.path)
        return f"{self.path}@{self.start}-{self.end}"


@dataclass(frozen=True)
class SkippedFile:
    """A file a loader or the front-end passed over, and why (listed in every report)."""

    path: str
    reason: str


@dataclass
class Corpus:
    """A loaded corpus: utterances plus what was skipped on the way.

    ``classes`` fixes the label order (label index = position). ``official_split`` maps a
    subject to ``"train" | "dev" | "test"`` where the corpus has one (DAIC-WOZ), else None.
    ``synthetic`` is True for the embedded stand-in corpora, so every report can say so.
    """

    name: str
    root: Path
    classes: tuple[str, ...]
    utterances: list[Utterance]
    skipped: list[SkippedFile] = field(default_factory=list)
    official_split: dict[str, str] | None = None
    synthetic: bool = False

    def subjects(self) -> list[str]:
        return sorted({u.subject for u in self.utterances})

    def label_counts(self) -> dict[str, int]:
        counts = collections.Counter(u.label for u in self.utterances)
        return {c: counts.get(c, 0) for c in self.classes}

    def label_index(self, label: str) -> int:
        return self.classes.index(label)

    def filter(self, keep) -> "Corpus":
        """A copy holding only the utterances for which ``keep(utt)`` is true."""
        # replace, not Corpus(...): a subclass (VectorCorpus) keeps its kind and its fields
        return dataclasses.replace(self, utterances=[u for u in self.utterances if keep(u)], skipped=list(self.skipped))


def wav_files(folder: Path) -> list[Path]:
    """The ``.wav`` files directly in ``folder``, sorted; macOS AppleDouble files (``._x.wav``)
    are never audio."""
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() == ".wav" and not p.name.startswith("._")
    )


def require_every_class(title: str, root: Path, classes: tuple[str, ...], utterances: list, expected: str) -> None:
    """Raise naming the root and the layout when a class has no utterance (an empty class
    folder, a wrong root): a corpus is read whole or not at all."""
    found = {u.label for u in utterances}
    missing = [c for c in classes if c not in found]
    if missing:
        raise DomadaptError(
            f"{title} root {root}: no utterances for emotion(s) {', '.join(missing)} "
            f"(empty class; expected {expected})"
        )

