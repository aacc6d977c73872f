"""IEMOCAP (USC), read as released.

Layout::

    <root>/Session{1..5}/sentences/wav/<dialog>/<utterance>.wav
    <root>/Session{1..5}/dialog/EmoEvaluation/<dialog>.txt

Each ``EmoEvaluation/<dialog>.txt`` holds a ``%`` header, blank lines, one line per
utterance with the consensus label::

    [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]

and evaluator lines (``C-E1:\\t...``, ``A-E2:\\t...``) that are ignored. The speaker of
``Ses01F_impro01_M000`` is the session plus the F/M of the *last* field: ``"1M"`` (the
``F`` in ``Ses01F`` names who wore the markers, not who speaks).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Sequence

from domadapt.corpora.base import Corpus, SkippedFile, Utterance
from domadapt.errors import DomadaptError
from domadapt.registries import CORPORA

NAME = "iemocap"
_LAYOUT = "<root>/Session{1..5}/sentences/wav/<dialog>/<utt>.wav"

# Raw label -> class, per class set. Labels absent from a map are dropped (not skipped:
# leaving out xxx/oth/... is the protocol, not a fault of the files).
LABEL_MAPS: dict[str, dict[str, str]] = {
    # The standard 4-class set (5531 utterances): excited merged into happy.
    "4": {"neu": "neu", "hap": "hap", "exc": "hap", "ang": "ang", "sad": "sad"},
    # 6 classes: happy and excited kept apart, frustration added.
    "6": {"neu": "neu", "hap": "hap", "ang": "ang", "sad": "sad", "exc": "exc", "fru": "fru"},
}
CLASSES: dict[str, tuple[str, ...]] = {
    "4": ("neu", "hap", "ang", "sad"),
    "6": ("neu", "hap", "ang", "sad", "exc", "fru"),
}

_UTTERANCE_LINE = re.compile(
    r"^\[\s*(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\s*\]\s+"
    r"(?P<utt>Ses\d+[FM]_\S+)\s+(?P<label>\S+)\s+\["
)
_SESSION_DIR = re.compile(r"^Session(\d+)$")


def parse_emo_evaluation(path: str | Path) -> list[tuple[str, str, float, float]]:
    """The ``(utterance, raw label, start, end)`` rows of one EmoEvaluation file.

    Only lines shaped like ``[start - end]<TAB>utt<TAB>label<TAB>[v, a, d]`` count; the
    ``%`` header, blank lines and per-evaluator lines are ignored.
    """
    rows = []
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    for line in text.splitlines():
        m = _UTTERANCE_LINE.match(line)
        if m:
            rows.append((m["utt"], m["label"].lower(), float(m["start"]), float(m["end"])))
    return rows


def speaker_of(utterance: str, session: int) -> str:
    """``Ses01F_impro01_M000`` in session 1 -> ``"1M"`` (gender of the last field)."""
    last = utterance.rsplit("_", 1)[-1]
    if not last or last[0].upper() not in "FM":
        raise DomadaptError(f"IEMOCAP: cannot read the speaker of utterance {utterance!r}")
    return f"{session}{last[0].upper()}"


@CORPORA.register("iemocap")
def load_iemocap(
    root: str | Path,
    *,
    classes: Literal["4", "6"] = "4",
    sessions: Sequence[int] | None = None,
) -> Corpus:
    """Load IEMOCAP's labelled sentences from ``root``.

    Layout: ``<root>/Session{1..5}/sentences/wav/<dialog>/<utt>.wav`` with labels from
    ``<root>/Session{n}/dialog/EmoEvaluation/<dialog>.txt`` (utterance lines only).

    Args:
        classes: ``"4"`` (default) — neu, hap (+exc merged into hap), ang, sad, the standard
            set of 5531 utterances; ``"6"`` — neu, hap, ang, sad, exc, fru. Every other
            label (xxx, oth, sur, fea, dis, and fru in the 4-class set) is dropped.
        sessions: session numbers to load (default: every ``Session<n>`` folder present).

    Subjects are session + speaker gender (``"1F"``, ``"1M"``, ... ``"5M"``), so
    leave-one-session-out holds out two subjects. ``meta`` holds ``session``, ``dialog``,
    ``emotion`` (the raw label, e.g. ``exc``) and ``kind`` (``impro``/``script``). macOS
    ``._*`` files are ignored; a labelled utterance whose wav is missing is listed in
    ``corpus.skipped``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DomadaptError(
            f"IEMOCAP root {root} does not exist or is not a folder (expected {_LAYOUT})"
        )
    key = str(classes)
    if key not in LABEL_MAPS:
        raise DomadaptError(
            f"IEMOCAP: unknown classes={classes!r}; known: {', '.join(LABEL_MAPS)}"
        )
    label_map = LABEL_MAPS[key]

    present = {}
    for p in root.iterdir():
        m = _SESSION_DIR.match(p.name)
        if m and p.is_dir():
            present[int(m[1])] = p
    if not present:
        raise DomadaptError(f"IEMOCAP root {root}: no Session<n> folders (expected {_LAYOUT})")
    if sessions is None:
        wanted = sorted(present)
    else:
        wanted = sorted({int(s) for s in sessions})
        absent = [s for s in wanted if s not in present]
        if absent:
            raise DomadaptError(
                f"IEMOCAP root {root}: no folder for session(s) "
                f"{', '.join(map(str, absent))} (found {', '.join(map(str, sorted(present)))})"
            )

    utterances: list[Utterance] = []
    skipped: list[SkippedFile] = []
    for session in wanted:
        session_dir = present[session]
        eval_dir = session_dir / "dialog" / "EmoEvaluation"
        if not eval_dir.is_dir():
            raise DomadaptError(
                f"IEMOCAP: label folder {eval_dir} is missing "
                f"(expected {session_dir.name}/dialog/EmoEvaluation/<dialog>.txt)"
            )
        label_files = sorted(
            p for p in eval_dir.glob("*.txt") if p.is_file() and not p.name.startswith("._")
        )
        if not label_files:
            raise DomadaptError(
                f"IEMOCAP: no <dialog>.txt label files in {eval_dir}"
            )
        wav_root = session_dir / "sentences" / "wav"
        for label_file in label_files:
            dialog = label_file.stem
            for utt, raw, start, end in parse_emo_evaluation(label_file):
                label = label_map.get(raw)
                if label is None:
                    continue
                wav = wav_root / dialog / f"{utt}.wav"
                if not wav.is_file():
                    skipped.append(SkippedFile(
                        str(wav), f"labelled '{raw}' in {label_file} but the wav is missing"))
                    continue
                utterances.append(Utterance(
                    path=wav,
                    label=label,
                    subject=speaker_of(utt, session),
                    domain=NAME,
                    meta={
                        "session": str(session),
                        "dialog": dialog,
                        "emotion": raw,
                        "kind": "script" if "_script" in dialog else "impro",
                        "dialog_start": f"{start:.4f}",
                        "dialog_end": f"{end:.4f}",
                    },
                ))
    if not utterances:
        raise DomadaptError(
            f"IEMOCAP root {root}: no labelled utterance with a wav found (expected {_LAYOUT})"
        )
    return Corpus(name=NAME, root=root, classes=CLASSES[key], utterances=utterances,
                  skipped=skipped)
