"""EMODB, the Berlin Database of Emotional Speech (German, 16 kHz), read as released.

Layout (the ``download.zip`` of emodb.bilderbar.info; audb's ``emodb`` keeps the same
``wav/03a01Fa.wav`` names)::

    <root>/wav/<speaker><text><emotion><version>.wav      e.g.  wav/03a01Fa.wav

The root may also be the ``wav`` folder itself. The release's other folders (``lablaut``,
``labsilb``, ``silb``, ...) and documents are ignored. The seven characters of a name:

- positions 1-2: the speaker, one of ``03 08 09 10 11 12 13 14 15 16`` (5 female, 5 male);
- positions 3-5: the text, one of ``a01 a02 a04 a05 a07 b01 b02 b03 b09 b10``;
- position 6: the emotion, a German initial: ``W`` Wut (anger), ``L`` Langeweile
  (boredom), ``E`` Ekel (disgust), ``A`` Angst (fear), ``F`` Freude (happiness),
  ``T`` Trauer (sadness), ``N`` neutral;
- position 7: the version, ``a``, ``b``, ``c``, ... where a sentence was recorded more
  than once.

The public release holds 535 utterances of the 10 speakers. Classes use TIM-Net's names
and order (its ``EMODB_CLASS_LABELS``): ``angry boredom disgust fear happy neutral sad``.
"""

from __future__ import annotations

import re
from pathlib import Path

from domadapt.corpora.base import Corpus, SkippedFile, Utterance, require_every_class, wav_files
from domadapt.errors import DomadaptError
from domadapt.registries import CORPORA

NAME = "emodb"
_LAYOUT = "<root>/wav/<speaker><text><emotion><version>.wav (e.g. wav/03a01Fa.wav)"

#: File-name letter -> class (TIM-Net's label names).
EMOTIONS: dict[str, str] = {
    "W": "angry",      # Wut / Ärger
    "L": "boredom",    # Langeweile
    "E": "disgust",    # Ekel
    "A": "fear",       # Angst
    "F": "happy",      # Freude
    "N": "neutral",
    "T": "sad",        # Trauer
}
#: The class order (label index = position), as in TIM-Net's code.
CLASSES: tuple[str, ...] = ("angry", "boredom", "disgust", "fear", "happy", "neutral", "sad")

#: Speaker -> (gender, age at recording), from the corpus documentation.
SPEAKERS: dict[str, tuple[str, str]] = {
    "03": ("male", "31"),
    "08": ("female", "34"),
    "09": ("female", "21"),
    "10": ("male", "32"),
    "11": ("male", "26"),
    "12": ("male", "30"),
    "13": ("female", "32"),
    "14": ("female", "35"),
    "15": ("male", "25"),
    "16": ("female", "31"),
}
#: The ten texts: five short (a..) and five long (b..) sentences.
TEXTS: tuple[str, ...] = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10")

_FILE_NAME = re.compile(
    r"^(?P<speaker>\d\d)(?P<text>[a-z]\d\d)(?P<emotion>[A-Z])(?P<version>[a-z])$"
)



def parse_name(stem: str) -> dict[str, str] | str:
    """The codes of an EMODB file name (``"03a01Fa"``) as a dict, or why it is not one."""
    m = _FILE_NAME.match(stem)
    if m is None:
        return "file name is not <speaker 2 digits><text a01..b10><emotion letter><version>.wav"
    if m["speaker"] not in SPEAKERS:
        return f"unknown speaker code '{m['speaker']}' (known: {' '.join(SPEAKERS)})"
    if m["text"] not in TEXTS:
        return f"unknown text code '{m['text']}' (known: {' '.join(TEXTS)})"
    if m["emotion"] not in EMOTIONS:
        return f"unknown emotion letter '{m['emotion']}' (known: {' '.join(EMOTIONS)})"
    return m.groupdict()


@CORPORA.register("emodb")
def load_emodb(root: str | Path) -> Corpus:
    """EMODB (Berlin, German, 16 kHz): <root>/wav/03a01Fa.wav, 10 speakers, 7 emotions.

    Layout: ``<root>/wav/<speaker><text><emotion><version>.wav`` as released (or ``root``
    being the ``wav`` folder itself). Labels come from the emotion letter (``W L E A F T
    N``), classes ``angry boredom disgust fear happy neutral sad`` in that order (TIM-Net's);
    the subject is the two-digit speaker (``"03"`` ... ``"16"``). ``meta`` holds ``emotion``
    (the letter), ``text``, ``version``, ``gender`` and ``age``.

    A .wav whose name does not parse, or carries an unknown speaker, text or emotion code,
    is listed in ``corpus.skipped``; other files and macOS ``._*`` files are ignored.

    Raises:
        DomadaptError: root missing, no EMODB-named .wav at all (naming the path and the
            expected layout), or no utterance for one of the seven emotions.
    """
    root = Path(root)
    if not root.is_dir():
        raise DomadaptError(
            f"EMODB root {root} does not exist or is not a folder (expected {_LAYOUT})"
        )
    folder = root / "wav" if (root / "wav").is_dir() else root
    utterances: list[Utterance] = []
    skipped: list[SkippedFile] = []
    for wav in wav_files(folder):
        codes = parse_name(wav.stem)
        if isinstance(codes, str):
            skipped.append(SkippedFile(str(wav), codes))
            continue
        gender, age = SPEAKERS[codes["speaker"]]
        utterances.append(Utterance(
            path=wav,
            label=EMOTIONS[codes["emotion"]],
            subject=codes["speaker"],
            domain=NAME,
            meta={"emotion": codes["emotion"], "text": codes["text"],
                  "version": codes["version"], "gender": gender, "age": age},
        ))
    if not utterances:
        raise DomadaptError(
            f"EMODB root {root}: no EMODB .wav files found in {folder} (expected {_LAYOUT})"
        )
    require_every_class("EMODB", root, CLASSES, utterances, _LAYOUT)
    return Corpus(name=NAME, root=root, classes=CLASSES, utterances=utterances,
                  skipped=skipped)
