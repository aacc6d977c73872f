"""Any corpus laid out as ``<root>/<label>/**/*.wav``, or listed in a CSV manifest.

Folder layout::

    <root>/<label>/<file>.wav                 subject = file stem (see below!)
    <root>/<label>/<speaker>/<file>.wav       subject = speaker folder

Manifest (a CSV file; paths relative to the manifest's folder, or absolute)::

    path,label,subject[,domain][,start,end]
    happy/a.wav,happy,spk1
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Sequence

from domadapt.corpora.base import Corpus, SkippedFile, Utterance
from domadapt.errors import DomadaptError
from domadapt.registries import CORPORA

NAME = "folder"
SUBJECT_MODES: tuple[str, ...] = ("auto", "parent", "stem")
_LAYOUT = "<root>/<label>/**/*.wav or a CSV manifest path,label,subject[,domain]"
MANIFEST_COLUMNS: tuple[str, ...] = ("path", "label", "subject", "domain", "start", "end")


def _is_content(path: Path) -> bool:
    # Hidden files/folders and macOS debris (._x, __MACOSX) are never corpus content.
    return not path.name.startswith((".", "__MACOSX"))


def _subject_rule(subject: str):
    """A function ``(file, label_dir) -> subject | None`` for the ``subject`` option."""
    if subject == "stem":
        return lambda f, label_dir: f.stem
    if subject == "parent":
        def parent(f: Path, label_dir: Path) -> str:
            if f.parent == label_dir:
                raise DomadaptError(
                    f"folder corpus: subject='parent' but {f} sits directly in its label "
                    f"folder {label_dir} (expected <root>/<label>/<subject>/<file>.wav)"
                )
            return f.parent.name
        return parent
    if subject == "auto":
        return lambda f, label_dir: f.stem if f.parent == label_dir else f.parent.name
    try:
        pattern = re.compile(subject)
    except re.error as exc:
        raise DomadaptError(
            f"folder corpus: subject={subject!r} is neither one of {', '.join(SUBJECT_MODES)} "
            f"nor a valid regular expression ({exc})"
        ) from exc

    def by_regex(f: Path, label_dir: Path) -> str | None:
        m = pattern.search(f.name)
        if m is None:
            return None
        if "subject" in pattern.groupindex:
            return m["subject"]
        return m[1] if pattern.groups else m[0]
    return by_regex


@CORPORA.register("folder")
def load_folder(
    root: str | Path,
    *,
    subject: str = "auto",
    name: str = NAME,
    extensions: Sequence[str] = (".wav",),
) -> Corpus:
    """Load ``<root>/<label>/**/*.wav`` (labels = the top folders), or a CSV manifest.

    If ``root`` is a ``.csv`` file it is read as a manifest (see :func:`load_manifest`).

    Args:
        subject: how to name each file's subject:
            ``"auto"`` (default) — the file's immediate parent folder when it is nested
            deeper than its label folder (``<label>/<speaker>/x.wav``), else the file stem;
            ``"parent"`` — always the immediate parent folder (an error for a file lying
            directly in its label folder); ``"stem"`` — the file name without extension;
            anything else — a regular expression searched in the file name, the subject
            being its ``(?P<subject>...)`` group, else group 1, else the whole match (files
            it does not match are listed in ``corpus.skipped``).
        name: corpus name, also each utterance's ``domain``.
        extensions: audio file suffixes to take (case-insensitive).

    Warning:
        With the default the stem of a file lying directly in its label folder becomes
        its subject, i.e. every file is its own subject. Subject-independent splits are
        then only as good as that: give real speaker ids (speaker folders, a ``subject``
        regex, or a manifest) for any subject-grouped evaluation.

    Classes are the label folder names, sorted. ``meta["relpath"]`` is the path below
    ``root``. Audio files directly in ``root`` (outside any label folder) are skipped.
    """
    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".csv":
        return load_manifest(root, name=name)
    if not root.is_dir():
        raise DomadaptError(
            f"folder corpus root {root} does not exist or is not a folder (expected {_LAYOUT})"
        )
    suffixes = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    rule = _subject_rule(subject)

    def is_audio(p: Path) -> bool:
        return p.is_file() and p.suffix.lower() in suffixes and _is_content(p)

    utterances: list[Utterance] = []
    skipped = [
        SkippedFile(str(p), "audio file outside any <label> folder")
        for p in sorted(root.iterdir()) if is_audio(p)
    ]
    label_dirs = sorted(p for p in root.iterdir() if p.is_dir() and _is_content(p))
    for label_dir in label_dirs:
        files = sorted(
            p for p in label_dir.rglob("*")
            if is_audio(p) and all(_is_content(q) for q in p.relative_to(label_dir).parents
                                   if q != Path("."))
        )
        if not files:
            raise DomadaptError(
                f"folder corpus: label folder {label_dir} holds no "
                f"{'/'.join(sorted(suffixes))} files (empty class '{label_dir.name}')"
            )
        for f in files:
            subj = rule(f, label_dir)
            if not subj:
                skipped.append(SkippedFile(str(f), f"subject pattern {subject!r} does not match"))
                continue
            utterances.append(Utterance(
                path=f, label=label_dir.name, subject=subj, domain=name,
                meta={"relpath": f.relative_to(root).as_posix()},
            ))
    if not utterances:
        raise DomadaptError(f"folder corpus root {root}: no audio found (expected {_LAYOUT})")
    classes = tuple(sorted({u.label for u in utterances}))
    return Corpus(name=name, root=root, classes=classes, utterances=utterances,
                  skipped=skipped)


def load_manifest(path: str | Path, *, name: str = NAME) -> Corpus:
    """Load a CSV manifest with header ``path,label,subject[,domain][,start,end]``.

    Relative paths are taken from the manifest's folder. ``domain`` defaults to ``name``;
    ``start``/``end`` (seconds, may be empty) cut a stretch out of a longer file. Rows whose
    audio file does not exist are listed in ``corpus.skipped``. Classes are sorted labels.
    """
    path = Path(path)
    if not path.is_file():
        raise DomadaptError(
            f"manifest {path} not found (expected a CSV with header "
            f"path,label,subject[,domain][,start,end])"
        )
    base = path.parent
    utterances: list[Utterance] = []
    skipped: list[SkippedFile] = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = [c for c in ("path", "label", "subject") if c not in fields]
        if missing:
            raise DomadaptError(
                f"manifest {path}: missing column(s) {', '.join(missing)} "
                f"(expected header path,label,subject[,domain][,start,end])"
            )
        reader.fieldnames = fields
        for line, row in enumerate(reader, start=2):
            cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
            if not any(cells.values()):
                continue
            where = f"{path}:{line}"
            if not cells["path"] or not cells["label"] or not cells["subject"]:
                raise DomadaptError(f"manifest {where}: path, label and subject must all be set")
            audio = Path(cells["path"])
            audio = audio if audio.is_absolute() else base / audio
            if not audio.is_file():
                skipped.append(SkippedFile(str(audio), f"listed in {where} but not found"))
                continue
            try:
                start = float(cells["start"]) if cells.get("start") else None
                end = float(cells["end"]) if cells.get("end") else None
            except ValueError as exc:
                raise DomadaptError(f"manifest {where}: bad start/end ({exc})") from exc
            utterances.append(Utterance(
                path=audio, label=cells["label"], subject=cells["subject"],
                domain=cells.get("domain") or name, start=start, end=end,
            ))
    if not utterances:
        raise DomadaptError(f"manifest {path}: no row with an existing audio file")
    classes = tuple(sorted({u.label for u in utterances}))
    return Corpus(name=name, root=base, classes=classes, utterances=utterances,
                  skipped=skipped)


def write_manifest(corpus: Corpus, path: str | Path) -> Path:
    """Write ``corpus`` as a CSV manifest that :func:`load_manifest` reads back.

    Paths are written relative to the manifest's folder where possible (absolute
    otherwise); ``meta`` is not written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(MANIFEST_COLUMNS)
        for u in corpus.utterances:
            audio = Path(u.path).resolve()
            try:
                shown = audio.relative_to(base).as_posix()
            except ValueError:
                shown = str(audio)
            writer.writerow([
                shown, u.label, u.subject, u.domain,
                "" if u.start is None else repr(u.start),
                "" if u.end is None else repr(u.end),
            ])
    return path
