"""Synthetic stand-ins for CASIA, IEMOCAP and MODMA, written in the real on-disk layouts.

The real corpora are licensed and never shipped, so every recipe runs by default on these
stand-ins. They are *real WAV files in the real folder layouts*, read by the real loaders
(``casia.py``, ``iemocap.py``, ``modma.py``) unchanged, so the whole pipeline from disk to
report is exercised.

The audio is speech-like, not noise (:mod:`domadapt.corpora.synthetic.voice`: a glottal
pulse train through formant resonators, built from a *text* and a *prosody*); emotion and
depression live in the prosody only. CASIA/IEMOCAP emotions are fixed profiles scaled by a
per-speaker expressiveness and perturbed per speaker and per utterance; depression is one
direction times a per-subject severity that overlaps between MDD and HC, plus a large
personal style, so some MDD subjects sound healthy and some HC subjects do not. The writers
of each layout are :mod:`domadapt.corpora.synthetic.layouts`.

Speakers differ in base pitch (gender), vocal-tract length (formant scaling), bandwidths,
rate, range and voice quality. Domains differ in voices, sample rate and channel: CASIA is
clean 16 kHz/16-bit; IEMOCAP is 16 kHz with a little room reverberation and noise; MODMA
is synthesised at 14.7 kHz, band-limited (120 Hz - 5.5 kHz), given 50 Hz hum and a noise
floor, recorded very quietly (peaks ~0.02-0.08) and upsampled x3 to 44.1 kHz/24-bit.

A fourth kind, ``casia_target``, is the target side of a closed-set unsupervised-DA
testbed ``casia -> casia_target``: CASIA's six emotions (same prosodic profiles, so the
class structure carries over) spoken by eight *other* voices (other pitch, vocal-tract and
voice-quality ranges, other texts) through MODMA's channel, in the CASIA layout so that the
``casia`` loader reads it (:data:`LOADERS` maps each kind to its loader). A classifier
trained on CASIA alone loses clearly there, one trained on the target's speakers does well
(``benchmarks/synthetic_difficulty.py --corpora casia casia_target``: per-utterance MFCC
mean+std and logistic regression, seed 0: source-only 0.25 UA on the target, target-only
leave-one-speaker-out 0.78, chance 0.17).

A fifth kind, ``emodb``, is EMODB in its release layout (``wav/03a01Wa.wav``): the ten
speaker codes, seven emotions (CASIA's profiles plus boredom and disgust), read by the
``emodb`` loader, so that TIM-Net's EMODB protocol and the cross-corpus emotion recipes
(``emodb2casia``) run without data paths.

Sizes (defaults) and why: CASIA 4 speakers x 6 emotions x 20 files (480 files, 1.5-3 s);
IEMOCAP 5 sessions x 2 speakers x 50 utterances (500, ~1.5-4 s); MODMA 52 subjects
(23 MDD, 29 HC) x all 29 tasks, kept short so that feature extraction and training stay
fast on a CPU (10th-90th percentiles): interview 01-18 1.5-3.7 s, reading 19 3.1-4.9 s,
words 20-25 1.2-1.7 s, picture description 26-29 2.6-5.9 s; about 65 s of audio per
subject (~57 min, ~435 MB in all). All three default corpora generate in ~35 s on 2 cores.
casia_target: 8 speakers x 6 emotions x 20 files (960 files, ~40 min), ~11 s.
casia_target_powered: the same voices' family and channel, 40 speakers x 6 emotions x 5
files (1,200 files): enough target speakers for 5 folds of 8 test speakers, the size the
power estimate in docs/adaptation-on-speech.md asks for.
emodb: 10 speakers x 7 emotions x 8 texts (560 files).

Every file has its own ``numpy.random.Generator`` seeded from ``(seed, corpus, speaker,
item, ...)``, so the output is byte-identical for a seed and independent of the order of
generation. :func:`synthetic_root` caches a corpus under ``<cache>/synthetic/v<VERSION>-
seed<seed>/`` and publishes it atomically (write to a temporary sibling, then rename).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from domadapt.corpora.synthetic.layouts import (
    CASIA_EMOTIONS,
    CASIA_SPEAKERS,
    CASIA_TARGET_SPEAKERS,
    casia_target_speakers,
    GENERATOR_ID,
    GENERATOR_VERSION,
    MARKER_NAME,
    MODMA_COLUMNS,
    MODMA_SHEET_FILE,
    ModmaSubject,
    modma_subjects,
    write_casia,
    write_casia_target,
    write_emodb,
    write_iemocap,
    write_modma,
)
from domadapt.corpora.synthetic.vectors import write_rotated_moons
from domadapt.corpora.synthetic.voice import (
    DEPRESSION_DIRECTION,
    EMOTION_PROFILES,
    Expression,
    Text,
    Voice,
    make_text,
    synthesize,
)
from domadapt.errors import DomadaptError

CORPUS_KINDS = ("casia", "iemocap", "modma", "casia_target", "emodb", "casia_target_powered")
#: Feature-vector stand-ins (no audio): rotated two-moons, both sides in one root
#: (domadapt.corpora.arrays).
VECTOR_KINDS = ("arrays", "arrays_target")
#: Folder name of each corpus root, as the real releases name them (casia_target: no
#: release; a name of its own next to CASIA's in the same cache folder).
ROOT_NAMES = {
    "casia": "CASIA database",
    "iemocap": "IEMOCAP_full_release",
    "modma": "audio_lanzhou_2015",
    "casia_target": "CASIA target database",
    "casia_target_powered": "CASIA target database (40 speakers)",
    "emodb": "emodb",
    "arrays": "rotated_moons",
    "arrays_target": "rotated_moons",
}
#: The loader (``domadapt.corpora.CORPORA`` name) that reads each kind.
LOADERS = {
    "casia": "casia", "iemocap": "iemocap", "modma": "modma", "casia_target": "casia", "emodb": "emodb",
    "casia_target_powered": "casia",
    "arrays": "arrays", "arrays_target": "arrays_target",
}


def is_synthetic_root(root: Path) -> bool:
    """True if ``root`` is a complete corpus written by this generator (its marker file)."""
    try:
        marker = json.loads((Path(root) / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("generator") == GENERATOR_ID


def write_casia_target_powered(root: Path, *, seed: int = 0, progress: bool = False, jobs: int | None = 1) -> Path:
    """:func:`write_casia_target` with 40 speakers x 5 files per emotion: the target of the
    powered testbed (``recipes/da_testbed_powered.toml``). The first eight speakers are
    ``casia_target``'s voices; files 201-205 of each are the same as theirs."""
    return write_casia_target(root, seed=seed, files_per_class=5, n_speakers=40, progress=progress, jobs=jobs)


_WRITERS: dict[str, Callable[..., Path]] = {
    "casia": write_casia,
    "iemocap": write_iemocap,
    "modma": write_modma,
    "casia_target": write_casia_target,
    "casia_target_powered": write_casia_target_powered,
    "emodb": write_emodb,
    "arrays": write_rotated_moons,
    "arrays_target": write_rotated_moons,
}
_TEMP_PREFIX = ".tmp-"
_STALE_TEMP_S = 24 * 3600.0


def default_cache_dir() -> Path:
    """``$DOMADAPT_CACHE``, else ``$XDG_CACHE_HOME/domadapt``, else ``~/.cache/domadapt``."""
    if os.environ.get("DOMADAPT_CACHE"):
        return Path(os.environ["DOMADAPT_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "domadapt"
    return Path.home() / ".cache" / "domadapt"


def synthetic_root(
    kind: str, *, seed: int = 0, cache_dir: Path | None = None, progress: bool = False, jobs: int | None = 1
) -> Path:
    """The root of the cached synthetic corpus ``kind`` (one of CORPUS_KINDS), built if missing.

    Read it with the loader ``LOADERS[kind]`` (``casia_target`` is read by ``casia``).

    Lives at ``<cache>/synthetic/v<GENERATOR_VERSION>-seed<seed>/<real root name>``, e.g.
    ``.../v1-seed0/CASIA database``; ``<cache>`` is ``cache_dir`` or :func:`default_cache_dir`.
    The corpus is written into a temporary sibling and renamed into place when complete, so
    a half-written corpus is never returned; when two processes race, the first rename wins
    and the other discards its copy. Temporary folders left by a crash are ignored (and
    removed once a day old). ``progress``: show the files as they are written
    (:class:`domadapt.progress.Progress`). ``jobs``: worker processes that write it, one
    speaker at a time (None: one per core; 1: this process); the bytes are the same with any.
    """
    if kind not in _WRITERS:
        raise DomadaptError(f"unknown synthetic corpus {kind!r}; known: {', '.join(CORPUS_KINDS + VECTOR_KINDS)}")
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    base = base / "synthetic" / f"v{GENERATOR_VERSION}-seed{int(seed)}"
    final = base / ROOT_NAMES[kind]
    if is_synthetic_root(final):
        return final
    base.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(base)
    temp = Path(tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{kind}-", dir=base))
    try:
        _WRITERS[kind](temp, seed=seed, progress=progress, jobs=jobs)
        try:
            os.replace(temp, final)  # atomic; fails if another process already put one there
        except OSError:
            if not is_synthetic_root(final):
                raise DomadaptError(
                    f"{final}: exists but is not a complete synthetic corpus; remove it"
                ) from None
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return final


def _remove_stale_temps(base: Path) -> None:
    now = time.time()
    for p in base.glob(f"{_TEMP_PREFIX}*"):
        try:
            if now - p.stat().st_mtime > _STALE_TEMP_S:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


__all__ = [
    "CASIA_EMOTIONS",
    "CASIA_SPEAKERS",
    "CASIA_TARGET_SPEAKERS",
    "casia_target_speakers",
    "write_casia_target_powered",
    "CORPUS_KINDS",
    "VECTOR_KINDS",
    "LOADERS",
    "DEPRESSION_DIRECTION",
    "EMOTION_PROFILES",
    "GENERATOR_VERSION",
    "MARKER_NAME",
    "MODMA_COLUMNS",
    "MODMA_SHEET_FILE",
    "ROOT_NAMES",
    "Expression",
    "ModmaSubject",
    "Text",
    "Voice",
    "default_cache_dir",
    "is_synthetic_root",
    "make_text",
    "modma_subjects",
    "synthesize",
    "synthetic_root",
    "write_casia",
    "write_casia_target",
    "write_emodb",
    "write_iemocap",
    "write_modma",
]
