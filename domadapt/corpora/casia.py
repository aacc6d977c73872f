"""CASIA Chinese emotional speech (the public 1200-utterance set), read as released.

Two layouts are found in the wild:

``speaker`` (the release)::

    <root>/<speaker>/<emotion>/<n>.wav        e.g.  CASIA database/wangzhe/angry/201.wav

``flat`` (copies people share, one folder per emotion)::

    <root>/<emotion>/<n>-<emotion>-<speaker>.wav   e.g.  angry/201-angry-wangzhe.wav

Speakers in the release are ``liuchanhg`` (sic), ``wangzhe``, ``zhaoquanyin`` and
``ZhaoZuoxiang``; speaker names are taken from the tree, so other speaker folders load too.
Emotions are ``angry fear happy neutral sad surprise`` and the classes keep that order.
"""

from __future__ import annotations

import dataclasses

import re
from pathlib import Path
from typing import Literal

from domadapt.corpora.base import Corpus, SkippedFile, Utterance, require_every_class, wav_files
from domadapt.errors import DomadaptError
from domadapt.registries import CORPORA

NAME = "casia"
EMOTIONS: tuple[str, ...] = ("angry", "fear", "happy", "neutral", "sad", "surprise")
SPEAKERS: tuple[str, ...] = ("liuchanhg", "wangzhe", "zhaoquanyin", "ZhaoZuoxiang")
LAYOUTS: tuple[str, ...] = ("auto", "speaker", "flat")

_SPEAKER_LAYOUT = "<root>/<speaker>/<emotion>/<n>.wav"
_FLAT_LAYOUT = "<root>/<emotion>/<n>-<emotion>-<speaker>.wav"
# "<n>-<emotion>-<speaker>": the speaker is the last field, the emotion the one before it.
_FLAT_NAME = re.compile(r"^(?P<item>.+)-(?P<emotion>[A-Za-z]+)-(?P<speaker>[^-]+)$")


def _subdirs(folder: Path) -> list[Path]:
    # Hidden folders and macOS debris (.DS_Store, ._x, __MACOSX) are never corpus content.
    return sorted(
        p for p in folder.iterdir()
        if p.is_dir() and not p.name.startswith((".", "_"))
    )



def _emotion_of(folder: Path) -> str | None:
    name = folder.name.lower()
    return name if name in EMOTIONS else None


def _detect_layout(root: Path) -> str:
    top = _subdirs(root)
    if top and all(_emotion_of(d) for d in top):
        return "flat"
    if any(_emotion_of(e) for d in top for e in _subdirs(d)):
        return "speaker"
    raise DomadaptError(
        f"CASIA root {root}: found neither {_SPEAKER_LAYOUT} nor {_FLAT_LAYOUT} "
        f"(emotion folders must be named {' '.join(EMOTIONS)})"
    )


def _check_emotion_folder(folder: Path) -> str:
    emotion = _emotion_of(folder)
    if emotion is None:
        raise DomadaptError(
            f"CASIA: unexpected folder {folder}; emotion folders must be one of "
            f"{', '.join(EMOTIONS)}"
        )
    return emotion


def _load_speaker_layout(root: Path) -> tuple[list[Utterance], list[SkippedFile]]:
    utterances: list[Utterance] = []
    for speaker_dir in _subdirs(root):
        for emotion_dir in _subdirs(speaker_dir):
            emotion = _check_emotion_folder(emotion_dir)
            wavs = wav_files(emotion_dir)
            if not wavs:
                raise DomadaptError(
                    f"CASIA: emotion folder {emotion_dir} holds no .wav files (empty class "
                    f"'{emotion}' for speaker '{speaker_dir.name}')"
                )
            utterances += [
                Utterance(path=w, label=emotion, subject=speaker_dir.name, domain=NAME,
                          meta={"item": w.stem})
                for w in wavs
            ]
    return utterances, []


def _load_flat_layout(root: Path) -> tuple[list[Utterance], list[SkippedFile]]:
    utterances: list[Utterance] = []
    skipped: list[SkippedFile] = []
    for emotion_dir in _subdirs(root):
        emotion = _check_emotion_folder(emotion_dir)
        wavs = wav_files(emotion_dir)
        if not wavs:
            raise DomadaptError(
                f"CASIA: emotion folder {emotion_dir} holds no .wav files (empty class "
                f"'{emotion}')"
            )
        for w in wavs:
            m = _FLAT_NAME.match(w.stem)
            if m is None:
                skipped.append(SkippedFile(
                    str(w), "file name is not <n>-<emotion>-<speaker>.wav, speaker unknown"))
                continue
            if m["emotion"].lower() != emotion:
                skipped.append(SkippedFile(
                    str(w), f"file name says '{m['emotion']}' but it is in folder '{emotion}'"))
                continue
            utterances.append(Utterance(path=w, label=emotion, subject=m["speaker"],
                                        domain=NAME, meta={"item": m["item"]}))
    return utterances, skipped


@CORPORA.register("casia")
def load_casia(root: str | Path, *, layout: Literal["auto", "speaker", "flat"] = "auto") -> Corpus:
    """Load CASIA from ``root`` (spaces in the path are fine: ``.../CASIA database``).

    Layouts (``layout="auto"`` picks one by looking at the folders):

    - ``"speaker"``: ``<root>/<speaker>/<emotion>/<n>.wav`` (the release);
    - ``"flat"``: ``<root>/<emotion>/<n>-<emotion>-<speaker>.wav`` (shared copies); a file
      whose name does not carry its speaker, or names another emotion than its folder, is
      listed in ``corpus.skipped``.

    Labels are the emotion folder names, classes ``angry fear happy neutral sad surprise``
    in that order; the subject is the speaker. ``meta["item"]`` is the file number.

    Raises:
        DomadaptError: root missing or with neither layout, an emotion folder without any
            .wav (an empty class), an unknown folder at the emotion level, or no utterance
            at all for one of the six emotions.
    """
    root = Path(root)
    if not root.is_dir():
        raise DomadaptError(
            f"CASIA root {root} does not exist or is not a folder "
            f"(expected {_SPEAKER_LAYOUT} or {_FLAT_LAYOUT})"
        )
    if layout not in LAYOUTS:
        raise DomadaptError(f"CASIA: unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    if layout == "auto":
        layout = _detect_layout(root)
    if layout == "speaker":
        utterances, skipped = _load_speaker_layout(root)
        expected = _SPEAKER_LAYOUT
    else:
        utterances, skipped = _load_flat_layout(root)
        expected = _FLAT_LAYOUT
    if not utterances:
        raise DomadaptError(f"CASIA root {root}: no utterances found (expected {expected})")
    require_every_class("CASIA", root, EMOTIONS, utterances, expected)
    return Corpus(name=NAME, root=root, classes=EMOTIONS, utterances=utterances,
                  skipped=skipped)


@CORPORA.register("casia_target")
def load_casia_target(root: str | Path, *, layout: Literal["auto", "speaker", "flat"] = "auto") -> Corpus:
    """CASIA's layout (``<root>/<speaker>/<emotion>/<n>.wav``) spoken by *other* speakers,
    named apart from the source: the target of a closed-set (same emotions) adaptation
    pair, e.g. the synthetic DA testbed."""
    corpus = load_casia(root, layout=layout)
    utterances = [dataclasses.replace(u, domain="casia_target") for u in corpus.utterances]
    return dataclasses.replace(corpus, name="casia_target", utterances=utterances)


@CORPORA.register("casia_target_powered")
def load_casia_target_powered(root: str | Path, *, layout: Literal["auto", "speaker", "flat"] = "auto") -> Corpus:
    """CASIA's layout (``<root>/<speaker>/<emotion>/<n>.wav``) read as :func:`load_casia_target`
    under its own name: the target of the powered testbed (``recipes/da_testbed_powered.toml``,
    40 speakers), so that its features are cached and reported apart from the 8-speaker
    ``casia_target``."""
    corpus = load_casia_target(root, layout=layout)
    utterances = [dataclasses.replace(u, domain="casia_target_powered") for u in corpus.utterances]
    return dataclasses.replace(corpus, name="casia_target_powered", utterances=utterances)
