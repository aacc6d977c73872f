"""EMOVO, the Italian emotional speech corpus (Costantini et al., LREC 2014; 48 kHz), read
as released.

Layout (one folder per actor; the release's ``documents`` folder is ignored)::

    <root>/<actor>/<emotion>-<actor>-<sentence>.wav      e.g.  EMOVO/f1/dis-f1-b1.wav

- actors ``f1 f2 f3`` (female) and ``m1 m2 m3`` (male);
- emotions, Italian abbreviations: ``dis`` disgusto (disgust), ``gio`` gioia (joy),
  ``neu`` neutrale, ``pau`` paura (fear), ``rab`` rabbia (anger), ``sor`` sorpresa
  (surprise), ``tri`` tristezza (sadness);
- 14 sentences: ``b1 b2 b3`` (short), ``l1 l2 l3 l4`` (long), ``n1 ... n5`` (nonsense),
  ``d1 d2`` (questions).

6 actors x 7 emotions x 14 sentences = 588 utterances. Classes use TIM-Net's names and
order (its ``EMOVO_CLASS_LABELS``): ``angry disgust fear happy neutral sad surprise``.
"""

from __future__ import annotations

import re
from pathlib import Path

from domadapt.corpora.base import Corpus, SkippedFile, Utterance, require_every_class, wav_files
from domadapt.errors import DomadaptError
from domadapt.registries import CORPORA

NAME = "emovo"
_LAYOUT = "<root>/<actor f1..m3>/<emotion>-<actor>-<sentence>.wav (e.g. f1/dis-f1-b1.wav)"

#: File-name emotion code -> class (TIM-Net's label names).
EMOTIONS: dict[str, str] = {
    "rab": "angry",     # rabbia
    "dis": "disgust",   # disgusto
    "pau": "fear",      # paura
    "gio": "happy",     # gioia
    "neu": "neutral",
    "tri": "sad",       # tristezza
    "sor": "surprise",  # sorpresa
}
#: The class order (label index = position), as in TIM-Net's code.
CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
ACTORS: tuple[str, ...] = ("f1", "f2", "f3", "m1", "m2", "m3")
SENTENCES: tuple[str, ...] = (
    "b1", "b2", "b3", "l1", "l2", "l3", "l4", "n1", "n2", "n3", "n4", "n5", "d1", "d2",
)
_GENDER = {"f": "female", "m": "male"}

# A folder shaped like an actor ("f4" too, so that its files are listed, not ignored).
_ACTOR_DIR = re.compile(r"^[fm]\d+$")
_FILE_NAME = re.compile(r"^(?P<emotion>[a-z]+)-(?P<actor>[a-z]\d+)-(?P<sentence>[a-z]\d+)$")



def parse_name(stem: str, folder: str) -> dict[str, str] | str:
    """The codes of an EMOVO file name (``"dis-f1-b1"``) found in actor folder ``folder``
    as a dict, or why it is not one."""
    m = _FILE_NAME.match(stem)
    if m is None:
        return "file name is not <emotion>-<actor>-<sentence>.wav"
    if m["actor"] not in ACTORS:
        return f"unknown actor code '{m['actor']}' (known: {' '.join(ACTORS)})"
    if m["actor"] != folder:
        return f"file name says actor '{m['actor']}' but it is in folder '{folder}'"
    if m["emotion"] not in EMOTIONS:
        return f"unknown emotion code '{m['emotion']}' (known: {' '.join(EMOTIONS)})"
    if m["sentence"] not in SENTENCES:
        return f"unknown sentence code '{m['sentence']}' (known: {' '.join(SENTENCES)})"
    return m.groupdict()


@CORPORA.register("emovo")
def load_emovo(root: str | Path) -> Corpus:
    """EMOVO (Italian, 48 kHz): <root>/<actor>/dis-f1-b1.wav, 6 actors, 7 emotions.

    Layout: ``<root>/<actor>/<emotion>-<actor>-<sentence>.wav`` with actor folders
    ``f1 f2 f3 m1 m2 m3`` as released. Labels come from the emotion code (``rab dis pau gio
    neu tri sor``), classes ``angry disgust fear happy neutral sad surprise`` in that order
    (TIM-Net's); the subject is the actor (``"f1"`` ... ``"m3"``). ``meta`` holds ``emotion``
    (the code), ``sentence`` and ``gender``.

    A .wav in an actor-shaped folder whose name does not parse, names another actor than
    its folder, or carries an unknown actor, emotion or sentence code is listed in
    ``corpus.skipped``; other folders (``documents``), other files and macOS ``._*`` files
    are ignored.

    Raises:
        DomadaptError: root missing, no actor folder with EMOVO .wav files (naming the path
            and the expected layout), or no utterance for one of the seven emotions.
    """
    root = Path(root)
    if not root.is_dir():
        raise DomadaptError(
            f"EMOVO root {root} does not exist or is not a folder (expected {_LAYOUT})"
        )
    actor_dirs = sorted(p for p in root.iterdir() if p.is_dir() and _ACTOR_DIR.match(p.name))
    utterances: list[Utterance] = []
    skipped: list[SkippedFile] = []
    for actor_dir in actor_dirs:
        for wav in wav_files(actor_dir):
            codes = parse_name(wav.stem, actor_dir.name)
            if isinstance(codes, str):
                skipped.append(SkippedFile(str(wav), codes))
                continue
            utterances.append(Utterance(
                path=wav,
                label=EMOTIONS[codes["emotion"]],
                subject=codes["actor"],
                domain=NAME,
                meta={"emotion": codes["emotion"], "sentence": codes["sentence"],
                      "gender": _GENDER[codes["actor"][0]]},
            ))
    if not utterances:
        raise DomadaptError(
            f"EMOVO root {root}: no actor folder with EMOVO .wav files (expected {_LAYOUT})"
        )
    require_every_class("EMOVO", root, CLASSES, utterances, _LAYOUT)
    return Corpus(name=NAME, root=root, classes=CLASSES, utterances=utterances,
                  skipped=skipped)
