"""MODMA audio (Lanzhou 2015), read as released.

Layout::

    <root>/subjects_information_audio_lanzhou_2015.xlsx   (Sheet1: the labels)
    <root>/<8-digit subject id>/01.wav ... 29.wav

Recordings: 01-18 interview answers, 19 passage reading, 20-25 words, 26-29 picture
description; 44.1 kHz, 24-bit, very quiet (loaded as is). The sheet's ``subject id`` is
stored as a number (``2010002`` for folder ``02010002``), ``type`` is MDD/HC, and the
other columns (``age``, ``gender``, ``education（years）`` with full-width parentheses,
``PHQ-9``, ``CTQ-SF``, ``LES``, ``SSRS``, ``GAD-7``, ``PSQI``) plus some header-less empty
columns. Labels come from the sheet only, never from the id prefix.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any, Sequence

from domadapt.audio import audio_info
from domadapt.corpora.base import Corpus, SkippedFile, Utterance
from domadapt.errors import DomadaptError
from domadapt.registries import CORPORA

NAME = "modma"
SHEET_FILE = "subjects_information_audio_lanzhou_2015.xlsx"
SHEET_NAME = "Sheet1"
CLASSES: tuple[str, ...] = ("HC", "MDD")
TASKS: tuple[str, ...] = ("interview", "reading", "words", "picture")
_LAYOUT = f"<root>/<8-digit subject>/01.wav ... 29.wav and <root>/{SHEET_FILE}"
_ITEM = re.compile(r"^(\d{1,2})$")


def task_of(item: int) -> str | None:
    """Recording number -> task: 1-18 interview, 19 reading, 20-25 words, 26-29 picture."""
    if 1 <= item <= 18:
        return "interview"
    if item == 19:
        return "reading"
    if 20 <= item <= 25:
        return "words"
    if 26 <= item <= 29:
        return "picture"
    return None


def _column_key(header: Any) -> str:
    # NFKC folds the full-width "（years）" to "(years)"; whitespace around names is noise.
    return unicodedata.normalize("NFKC", str(header)).strip()


def _cell_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _subject_id(value: Any) -> str | None:
    """``2010002`` / ``2010002.0`` / ``"02010002"`` -> ``"02010002"``; None if not an id."""
    if value is None:
        return None
    text = _cell_text(value)
    if not text.isdigit():
        return None
    return text.zfill(8)


def read_subject_sheet(
    path: str | Path,
) -> tuple[dict[str, tuple[str, dict[str, str]]], list[SkippedFile]]:
    """``{subject id: (MDD|HC, other columns as strings)}`` from the MODMA sheet.

    Reads ``Sheet1`` (or the only sheet), header row = the first row with any cell filled.
    Column names are matched after NFKC normalisation and stripping, case-insensitively
    for ``subject id`` and ``type``; header-less columns are ignored. Rows with an
    unreadable id or type are returned as skipped.
    """
    import openpyxl  # only MODMA needs it

    path = Path(path)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise DomadaptError(f"MODMA: cannot read the subject sheet {path} ({exc})") from exc
    try:
        if SHEET_NAME in book.sheetnames:
            sheet = book[SHEET_NAME]
        elif len(book.sheetnames) == 1:
            sheet = book[book.sheetnames[0]]
        else:
            raise DomadaptError(
                f"MODMA: {path} has no sheet {SHEET_NAME!r} (sheets: {', '.join(book.sheetnames)})"
            )
        # Read-only mode trusts the file's stored sheet dimensions, which some writers get
        # wrong (rows silently cut off); forget them and read every row there is.
        sheet.reset_dimensions()
        rows = sheet.iter_rows(values_only=True)
        header: list[str] | None = None
        subjects: dict[str, tuple[str, dict[str, str]]] = {}
        skipped: list[SkippedFile] = []
        for row_number, row in enumerate(rows, start=1):
            if header is None:
                if any(v is not None and str(v).strip() for v in row):
                    header = [_column_key(v) if v is not None else "" for v in row]
                    lowered = [h.lower() for h in header]
                    for needed in ("subject id", "type"):
                        if needed not in lowered:
                            raise DomadaptError(
                                f"MODMA: {path} has no column {needed!r} "
                                f"(found: {', '.join(h for h in header if h)})"
                            )
                    id_col, type_col = lowered.index("subject id"), lowered.index("type")
                continue
            if all(v is None or not str(v).strip() for v in row):
                continue
            cells = list(row) + [None] * (len(header) - len(row))
            where = f"{path}#{sheet.title}!row{row_number}"
            subject = _subject_id(cells[id_col])
            if subject is None:
                skipped.append(SkippedFile(where, f"subject id {cells[id_col]!r} is not a number"))
                continue
            label = _cell_text(cells[type_col]).upper() if cells[type_col] is not None else ""
            if label not in CLASSES:
                skipped.append(SkippedFile(
                    where, f"subject {subject}: type {cells[type_col]!r} is not MDD or HC"))
                continue
            if subject in subjects:
                if subjects[subject][0] != label:
                    raise DomadaptError(
                        f"MODMA: {path} lists subject {subject} twice with different types "
                        f"({subjects[subject][0]}, {label})"
                    )
                continue
            info = {
                name: _cell_text(value)
                for col, (name, value) in enumerate(zip(header, cells))
                if name and col not in (id_col, type_col) and value is not None
                and _cell_text(value) != ""
            }
            subjects[subject] = (label, info)
        if header is None:
            raise DomadaptError(f"MODMA: the subject sheet {path} is empty")
        return subjects, skipped
    finally:
        book.close()


def _check_tasks(tasks: Sequence[str] | str | None) -> tuple[str, ...]:
    if tasks is None:
        return TASKS
    if isinstance(tasks, str):
        tasks = (tasks,)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise DomadaptError(
            f"MODMA: unknown task(s) {', '.join(map(repr, unknown))}; known: {', '.join(TASKS)}"
        )
    if not tasks:
        raise DomadaptError(f"MODMA: tasks is empty; pick from {', '.join(TASKS)}")
    return tuple(tasks)


@CORPORA.register("modma")
def load_modma(root: str | Path, *, tasks: Sequence[str] | None = None) -> Corpus:
    """Load the MODMA audio corpus from ``root``.

    Layout: ``<root>/<8-digit subject>/01.wav … 29.wav`` and the label sheet
    ``<root>/subjects_information_audio_lanzhou_2015.xlsx``.

    Args:
        tasks: which recordings to keep, any of ``interview`` (01–18), ``reading`` (19),
            ``words`` (20–25), ``picture`` (26–29); default all.

    Labels (``HC``/``MDD``, classes in that order) come from the sheet's ``type`` column;
    the subject is the 8-digit id. ``meta`` holds ``task``, ``item`` (``"01"``…) and the
    sheet's other columns as strings (``PHQ-9``, ``age``, ``education(years)``, …; names
    NFKC-normalised). Listed in ``corpus.skipped``, with the reason: subject folders not
    in the sheet, sheet subjects without a folder or without readable audio, files whose
    header soundfile cannot read or that hold 0 frames (the real release has some), and
    .wav files not named 01–29.

    Raises:
        DomadaptError: root missing, sheet missing or without ``subject id``/``type``
            columns, no subject folder, unknown task name, or nothing loadable.
    """
    root = Path(root)
    if not root.is_dir():
        raise DomadaptError(
            f"MODMA root {root} does not exist or is not a folder (expected {_LAYOUT})"
        )
    wanted_tasks = _check_tasks(tasks)
    sheet_path = root / SHEET_FILE
    if not sheet_path.is_file():
        raise DomadaptError(
            f"MODMA: label sheet {sheet_path} not found (labels come only from it; "
            f"expected {_LAYOUT})"
        )
    sheet, skipped = read_subject_sheet(sheet_path)

    folders: dict[str, Path] = {}
    for p in sorted(root.iterdir()):
        if p.is_dir() and p.name.isdigit():
            folders[p.name.zfill(8)] = p
    if not folders:
        raise DomadaptError(f"MODMA root {root}: no subject folders (expected {_LAYOUT})")

    for subject, folder in folders.items():
        if subject not in sheet:
            skipped.append(SkippedFile(str(folder), f"subject {subject} is not in {SHEET_FILE}"))

    utterances: list[Utterance] = []
    for subject in sorted(sheet):
        label, info = sheet[subject]
        folder = folders.get(subject)
        if folder is None:
            skipped.append(SkippedFile(
                str(root / subject), f"subject {subject} ({label}) is in the sheet but has no folder"))
            continue
        found_audio = False
        readable = 0
        for wav in sorted(folder.iterdir()):
            if not wav.is_file() or wav.suffix.lower() != ".wav" or wav.name.startswith("._"):
                continue
            m = _ITEM.match(wav.stem)
            task = task_of(int(m[1])) if m else None
            if task is None:
                skipped.append(SkippedFile(str(wav), "not one of the recordings 01.wav … 29.wav"))
                continue
            found_audio = True
            if task not in wanted_tasks:
                continue
            try:
                frames = audio_info(wav).frames
            except DomadaptError as exc:
                skipped.append(SkippedFile(str(wav), f"unreadable audio header ({exc})"))
                continue
            if frames <= 0:
                skipped.append(SkippedFile(str(wav), "audio file holds 0 frames"))
                continue
            readable += 1
            meta = {"task": task, "item": f"{int(m[1]):02d}", **info}
            utterances.append(Utterance(path=wav, label=label, subject=subject,
                                        domain=NAME, meta=meta))
        if not found_audio:
            skipped.append(SkippedFile(
                str(folder), f"subject {subject} ({label}): no 01–29.wav recordings in the folder"))
        elif readable == 0:
            skipped.append(SkippedFile(
                str(folder),
                f"subject {subject} ({label}): no readable audio for tasks {', '.join(wanted_tasks)}"))
    if not utterances:
        raise DomadaptError(
            f"MODMA root {root}: no readable recording of a subject listed in {SHEET_FILE} "
            f"(expected {_LAYOUT})"
        )
    return Corpus(name=NAME, root=root, classes=CLASSES, utterances=utterances,
                  skipped=skipped)
