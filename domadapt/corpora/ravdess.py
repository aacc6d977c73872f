"""RAVDESS, the Ryerson Audio-Visual Database of Emotional Speech and Song (North American
English, 48 kHz), audio-only part, read as released.

Layout (``Audio_Speech_Actors_01-24.zip`` and ``Audio_Song_Actors_01-24.zip`` of the
Zenodo release both unpack to ``Actor_NN`` folders)::

    <root>/Actor_<NN>/<7 two-digit fields>.wav      e.g.  Actor_12/03-01-06-01-02-01-12.wav
    <root>/<any folder>/Actor_<NN>/...              (one level down, e.g. each zip unpacked
                                                     into its own folder)

The fields, in order:

1. modality: ``01`` full-AV, ``02`` video-only, ``03`` audio-only;
2. vocal channel: ``01`` speech, ``02`` song;
3. emotion: ``01`` neutral, ``02`` calm, ``03`` happy, ``04`` sad, ``05`` angry,
   ``06`` fearful, ``07`` disgust, ``08`` surprised;
4. intensity: ``01`` normal, ``02`` strong (neutral has no strong version);
5. statement: ``01`` "Kids are talking by the door", ``02`` "Dogs are sitting by the door";
6. repetition: ``01``, ``02``;
7. actor: ``01`` ... ``24``, odd male, even female.

Speech: 60 files per actor, 1440 in all. Song: 44 per actor, none for actor 18, 1012 in
all, without disgust or surprise. Classes use TIM-Net's names and order (its
``RAVDE_CLASS_LABELS``): ``angry calm disgust fear happy neutral sad surprise``; song
alone has ``angry calm fear happy neutral sad``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from domadapt.corpora.base import Corpus, SkippedFile, Utterance, wav_files
from domadapt.errors import DomadaptError
from domadapt.registries import CORPORA

NAME = "ravdess"
_LAYOUT = "<root>/Actor_<NN>/<modality>-<channel>-<emotion>-<intensity>-<statement>-" \
    "<repetition>-<actor>.wav (e.g. Actor_12/03-01-06-01-02-01-12.wav)"

#: File-name emotion code -> class (TIM-Net's label names).
EMOTIONS: dict[str, str] = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fear",
    "07": "disgust",
    "08": "surprise",
}
MODALITIES: dict[str, str] = {"01": "full-AV", "02": "video-only", "03": "audio-only"}
VOCAL_CHANNELS: dict[str, str] = {"01": "speech", "02": "song"}
INTENSITIES: dict[str, str] = {"01": "normal", "02": "strong"}
STATEMENTS: dict[str, str] = {
    "01": "Kids are talking by the door",
    "02": "Dogs are sitting by the door",
}
REPETITIONS: tuple[str, ...] = ("01", "02")
ACTORS: tuple[str, ...] = tuple(f"{i:02d}" for i in range(1, 25))

#: The class order (label index = position) per ``vocal_channel``; speech as in TIM-Net's code.
CLASSES: dict[str, tuple[str, ...]] = {
    "speech": ("angry", "calm", "disgust", "fear", "happy", "neutral", "sad", "surprise"),
    "song": ("angry", "calm", "fear", "happy", "neutral", "sad"),
    "both": ("angry", "calm", "disgust", "fear", "happy", "neutral", "sad", "surprise"),
}

_ACTOR_DIR = re.compile(r"^Actor_(\d+)$")
_FILE_NAME = re.compile(
    r"^(?P<modality>\d\d)-(?P<channel>\d\d)-(?P<emotion>\d\d)-(?P<intensity>\d\d)-"
    r"(?P<statement>\d\d)-(?P<repetition>\d\d)-(?P<actor>\d\d)$"
)



def _actor_dirs(root: Path) -> list[Path]:
    """``Actor_NN`` folders in ``root`` first, then one level down (hidden folders and
    macOS debris skipped)."""
    top = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    found = [p for p in top if _ACTOR_DIR.match(p.name)]
    for sub in top:
        if not _ACTOR_DIR.match(sub.name):
            found += sorted(p for p in sub.iterdir() if p.is_dir() and _ACTOR_DIR.match(p.name))
    return found


def parse_name(stem: str) -> dict[str, str] | str:
    """The codes of a RAVDESS file name (``"03-01-06-01-02-01-12"``) as a dict, or why it
    is not an audio-only recording with known codes."""
    m = _FILE_NAME.match(stem)
    if m is None:
        return ("file name is not <modality>-<channel>-<emotion>-<intensity>-<statement>-"
                "<repetition>-<actor>.wav (7 two-digit fields)")
    checks = (
        ("modality", MODALITIES), ("channel", VOCAL_CHANNELS), ("emotion", EMOTIONS),
        ("intensity", INTENSITIES), ("statement", STATEMENTS), ("repetition", REPETITIONS),
        ("actor", ACTORS),
    )
    for field, known in checks:
        if m[field] not in known:
            return f"unknown {field} code '{m[field]}' (known: {' '.join(known)})"
    if m["modality"] != "03":
        return (f"modality {m['modality']} ({MODALITIES[m['modality']]}) is not the "
                "audio-only recording (03)")
    return m.groupdict()


@CORPORA.register("ravdess")
def load_ravdess(
    root: str | Path, *, vocal_channel: Literal["speech", "song", "both"] = "speech"
) -> Corpus:
    """RAVDESS audio-only (48 kHz): <root>/Actor_12/03-01-06-01-02-01-12.wav, 24 actors.

    Layout: ``<root>/Actor_<NN>/<7 two-digit fields>.wav`` as released, the ``Actor_NN``
    folders directly in ``root`` or one folder down (speech and song unpacked side by side).

    Args:
        vocal_channel: ``"speech"`` (default; 1440 files, classes ``angry calm disgust fear
            happy neutral sad surprise``, TIM-Net's), ``"song"`` (1012 files, classes
            ``angry calm fear happy neutral sad``) or ``"both"`` (the speech classes).
            Files of the other channel are left out, not listed as skipped.

    Labels come from the emotion field; the subject is the two-digit actor (``"01"`` ...
    ``"24"``). ``meta`` holds ``emotion`` (the code), ``vocal_channel`` (speech/song),
    ``intensity`` (normal/strong), ``statement`` (``"01"``/``"02"``), ``text``,
    ``repetition`` and ``gender`` (odd actors male, even female).

    Listed in ``corpus.skipped``: a .wav in an ``Actor_NN`` folder whose name does not
    parse, carries an unknown code, is not audio-only (modality 01/02), names another actor
    than its folder, repeats a file name already read (a second copy of the corpus), or
    (song) has an emotion song does not have. Other files and macOS ``._*`` files are
    ignored.

    Raises:
        DomadaptError: root missing, no ``Actor_NN`` folder with RAVDESS .wav files of the
            chosen channel (naming the path and the expected layout), an unknown
            ``vocal_channel``, or no utterance for one of the classes.
    """
    root = Path(root)
    if not root.is_dir():
        raise DomadaptError(
            f"RAVDESS root {root} does not exist or is not a folder (expected {_LAYOUT})"
        )
    if vocal_channel not in CLASSES:
        raise DomadaptError(
            f"RAVDESS: unknown vocal_channel {vocal_channel!r}; known: {', '.join(CLASSES)}"
        )
    classes = CLASSES[vocal_channel]
    wanted = {"speech", "song"} if vocal_channel == "both" else {vocal_channel}

    utterances: list[Utterance] = []
    skipped: list[SkippedFile] = []
    first_copy: dict[str, Path] = {}
    for actor_dir in _actor_dirs(root):
        folder_actor = f"{int(_ACTOR_DIR.match(actor_dir.name)[1]):02d}"
        for wav in wav_files(actor_dir):
            codes = parse_name(wav.stem)
            if isinstance(codes, str):
                skipped.append(SkippedFile(str(wav), codes))
                continue
            if codes["actor"] != folder_actor:
                skipped.append(SkippedFile(
                    str(wav), f"file name says actor {codes['actor']} but it is in folder "
                              f"'{actor_dir.name}'"))
                continue
            channel = VOCAL_CHANNELS[codes["channel"]]
            if channel not in wanted:
                continue  # the other channel: left out by choice, not a fault of the file
            if wav.name in first_copy:
                skipped.append(SkippedFile(str(wav), f"duplicate of {first_copy[wav.name]}"))
                continue
            first_copy[wav.name] = wav
            label = EMOTIONS[codes["emotion"]]
            if label not in classes:
                skipped.append(SkippedFile(
                    str(wav), f"emotion '{label}' is not one of the {vocal_channel} classes "
                              f"({' '.join(classes)})"))
                continue
            utterances.append(Utterance(
                path=wav,
                label=label,
                subject=codes["actor"],
                domain=NAME,
                meta={
                    "emotion": codes["emotion"],
                    "vocal_channel": channel,
                    "intensity": INTENSITIES[codes["intensity"]],
                    "statement": codes["statement"],
                    "text": STATEMENTS[codes["statement"]],
                    "repetition": codes["repetition"],
                    "gender": "male" if int(codes["actor"]) % 2 else "female",
                },
            ))
    if not utterances:
        raise DomadaptError(
            f"RAVDESS root {root}: no Actor_NN folder with {vocal_channel} .wav files "
            f"(vocal_channel={vocal_channel!r}; expected {_LAYOUT})"
        )
    found = {u.label for u in utterances}
    missing = [c for c in classes if c not in found]
    if missing:
        raise DomadaptError(
            f"RAVDESS root {root}: no {vocal_channel} utterances for emotion(s) "
            f"{', '.join(missing)} (empty class; expected {_LAYOUT})"
        )
    return Corpus(name=NAME, root=root, classes=classes, utterances=utterances,
                  skipped=skipped)
