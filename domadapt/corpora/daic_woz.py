"""DAIC-WOZ (AVEC 2017 depression sub-challenge), read as released.

Layout::

    <root>/<pid>_P/<pid>_AUDIO.wav            one long interview (16 kHz)
    <root>/<pid>_P/<pid>_TRANSCRIPT.csv       TAB-separated: start_time stop_time speaker value
    <root>/train_split_Depression_AVEC2017.csv   Participant_ID,PHQ8_Binary,PHQ8_Score,Gender,...
    <root>/dev_split_Depression_AVEC2017.csv     (same columns)
    <root>/full_test_split.csv                   Participant_ID,PHQ_Binary,PHQ_Score,Gender

Each participant turn becomes one Utterance cut out of the long wav by ``start``/``end``
(seconds); the interviewer (``Ellie``) and sync markers are dropped.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Sequence

from domadapt.audio import audio_info
from domadapt.corpora.base import Corpus, SkippedFile, Utterance
from domadapt.errors import DomadaptError
from domadapt.registries import CORPORA

NAME = "daic_woz"
CLASSES: tuple[str, ...] = ("not_depressed", "depressed")
SPLIT_FILES: dict[str, str] = {
    "train": "train_split_Depression_AVEC2017.csv",
    "dev": "dev_split_Depression_AVEC2017.csv",
    "test": "full_test_split.csv",
}
_LAYOUT = "<root>/<pid>_P/<pid>_AUDIO.wav + <pid>_TRANSCRIPT.csv and the split CSVs in <root>"
# <sync>, [sync], <synch>, (sync) ... and empty values are markers, not speech.
_SYNC = re.compile(r"^[<\[(]?\s*synch?\s*[>\])]?$", re.IGNORECASE)


def _column(row: dict[str, str], *names: str) -> str | None:
    for name in names:
        value = row.get(name)
        if value is not None and value.strip() != "":
            return value.strip()
    return None


def _as_int(text: str) -> int:
    return int(float(text))


def read_split_file(path: Path, split: str) -> dict[str, dict[str, str]]:
    """``{pid: {"label", "phq8", "gender", "split"}}`` from one official split CSV.

    Reads ``PHQ8_Binary``/``PHQ8_Score`` (train, dev) or ``PHQ_Binary``/``PHQ_Score``
    (``full_test_split.csv``). ``gender`` is kept as written (0 female, 1 male in AVEC).
    """
    rows: dict[str, dict[str, str]] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            raise DomadaptError(f"DAIC-WOZ: split file {path} is empty")
        reader.fieldnames = [h.strip() for h in reader.fieldnames]
        if "Participant_ID" not in reader.fieldnames:
            raise DomadaptError(
                f"DAIC-WOZ: split file {path} has no Participant_ID column "
                f"(found: {', '.join(reader.fieldnames)})"
            )
        for line, row in enumerate(reader, start=2):
            pid_text = _column(row, "Participant_ID")
            if pid_text is None:
                continue
            binary = _column(row, "PHQ8_Binary", "PHQ_Binary")
            score = _column(row, "PHQ8_Score", "PHQ_Score")
            try:
                pid = str(_as_int(pid_text))
                depressed = _as_int(binary) if binary is not None else None
            except ValueError as exc:
                raise DomadaptError(f"DAIC-WOZ: {path} line {line}: {exc}") from exc
            if depressed not in (0, 1):
                raise DomadaptError(
                    f"DAIC-WOZ: {path} line {line}: participant {pid} has no PHQ8_Binary / "
                    f"PHQ_Binary 0 or 1 (got {binary!r})"
                )
            rows[pid] = {
                "label": CLASSES[depressed],
                "phq8": str(_as_int(score)) if score is not None else "",
                "gender": _column(row, "Gender") or "",
                "split": split,
            }
    return rows


def read_transcript(path: Path) -> list[tuple[float, float, str, str]]:
    """``(start, stop, speaker, value)`` rows of a ``<pid>_TRANSCRIPT.csv``.

    TAB-separated as released; a comma-separated file (a few re-shared copies) is read
    too. Rows whose times do not parse are dropped.
    """
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        text = f.read()
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    if reader.fieldnames is None:
        return []
    reader.fieldnames = [h.strip().lower() for h in reader.fieldnames]
    needed = {"start_time", "stop_time", "speaker", "value"}
    if not needed <= set(reader.fieldnames):
        raise DomadaptError(
            f"DAIC-WOZ: transcript {path} lacks columns "
            f"{', '.join(sorted(needed - set(reader.fieldnames)))} "
            f"(expected header start_time<TAB>stop_time<TAB>speaker<TAB>value)"
        )
    rows = []
    for row in reader:
        try:
            start, stop = float(row["start_time"]), float(row["stop_time"])
        except (TypeError, ValueError):
            continue
        rows.append((start, stop, (row["speaker"] or "").strip(), (row["value"] or "").strip()))
    return rows


def _is_sync(value: str) -> bool:
    return value == "" or _SYNC.match(value) is not None


@CORPORA.register("daic_woz")
def load_daic_woz(
    root: str | Path,
    *,
    splits: Sequence[str] = ("train", "dev", "test"),
    min_turn_seconds: float = 1.0,
) -> Corpus:
    """Load DAIC-WOZ participant turns from ``root``.

    Layout: ``<root>/<pid>_P/<pid>_AUDIO.wav`` and ``<pid>_TRANSCRIPT.csv`` (TAB-separated
    ``start_time stop_time speaker value``); the official splits in ``<root>``:
    ``train_split_Depression_AVEC2017.csv``, ``dev_split_Depression_AVEC2017.csv``
    (``PHQ8_Binary``) and ``full_test_split.csv`` (``PHQ_Binary``).

    Args:
        splits: which official splits to load (their CSVs must exist).
        min_turn_seconds: participant turns shorter than this are dropped.

    One Utterance per ``Participant`` turn with ``start``/``end`` in seconds (clipped to
    the recording); ``Ellie`` turns and sync markers (``<sync>``, ``[sync]``, ``<synch>``,
    empty) are dropped. Labels ``not_depressed``/``depressed`` from the split's binary
    PHQ column; subject = participant id (``"300"``); ``meta`` = ``phq8`` (score),
    ``split``, ``gender`` (as written, AVEC: 0 female / 1 male), ``text``.
    ``corpus.official_split`` maps each loaded participant to train/dev/test.
    Listed in ``corpus.skipped``: participants of a split file without a folder, a
    folder without wav/transcript, with an unreadable wav or a transcript without the
    four columns, participant folders in no split file.
    """
    root = Path(root)
    if not root.is_dir():
        raise DomadaptError(
            f"DAIC-WOZ root {root} does not exist or is not a folder (expected {_LAYOUT})"
        )
    if isinstance(splits, str):
        splits = (splits,)
    unknown = [s for s in splits if s not in SPLIT_FILES]
    if unknown or not splits:
        raise DomadaptError(
            f"DAIC-WOZ: unknown split(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"known: {', '.join(SPLIT_FILES)}"
        )
    if min_turn_seconds < 0:
        raise DomadaptError(f"DAIC-WOZ: min_turn_seconds must be >= 0, got {min_turn_seconds}")

    folders = {
        str(int(p.name[:-2])): p
        for p in root.iterdir()
        if p.is_dir() and p.name.endswith("_P") and p.name[:-2].isdigit()
    }

    participants: dict[str, dict[str, str]] = {}
    for split in splits:
        path = root / SPLIT_FILES[split]
        if not path.is_file():
            raise DomadaptError(
                f"DAIC-WOZ: split file {path} not found (expected {_LAYOUT}); "
                f"pass splits=... to load only the splits you have"
            )
        for pid, row in read_split_file(path, split).items():
            if pid in participants:
                raise DomadaptError(
                    f"DAIC-WOZ: participant {pid} is in both the {participants[pid]['split']} "
                    f"and the {split} split files"
                )
            participants[pid] = row
    if not folders and not participants:
        raise DomadaptError(f"DAIC-WOZ root {root}: no <pid>_P folders (expected {_LAYOUT})")

    # Folders named in no split file at all have no label; those of unselected splits
    # are simply not asked for.
    labelled_anywhere = set(participants)
    for split, file_name in SPLIT_FILES.items():
        if split not in splits and (root / file_name).is_file():
            labelled_anywhere |= set(read_split_file(root / file_name, split))
    skipped: list[SkippedFile] = [
        SkippedFile(str(folders[pid]), f"participant {pid} is in no split file (no label)")
        for pid in sorted(folders, key=int)
        if pid not in labelled_anywhere
    ]

    utterances: list[Utterance] = []
    official: dict[str, str] = {}
    for pid in sorted(participants, key=int):
        info = participants[pid]
        folder = folders.get(pid)
        if folder is None:
            skipped.append(SkippedFile(
                str(root / f"{pid}_P"),
                f"participant {pid} is in the {info['split']} split file but has no folder"))
            continue
        wav = folder / f"{folder.name[:-2]}_AUDIO.wav"
        transcript = folder / f"{folder.name[:-2]}_TRANSCRIPT.csv"
        missing = [p.name for p in (wav, transcript) if not p.is_file()]
        if missing:
            skipped.append(SkippedFile(
                str(folder), f"participant {pid}: missing {', '.join(missing)}"))
            continue
        try:
            header = audio_info(wav)
        except DomadaptError as exc:
            skipped.append(SkippedFile(str(wav), f"unreadable audio header ({exc})"))
            continue
        duration = header.frames / header.samplerate if header.samplerate else 0.0
        try:
            rows = read_transcript(transcript)
        except DomadaptError as exc:
            skipped.append(SkippedFile(str(transcript), str(exc)))
            continue
        turns = []
        for start, stop, speaker, value in rows:
            if speaker.lower() != "participant" or _is_sync(value):
                continue
            stop = min(stop, duration)
            if stop - start < min_turn_seconds or stop <= start:
                continue
            turns.append(Utterance(
                path=wav, label=info["label"], subject=pid, domain=NAME,
                start=start, end=stop,
                meta={"phq8": info["phq8"], "split": info["split"],
                      "gender": info["gender"], "text": value},
            ))
        if not turns:
            skipped.append(SkippedFile(
                str(transcript),
                f"participant {pid}: no participant turn of at least {min_turn_seconds} s"))
            continue
        utterances += turns
        official[pid] = info["split"]
    if not utterances:
        raise DomadaptError(
            f"DAIC-WOZ root {root}: no participant turn loaded from splits "
            f"{', '.join(splits)} (expected {_LAYOUT})"
        )
    return Corpus(name=NAME, root=root, classes=CLASSES, utterances=utterances,
                  skipped=skipped, official_split=official)
