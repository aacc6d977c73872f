"""Synthetic stand-ins for CASIA, IEMOCAP and MODMA, written in the real on-disk layouts.

The real corpora are licensed and never shipped, so every recipe runs by default on these
stand-ins. They are *real WAV files in the real folder layouts*, read by the real loaders
(``casia.py``, ``iemocap.py``, ``modma.py``) unchanged, so the whole pipeline from disk to
report is exercised.

The signal is speech-like, not noise: a Rosenberg glottal pulse train (time-varying f0 with
jitter and shimmer, breathy aspiration, spectral tilt) through a cascade of formant
resonators whose vowel targets change per syllable, a syllable-rate amplitude envelope,
fricative onsets (band-passed noise) and pauses. Each utterance is built from a *text*
(syllables, vowels, onsets, stress, word and phrase boundaries) and a *prosody*; emotion
and depression live in the prosody only:

* an :class:`Expression` is an additive vector (pitch level and range, rate, energy,
  pauses, jitter/shimmer, breathiness, spectral tilt, final contour);
* CASIA/IEMOCAP emotions are fixed profiles of it, scaled by a per-speaker
  expressiveness and perturbed per speaker and per utterance;
* depression is one direction of it (lower, flatter pitch, slower, quieter, longer pauses,
  breathier) times a per-subject severity that overlaps between MDD and HC, plus a large
  personal style, so some MDD subjects sound healthy and some HC subjects do not.
  Sadness points the same way as depression: that shared direction is what makes
  emotion -> depression transfer meaningful.

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

import dataclasses
import io
import json
import os
import re
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
from scipy import signal

from domadapt.errors import DomadaptError
from domadapt.progress import Progress

#: Bump on any change to the generated audio or layout: the cache path carries it, so a new
#: generator never reuses an old corpus.
GENERATOR_VERSION = 1
CORPUS_KINDS = ("casia", "iemocap", "modma", "casia_target", "emodb", "casia_target_powered")
#: Folder name of each corpus root, as the real releases name them (casia_target: no
#: release; a name of its own next to CASIA's in the same cache folder).
ROOT_NAMES = {
    "casia": "CASIA database",
    "iemocap": "IEMOCAP_full_release",
    "modma": "audio_lanzhou_2015",
    "casia_target": "CASIA target database",
    "emodb": "emodb",
    "casia_target_powered": "CASIA target database (40 speakers)",
}
#: The loader (``domadapt.corpora.CORPORA`` name) that reads each kind.
LOADERS = {"casia": "casia", "iemocap": "iemocap", "modma": "modma", "casia_target": "casia", "emodb": "emodb",
           "casia_target_powered": "casia"}
#: Written last into every generated root; its presence means "complete and synthetic".
MARKER_NAME = ".domadapt-synthetic.json"
_GENERATOR_ID = "domadapt.corpora.synthetic"

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


def _rng(seed: int, *key: int) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``key`` (not on generation order)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in key)))


# --------------------------------------------------------------------------- prosody types


@dataclass(frozen=True)
class Voice:
    """Who speaks: the traits that stay fixed for a speaker across all utterances."""

    f0_hz: float  # base pitch of neutral speech
    formant_scale: float  # 1 / vocal-tract length, relative to the adult-male vowel table
    bw_scale: float  # formant bandwidth factor
    range_st: float  # pitch-accent excursion, semitones (std)
    rate: float  # syllables per second in neutral speech
    pause_log: float  # personal pausing tendency (log factor)
    jitter: float  # relative cycle-to-cycle f0 perturbation
    shimmer: float  # relative cycle-to-cycle amplitude perturbation
    breath: float  # aspiration noise share, 0..1
    tilt: float  # one-pole source low-pass coefficient (more = duller voice)
    level_db: float  # RMS of active speech in dBFS


@dataclass(frozen=True)
class Expression:
    """How one utterance departs from the speaker's neutral voice (additive; zero = neutral).

    Log fields multiply the voice's value by ``exp(field)``.
    """

    f0_st: float = 0.0  # pitch level shift, semitones
    range_log: float = 0.0  # pitch range
    rate_log: float = 0.0  # speaking rate
    energy_db: float = 0.0  # loudness
    pause_log: float = 0.0  # pause probability and length
    jitter_log: float = 0.0  # jitter and shimmer
    breath: float = 0.0  # aspiration share
    tilt: float = 0.0  # duller (+) or brighter (-) source
    contour_st: float = 0.0  # final pitch movement: rise (+) or fall (-)
    formant_log: float = 0.0  # all formants up (+, e.g. a smile) or down (-)
    articulation: float = 0.0  # vowel space expanded (+) or centralised towards schwa (-)

    def __add__(self, other: "Expression") -> "Expression":
        return Expression(*(a + b for a, b in zip(self._values(), other._values())))

    def __mul__(self, k: float) -> "Expression":
        return Expression(*(a * float(k) for a in self._values()))

    __rmul__ = __mul__

    def _values(self) -> tuple[float, ...]:
        return dataclasses.astuple(self)

    @staticmethod
    def noise(rng: np.random.Generator, scale: float) -> "Expression":
        """Random departure, ``scale`` times a typical size per field."""
        return Expression(*(scale * _EXPR_SD * rng.standard_normal(len(_EXPR_SD))))


# Typical size of each field, used for random perturbations.
_EXPR_SD = np.array([1.5, 0.25, 0.1, 2.5, 0.3, 0.25, 0.06, 0.06, 1.0, 0.02, 0.1])

_NEUTRAL = Expression()
#: Emotion profiles (acted, exaggerated as in CASIA; sized so that a plain MFCC baseline
#: lands at ~0.5-0.75 leave-one-speaker-out). Sadness shares the depression direction.
EMOTION_PROFILES: dict[str, Expression] = {
    "neutral": _NEUTRAL,
    "angry": Expression(6.4, 0.56, 0.19, 11.0, -0.64, 0.32, -0.1, -0.4, -3.2, 0.064, 0.24),
    "happy": Expression(5.6, 0.72, 0.13, 6.4, -0.4, 0.0, -0.03, -0.16, 1.6, 0.08, 0.16),
    "fear": Expression(8.8, -0.32, 0.32, 1.6, 0.32, 0.96, 0.19, 0.08, 2.4, 0.03, -0.08),
    "surprise": Expression(8.0, 0.96, -0.08, 6.4, -0.16, 0.16, 0.05, -0.16, 8.0, 0.05, 0.24),
    "sad": Expression(-4.0, -0.96, -0.4, -8.0, 0.96, 0.48, 0.24, 0.4, -2.4, -0.05, -0.48),
    # EMODB's two classes beyond CASIA's. Boredom: low, flat, slow and quiet, but without
    # sadness' breathiness and trembling; disgust: lower, slow, creaky, falling, duller.
    "boredom": Expression(-2.4, -0.8, -0.3, -5.0, 0.4, 0.0, 0.0, 0.2, -1.6, -0.03, -0.4),
    "disgust": Expression(-2.0, 0.3, -0.25, 2.0, 0.3, 0.64, 0.02, 0.24, -4.0, -0.04, -0.16),
}
#: Depression, per unit of severity: lower and flatter pitch, slower, quieter, longer pauses,
#: more jitter, breathier and duller, centralised vowels: the direction of "sad", at about
#: 0.4 of its (acted, exaggerated) size.
DEPRESSION_DIRECTION = Expression(-1.5, -0.4, -0.15, -3.0, 0.45, 0.2, 0.1, 0.15, -1.0, -0.02, -0.2)


def _random_voice(rng: np.random.Generator, gender: str, *, level_db: float) -> Voice:
    female = gender == "F"
    return Voice(
        f0_hz=float(np.clip(rng.normal(205, 25) if female else rng.normal(115, 17), 75, 300)),
        formant_scale=float(rng.normal(1.16 if female else 1.0, 0.04)),
        bw_scale=float(rng.uniform(0.85, 1.2)),
        range_st=float(np.clip(rng.normal(3.0, 0.6), 1.5, 5.0)),
        rate=float(np.clip(rng.normal(4.8, 0.45), 3.6, 6.2)),
        pause_log=float(rng.normal(0, 0.25)),
        jitter=float(rng.uniform(0.004, 0.012)),
        shimmer=float(rng.uniform(0.03, 0.08)),
        breath=float(rng.uniform(0.05, 0.25)),
        tilt=float(rng.uniform(0.3, 0.6)),
        level_db=float(level_db + rng.normal(0, 2.0)),
    )


# --------------------------------------------------------------------------- texts


@dataclass(frozen=True)
class Text:
    """What is said: per syllable a vowel, an onset, a stress and the boundary after it."""

    vowels: np.ndarray  # index into _VOWELS
    onsets: np.ndarray  # 0 voiced, 1 'sh'-like, 2 's'-like, 3 'h' (aspirated)
    stress: np.ndarray  # standard-normal prominence
    boundary: np.ndarray  # 0 none, 1 word, 2 phrase (after the syllable)


# Adult-male formant targets F1..F5 (Hz) of six vowels: a i u e o schwa.
_VOWELS = np.array([
    [730, 1090, 2440, 3400, 4500],
    [270, 2290, 3010, 3700, 4600],
    [300, 870, 2240, 3300, 4400],
    [530, 1840, 2480, 3500, 4500],
    [570, 840, 2410, 3300, 4400],
    [500, 1500, 2500, 3500, 4500],
], dtype=float)
_BANDWIDTHS = np.array([80, 100, 140, 200, 260], dtype=float)


def make_text(rng: np.random.Generator, n_syllables: int) -> Text:
    """A random text of ``n_syllables`` (at least one) syllables; it ends a phrase."""
    n = max(1, int(n_syllables))
    boundary = rng.choice(3, size=n, p=[0.5, 0.38, 0.12])
    boundary[-1] = 2
    return Text(
        vowels=rng.integers(0, len(_VOWELS), n),
        onsets=rng.choice(4, size=n, p=[0.55, 0.15, 0.15, 0.15]),
        stress=rng.standard_normal(n),
        boundary=boundary,
    )


def _random_text(rng: np.random.Generator, low: int, high: int, scale: float = 1.0) -> Text:
    """A text of ``low``..``high`` syllables (inclusive), the count times ``scale``."""
    return make_text(rng, max(1, round(int(rng.integers(low, high + 1)) * scale)))


# --------------------------------------------------------------------------- synthesis


@lru_cache(maxsize=None)
def _fricative_filters(sr: int) -> tuple[np.ndarray, np.ndarray]:
    nyq = sr / 2
    sh = signal.butter(2, [1800 / nyq, min(4500, 0.8 * nyq) / nyq], btype="band", output="sos")
    s = signal.butter(2, [3800 / nyq, min(7000, 0.9 * nyq) / nyq], btype="band", output="sos")
    return sh, s


def _resonator_sos(freqs: np.ndarray, bws: np.ndarray, sr: int) -> np.ndarray:
    """Cascade of 2-pole resonators (unity gain at DC, as in a Klatt cascade)."""
    r = np.exp(-np.pi * bws / sr)
    a1 = -2.0 * r * np.cos(2.0 * np.pi * freqs / sr)
    a2 = r * r
    sos = np.zeros((len(freqs), 6))
    sos[:, 0] = 1.0 + a1 + a2
    sos[:, 3] = 1.0
    sos[:, 4] = a1
    sos[:, 5] = a2
    return sos


def _time_varying_filter(
    x: np.ndarray, edges: list[int], filters: list[np.ndarray], sr: int
) -> np.ndarray:
    """Filter ``x`` with ``filters[k]`` from ``edges[k]`` on, cross-fading at the edges.

    Switching an IIR filter's coefficients while carrying its state makes clicks, so each
    segment is filtered from zero state with a 30 ms warm-up (the resonators ring out in a
    few ms) and neighbouring segments are cross-faded over 10 ms. Segments shorter than
    the cross-fade are merged into the previous one.
    """
    n = len(x)
    half, warm = max(1, int(0.005 * sr)), int(0.03 * sr)
    starts, sos = [0], [filters[0]]
    for a, f in zip(edges[1:], filters[1:]):
        if a - starts[-1] >= 2 * half and n - a >= 2 * half:
            starts.append(a)
            sos.append(f)
    bounds = starts + [n]
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(2 * half) + 0.5) / (2 * half))
    out = np.zeros(n)
    last = len(sos) - 1
    for k in range(len(sos)):
        lo = bounds[k] - half if k > 0 else 0
        hi = bounds[k + 1] + half if k < last else n
        first = max(0, lo - warm)
        y = signal.sosfilt(sos[k], x[first:hi])[lo - first:]
        if k > 0:
            y[: 2 * half] *= ramp
        if k < last:
            y[-2 * half:] *= ramp[::-1]
        out[lo:hi] += y
    return out


def synthesize(
    rng: np.random.Generator,
    text: Text,
    voice: Voice,
    expression: Expression,
    *,
    sr: int,
    lead_s: tuple[float, float] = (0.08, 0.2),
    tail_s: tuple[float, float] = (0.1, 0.25),
) -> np.ndarray:
    """One utterance of ``text`` spoken by ``voice`` with ``expression``, float64 at ``sr``.

    Scaled so that the RMS of its voiced part is ``voice.level_db + expression.energy_db``
    dBFS; no channel (noise, band limit) is applied here.
    """
    e = expression
    n_syl = len(text.vowels)
    rate = voice.rate * np.exp(e.rate_log)
    pause = np.exp(voice.pause_log + e.pause_log)
    range_st = voice.range_st * np.exp(e.range_log)
    jitter = voice.jitter * np.exp(e.jitter_log)
    shimmer = voice.shimmer * np.exp(e.jitter_log)
    breath = float(np.clip(voice.breath + e.breath, 0.0, 0.9))
    tilt = float(np.clip(voice.tilt + e.tilt, 0.0, 0.93))
    # Louder speech closes the glottis faster (tenser); breathy speech keeps it open longer.
    open_q = float(np.clip(0.58 + 0.3 * breath - 0.012 * e.energy_db, 0.35, 0.85))

    # Timing: syllables, onsets and pauses, from the text and the prosody.
    final = text.boundary == 2
    syl = (1.0 / rate) * np.exp(0.15 * text.stress + 0.12 * rng.standard_normal(n_syl))
    syl = np.maximum(syl * np.where(final, 1.3, 1.0), 0.08)
    p_word = np.where(text.boundary == 1, min(0.06 * pause**2, 0.8), 0.0)
    p_pause = np.where(final, min(0.55 * pause, 1.0), p_word)
    pause_len = np.where(final, 0.18, 0.1) * pause * np.exp(0.35 * rng.standard_normal(n_syl))
    pauses = np.where(rng.random(n_syl) < p_pause, pause_len, 0.0)
    pauses[-1] = 0.0
    lead = rng.uniform(*lead_s)
    starts = lead + np.concatenate([[0.0], np.cumsum(syl + pauses)[:-1]])
    total = starts[-1] + syl[-1] + rng.uniform(*tail_s)
    n = int(np.ceil(total * sr))
    t = np.arange(n) / sr
    onset_len = np.where(text.onsets > 0, np.minimum(0.3 * syl, 0.09), 0.0)

    # Envelopes: voiced nuclei (syllable-rate amplitude) and unvoiced onsets.
    venv = np.zeros(n)
    fenv = np.zeros((3, n))  # sh, s, h
    amp = np.exp(0.25 * text.stress)
    i0 = np.round(starts * sr).astype(int)
    iv = np.round((starts + onset_len) * sr).astype(int)
    i1 = np.minimum(np.round((starts + syl) * sr).astype(int), n)
    for k in range(n_syl):
        length = i1[k] - iv[k]
        if length > 0:
            venv[iv[k]:i1[k]] = amp[k] * np.sin(np.pi * (np.arange(length) + 0.5) / length) ** 0.6
        if text.onsets[k] and iv[k] > i0[k]:
            length = iv[k] - i0[k]
            shape = np.sin(np.pi * (np.arange(length) + 0.5) / length)
            fenv[text.onsets[k] - 1, i0[k]:iv[k]] = shape

    # Pitch: accents on syllables, declination, final contour, slow wander, in semitones.
    centres = starts + onset_len + 0.5 * (syl - onset_len)
    knots = range_st * (0.6 * text.stress + 0.5 * rng.standard_normal(n_syl))
    knots = knots - 0.4 * range_st * centres / total
    knots[-1] += e.contour_st
    if n_syl > 1:
        knots[-2] += e.contour_st / 3
    st = np.interp(t, centres, knots)
    wander_t = np.linspace(0.0, total, int(total * 8) + 2)
    st += np.interp(t, wander_t, 0.35 * rng.standard_normal(len(wander_t)))
    f0 = np.clip(voice.f0_hz * 2.0 ** ((e.f0_st + st) / 12.0), 50.0, 600.0)

    # Glottal source: per-cycle jitter and shimmer via the phase, Rosenberg pulse shape.
    cycle0 = np.floor(np.cumsum(f0) / sr).astype(int)
    f0 = f0 * (1.0 + jitter * rng.standard_normal(cycle0[-1] + 2))[cycle0]
    phase = np.cumsum(f0) / sr
    cycle = np.floor(phase).astype(int)
    tau = phase - cycle
    tp, tn = 0.7 * open_q, 0.3 * open_q
    pulse = np.where(
        tau < tp, 0.5 * (1.0 - np.cos(np.pi * tau / tp)),
        np.where(tau < tp + tn, np.cos(0.5 * np.pi * (tau - tp) / tn), 0.0),
    )
    source = np.diff(pulse, prepend=0.0)  # lip radiation
    source *= 1.0 + shimmer * rng.standard_normal(cycle[-1] + 2)[cycle]
    source = signal.lfilter([1.0 - tilt], [1.0, -tilt], source)
    voiced = venv > 0.05  # never empty: every syllable has a voiced nucleus
    source /= np.sqrt(np.mean(source[voiced] ** 2)) + 1e-12
    noise = rng.standard_normal((2, n))
    aspiration = noise[0] * (0.4 + pulse)
    excitation = venv * ((1.0 - 0.5 * breath) * source + 1.2 * breath * aspiration)
    excitation += 0.35 * fenv[2] * noise[1]  # 'h' onsets go through the vocal tract

    # Vocal tract: formants per segment (a glide into each vowel, then its target).
    vowels = _VOWELS[text.vowels]
    vowels = vowels + np.clip(e.articulation, -0.7, 0.5) * (vowels - _VOWELS[5])
    targets = vowels * (voice.formant_scale * np.exp(e.formant_log))
    n_form = int(np.sum(targets.max(axis=0) < 0.45 * sr))  # only formants below Nyquist
    targets = targets[:, :n_form]
    glides = 0.5 * (np.vstack([targets[:1], targets[:-1]]) + targets)
    bws = _BANDWIDTHS[:n_form] * voice.bw_scale
    bws = bws + np.r_[120.0 * breath, np.zeros(n_form - 1)]  # breathy: wider F1
    edges = [0]
    formants = [targets[0]]
    for k in range(n_syl):
        glide_end = int(round((starts[k] + onset_len[k] + 0.3 * (syl[k] - onset_len[k])) * sr))
        edges += [i0[k], min(glide_end, n)]
        formants += [glides[k], targets[k]]
    filters = [_resonator_sos(f, bws, sr) for f in formants]
    out = _time_varying_filter(excitation, edges, filters, sr)

    # Fricatives (unvoiced onsets), about 12 dB below the vowels.
    rms_v = np.sqrt(np.mean(out[voiced] ** 2))
    sh_sos, s_sos = _fricative_filters(sr)
    fric = signal.sosfilt(sh_sos, fenv[0] * noise[1]) + signal.sosfilt(s_sos, fenv[1] * noise[1])
    active_f = (fenv[0] + fenv[1]) > 0.3
    if active_f.any():
        out += fric * (0.25 * rms_v / (np.sqrt(np.mean(fric[active_f] ** 2)) + 1e-12))

    level = 10.0 ** ((voice.level_db + e.energy_db) / 20.0)
    return out * (level / (rms_v + 1e-12))


def _limit(y: np.ndarray, peak: float = 0.95) -> np.ndarray:
    """Scale down (never up) so that the peak stays below ``peak``: no clipping."""
    m = float(np.max(np.abs(y))) if y.size else 0.0
    return y * (peak / m) if m > peak else y


# --------------------------------------------------------------------------- CASIA


def _acted_utterance(
    rng: np.random.Generator, style: Expression, text: Text, voice: Voice, *, sr: int, floor_db: float
) -> np.ndarray:
    """One acted utterance of a speaker's emotion ``style``: the style scaled and perturbed
    for this utterance, synthesised, plus a white noise floor at ``floor_db`` dBFS."""
    expr = style * rng.uniform(0.7, 1.15) + Expression.noise(rng, 0.4)
    y = synthesize(rng, text, voice, expr, sr=sr)
    return y + 10 ** (floor_db / 20) * rng.standard_normal(len(y))


def write_casia(root: Path, *, seed: int = 0, files_per_class: int = 20, progress: bool = False) -> Path:
    """Write a CASIA-shaped corpus: ``<root>/<speaker>/<emotion>/<n>.wav``, 16 kHz 16-bit.

    ``root`` is the ``CASIA database`` folder itself. Four speakers (two female, two male,
    the real speaker folder names) x six emotions x ``files_per_class`` files numbered from
    201; file ``n`` has the same text for every speaker and emotion (CASIA is a parallel
    corpus). Returns ``root``.
    """
    root = Path(root)
    if files_per_class < 1:
        raise DomadaptError(f"files_per_class must be >= 1, got {files_per_class}")
    texts = [_random_text(_rng(seed, _CASIA, 0, j), 6, 11) for j in range(files_per_class)]
    n_files = len(CASIA_SPEAKERS) * len(CASIA_EMOTIONS) * files_per_class
    bar = Progress(n_files, "synthetic casia", unit="files", enabled=progress)
    for si, (speaker, gender) in enumerate(CASIA_SPEAKERS):
        spk_rng = _rng(seed, _CASIA, 10 + si)
        voice = _random_voice(spk_rng, gender, level_db=-27.0)
        expressiveness = spk_rng.uniform(0.85, 1.15)
        for ei, emotion in enumerate(CASIA_EMOTIONS):
            style_rng = _rng(seed, _CASIA, 10 + si, 100 + ei)
            style = EMOTION_PROFILES[emotion] * expressiveness + Expression.noise(style_rng, 0.35)
            folder = root / speaker / emotion
            folder.mkdir(parents=True, exist_ok=True)
            for j in range(files_per_class):
                y = _acted_utterance(  # a clean studio
                    _rng(seed, _CASIA, 10 + si, 100 + ei, j), style, texts[j], voice, sr=_CASIA_SR, floor_db=-75.0
                )
                sf.write(folder / f"{201 + j}.wav", _limit(y), _CASIA_SR, subtype="PCM_16")
                bar.update()
    bar.close()
    _write_marker(root, "casia", seed, {"files_per_class": files_per_class})
    return root


# --------------------------------------------------------------------------- EMODB


def write_emodb(root: Path, *, seed: int = 0, texts: int = 8, progress: bool = False) -> Path:
    """Write an EMODB-shaped corpus: ``<root>/wav/<speaker><text><emotion>a.wav``, 16 kHz 16-bit.

    ``root`` is the folder holding ``wav/`` (as the release's download.zip unpacks). The ten
    real speaker codes with their genders (``emodb.SPEAKERS``), the first ``texts`` of the
    ten text codes (``a..`` short sentences, ``b..`` long ones) and the seven emotions named
    by their German letters; every speaker says every text once in every emotion (version
    ``a``): 10 x 7 x ``texts`` files (560 by default; the release has 535). Voices,
    expressiveness and noise are drawn as for CASIA, from EMODB's own seed keys. Returns
    ``root``.
    """
    from domadapt.corpora.emodb import CLASSES, EMOTIONS, SPEAKERS, TEXTS  # its codes, one place

    root = Path(root)
    if not 1 <= texts <= len(TEXTS):
        raise DomadaptError(f"texts must be 1..{len(TEXTS)}, got {texts}")
    letter = {label: code for code, label in EMOTIONS.items()}
    sentences = [
        _random_text(_rng(seed, _EMODB, 0, j), *((5, 9) if code.startswith("a") else (9, 14)))
        for j, code in enumerate(TEXTS[:texts])
    ]
    folder = root / "wav"
    folder.mkdir(parents=True, exist_ok=True)
    bar = Progress(len(SPEAKERS) * len(CLASSES) * texts, "synthetic emodb", unit="files", enabled=progress)
    for si, (speaker, (gender, _age)) in enumerate(SPEAKERS.items()):
        spk_rng = _rng(seed, _EMODB, 10 + si)
        voice = _random_voice(spk_rng, "F" if gender == "female" else "M", level_db=-26.0)
        expressiveness = spk_rng.uniform(0.85, 1.15)
        for ei, emotion in enumerate(CLASSES):
            style_rng = _rng(seed, _EMODB, 10 + si, 100 + ei)
            style = EMOTION_PROFILES[emotion] * expressiveness + Expression.noise(style_rng, 0.35)
            for j, text in enumerate(TEXTS[:texts]):
                y = _acted_utterance(  # an anechoic room
                    _rng(seed, _EMODB, 10 + si, 100 + ei, j), style, sentences[j], voice, sr=_EMODB_SR, floor_db=-70.0
                )
                sf.write(folder / f"{speaker}{text}{letter[emotion]}a.wav", _limit(y), _EMODB_SR, subtype="PCM_16")
                bar.update()
    bar.close()
    _write_marker(root, "emodb", seed, {"texts": texts})
    return root


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
    "neu": _NEUTRAL,
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
) -> Path:
    """Write an IEMOCAP-shaped corpus (16 kHz 16-bit) under ``root``; returns ``root``.

    ``<root>/Session{n}/sentences/wav/<dialog>/<utt>.wav`` and the labels in
    ``<root>/Session{n}/dialog/EmoEvaluation/<dialog>.txt`` in the release's format (a
    ``%`` header, blank-line separated blocks, one ``[start - end]\\tutt\\tlabel\\t[V, A, D]``
    line per utterance followed by ``C-E1:``/``A-E2:``-style evaluator lines). Each session
    has one female and one male speaker (``Ses01F_impro01_M000`` is the male of session 1)
    and ``utterances_per_speaker`` utterances each, spread over ``dialogs_per_session``
    dialogs. Labels: neu, hap, exc, ang, sad plus fru/xxx that a 4-class loader drops.
    Two macOS ``._*.wav`` junk files are left in wav folders, as in real copies.
    """
    root = Path(root)
    if sessions < 1 or utterances_per_speaker < 1 or dialogs_per_session < 1:
        raise DomadaptError("sessions, utterances_per_speaker and dialogs_per_session must be >= 1")
    labels = list(IEMOCAP_LABELS)  # 'xxx' last: it has no profile of its own
    junk_done = 0
    bar = Progress(sessions * 2 * utterances_per_speaker, "synthetic iemocap", unit="files", enabled=progress)
    for session in range(1, sessions + 1):
        voices, styles = {}, {}
        for gi, gender in enumerate("FM"):
            spk_rng = _rng(seed, _IEMOCAP, session, gi)
            voices[gender] = _random_voice(spk_rng, gender, level_db=-28.0)
            expressiveness = spk_rng.uniform(0.6, 1.0)
            for li, label in enumerate(labels[:-1]):
                noise = Expression.noise(_rng(seed, _IEMOCAP, session, gi, 100 + li), 0.4)
                styles[gender, label] = _IEMOCAP_PROFILES[label] * expressiveness + noise
        ir = _room_impulse(_rng(seed, _IEMOCAP, session, 9), _IEMOCAP_SR)
        eval_dir = root / f"Session{session}" / "dialog" / "EmoEvaluation"
        eval_dir.mkdir(parents=True, exist_ok=True)
        dialogs = _iemocap_dialogs(session, dialogs_per_session)
        cuts = np.linspace(0, utterances_per_speaker, dialogs_per_session + 1).round()
        per_dialog = np.diff(cuts.astype(int))
        for di, dialog in enumerate(dialogs):
            d_rng = _rng(seed, _IEMOCAP, session, 10 + di)
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
                rng = _rng(seed, _IEMOCAP, session, 10 + di, 1000 + ti)
                label = labels[int(rng.choice(len(labels), p=p / p.sum()))]
                if label == "xxx":
                    a, b = rng.choice(len(labels) - 1, size=2, replace=False)
                    style = (styles[gender, labels[a]] + styles[gender, labels[b]]) * 0.5
                else:
                    style = styles[gender, label]
                expr = style * rng.uniform(0.5, 1.1) + Expression.noise(rng, 0.5)
                y = synthesize(rng, _random_text(rng, 5, 14), voices[gender], expr, sr=_IEMOCAP_SR)
                y = signal.fftconvolve(y, ir)[: len(y)]
                y = y + 10 ** (-58 / 20) * rng.standard_normal(len(y))
                sf.write(wav_dir / f"{utt}.wav", _limit(y), _IEMOCAP_SR, subtype="PCM_16")
                bar.update()
                if session == 1 and junk_done < 2 and (ti == 0 or dialogs_per_session == 1):
                    (wav_dir / f"._{utt}.wav").write_bytes(_APPLE_DOUBLE + rng.bytes(8))
                    junk_done += 1
                start, end = clock, clock + len(y) / _IEMOCAP_SR
                clock = end + rng.uniform(0.2, 2.0)
                lines += _iemocap_block(rng, start, end, utt, label) + [""]
            (eval_dir / f"{dialog}.txt").write_text("\n".join(lines), encoding="utf-8")
    bar.close()
    _write_marker(root, "iemocap", seed, {
        "sessions": sessions, "utterances_per_speaker": utterances_per_speaker,
        "dialogs_per_session": dialogs_per_session,
    })
    return root


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
    rng = _rng(seed, _MODMA, 0)
    for _ in range(1000):
        prefixes = rng.choice(["0201", "0202"], size=n)
        numbers = rng.choice(np.arange(1, 10 * n + 100), size=n, replace=False)
        is_mdd = rng.permutation(np.arange(n) < n_mdd)
        groups = {(pre, bool(m)) for pre, m in zip(prefixes, is_mdd)}
        if min(n_mdd, n_hc) < 2 or len(groups) == 4:
            break
    subjects = []
    for i in range(n):
        r = _rng(seed, _MODMA, 1, i)
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
    "words": _NEUTRAL,
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
    caller applies :func:`_limit` and writes 24-bit PCM.
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
) -> Path:
    """Write a MODMA-shaped corpus (44.1 kHz, 24-bit, very quiet) under ``root``.

    ``<root>/<8-digit id>/01.wav ... 29.wav`` and ``<root>/subjects_information_audio_
    lanzhou_2015.xlsx`` (``Sheet1``, the release's columns; ids stored as numbers, so
    ``02010002`` is ``2010002``; two trailing columns with an empty header and a stray
    scratch tally, which pandas would call ``Unnamed: 11``/``Unnamed: 12``).
    ``duration_scale`` scales the number of syllables per file (tests use a small one).
    Reading (19) and the words (20-25) are the same texts for every subject.
    Returns ``root``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    subjects = modma_subjects(seed=seed, n_mdd=n_mdd, n_hc=n_hc)
    reading = make_text(_rng(seed, _MODMA, 2, 0), max(1, round(14 * duration_scale)))
    words = {k: make_text(_rng(seed, _MODMA, 2, k), 2) for k in range(20, 26)}
    bar = Progress(len(subjects) * len(MODMA_TASKS), "synthetic modma", unit="files", enabled=progress)
    for subject in subjects:
        i = int(subject.subject_id)  # seeds by id: independent of the order of the subjects
        s_rng = _rng(seed, _MODMA, 3, i)
        voice = _random_voice(s_rng, subject.gender, level_db=-37.0)
        personal = Expression.noise(s_rng, 0.8)
        expr_subject = DEPRESSION_DIRECTION * subject.severity + personal
        hum_db, floor_db = s_rng.uniform(-62, -50), s_rng.uniform(-64, -56)
        folder = root / subject.subject_id
        folder.mkdir(parents=True, exist_ok=True)
        for k, task in MODMA_TASKS.items():
            rng = _rng(seed, _MODMA, 3, i, k)
            lead, tail = ((0.3, 0.5), (0.3, 0.5)) if task == "words" else ((0.08, 0.2), (0.1, 0.25))
            if task == "interview":
                text = _random_text(rng, 4, 8, duration_scale)
            elif task == "picture":
                text = _random_text(rng, 9, 13, duration_scale)
            else:
                text = reading if task == "reading" else words[k]
            expr = expr_subject + _MODMA_TASK_EXPR[task] + Expression.noise(rng, 0.45)
            y = synthesize(rng, text, voice, expr, sr=_MODMA_SYN_SR, lead_s=lead, tail_s=tail)
            y = _modma_channel(rng, y, hum_db=hum_db, floor_db=floor_db)
            sf.write(folder / f"{k:02d}.wav", _limit(y), _MODMA_SR, subtype="PCM_24")
            bar.update()
    bar.close()
    _write_modma_sheet(root / MODMA_SHEET_FILE, subjects)
    params = {"n_mdd": n_mdd, "n_hc": n_hc, "duration_scale": duration_scale}
    _write_marker(root, "modma", seed, params)
    return root


def _write_modma_sheet(path: Path, subjects: list[ModmaSubject]) -> None:
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
    ``target10``, ... alternating female and male (the powered testbed needs more voices
    than the eight named ones)."""
    extra = tuple((f"target{i + 1:02d}", "FM"[i % 2]) for i in range(len(CASIA_TARGET_SPEAKERS), n))
    return (CASIA_TARGET_SPEAKERS + extra)[:n]


#: The whole recording 5 dB below MODMA's: acted emotions are up to ~11 dB louder than
#: neutral speech, so neutral speech then peaks at MODMA's ~0.02-0.09 and angry speech
#: stays under ~0.45, with MODMA's signal-to-noise ratios.
_TARGET_GAIN = 10 ** (-5.0 / 20)


def _target_voice(rng: np.random.Generator, gender: str) -> Voice:
    """A voice from *other* ranges than :func:`_random_voice`'s: higher-pitched, shorter
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
    root: Path, *, seed: int = 0, files_per_class: int = 20, n_speakers: int = 8, progress: bool = False
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
    both). Returns ``root``.
    """
    root = Path(root)
    if files_per_class < 1:
        raise DomadaptError(f"files_per_class must be >= 1, got {files_per_class}")
    if n_speakers < 1:
        raise DomadaptError(f"n_speakers must be >= 1, got {n_speakers}")
    texts = [_random_text(_rng(seed, _CASIA_TARGET, 0, j), 6, 11) for j in range(files_per_class)]
    n_files = n_speakers * len(CASIA_EMOTIONS) * files_per_class
    bar = Progress(n_files, "synthetic casia_target", unit="files", enabled=progress)
    for si, (speaker, gender) in enumerate(casia_target_speakers(n_speakers)):
        spk_rng = _rng(seed, _CASIA_TARGET, 10 + si)
        voice = _target_voice(spk_rng, gender)
        expressiveness = spk_rng.uniform(0.85, 1.15)
        hum_db, floor_db = spk_rng.uniform(-62, -50), spk_rng.uniform(-64, -56)
        for ei, emotion in enumerate(CASIA_EMOTIONS):
            style_rng = _rng(seed, _CASIA_TARGET, 10 + si, 100 + ei)
            style = EMOTION_PROFILES[emotion] * expressiveness + Expression.noise(style_rng, 0.35)
            folder = root / speaker / emotion
            folder.mkdir(parents=True, exist_ok=True)
            for j in range(files_per_class):
                rng = _rng(seed, _CASIA_TARGET, 10 + si, 100 + ei, j)
                expr = style * rng.uniform(0.7, 1.15) + Expression.noise(rng, 0.4)
                y = synthesize(rng, texts[j], voice, expr, sr=_MODMA_SYN_SR)
                y = _modma_channel(rng, y, hum_db=hum_db, floor_db=floor_db) * _TARGET_GAIN
                sf.write(folder / f"{201 + j}.wav", _limit(y), _MODMA_SR, subtype="PCM_24")
                bar.update()
    bar.close()
    _write_marker(root, "casia_target", seed,
                  {"files_per_class": files_per_class, "n_speakers": n_speakers})
    return root


def write_casia_target_powered(root: Path, *, seed: int = 0, progress: bool = False) -> Path:
    """:func:`write_casia_target` with 40 speakers x 5 files per emotion: the target of the
    powered testbed (``recipes/da_testbed_powered.toml``). The first eight speakers are
    ``casia_target``'s voices; files 201-205 of each are the same as theirs."""
    return write_casia_target(root, seed=seed, files_per_class=5, n_speakers=40, progress=progress)


# --------------------------------------------------------------------------- marker, cache


def _write_marker(root: Path, kind: str, seed: int, params: dict) -> None:
    """Written last: a root with a marker is complete."""
    marker = {"generator": _GENERATOR_ID, "version": GENERATOR_VERSION, "kind": kind,
              "seed": seed, "params": params}
    (root / MARKER_NAME).write_text(json.dumps(marker, sort_keys=True) + "\n", encoding="utf-8")


def is_synthetic_root(root: Path) -> bool:
    """True if ``root`` is a complete corpus written by this generator (its marker file)."""
    try:
        marker = json.loads((Path(root) / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("generator") == _GENERATOR_ID


_WRITERS: dict[str, Callable[..., Path]] = {
    "casia": write_casia,
    "iemocap": write_iemocap,
    "modma": write_modma,
    "casia_target": write_casia_target,
    "emodb": write_emodb,
    "casia_target_powered": write_casia_target_powered,
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


def synthetic_root(kind: str, *, seed: int = 0, cache_dir: Path | None = None, progress: bool = False) -> Path:
    """The root of the cached synthetic corpus ``kind`` (one of CORPUS_KINDS), built if missing.

    Read it with the loader ``LOADERS[kind]`` (``casia_target`` is read by ``casia``).

    Lives at ``<cache>/synthetic/v<GENERATOR_VERSION>-seed<seed>/<real root name>``, e.g.
    ``.../v1-seed0/CASIA database``; ``<cache>`` is ``cache_dir`` or :func:`default_cache_dir`.
    The corpus is written into a temporary sibling and renamed into place when complete, so
    a half-written corpus is never returned; when two processes race, the first rename wins
    and the other discards its copy. Temporary folders left by a crash are ignored (and
    removed once a day old). ``progress``: show the files as they are written
    (:class:`domadapt.progress.Progress`).
    """
    if kind not in _WRITERS:
        raise DomadaptError(f"unknown synthetic corpus {kind!r}; known: {', '.join(CORPUS_KINDS)}")
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    base = base / "synthetic" / f"v{GENERATOR_VERSION}-seed{int(seed)}"
    final = base / ROOT_NAMES[kind]
    if is_synthetic_root(final):
        return final
    base.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(base)
    temp = Path(tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{kind}-", dir=base))
    try:
        _WRITERS[kind](temp, seed=seed, progress=progress)
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
    "CASIA_TARGET_SPEAKERS",
    "CORPUS_KINDS",
    "LOADERS",
    "DEPRESSION_DIRECTION",
    "EMOTION_PROFILES",
    "GENERATOR_VERSION",
    "MARKER_NAME",
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
    "write_casia_target_powered",
    "casia_target_speakers",
    "write_emodb",
    "write_iemocap",
    "write_modma",
]
