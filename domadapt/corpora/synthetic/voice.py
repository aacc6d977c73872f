"""Speech-like audio from a text and a prosody: the voice synthesiser behind the synthetic
corpora (:mod:`domadapt.corpora.synthetic` writes them in the real layouts).

The signal is speech-like, not noise: a Rosenberg glottal pulse train (time-varying f0 with
jitter and shimmer, breathy aspiration, spectral tilt) through a cascade of formant
resonators whose vowel targets change per syllable, a syllable-rate amplitude envelope,
fricative onsets (band-passed noise) and pauses. Each utterance is built from a *text*
(syllables, vowels, onsets, stress, word and phrase boundaries) and a *prosody*; emotion
and depression live in the prosody only:

* an :class:`Expression` is an additive vector (pitch level and range, rate, energy,
  pauses, jitter/shimmer, breathiness, spectral tilt, final contour);
* emotions are fixed profiles of it (:data:`EMOTION_PROFILES`);
* depression is one direction of it (:data:`DEPRESSION_DIRECTION`: lower, flatter pitch,
  slower, quieter, longer pauses, breathier). Sadness points the same way: that shared
  direction is what makes emotion -> depression transfer meaningful.

Every generator here is seeded from ``(seed, corpus, speaker, item, ...)`` (:func:`rng`), never
from generation order.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import signal


def seeded_rng(seed: int, *key: int) -> np.random.Generator:
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

NEUTRAL = Expression()
#: Emotion profiles (acted, exaggerated as in CASIA; sized so that a plain MFCC baseline
#: lands at ~0.5-0.75 leave-one-speaker-out). Sadness shares the depression direction.
EMOTION_PROFILES: dict[str, Expression] = {
    "neutral": NEUTRAL,
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


def random_voice(rng: np.random.Generator, gender: str, *, level_db: float) -> Voice:
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


def random_text(rng: np.random.Generator, low: int, high: int, scale: float = 1.0) -> Text:
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


def limit_peak(y: np.ndarray, peak: float = 0.95) -> np.ndarray:
    """Scale down (never up) so that the peak stays below ``peak``: no clipping."""
    m = float(np.max(np.abs(y))) if y.size else 0.0
    return y * (peak / m) if m > peak else y
