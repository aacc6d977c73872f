"""SAVEE, Surrey Audio-Visual Expressed Emotion (British English, 44.1 kHz), read as
released.

Layout (``AudioData.zip`` of the release; its ``Info.txt`` is ignored)::

    <root>/AudioData/<speaker>/<emotion><nn>.wav      e.g.  SAVEE/AudioData/DC/a01.wav

The root may also be the ``AudioData`` folder itself. Speakers ``DC JE JK KL`` (four male
speakers); the emotion prefix is ``a`` anger, ``d`` disgust, ``f`` fear, ``h`` happiness,
``n`` neutral, ``sa`` sadness, ``su`` surprise, and the two digits number the sentence
(15 per emotion, 30 neutral: 120 per speaker, 480 in all). Classes use TIM-Net's names and
order (its ``SAVEE_CLASS_LABELS``): ``angry disgust fear happy neutral sad surprise``.
"""

from __future__ import annotations

import re
from pathlib import Path

from domadapt.corpora.base import Corpus, SkippedFile, Utterance, require_every_class, wav_files
from domadapt.errors import DomadaptError
from domadapt.registries import CORPORA

NAME = "savee"
_LAYOUT = "<root>/AudioData/<speaker DC|JE|JK|KL>/<emotion><nn>.wav (e.g. AudioData/DC/a01.wav)"

#: File-name prefix -> class (TIM-Net's label names).
EMOTIONS: dict[str, str] = {
    "a": "angry",
    "d": "disgust",
    "f": "fear",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprise",
}
#: The class order (label index = position), as in TIM-Net's code.
CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
SPEAKERS: tuple[str, ...] = ("DC", "JE", "JK", "KL")

# A folder shaped like a speaker (two capitals), so that an unknown one is listed.
_SPEAKER_DIR = re.compile(r"^[A-Z]{2}$")
_FILE_NAME = re.compile(r"^(?P<emotion>[a-z]+)(?P<sentence>\d\d)$")



def parse_name(stem: str) -> dict[str, str] | str:
    """The codes of a SAVEE file name (``"sa03"``) as a dict, or why it is not one."""
    m = _FILE_NAME.match(stem)
    if m is None:
        return "file name is not <emotion a|d|f|h|n|sa|su><2-digit sentence>.wav"
    if m["emotion"] not in EMOTIONS:
        return f"unknown emotion prefix '{m['emotion']}' (known: {' '.join(EMOTIONS)})"
    return m.groupdict()


@CORPORA.register("savee")
def load_savee(root: str | Path) -> Corpus:
    """SAVEE (British English, 44.1 kHz): <root>/AudioData/DC/a01.wav, 4 speakers, 7 emotions.

    Layout: ``<root>/AudioData/<speaker>/<emotion><nn>.wav`` as released (or ``root``
    being the ``AudioData`` folder itself), speakers ``DC JE JK KL``. Labels come from the
    file-name prefix (``a d f h n sa su``), classes ``angry disgust fear happy neutral sad
    surprise`` in that order (TIM-Net's); the subject is the speaker. ``meta`` holds
    ``emotion`` (the prefix), ``sentence`` (two digits) and ``gender`` (all male).

    A .wav in a speaker-shaped folder (two capitals) whose name does not parse, or whose
    speaker or emotion prefix is unknown, is listed in ``corpus.skipped``; other folders,
    other files and macOS ``._*`` files are ignored.

    Raises:
        DomadaptError: root missing, no speaker folder with SAVEE .wav files (naming the
            path and the expected layout), or no utterance for one of the seven emotions.
    """
    root = Path(root)
    if not root.is_dir():
        raise DomadaptError(
            f"SAVEE root {root} does not exist or is not a folder (expected {_LAYOUT})"
        )
    audio = root / "AudioData" if (root / "AudioData").is_dir() else root
    speaker_dirs = sorted(
        p for p in audio.iterdir() if p.is_dir() and _SPEAKER_DIR.match(p.name))
    utterances: list[Utterance] = []
    skipped: list[SkippedFile] = []
    for speaker_dir in speaker_dirs:
        speaker = speaker_dir.name
        for wav in wav_files(speaker_dir):
            if speaker not in SPEAKERS:
                skipped.append(SkippedFile(
                    str(wav), f"unknown speaker folder '{speaker}' (known: {' '.join(SPEAKERS)})"))
                continue
            codes = parse_name(wav.stem)
            if isinstance(codes, str):
                skipped.append(SkippedFile(str(wav), codes))
                continue
            utterances.append(Utterance(
                path=wav,
                label=EMOTIONS[codes["emotion"]],
                subject=speaker,
                domain=NAME,
                meta={"emotion": codes["emotion"], "sentence": codes["sentence"],
                      "gender": "male"},
            ))
    if not utterances:
        raise DomadaptError(
            f"SAVEE root {root}: no speaker folder with SAVEE .wav files (expected {_LAYOUT})"
        )
    require_every_class("SAVEE", root, CLASSES, utterances, _LAYOUT)
    return Corpus(name=NAME, root=root, classes=CLASSES, utterances=utterances,
                  skipped=skipped)
