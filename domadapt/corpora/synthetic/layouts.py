"""The per-corpus writers of the synthetic stand-ins: CASIA, EMODB, IEMOCAP, MODMA and
``casia_target``, each in the real release's folder layout (see
:mod:`domadapt.corpora.synthetic` for what each holds and why), their audio from
:mod:`domadapt.corpora.synthetic.voice`.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
import soundfile as sf
from scipy import signal

from domadapt.corpora.synthetic.voice import (
    DEPRESSION_DIRECTION,
    EMOTION_PROFILES,
    NEUTRAL,
    Expression,
    Text,
    Voice,
    limit_peak,
    make_text,
    random_text,
    random_voice,
    seeded_rng,
    synthesize,
)
from domadapt.errors import DomadaptError
from domadapt.progress import Progress


#: Bump on any change to the generated audio or layout: the cache path carries it, so a new
#: generator never reuses an old corpus.
GENERATOR_VERSION = 1
#: Written last into every generated root; its presence means "complete and synthetic".
MARKER_NAME = ".domadapt-synthetic.json"
GENERATOR_ID = "domadapt.corpora.synthetic"

CASIA_SPEAKERS = (("liuchanhg", "F"), ("wangzhe", "M"), ("zhaoquanyin", "F"), ("ZhaoZuoxiang", "M"))
CASIA_EMOTIONS = ("angry", "fear", "happy", "neutral", "sad", "surprise")
IEMOCAP_LABELS = ("neu", "hap", "exc", "ang", "sad", "fru", "xxx")
MODMA_SHEET_FILE = "subjects_information_audio_lanzhou_2015.xlsx"
MODMA_COLUMNS = (
    "subject id", "type", "age", "gender", "education（years）",
    "PHQ-9", "CTQ-SF", "LES", "SSRS", "GAD-7", "PSQI", None, None,
)

# Corpus codes in the seed keys (never Python's salted hash()).
_CASIA, _IEMOCAP, _MODMA, _CASIA_TARGET, _EMODB = 1, 2, 3, 4, 5
_CASIA_SR, _IEMOCAP_SR, _EMODB_SR = 16_000, 16_000, 16_000
_MODMA_SR, _MODMA_UP = 44_100, 3  # synthesised at 14.7 kHz: the channel is band-limited anyway
_MODMA_SYN_SR = _MODMA_SR // _MODMA_UP


def _write_wav(path: Path, y: np.ndarray, sr: int, subtype: str) -> None:
    """``y`` as a WAV file, encoded in memory and written in one call: soundfile writing to
    a path syncs every file to disk as it closes (libsndfile's ``sf_write_sync``), a wait
    about as long as synthesising the file (benchmarks/RESULTS.md, "Data preparation on
    every core"); the bytes are the same."""
    buffer = io.BytesIO()
    sf.write(buffer, y, sr, subtype=subtype, format="WAV")
    path.write_bytes(buffer.getvalue())


def _each_speaker(write: Callable[[Any, Any], int], shared: Any, speakers: list[Any], *,
                  jobs: int | None, bar: Progress) -> None:
    """``write(shared, speaker)`` (returning the files it wrote) for every speaker: in this
    process with ``jobs=1``, else in ``jobs`` worker processes (None: one per core).
    Every file has its own seed, so the bytes do not depend on where or in what order the
    speakers are written."""
    if jobs == 1:
        for speaker in speakers:
            bar.update(write(shared, speaker))
        return
    from domadapt.executors import preparation_executor  # it imports the registries

    with preparation_executor(jobs) as executor:
        for _, files in executor.map(write, shared, speakers):
            bar.update(files)


# --------------------------------------------------------------------------- CASIA


def _acted_utterance(
    rng: np.random.Generator, style: Expression, text: Text, voice: Voice, *, sr: int, floor_db: float
) -> np.ndarray:
    """One acted utterance of a speaker's emotion ``style``: the style scaled and perturbed
    for this utterance, synthesised, plus a white noise floor at ``floor_db`` dBFS."""
    expr = style * rng.uniform(0.7, 1.15) + Expression.noise(rng, 0.4)
    y = synthesize(rng, text, voice, expr, sr=sr)
    return y + 10 ** (floor_db / 20) * rng.standard_normal(len(y))


def write_casia(
    root: Path, *, seed: int = 0, files_per_class: int = 20, progress: bool = False, jobs: int | None = 1
) -> Path:
    """Write a CASIA-shaped corpus: ``<root>/<speaker>/<emotion>/<n>.wav``, 16 kHz 16-bit.

    ``root`` is the ``CASIA database`` folder itself. Four speakers (two female, two male,
    the real speaker folder names) x six emotions x ``files_per_class`` files numbered from
    201; file ``n`` has the same text for every speaker and emotion (CASIA is a parallel
    corpus). ``jobs``: worker processes writing the speakers (None: one per core); the
    bytes are the same with any. Returns ``root``.
    """
    root = Path(root)
    if files_per_class < 1:
        raise DomadaptError(f"files_per_class must be >= 1, got {files_per_class}")
    texts = [random_text(seeded_rng(seed, _CASIA, 0, j), 6, 11) for j in range(files_per_class)]
    n_files = len(CASIA_SPEAKERS) * len(CASIA_EMOTIONS) * files_per_class
    with Progress(n_files, "synthetic casia", unit="files", enabled=progress) as bar:
        _each_speaker(_write_casia_speaker, (root, seed, texts), list(enumerate(CASIA_SPEAKERS)), jobs=jobs, bar=bar)
    _write_marker(root, "casia", seed, {"files_per_class": files_per_class})
    return root


def _write_casia_speaker(shared: tuple[Path, int, list[Text]], speaker: tuple[int, tuple[str, str]]) -> int:
    """Every file of one CASIA speaker (``speaker``: its position and (name, gender))."""
    root, seed, texts = shared
    si, (name, gender) = speaker
    spk_rng = seeded_rng(seed, _CASIA, 10 + si)
    voice = random_voice(spk_rng, gender, level_db=-27.0)
    expressiveness = spk_rng.uniform(0.85, 1.15)
    for ei, emotion in enumerate(CASIA_EMOTIONS):
        style_rng = seeded_rng(seed, _CASIA, 10 + si, 100 + ei)
        style = EMOTION_PROFILES[emotion] * expressiveness + Expression.noise(style_rng, 0.35)
        folder = root / name / emotion
        folder.mkdir(parents=True, exist_ok=True)
        for j, text in enumerate(texts):
            y = _acted_utterance(  # a clean studio
                seeded_rng(seed, _CASIA, 10 + si, 100 + ei, j), style, text, voice, sr=_CASIA_SR, floor_db=-75.0
            )
            _write_wav(folder / f"{201 + j}.wav", limit_peak(y), _CASIA_SR, "PCM_16")
    return len(CASIA_EMOTIONS) * len(texts)


# --------------------------------------------------------------------------- EMODB


def write_emodb(root: Path, *, seed: int = 0, texts: int = 8, progress: bool = False, jobs: int | None = 1) -> Path:
    """Write an EMODB-shaped corpus: ``<root>/wav/<speaker><text><emotion>a.wav``, 16 kHz 16-bit.

    ``root`` is the folder holding ``wav/`` (as the release's download.zip unpacks). The ten
    real speaker codes with their genders (``emodb.SPEAKERS``), the first ``texts`` of the
    ten text codes (``a..`` short sentences, ``b..`` long ones) and the seven emotions named
    by their German letters; every speaker says every text once in every emotion (version
    ``a``): 10 x 7 x ``texts`` files (560 by default; the release has 535). Voices,
    expressiveness and noise are drawn as for CASIA, from EMODB's own seed keys. ``jobs``:
    as :func:`write_casia`'s. Returns ``root``.
    """
    from domadapt.corpora.emodb import CLASSES, SPEAKERS, TEXTS  # its codes, one place

    root = Path(root)
    if not 1 <= texts <= len(TEXTS):
        raise DomadaptError(f"texts must be 1..{len(TEXTS)}, got {texts}")
    sentences = [
        random_text(seeded_rng(seed, _EMODB, 0, j), *((5, 9) if code.startswith("a") else (9, 14)))
        for j, code in enumerate(TEXTS[:texts])
    ]
    (root / "wav").mkdir(parents=True, exist_ok=True)
    with Progress(len(SPEAKERS) * len(CLASSES) * texts, "synthetic emodb", unit="files", enabled=progress) as bar:
        _each_speaker(_write_emodb_speaker, (root, seed, sentences), list(enumerate(SPEAKERS.items())), jobs=jobs, bar=bar)
    _write_marker(root, "emodb", seed, {"texts": texts})
    return root


def _write_emodb_speaker(shared: tuple[Path, int, list[Text]], speaker: tuple[int, tuple[str, tuple[str, int]]]) -> int:
    """Every file of one EMODB speaker (``speaker``: its position and (code, (gender, age)))."""
    from domadapt.corpora.emodb import CLASSES, EMOTIONS, TEXTS

    root, seed, sentences = shared
    si, (code, (gender, _age)) = speaker
    letter = {label: c for c, label in EMOTIONS.items()}
    spk_rng = seeded_rng(seed, _EMODB, 10 + si)
    voice = random_voice(spk_rng, "F" if gender == "female" else "M", level_db=-26.0)
    expressiveness = spk_rng.uniform(0.85, 1.15)
    for ei, emotion in enumerate(CLASSES):
        style_rng = seeded_rng(seed, _EMODB, 10 + si, 100 + ei)
        style = EMOTION_PROFILES[emotion] * expressiveness + Expression.noise(style_rng, 0.35)
        for j, text in enumerate(TEXTS[: len(sentences)]):
            y = _acted_utterance(  # an anechoic room
                seeded_rng(seed, _EMODB, 10 + si, 100 + ei, j), style, sentences[j], voice, sr=_EMODB_SR, floor_db=-70.0
            )
            _write_wav(root / "wav" / f"{code}{text}{letter[emotion]}a.wav", limit_peak(y), _EMODB_SR, "PCM_16")
    return len(CLASSES) * len(sentences)


# --------------------------------------------------------------------------- IEMOCAP

_IEMOCAP_CATEGORY = {
    "neu": "Neutral", "hap": "Happiness", "exc": "Excited", "ang": "Anger",
    "sad": "Sadness", "fru": "Frustration",
}
_IEMOCAP_VAD = {
    "neu": (3.0, 2.5, 2.5), "hap": (4.0, 3.0, 3.0), "exc": (3.8, 3.8, 3.3),
    "ang": (1.8, 3.8, 3.8), "sad": (1.8, 2.2, 2.2), "fru": (2.0, 3.2, 3.2),
    "xxx": (2.5, 3.0, 3.0),
}
# Improvised, less extreme than CASIA's acted emotions; 'exc' is a more aroused 'hap';
# 'fru' mixes anger and sadness ('xxx', no agreement, mixes two random profiles).
_IMPROVISED = 0.625  # improvised emotions are milder than CASIA's acted ones
_IEMOCAP_PROFILES: dict[str, Expression] = {
    "neu": NEUTRAL,
    "hap": EMOTION_PROFILES["happy"] * (0.8 * _IMPROVISED),
    "exc": EMOTION_PROFILES["happy"] * _IMPROVISED + Expression(0.5, 0.0, 0.08, 1.5),
    "ang": EMOTION_PROFILES["angry"] * _IMPROVISED,
    "sad": EMOTION_PROFILES["sad"] * _IMPROVISED,
    "fru": (EMOTION_PROFILES["angry"] * 0.4 + EMOTION_PROFILES["sad"] * 0.25) * _IMPROVISED,
}
_IEMOCAP_BASE_P = {
    "neu": 0.26, "hap": 0.08, "exc": 0.12, "ang": 0.12, "sad": 0.14, "fru": 0.16, "xxx": 0.12,
}
_IEMOCAP_THEMES = (("ang", "fru"), ("sad",), ("hap", "exc"), ("neu",))
# AppleDouble header bytes: what a macOS copy leaves as '._name' next to every file.
_APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02\x00\x00\x00\x09"


def _iemocap_dialogs(session: int, count: int) -> list[str]:
    names = []
    for d in range(count):
        num = d // 2 + 1
        leader = "F" if (d // 2) % 2 == 0 else "M"
        kind = f"impro{num:02d}" if d % 2 == 0 else f"script{num:02d}_1"
        names.append(f"Ses{session:02d}{leader}_{kind}")
    return names


def _room_impulse(rng: np.random.Generator, sr: int) -> np.ndarray:
    t60 = rng.uniform(0.25, 0.45)
    t = np.arange(int(0.25 * sr)) / sr
    ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / t60)
    ir[: int(0.003 * sr)] = 0.0  # the first reflection arrives a few ms after the direct sound
    ir *= 10 ** (-8 / 20) / np.sqrt(np.sum(ir**2))  # reverberant energy 8 dB below direct
    ir[0] = 1.0
    return ir


def write_iemocap(
    root: Path,
    *,
    seed: int = 0,
    sessions: int = 5,
    utterances_per_speaker: int = 50,
    dialogs_per_session: int = 4,
    progress: bool = False,
    jobs: int | None = 1,
) -> Path:
    """Write an IEMOCAP-shaped corpus (16 kHz 16-bit) under ``root``; returns ``root``.

    ``<root>/Session{n}/sentences/wav/<dialog>/<utt>.wav`` and the labels in
    ``<root>/Session{n}/dialog/EmoEvaluation/<dialog>.txt`` in the release's format (a
    ``%`` header, blank-line separated blocks, one ``[start - end]\\tutt\\tlabel\\t[V, A, D]``
    line per utterance followed by ``C-E1:``/``A-E2:``-style evaluator lines). Each session
    has one female and one male speaker (``Ses01F_impro01_M000`` is the male of session 1)
    and ``utterances_per_speaker`` utterances each, spread over ``dialogs_per_session``
    dialogs. Labels: neu, hap, exc, ang, sad plus fru/xxx that a 4-class loader drops.
    Two macOS ``._*.wav`` junk files are left in wav folders, as in real copies. ``jobs``:
    worker processes writing the sessions (None: one per core); the bytes are the same
    with any.
    """
    root = Path(root)
    if sessions < 1 or utterances_per_speaker < 1 or dialogs_per_session < 1:
        raise DomadaptError("sessions, utterances_per_speaker and dialogs_per_session must be >= 1")
    shared = (root, seed, utterances_per_speaker, dialogs_per_session)
    with Progress(sessions * 2 * utterances_per_speaker, "synthetic iemocap", unit="files", enabled=progress) as bar:
        _each_speaker(_write_iemocap_session, shared, list(range(1, sessions + 1)), jobs=jobs, bar=bar)
    _write_marker(root, "iemocap", seed, {
        "sessions": sessions, "utterances_per_speaker": utterances_per_speaker,
        "dialogs_per_session": dialogs_per_session,
    })
    return root


def _write_iemocap_session(shared: tuple[Path, int, int, int], session: int) -> int:
    """Every file of one IEMOCAP session: its two speakers' utterances and label files."""
    root, seed, utterances_per_speaker, dialogs_per_session = shared
    labels = list(IEMOCAP_LABELS)  # 'xxx' last: it has no profile of its own
    junk_done = 0
    voices, styles = {}, {}
    for gi, gender in enumerate("FM"):
        spk_rng = seeded_rng(seed, _IEMOCAP, session, gi)
        voices[gender] = random_voice(spk_rng, gender, level_db=-28.0)
        expressiveness = spk_rng.uniform(0.6, 1.0)
        for li, label in enumerate(labels[:-1]):
            noise = Expression.noise(seeded_rng(seed, _IEMOCAP, session, gi, 100 + li), 0.4)
            styles[gender, label] = _IEMOCAP_PROFILES[label] * expressiveness + noise
    ir = _room_impulse(seeded_rng(seed, _IEMOCAP, session, 9), _IEMOCAP_SR)
    eval_dir = root / f"Session{session}" / "dialog" / "EmoEvaluation"
    eval_dir.mkdir(parents=True, exist_ok=True)
    dialogs = _iemocap_dialogs(session, dialogs_per_session)
    cuts = np.linspace(0, utterances_per_speaker, dialogs_per_session + 1).round()
    per_dialog = np.diff(cuts.astype(int))
    for di, dialog in enumerate(dialogs):
        d_rng = seeded_rng(seed, _IEMOCAP, session, 10 + di)
        p = np.array([_IEMOCAP_BASE_P[lab] for lab in labels])
        theme = _IEMOCAP_THEMES[int(d_rng.integers(len(_IEMOCAP_THEMES)))]
        p[[labels.index(lab) for lab in theme]] += 0.3 / len(theme)
        turns = d_rng.permutation(["F"] * per_dialog[di] + ["M"] * per_dialog[di])
        wav_dir = root / f"Session{session}" / "sentences" / "wav" / dialog
        wav_dir.mkdir(parents=True, exist_ok=True)
        lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        clock = d_rng.uniform(2.0, 8.0)
        count = {"F": 0, "M": 0}
        for ti, gender in enumerate(turns):
            utt = f"{dialog}_{gender}{count[gender]:03d}"
            count[gender] += 1
            rng = seeded_rng(seed, _IEMOCAP, session, 10 + di, 1000 + ti)
            label = labels[int(rng.choice(len(labels), p=p / p.sum()))]
            if label == "xxx":
                a, b = rng.choice(len(labels) - 1, size=2, replace=False)
                style = (styles[gender, labels[a]] + styles[gender, labels[b]]) * 0.5
            else:
                style = styles[gender, label]
            expr = style * rng.uniform(0.5, 1.1) + Expression.noise(rng, 0.5)
            y = synthesize(rng, random_text(rng, 5, 14), voices[gender], expr, sr=_IEMOCAP_SR)
            y = signal.fftconvolve(y, ir)[: len(y)]
            y = y + 10 ** (-58 / 20) * rng.standard_normal(len(y))
            _write_wav(wav_dir / f"{utt}.wav", limit_peak(y), _IEMOCAP_SR, "PCM_16")
            if session == 1 and junk_done < 2 and (ti == 0 or dialogs_per_session == 1):
                (wav_dir / f"._{utt}.wav").write_bytes(_APPLE_DOUBLE + rng.bytes(8))
                junk_done += 1
            start, end = clock, clock + len(y) / _IEMOCAP_SR
            clock = end + rng.uniform(0.2, 2.0)
            lines += _iemocap_block(rng, start, end, utt, label) + [""]
        (eval_dir / f"{dialog}.txt").write_text("\n".join(lines), encoding="utf-8")
    return 2 * utterances_per_speaker


def _iemocap_block(
    rng: np.random.Generator, start: float, end: float, utt: str, label: str
) -> list[str]:
    """One utterance's label line and its evaluator lines, in the release's format."""
    vad = np.clip(np.array(_IEMOCAP_VAD[label]) + rng.choice([-0.5, 0.0, 0.0, 0.5], 3), 1.0, 5.0)
    vad_text = ", ".join(f"{v:.4f}" for v in vad)
    lines = [f"[{start:.4f} - {end:.4f}]\t{utt}\t{label}\t[{vad_text}]"]
    names = list(_IEMOCAP_CATEGORY.values())
    for ev in ("C-E1", "C-E2", "C-E3"):
        cat = _IEMOCAP_CATEGORY[label] if label != "xxx" else names[int(rng.integers(len(names)))]
        lines.append(f"{ev}:\t{cat};\t()")
    for ev in ("A-E1", "A-E2"):
        v, a, d = (int(x) for x in np.clip(np.round(vad + rng.choice([-1, 0, 1], 3)), 1, 5))
        lines.append(f"{ev}:\tval {v}; act {a}; dom  {d};\t()")
    return lines


# --------------------------------------------------------------------------- MODMA


@dataclass(frozen=True)
class ModmaSubject:
    """One row of the synthetic MODMA sheet, plus the hidden severity behind the voice."""

    subject_id: str  # 8 digits, as the folder is named
    label: str  # "MDD" or "HC"
    age: int
    gender: str  # "F" or "M"
    education: int  # years
    phq9: int
    ctq_sf: int
    les: int
    ssrs: int
    gad7: int
    psqi: int
    severity: float  # position along DEPRESSION_DIRECTION; overlaps between the groups


def modma_subjects(*, seed: int = 0, n_mdd: int = 23, n_hc: int = 29) -> list[ModmaSubject]:
    """The subjects of the synthetic MODMA corpus, sorted by id.

    Ids look like the release's (``0201xxxx``/``0202xxxx``), but the label is assigned
    independently of the prefix: both prefixes hold both groups whenever there are at least
    two subjects of each group.
    """
    if n_mdd < 1 or n_hc < 1:
        raise DomadaptError(f"need at least one MDD and one HC subject, got {n_mdd}/{n_hc}")
    n = n_mdd + n_hc
    rng = seeded_rng(seed, _MODMA, 0)
    for _ in range(1000):
        prefixes = rng.choice(["0201", "0202"], size=n)
        numbers = rng.choice(np.arange(1, 10 * n + 100), size=n, replace=False)
        is_mdd = rng.permutation(np.arange(n) < n_mdd)
        groups = {(pre, bool(m)) for pre, m in zip(prefixes, is_mdd)}
        if min(n_mdd, n_hc) < 2 or len(groups) == 4:
            break
    subjects = []
    for i in range(n):
        r = seeded_rng(seed, _MODMA, 1, i)
        mdd = bool(is_mdd[i])
        severity = float(r.normal(1.3, 0.6) if mdd else r.normal(0.0, 0.5))
        gender = "F" if r.random() < (0.6 if mdd else 0.45) else "M"

        def score(mean: float, sd: float, lo: int, hi: int) -> int:
            return int(np.clip(round(r.normal(mean, sd)), lo, hi))

        subjects.append(ModmaSubject(
            subject_id=f"{prefixes[i]}{numbers[i]:04d}",
            label="MDD" if mdd else "HC",
            age=score(30, 9, 18, 55),
            gender=gender,
            education=score(13 if mdd else 15, 3, 6, 22),
            phq9=(score(12 + 4 * severity, 3, 10, 27) if mdd
                  else score(2.5 + 1.5 * severity, 2, 0, 6)),
            ctq_sf=score(50 if mdd else 38, 10, 25, 125),
            les=score(40 if mdd else 20, 18, 0, 150),
            ssrs=score(33 if mdd else 42, 6, 12, 66),
            gad7=score(12 if mdd else 2, 4 if mdd else 2, 0, 21),
            psqi=score(11 if mdd else 4, 3, 0, 21),
            severity=severity,
        ))
    return sorted(subjects, key=lambda s: s.subject_id)


#: MODMA task of each file number: 01-18 interview, 19 reading, 20-25 words, 26-29 picture.
MODMA_TASKS = {**{k: "interview" for k in range(1, 19)}, 19: "reading",
               **{k: "words" for k in range(20, 26)}, **{k: "picture" for k in range(26, 30)}}
_MODMA_TASK_EXPR = {
    "interview": Expression(pause_log=0.15),
    "reading": Expression(range_log=-0.1, rate_log=0.05, pause_log=-0.3),
    "words": NEUTRAL,
    "picture": Expression(pause_log=0.25),
}


@lru_cache(maxsize=None)
def _modma_band() -> np.ndarray:
    return signal.butter(4, [120, 5500], btype="band", fs=_MODMA_SYN_SR, output="sos")


def _modma_channel(
    rng: np.random.Generator, y: np.ndarray, *, hum_db: float, floor_db: float
) -> np.ndarray:
    """MODMA's recording chain on ``y`` synthesised at 14.7 kHz; float64 at 44.1 kHz.

    Band limit (120 Hz - 5.5 kHz), 50 Hz mains hum with its odd harmonics at ``hum_db``,
    a low-passed (pinkish) noise floor at ``floor_db`` (dB re full scale), upsampled x3.
    The level is the synthesised one (MODMA's voices are made at about -37 dBFS); the
    caller applies :func:`limit_peak` and writes 24-bit PCM.
    """
    y = signal.sosfilt(_modma_band(), y)
    t = np.arange(len(y)) / _MODMA_SYN_SR
    hum = sum(a * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
              for f, a in ((50, 1.0), (150, 0.5), (250, 0.25)))
    # Unit-variance low-passed (pinkish) noise floor.
    floor = signal.lfilter([np.sqrt(1 - 0.81)], [1.0, -0.9], rng.standard_normal(len(y)))
    y = y + 10 ** (hum_db / 20) * hum + 10 ** (floor_db / 20) * floor
    return signal.resample_poly(y, _MODMA_UP, 1)


def write_modma(
    root: Path,
    *,
    seed: int = 0,
    n_mdd: int = 23,
    n_hc: int = 29,
    duration_scale: float = 1.0,
    progress: bool = False,
    jobs: int | None = 1,
) -> Path:
    """Write a MODMA-shaped corpus (44.1 kHz, 24-bit, very quiet) under ``root``.

    ``<root>/<8-digit id>/01.wav ... 29.wav`` and ``<root>/subjects_information_audio_
    lanzhou_2015.xlsx`` (``Sheet1``, the release's columns; ids stored as numbers, so
    ``02010002`` is ``2010002``; two trailing columns with an empty header and a stray
    scratch tally, which pandas would call ``Unnamed: 11``/``Unnamed: 12``).
    ``duration_scale`` scales the number of syllables per file (tests use a small one).
    Reading (19) and the words (20-25) are the same texts for every subject. ``jobs``:
    worker processes writing the subjects (None: one per core); the bytes are the same
    with any. Returns ``root``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    subjects = modma_subjects(seed=seed, n_mdd=n_mdd, n_hc=n_hc)
    reading = make_text(seeded_rng(seed, _MODMA, 2, 0), max(1, round(14 * duration_scale)))
    words = {k: make_text(seeded_rng(seed, _MODMA, 2, k), 2) for k in range(20, 26)}
    shared = (root, seed, reading, words, duration_scale)
    with Progress(len(subjects) * len(MODMA_TASKS), "synthetic modma", unit="files", enabled=progress) as bar:
        _each_speaker(_write_modma_subject, shared, subjects, jobs=jobs, bar=bar)
    write_modma_sheet(root / MODMA_SHEET_FILE, subjects)
    params = {"n_mdd": n_mdd, "n_hc": n_hc, "duration_scale": duration_scale}
    _write_marker(root, "modma", seed, params)
    return root


def _write_modma_subject(shared: tuple[Path, int, Text, dict[int, Text], float], subject: ModmaSubject) -> int:
    """The 29 files of one MODMA subject."""
    root, seed, reading, words, duration_scale = shared
    i = int(subject.subject_id)  # seeds by id: independent of the order of the subjects
    s_rng = seeded_rng(seed, _MODMA, 3, i)
    voice = random_voice(s_rng, subject.gender, level_db=-37.0)
    personal = Expression.noise(s_rng, 0.8)
    expr_subject = DEPRESSION_DIRECTION * subject.severity + personal
    hum_db, floor_db = s_rng.uniform(-62, -50), s_rng.uniform(-64, -56)
    folder = root / subject.subject_id
    folder.mkdir(parents=True, exist_ok=True)
    for k, task in MODMA_TASKS.items():
        rng = seeded_rng(seed, _MODMA, 3, i, k)
        lead, tail = ((0.3, 0.5), (0.3, 0.5)) if task == "words" else ((0.08, 0.2), (0.1, 0.25))
        if task == "interview":
            text = random_text(rng, 4, 8, duration_scale)
        elif task == "picture":
            text = random_text(rng, 9, 13, duration_scale)
        else:
            text = reading if task == "reading" else words[k]
        expr = expr_subject + _MODMA_TASK_EXPR[task] + Expression.noise(rng, 0.45)
        y = synthesize(rng, text, voice, expr, sr=_MODMA_SYN_SR, lead_s=lead, tail_s=tail)
        y = _modma_channel(rng, y, hum_db=hum_db, floor_db=floor_db)
        _write_wav(folder / f"{k:02d}.wav", limit_peak(y), _MODMA_SR, "PCM_24")
    return len(MODMA_TASKS)


def write_modma_sheet(path: Path, subjects: list[ModmaSubject]) -> None:
    """The subject sheet as the release has it, saved byte-reproducibly."""
    import openpyxl  # only MODMA needs it

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Sheet1"
    sheet.append(list(MODMA_COLUMNS))
    for s in subjects:
        sheet.append([int(s.subject_id), s.label, s.age, s.gender, s.education, s.phq9,
                      s.ctq_sf, s.les, s.ssrs, s.gad7, s.psqi])
    # A stray scratch tally in the header-less columns, so they exist as columns.
    counts = {lab: sum(s.label == lab for s in subjects) for lab in ("MDD", "HC")}
    for row, (lab, c) in enumerate(counts.items(), start=2):
        sheet.cell(row=row, column=12, value=lab)
        sheet.cell(row=row, column=13, value=c)
    fixed = "2015-06-01T00:00:00Z"
    buffer = io.BytesIO()
    book.save(buffer)
    # openpyxl stamps the save time into docProps/core.xml and the zip entries; pin both.
    with zipfile.ZipFile(buffer) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)",
                              rb"\g<1>" + fixed.encode() + rb"\g<2>", data)
            entry = zipfile.ZipInfo(info.filename, date_time=(2015, 6, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(entry, data)


# --------------------------------------------------------------------------- CASIA target

#: The target side of the closed-set DA testbed ``casia -> casia_target``: other people
#: (four female, four male; none of CASIA's four) speaking the same six emotions.
CASIA_TARGET_SPEAKERS = (
    ("fangjing", "F"), ("gaoming", "M"), ("huangli", "F"), ("jiangtao", "M"),
    ("luoxin", "F"), ("songwei", "M"), ("tangyu", "F"), ("xuhao", "M"),
)


def casia_target_speakers(n: int) -> tuple[tuple[str, str], ...]:
    """The first ``n`` target speakers: :data:`CASIA_TARGET_SPEAKERS`, then ``target09``,
    ``target10``, ... alternating female and male (the powered testbed needs more voices)."""
    extra = tuple((f"target{i + 1:02d}", "FM"[i % 2]) for i in range(len(CASIA_TARGET_SPEAKERS), n))
    return (CASIA_TARGET_SPEAKERS + extra)[:n]


#: The whole recording 5 dB below MODMA's: acted emotions are up to ~11 dB louder than
#: neutral speech, so neutral speech then peaks at MODMA's ~0.02-0.09 and angry speech
#: stays under ~0.45, with MODMA's signal-to-noise ratios.
_TARGET_GAIN = 10 ** (-5.0 / 20)


def _target_voice(rng: np.random.Generator, gender: str) -> Voice:
    """A voice from *other* ranges than :func:`random_voice`'s: higher-pitched, shorter
    vocal tracts for the women, lower and longer for the men, wider spreads, slower, with
    more pitch range, breathier and duller; made at MODMA's level (the channel's hum and
    noise then sit as far below the voice as in MODMA)."""
    female = gender == "F"
    return Voice(
        f0_hz=float(np.clip(rng.normal(250, 30) if female else rng.normal(95, 12), 70, 360)),
        formant_scale=float(rng.normal(1.24 if female else 0.92, 0.05)),
        bw_scale=float(rng.uniform(1.0, 1.4)),
        range_st=float(np.clip(rng.normal(3.6, 0.7), 2.0, 6.0)),
        rate=float(np.clip(rng.normal(4.2, 0.5), 3.0, 5.6)),
        pause_log=float(rng.normal(0.1, 0.3)),
        jitter=float(rng.uniform(0.006, 0.016)),
        shimmer=float(rng.uniform(0.05, 0.1)),
        breath=float(rng.uniform(0.15, 0.35)),
        tilt=float(rng.uniform(0.45, 0.7)),
        level_db=float(-37.0 + rng.normal(0, 2.0)),
    )


def write_casia_target(
    root: Path, *, seed: int = 0, files_per_class: int = 20, n_speakers: int = 8, progress: bool = False,
    jobs: int | None = 1,
) -> Path:
    """Write the target side of the closed-set DA pair ``casia -> casia_target``.

    The CASIA layout (``<root>/<speaker>/<emotion>/<n>.wav``, files numbered from 201), so
    the ``casia`` loader reads it, and CASIA's six emotions with the same prosodic
    profiles (:data:`EMOTION_PROFILES`, the class structure carries over), but:

    * other voices: ``n_speakers`` of :func:`casia_target_speakers`, drawn by
      :func:`_target_voice` from other pitch / vocal-tract / voice-quality ranges than
      CASIA's, saying other texts;
    * MODMA's channel (:func:`_modma_channel`): synthesised at 14.7 kHz, band-limited to
      120 Hz - 5.5 kHz, 50 Hz hum and a noise floor (levels per speaker, as MODMA's per
      subject), very quiet, 44.1 kHz 24-bit.

    An unsupervised-DA testbed: a model trained on CASIA alone loses clearly here, one
    trained on these speakers does well (``benchmarks/synthetic_difficulty.py`` measures
    both). ``jobs``: as :func:`write_casia`'s. Returns ``root``.
    """
    root = Path(root)
    if files_per_class < 1:
        raise DomadaptError(f"files_per_class must be >= 1, got {files_per_class}")
    if n_speakers < 1:
        raise DomadaptError(f"n_speakers must be >= 1, got {n_speakers}")
    texts = [random_text(seeded_rng(seed, _CASIA_TARGET, 0, j), 6, 11) for j in range(files_per_class)]
    n_files = n_speakers * len(CASIA_EMOTIONS) * files_per_class
    speakers = list(enumerate(casia_target_speakers(n_speakers)))
    with Progress(n_files, "synthetic casia_target", unit="files", enabled=progress) as bar:
        _each_speaker(_write_casia_target_speaker, (root, seed, texts), speakers, jobs=jobs, bar=bar)
    _write_marker(root, "casia_target", seed,
                  {"files_per_class": files_per_class, "n_speakers": n_speakers})
    return root


def _write_casia_target_speaker(shared: tuple[Path, int, list[Text]], speaker: tuple[int, tuple[str, str]]) -> int:
    """Every file of one ``casia_target`` speaker (its position and (name, gender))."""
    root, seed, texts = shared
    si, (name, gender) = speaker
    spk_rng = seeded_rng(seed, _CASIA_TARGET, 10 + si)
    voice = _target_voice(spk_rng, gender)
    expressiveness = spk_rng.uniform(0.85, 1.15)
    hum_db, floor_db = spk_rng.uniform(-62, -50), spk_rng.uniform(-64, -56)
    for ei, emotion in enumerate(CASIA_EMOTIONS):
        style_rng = seeded_rng(seed, _CASIA_TARGET, 10 + si, 100 + ei)
        style = EMOTION_PROFILES[emotion] * expressiveness + Expression.noise(style_rng, 0.35)
        folder = root / name / emotion
        folder.mkdir(parents=True, exist_ok=True)
        for j, text in enumerate(texts):
            rng = seeded_rng(seed, _CASIA_TARGET, 10 + si, 100 + ei, j)
            expr = style * rng.uniform(0.7, 1.15) + Expression.noise(rng, 0.4)
            y = synthesize(rng, text, voice, expr, sr=_MODMA_SYN_SR)
            y = _modma_channel(rng, y, hum_db=hum_db, floor_db=floor_db) * _TARGET_GAIN
            _write_wav(folder / f"{201 + j}.wav", limit_peak(y), _MODMA_SR, "PCM_24")
    return len(CASIA_EMOTIONS) * len(texts)


# --------------------------------------------------------------------------- marker, cache


def _write_marker(root: Path, kind: str, seed: int, params: dict) -> None:
    """Written last: a root with a marker is complete."""
    marker = {"generator": GENERATOR_ID, "version": GENERATOR_VERSION, "kind": kind,
              "seed": seed, "params": params}
    (root / MARKER_NAME).write_text(json.dumps(marker, sort_keys=True) + "\n", encoding="utf-8")
