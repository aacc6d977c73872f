"""A realistic stand-in corpus pair from synthesised speech (espeak-ng or flite), in the real layouts.

The embedded generator (``domadapt.corpora.synthetic``) makes glottal-pulse "speech-like"
audio: fine for plumbing, not for judging models. This script writes real text-to-speech
sentences, spoken by distinct synthesiser voices, with emotion and depression carried by
prosody and voice quality, into the on-disk layouts of the real corpora, so the project's
loaders (``load_corpus("casia", ...)``, ``load_corpus("modma", ...)``) read them unchanged:

``<out>/casia`` (CASIA layout, 16 kHz 16-bit mono)
    ``<speaker>/<emotion>/<n>.wav``, the four CASIA speaker names on four voices,
    emotions ``angry fear happy neutral sad surprise``, 30 files per speaker and emotion
    (720), numbered from 201; file ``n`` is the same sentence for every speaker and emotion
    (a parallel corpus, as CASIA is). Emotion lives in the prosody: pitch level and range,
    rate, pauses, loudness, spectral tilt, breathiness, jitter and tremor (a profile per
    emotion, scaled by a per-speaker expressiveness and perturbed per speaker and per
    utterance, so the classes overlap).

``<out>/modma`` (MODMA layout, 44.1 kHz 24-bit, very quiet: peaks ~0.02-0.08)
    ``<8-digit subject>/NN.wav`` and ``subjects_information_audio_lanzhou_2015.xlsx``
    (the release's Sheet1 columns, written by the embedded generator's own sheet writer;
    labels are in the sheet only). 24 subjects (11 MDD, 13 HC), each its own voice (with
    espeak-ng an English accent x a variant; with flite one of four models; both x a
    vocal-tract-length and pitch offset, both sexes), 12 recordings each: interview 01 04
    07 10 13 16, reading 19, words 20 22 24, picture description 26 28. Two files are left
    unreadable on purpose (one truncated header, one with 0 frames), as in the real
    release: 286 readable recordings.
    Depression is one direction of the prosody (lower and flatter pitch, slower, more and
    longer pauses, quieter, duller and breathier) times the subject's severity, which
    overlaps between the groups, plus a large personal style and per-utterance variation;
    then MODMA's channel (band limit, mains hum, a noise floor, a quiet recording level).

Usage::

    python benchmarks/realistic_corpus.py --out DIR [--synth espeak] [--seed 0] [--jobs 2] [--tiny] [--force]
    python benchmarks/realistic_corpus.py --out DIR --check   # + a logistic-regression sanity check
    python benchmarks/realistic_corpus.py --out DIR2 --synth flite --seed 1   # the confirmation pair

Two synthesisers speak the same texts with the same prosody model, layouts and channel
(``--synth``): ``espeak`` (espeak-ng, the default: the pair ``casia2modma_small`` was tuned
on) and ``flite`` (CMU Flite, a pair for confirming settings chosen on the other). What
differs besides the waveform generator: flite has four usable English voice models (``slt``
female; ``awb``, ``kal16``, ``kal`` male; ``rms`` ignores the pitch controls and is left
out), so its speakers are those models under per-speaker vocal-tract scaling, pitch, rate
and voice quality (female speakers on a male model get a larger scaling), and source and
target share models, where espeak-ng gives every speaker its own accent x variant; flite
has no word-gap control, so pausing acts only through the inserted pauses; and pitch is set
as a target f0 mean and spread in Hz (``int_f0_target_mean/stddev``) rather than espeak-ng's
pitch and range. Build the confirmation pair with another ``--seed`` so that its subjects'
severities, styles, answers and broken files are new draws too.

The output is deterministic for a synthesiser, its version and a seed (both programs render
the same text identically; every file has its own random generator). A complete build
leaves ``DIR/.realistic-corpus.json`` (this script's version, the synthesiser and its
version, the seed, the sizes); a second run with the same settings only reports the counts.
Requires the Debian/Ubuntu package ``espeak-ng`` or ``flite`` (``apt-get install
espeak-ng flite``); no network.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence
from xml.sax.saxutils import escape

import numpy as np
import soundfile as sf
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from domadapt.corpora.synthetic import (  # noqa: E402
    CASIA_EMOTIONS,
    CASIA_SPEAKERS,
    MODMA_SHEET_FILE,
    ModmaSubject,
    modma_subjects,
)
from domadapt.corpora.synthetic.layouts import write_modma_sheet  # noqa: E402
from domadapt.corpora.synthetic.voice import limit_peak, seeded_rng  # noqa: E402

#: Bump on any change to the written audio, texts or layout: a marker with another
#: version makes the next run rebuild.
SCRIPT_VERSION = 2
MARKER = ".realistic-corpus.json"
RENDER_SR = 22_050  # espeak-ng's output rate; flite's output is resampled to it
CASIA_SR, MODMA_SR = 16_000, 44_100
CASIA_FIRST_ITEM = 201  # CASIA numbers its files from 201 in the public set

# --------------------------------------------------------------------------- texts
# All sentences written for this script (public domain).

#: CASIA-layout sentences: file 201 + j is sentence j for every speaker and emotion.
CASIA_SENTENCES = (
    "The train leaves at seven tomorrow morning.",
    "I left the keys on the kitchen table.",
    "She painted the fence blue last summer.",
    "We are moving to a new house in May.",
    "The letter arrived two days after the party.",
    "He has never seen the ocean before.",
    "They closed the old bakery on Main Street.",
    "Your brother called while you were out.",
    "The meeting has been moved to Friday afternoon.",
    "It rained all night, and the river rose.",
    "My phone is still in the car.",
    "The children built a tower out of boxes.",
    "I thought you had already finished the report.",
    "The dog ran across the field after the ball.",
    "Nobody told me the shop was closing.",
    "We waited an hour for the bus to come.",
    "The lights went out in the middle of the film.",
    "She won the race by a few seconds.",
    "There is a letter for you on the desk.",
    "The doctor will see you in ten minutes.",
    "They sold the farm and moved to the city.",
    "I found a photograph of my grandfather in the attic.",
    "The bridge will be closed until next week.",
    "He forgot to lock the door again.",
    "The new teacher starts on Monday.",
    "Someone has taken my seat by the window.",
    "We ate dinner on the roof, under the stars.",
    "The parcel was left outside in the rain.",
    "My sister is coming home for the holidays.",
    "The results will be posted on the wall at noon.",
)

#: MODMA interview items (01-18 are interview answers): each subject answers with one of
#: the item's answers, picked at random (independently of the label).
MODMA_INTERVIEW = {
    1: (  # introduce yourself
        "I work in an office in the city centre, and I live with my parents.",
        "I am a student at the university, I study chemistry, and I am in my third year.",
        "I have been working as a nurse for six years, mostly on night shifts.",
        "I grew up in a small town in the north, and I moved here for work.",
        "I teach mathematics at a middle school, and I have a daughter who is four.",
    ),
    4: (  # hobbies
        "I like to read in the evening, mostly novels, sometimes history books.",
        "I used to play basketball with my friends every weekend.",
        "On Sundays I go walking in the hills near the city, if the weather is good.",
        "I enjoy cooking, especially soups, and I like trying new recipes.",
        "I play the guitar a little, but I have not practised for a while.",
    ),
    7: (  # last weekend
        "Last weekend I stayed at home and cleaned the flat.",
        "I visited my grandmother, and we had lunch together in her garden.",
        "I went shopping with a friend, and then we watched a film.",
        "I did not do much, I slept a lot and watched television.",
        "I had to work on Saturday, so I only rested on Sunday.",
    ),
    10: (  # sleep
        "I usually go to bed around eleven, and I fall asleep quickly.",
        "Lately I wake up very early, around four, and I cannot fall asleep again.",
        "My sleep is fine, about seven or eight hours every night.",
        "It takes me a long time to fall asleep, I keep thinking about things.",
        "I sleep badly when I have exams, otherwise it is normal.",
    ),
    13: (  # a happy memory
        "The happiest day I remember is when my brother got married.",
        "When I passed the entrance exam, my whole family went out to celebrate.",
        "I remember a trip to the sea with my parents, when I was ten.",
        "Last spring my friends surprised me with a party for my birthday.",
        "When my son was born, I felt that everything had changed.",
    ),
    16: (  # worries
        "I worry about my job, because the company is not doing well.",
        "I am worried about my mother's health, she is getting older.",
        "Sometimes I feel that I am not good enough, and that bothers me.",
        "I am not really worried about anything at the moment.",
        "Money is a problem, the rent is high and prices keep going up.",
    ),
}
#: Passage reading (19): the same text for every subject.
MODMA_READING = {19: (
    "One cold morning, the north wind and the sun argued about which of them was the "
    "stronger. A traveller came down the road, wrapped in a heavy coat. They agreed that "
    "the one who made him take off his coat would win. The wind blew hard, but the man "
    "only pulled the coat tighter. Then the sun came out and shone warmly, and soon the "
    "traveller took his coat off.",
)}
#: Word reading (20-25): positive, neutral and negative words, the same for everyone.
MODMA_WORDS = {
    20: ("sunshine, holiday, smile, friendship.",),
    22: ("window, paper, table, morning.",),
    24: ("failure, lonely, grief, darkness.",),
}
#: Picture description (26-29): one of a few descriptions per picture.
MODMA_PICTURE = {
    26: (  # a family picnic
        "In this picture a family is having a picnic in the park, the children are playing "
        "with a ball, and the parents are sitting on a blanket.",
        "I see some people in a park, there is food on a blanket, and a dog is running "
        "near the trees.",
        "It looks like a sunny day, a man and a woman are eating sandwiches, and two kids "
        "are laughing.",
        "There is a family in the park, I think they are happy, and the weather looks nice.",
    ),
    28: (  # a woman at a rainy window
        "A woman is standing by the window, it is raining outside, and she looks tired.",
        "This picture shows a room with a window, there is rain on the glass, and a woman "
        "is holding a cup.",
        "I see a person looking out at the rain, maybe she is waiting for someone.",
        "The room is quite dark, there is a woman alone, and the street outside is wet.",
    ),
}
MODMA_TEXTS: dict[int, tuple[str, ...]] = {
    **MODMA_INTERVIEW, **MODMA_READING, **MODMA_WORDS, **MODMA_PICTURE}
MODMA_ITEMS = tuple(sorted(MODMA_TEXTS))
MODMA_TINY_ITEMS = (1, 19, 20, 26)  # one per task
_TASK = {**{k: "interview" for k in MODMA_INTERVIEW}, 19: "reading",
         **{k: "words" for k in MODMA_WORDS}, **{k: "picture" for k in MODMA_PICTURE}}

# --------------------------------------------------------------------------- prosody

#: The fields of a prosody vector, all additive (0 = the speaker's neutral voice):
#: pitch (espeak-ng pitch units, ~0.15 semitone each), range (log factor on the pitch
#: range), rate (log factor on words per minute), pause (log factor on pause probability
#: and length), energy (dB), breath (aspiration noise, share of the speech RMS), tilt
#: (+ duller / - brighter), jitter (log factor on the f0 perturbation), tremor (depth of a
#: 4-7 Hz f0 modulation).
FIELDS = ("pitch", "range", "rate", "pause", "energy", "breath", "tilt", "jitter", "tremor")
#: Typical size of each field, for random perturbations.
SPREAD = np.array([5.0, 0.15, 0.07, 0.25, 2.0, 0.05, 0.15, 0.2, 0.004])


def prosody(**fields: float) -> np.ndarray:
    """A prosody vector with the named fields set (the others 0)."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown prosody field(s) {sorted(unknown)}; known: {FIELDS}")
    return np.array([float(fields.get(f, 0.0)) for f in FIELDS])


#: Acted emotions (CASIA is acted and exaggerated). Sadness points the way depression does.
EMOTION_PROFILES = {
    "neutral": prosody(),
    "angry": prosody(pitch=12, range=0.35, rate=0.15, pause=-0.4, energy=8, breath=-0.03,
                     tilt=-0.5, jitter=0.3),
    "happy": prosody(pitch=16, range=0.55, rate=0.08, pause=-0.2, energy=4, tilt=-0.25),
    "fear": prosody(pitch=22, range=-0.35, rate=0.2, pause=0.5, energy=-1, breath=0.15,
                    jitter=0.6, tremor=0.02),
    "surprise": prosody(pitch=20, range=0.7, rate=-0.05, energy=4, breath=0.05, tilt=-0.2),
    "sad": prosody(pitch=-12, range=-0.6, rate=-0.25, pause=0.7, energy=-6, breath=0.2,
                   tilt=0.5, jitter=0.3, tremor=0.005),
}
#: Sentence-final punctuation per emotion (espeak-ng's intonation follows it), with odds.
_EMOTION_PUNCT = {
    "angry": ("!.", (0.7, 0.3)), "happy": ("!.", (0.6, 0.4)),
    "surprise": ("?!.", (0.6, 0.25, 0.15)), "fear": ("?.", (0.2, 0.8)),
}
#: Depression per unit of severity (the literature: lower and flatter pitch, slower, more
#: and longer pauses, quieter, duller and breathier voice, more perturbation).
DEPRESSION_DIRECTION = prosody(pitch=-6, range=-0.3, rate=-0.10, pause=0.35, energy=-2.5,
                               breath=0.06, tilt=0.2, jitter=0.15, tremor=0.003)
#: Size of each subject's personal style, in units of SPREAD (large: some HC subjects sound
#: flat and slow, some MDD subjects lively).
PERSONAL_STYLE = 1.2
UTTERANCE_NOISE_MODMA = 0.5
_TASK_PROSODY = {
    "interview": prosody(pause=0.2),
    "reading": prosody(range=-0.1, pause=-0.3, rate=0.03),
    "words": prosody(),
    "picture": prosody(pause=0.3, rate=-0.03),
}

# --------------------------------------------------------------------------- voices


@dataclass(frozen=True)
class Voice:
    """One speaker: a synthesiser voice and the traits that stay fixed across utterances."""

    name: str  # the synthesiser's voice: espeak-ng "<language>+<variant>", a flite model
    pitch: float  # base pitch in espeak-ng units, 0-99 (before the vocal-tract compensation)
    wpm: float  # neutral rate, words per minute
    range_pct: float  # neutral pitch range, percent of espeak-ng's default
    pause: float  # personal pausing tendency (log factor)
    jitter: float  # relative f0 perturbation
    breath: float  # aspiration share
    tilt: float  # spectral tilt (+ duller)
    alpha: float  # vocal-tract scaling: all formants x alpha (pitch and tempo kept)


def _random_voice(rng: np.random.Generator, name: str, gender: str) -> Voice:
    female = gender == "F"
    return Voice(
        name=name,
        pitch=float(np.clip(rng.normal(50, 8), 25, 75)),
        wpm=float(np.clip(rng.normal(165, 12), 130, 200)),
        range_pct=float(100 * np.exp(rng.normal(0, 0.15))),
        pause=float(rng.normal(0, 0.2)),
        jitter=float(0.006 * np.exp(rng.normal(0, 0.3))),
        breath=float(rng.uniform(0.02, 0.12)),
        tilt=float(rng.normal(0, 0.2)),
        alpha=float(rng.uniform(0.98, 1.1) if female else rng.uniform(0.9, 1.03)),
    )


# --------------------------------------------------------------------------- rendering


class MissingProgram(RuntimeError):
    """The synthesiser's program is not installed."""


def _phrases(text: str, rng: np.random.Generator, *, pause: float,
             words_list: bool) -> list[tuple[str, int | None]]:
    """``text``'s words, each with the pause after it in ms (None: no pause): after phrases
    (likely) and between words (hesitations)."""
    factor = float(np.exp(pause))
    tokens = text.split()
    words: list[tuple[str, int | None]] = []
    for i, token in enumerate(tokens):
        ms = None
        if i == len(tokens) - 1:
            pass
        elif words_list:  # word reading: a pause after every word
            ms = 550 * factor * np.exp(0.3 * rng.standard_normal())
        elif token[-1] in ".!?;:":
            ms = 300 * factor * np.exp(0.3 * rng.standard_normal())
        elif token[-1] == "," and rng.random() < min(0.5 * factor, 1.0):
            ms = 200 * factor * np.exp(0.35 * rng.standard_normal())
        elif rng.random() < min(0.04 * factor, 0.2):
            ms = 150 * factor**0.7 * np.exp(0.4 * rng.standard_normal())
        words.append((token, None if ms is None else int(round(ms))))
    return words


def _run(cmd: list[str], wav: Path, what: str) -> tuple[np.ndarray, int]:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not wav.is_file():
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr.strip()}")
    return sf.read(wav, dtype="float64")


class Espeak:
    """espeak-ng: SSML with pauses, pitch and rate on the command line, a word gap."""

    name, program, package = "espeak", "espeak-ng", "espeak-ng"
    #: English accents and variants that sound like ordinary adult voices (measured median
    #: f0 with en-us: female 170-270 Hz, male 75-125 Hz).
    accents = ("en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan",
               "en-gb-x-gbcwmd", "en-us-nyc", "en-029")
    #: The four CASIA speakers use f3, f5, m3 and m7, so no MODMA subject has these.
    female = ("f1", "f2", "f4", "Alicia", "Andrea", "Annie", "aunty", "belinda", "linda",
              "steph", "anika")
    male = ("m1", "m2", "m4", "m5", "m6", "m8", "adam", "Alex", "Andy", "david", "ed",
            "edward", "john", "Michael", "Mike", "norbert", "paul", "quincy", "robert",
            "travis", "victor", "Lee")
    #: The CASIA speakers (genders as the embedded generator has them): variants no MODMA
    #: subject uses, so the two domains never share a voice.
    casia = {"liuchanhg": "en-us+f3", "wangzhe": "en-gb-x-rp+m3",
             "zhaoquanyin": "en-gb-scotland+f5", "ZhaoZuoxiang": "en-us+m7"}

    def version(self, exe: str) -> str:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
        return out.stdout.split("Data at")[0].strip()

    def modma_voices(self, seed: int, subjects: Sequence[ModmaSubject]) -> dict[str, Voice]:
        """A distinct voice per subject: variants dealt per sex, accents at random."""
        rng = seeded_rng(seed, _MODMA, 0)
        decks = {"F": list(rng.permutation(self.female)), "M": list(rng.permutation(self.male))}
        used: set[str] = set()
        dealt = {"F": 0, "M": 0}
        voices = {}
        for s in subjects:
            deck = decks[s.gender]
            s_rng = seeded_rng(seed, _MODMA, 1, int(s.subject_id))
            variant = deck[dealt[s.gender] % len(deck)]  # more subjects than variants: reuse
            dealt[s.gender] += 1
            accent = self.accents[int(s_rng.integers(len(self.accents)))]
            while f"{accent}+{variant}" in used:
                accent = self.accents[int(s_rng.integers(len(self.accents)))]
            used.add(f"{accent}+{variant}")
            voices[s.subject_id] = _random_voice(s_rng, f"{accent}+{variant}", s.gender)
        return voices

    def casia_voice(self, rng: np.random.Generator, speaker: str, gender: str) -> Voice:
        return _random_voice(rng, self.casia[speaker], gender)

    def speak(self, exe: str, voice: Voice, words: list[tuple[str, int | None]], *,
              pitch: float, wpm: float, range_pct: float, word_gap: int) -> np.ndarray:
        """espeak-ng's rendering (float64 at 22.05 kHz)."""
        body = " ".join(escape(w) + (f' <break time="{ms}ms"/>' if ms is not None else "")
                        for w, ms in words)
        ssml = f'<speak><prosody range="{int(round(range_pct))}%">{body}</prosody></speak>'
        with tempfile.TemporaryDirectory(prefix="realistic-") as tmp:
            wav = Path(tmp) / "out.wav"
            cmd = [exe, "-m", "-v", voice.name, "-p", str(int(round(np.clip(pitch, 0, 99)))),
                   "-s", str(int(round(np.clip(wpm, 80, 400)))), "-g", str(max(0, word_gap)),
                   "-w", str(wav), ssml]
            y, sr = _run(cmd, wav, "espeak-ng")
        if sr != RENDER_SR:
            raise RuntimeError(f"espeak-ng wrote {sr} Hz, expected {RENDER_SR}")
        return y


class Flite:
    """CMU Flite: one call per stretch of speech between pauses, the pauses inserted as
    silence; f0 mean and spread and a duration stretch set per call (``--setf``)."""

    name, program, package = "flite", "flite", "flite"
    #: The voice models compiled into Debian's flite that follow the f0 targets (``rms``
    #: does not), by sex; a female speaker on a male model gets a larger vocal-tract scaling.
    female, male = ("slt",), ("awb", "kal16", "kal")
    casia = {"liuchanhg": "slt", "wangzhe": "awb", "zhaoquanyin": "kal16", "ZhaoZuoxiang": "kal"}
    #: f0 (Hz) at espeak-ng pitch 50, and words per minute at duration stretch 1.
    f0_at_50 = {"F": 195.0, "M": 112.0}
    wpm_at_1 = 165.0
    #: f0 standard deviation as a share of the f0 mean at 100 % range.
    f0_spread = 0.12

    def version(self, exe: str) -> str:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True)  # exits 1
        return next(line.split("version:")[1].strip() for line in out.stdout.splitlines()
                    if "version:" in line)

    def _voice(self, rng: np.random.Generator, model: str, gender: str) -> Voice:
        voice = _random_voice(rng, model, gender)
        if gender == "F" and model not in self.female:
            voice = replace(voice, alpha=voice.alpha * 1.12)
        return replace(voice, name=f"{model}/{gender}")

    def modma_voices(self, seed: int, subjects: Sequence[ModmaSubject]) -> dict[str, Voice]:
        """Models dealt in turn (female subjects over all four, male over the male ones);
        speakers on one model differ by their drawn traits."""
        decks = {"F": self.female + self.male, "M": self.male}
        dealt = {"F": 0, "M": 0}
        voices = {}
        for s in subjects:
            deck = decks[s.gender]
            model = deck[dealt[s.gender] % len(deck)]
            dealt[s.gender] += 1
            voices[s.subject_id] = self._voice(seeded_rng(seed, _MODMA, 1, int(s.subject_id)), model, s.gender)
        return voices

    def casia_voice(self, rng: np.random.Generator, speaker: str, gender: str) -> Voice:
        return self._voice(rng, self.casia[speaker], gender)

    def speak(self, exe: str, voice: Voice, words: list[tuple[str, int | None]], *,
              pitch: float, wpm: float, range_pct: float, word_gap: int) -> np.ndarray:
        """flite's rendering (float64 at 22.05 kHz); ``word_gap`` has no flite counterpart."""
        model, gender = voice.name.split("/")
        f0 = self.f0_at_50[gender] * math.exp(0.009 * (pitch - 50))  # ~0.9 % per unit
        settings = ["--setf", f"int_f0_target_mean={f0:.1f}",
                    "--setf", f"int_f0_target_stddev={self.f0_spread * f0 * range_pct / 100:.1f}",
                    "--setf", f"duration_stretch={self.wpm_at_1 / np.clip(wpm, 80, 400):.3f}"]
        stretches, current = [], []
        for w, ms in words:
            current.append(w)
            if ms is not None:
                stretches.append((" ".join(current), ms))
                current = []
        stretches.append((" ".join(current), 0))
        pieces = []
        with tempfile.TemporaryDirectory(prefix="realistic-") as tmp:
            wav = Path(tmp) / "out.wav"
            for i, (text, ms) in enumerate(stretches):
                y, sr = _run([exe, "-voice", model, *settings, "-t", text, "-o", str(wav)],
                             wav, "flite")
                g = math.gcd(RENDER_SR, sr)
                y = _trim(signal.resample_poly(y, RENDER_SR // g, sr // g),
                          start=i > 0, end=i < len(stretches) - 1)
                pieces += [y, np.zeros(int(ms * RENDER_SR / 1000))]
        return np.concatenate(pieces)


def _trim(y: np.ndarray, *, start: bool, end: bool) -> np.ndarray:
    """``y`` without the silence flite puts around every call, at the chosen ends (the
    pause between two calls is the inserted one alone), 20 ms of it kept."""
    loud = np.flatnonzero(np.abs(y) > 10 ** (-40 / 20) * np.abs(y).max())
    if loud.size == 0:
        return y
    margin = int(0.02 * RENDER_SR)
    first = max(0, loud[0] - margin) if start else 0
    last = min(len(y), loud[-1] + margin) if end else len(y)
    return y[first:last]


SYNTHS = {s.name: s for s in (Espeak(), Flite())}


def find_program(synth: str, program: str | None = None) -> str:
    """Path of the synthesiser's program; raises MissingProgram with a one-line install hint."""
    synth_ = SYNTHS[synth]
    program = program or synth_.program
    path = shutil.which(program)
    if path is None:
        raise MissingProgram(
            f"{program} not found on PATH: the --synth {synth} corpus is spoken by it "
            f"(install it: apt-get install {synth_.package})")
    return path


def _lowpass_noise(rng: np.random.Generator, n: int, cutoff: float, sr: int) -> np.ndarray:
    sos = signal.butter(2, cutoff, fs=sr, output="sos")
    z = signal.sosfilt(sos, rng.standard_normal(n))
    return z / (z.std() + 1e-12)


def _perturb_f0(x: np.ndarray, rng: np.random.Generator, *, jitter: float,
                tremor: float) -> np.ndarray:
    """Jitter (fast random) and tremor (4-7 Hz) of the pitch by a time-varying resampling.

    Reading ``x`` at a local rate ``r(t)`` scales every frequency by ``r`` there; the mean
    rate is 1, so the duration hardly changes.
    """
    n, sr = len(x), RENDER_SR
    t = np.arange(n) / sr
    rate = 1.0 + jitter * _lowpass_noise(rng, n, 80.0, sr)
    rate += tremor * np.sin(2 * np.pi * rng.uniform(4, 7) * t + rng.uniform(0, 2 * np.pi))
    pos = np.cumsum(np.maximum(rate, 0.5)) - 1.0
    pos = pos[pos <= n - 1]
    return np.interp(pos, np.arange(n), x)


def _active_rms(x: np.ndarray, sr: int) -> float:
    """RMS of the 20 ms frames within 35 dB of the loudest (the speech, not the pauses)."""
    hop = int(0.02 * sr)
    frames = x[: len(x) // hop * hop].reshape(-1, hop)
    power = np.mean(frames**2, axis=1)
    active = power > power.max() * 10 ** (-35 / 10)
    return float(np.sqrt(np.mean(power[active])))


def _voice_quality(x: np.ndarray, rng: np.random.Generator, *, breath: float,
                   tilt: float) -> np.ndarray:
    """Aspiration noise following the speech envelope, then a spectral tilt."""
    sr = RENDER_SR
    rms = _active_rms(x, sr)
    env = signal.sosfilt(signal.butter(2, 25, fs=sr, output="sos"), np.abs(x))
    env = np.maximum(env, 0) / (np.sqrt(np.mean(env**2)) + 1e-12)
    band = signal.butter(2, [1200, 6000], btype="band", fs=sr, output="sos")
    noise = signal.sosfilt(band, rng.standard_normal(len(x)))
    noise /= np.sqrt(np.mean(noise**2)) + 1e-12
    y = x + max(breath, 0.0) * rms * env * noise
    a = np.exp(-2 * np.pi * 800 / sr)
    low = signal.lfilter([1 - a], [1, -a], y)
    return y + float(np.clip(tilt, -1.0, 0.7)) * (low - y)


def _resample(x: np.ndarray, sr_out: int, alpha: float) -> np.ndarray:
    """``x`` (22.05 kHz) at ``sr_out`` with every frequency scaled by ``alpha``."""
    src = int(round(RENDER_SR * alpha / 50.0)) * 50  # alpha to ~0.2 %: small up/down
    return signal.resample_poly(x, sr_out, src)


def render(synth: str, exe: str, text: str, voice: Voice, p: np.ndarray,
           rng: np.random.Generator, *, sr: int, words_list: bool = False,
           lead_s: tuple[float, float] = (0.1, 0.3),
           tail_s: tuple[float, float] = (0.15, 0.35)) -> np.ndarray:
    """``text`` spoken by ``voice`` with prosody vector ``p``: float64 at ``sr``, active-speech
    RMS at ``p[energy]`` dB relative to -26 dBFS; no channel yet."""
    v = dict(zip(FIELDS, p))
    # The vocal-tract scaling resamples by alpha, which would also raise pitch and tempo by
    # alpha: ask the synthesiser for both lower by alpha (pitch units are ~0.9 % each).
    pitch = voice.pitch + v["pitch"] - np.log(voice.alpha) / 0.009
    wpm = voice.wpm * np.exp(v["rate"]) / voice.alpha
    pause = voice.pause + v["pause"]
    word_gap = int(round(max(0.0, 2.0 * pause)))  # slow, deliberate speech: gaps between words
    words = _phrases(text, rng, pause=pause, words_list=words_list)
    y = SYNTHS[synth].speak(exe, voice, words, pitch=pitch, wpm=wpm, word_gap=word_gap,
                            range_pct=voice.range_pct * np.exp(v["range"]))
    y = _perturb_f0(y, rng, jitter=voice.jitter * np.exp(v["jitter"]),
                    tremor=max(v["tremor"], 0.0))
    y = _voice_quality(y, rng, breath=voice.breath + v["breath"], tilt=voice.tilt + v["tilt"])
    y = _resample(y, sr, voice.alpha)
    y *= 10 ** ((-26.0 + v["energy"]) / 20) / (_active_rms(y, sr) + 1e-12)
    lead, tail = (int(rng.uniform(*s) * sr) for s in (lead_s, tail_s))
    return np.concatenate([np.zeros(lead), y, np.zeros(tail)])


# --------------------------------------------------------------------------- CASIA

_CASIA, _MODMA, _BROKEN = 11, 12, 13  # corpus codes in the seed keys


@dataclass(frozen=True)
class CasiaJob:
    speaker_index: int
    emotion_index: int
    item: int


def _casia_speaker(synth: str, seed: int, si: int) -> tuple[Voice, float]:
    speaker, gender = CASIA_SPEAKERS[si]
    rng = seeded_rng(seed, _CASIA, si)
    voice = SYNTHS[synth].casia_voice(rng, speaker, gender)
    return voice, float(rng.uniform(0.7, 1.2))  # expressiveness


def _write_casia_file(root: Path, synth: str, exe: str, seed: int, job: CasiaJob) -> None:
    speaker, _ = CASIA_SPEAKERS[job.speaker_index]
    emotion = CASIA_EMOTIONS[job.emotion_index]
    voice, expressiveness = _casia_speaker(synth, seed, job.speaker_index)
    style_rng = seeded_rng(seed, _CASIA, job.speaker_index, 100 + job.emotion_index)
    style = (EMOTION_PROFILES[emotion] * expressiveness
             + 0.4 * SPREAD * style_rng.standard_normal(len(FIELDS)))
    rng = seeded_rng(seed, _CASIA, job.speaker_index, 100 + job.emotion_index, job.item)
    p = style * rng.uniform(0.5, 1.2) + 0.5 * SPREAD * rng.standard_normal(len(FIELDS))
    text = CASIA_SENTENCES[job.item]
    if emotion in _EMOTION_PUNCT:
        marks, odds = _EMOTION_PUNCT[emotion]
        text = text[:-1] + marks[int(rng.choice(len(marks), p=odds))]
    y = render(synth, exe, text, voice, p, rng, sr=CASIA_SR)
    y = y + 10 ** (-75 / 20) * rng.standard_normal(len(y))  # a quiet studio, not digital zero
    folder = root / speaker / emotion
    sf.write(folder / f"{CASIA_FIRST_ITEM + job.item}.wav", limit_peak(y), CASIA_SR, subtype="PCM_16")


# --------------------------------------------------------------------------- MODMA


@dataclass(frozen=True)
class ModmaJob:
    subject: ModmaSubject
    voice: Voice
    item: int


def _subject_prosody(seed: int, s: ModmaSubject) -> np.ndarray:
    rng = seeded_rng(seed, _MODMA, 2, int(s.subject_id))
    personal = PERSONAL_STYLE * SPREAD * rng.standard_normal(len(FIELDS))
    return DEPRESSION_DIRECTION * s.severity + personal


@dataclass(frozen=True)
class Channel:
    """One subject's recording set-up: band limit, mains hum, noise floor, level."""

    low_hz: float
    high_hz: float
    hum_db: float
    floor_db: float
    level_db: float  # active-speech RMS of neutral speech, dBFS


def _modma_channel(seed: int, s: ModmaSubject) -> Channel:
    rng = seeded_rng(seed, _MODMA, 3, int(s.subject_id))
    return Channel(low_hz=rng.uniform(80, 160), high_hz=rng.uniform(5000, 8000),
                   hum_db=rng.uniform(-68, -56), floor_db=rng.uniform(-70, -62),
                   level_db=rng.normal(-44.5, 2.0))


def apply_channel(y: np.ndarray, ch: Channel, rng: np.random.Generator, *, sr: int,
                  gain_db: float = 0.0) -> np.ndarray:
    """MODMA's channel: band limit, level (quiet), 50 Hz hum with harmonics, a pinkish floor."""
    band = signal.butter(4, [ch.low_hz, ch.high_hz], btype="band", fs=sr, output="sos")
    y = signal.sosfilt(band, y) * 10 ** ((ch.level_db + 26.0 + gain_db) / 20)
    t = np.arange(len(y)) / sr
    hum = sum(a * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
              for f, a in ((50, 1.0), (150, 0.5), (250, 0.25)))
    floor = signal.lfilter([np.sqrt(1 - 0.81)], [1.0, -0.9], rng.standard_normal(len(y)))
    return y + 10 ** (ch.hum_db / 20) * hum + 10 ** (ch.floor_db / 20) * floor


def _write_modma_file(root: Path, synth: str, exe: str, seed: int, job: ModmaJob) -> None:
    s = job.subject
    task = _TASK[job.item]
    rng = seeded_rng(seed, _MODMA, 4, int(s.subject_id), job.item)
    texts = MODMA_TEXTS[job.item]
    text = texts[int(rng.integers(len(texts)))]
    p = (_subject_prosody(seed, s) + _TASK_PROSODY[task]
         + UTTERANCE_NOISE_MODMA * SPREAD * rng.standard_normal(len(FIELDS)))
    lead, tail = ((0.4, 0.8), (0.4, 0.8)) if task == "words" else ((0.2, 0.6), (0.3, 0.6))
    y = render(synth, exe, text, job.voice, p, rng, sr=MODMA_SR, words_list=task == "words",
               lead_s=lead, tail_s=tail)
    # The energy field is already in y's level; the channel adds the subject's gain.
    y = apply_channel(y, _modma_channel(seed, s), rng, sr=MODMA_SR)
    sf.write(root / s.subject_id / f"{job.item:02d}.wav", limit_peak(y), MODMA_SR, subtype="PCM_24")


def _break_files(root: Path, seed: int, subjects: Sequence[ModmaSubject],
                 items: Sequence[int], count: int) -> list[Path]:
    """Make ``count`` recordings unreadable, as some are in the real release: the first has
    a truncated header, the second holds 0 frames (then alternating)."""
    rng = seeded_rng(seed, _BROKEN)
    pairs = [(s.subject_id, k) for s in subjects for k in items]
    chosen = rng.choice(len(pairs), size=min(count, len(pairs)), replace=False)
    broken = []
    for n, idx in enumerate(sorted(chosen)):
        subject_id, item = pairs[idx]
        path = root / subject_id / f"{item:02d}.wav"
        if n % 2 == 0:
            path.write_bytes(path.read_bytes()[:20])  # RIFF header cut short
        else:
            sf.write(path, np.zeros(0), MODMA_SR, subtype="PCM_24")  # a header, no audio
        broken.append(path)
    return broken


# --------------------------------------------------------------------------- build


@dataclass(frozen=True)
class Sizes:
    """How much to write. ``tiny`` is for tests: 48 CASIA files, 4 subjects x 4 items."""

    casia_per_cell: int = 30
    n_mdd: int = 11
    n_hc: int = 13
    modma_items: tuple[int, ...] = MODMA_ITEMS
    unreadable: int = 2

    @classmethod
    def tiny(cls) -> "Sizes":
        return cls(casia_per_cell=2, n_mdd=2, n_hc=2, modma_items=MODMA_TINY_ITEMS, unreadable=2)

    def as_dict(self) -> dict:
        return {"casia_per_cell": self.casia_per_cell, "n_mdd": self.n_mdd, "n_hc": self.n_hc,
                "modma_items": list(self.modma_items), "unreadable": self.unreadable}


def _read_marker(path: Path) -> dict | None:
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _wanted_marker(synth: str, seed: int, sizes: Sizes) -> dict:
    return {"script": "benchmarks/realistic_corpus.py", "version": SCRIPT_VERSION,
            "synth": synth, "seed": seed, "sizes": sizes.as_dict()}


def is_complete(out: Path, *, synth: str = "espeak", seed: int = 0,
                sizes: Sizes = Sizes()) -> bool:
    """True if ``out`` holds a complete build of this version, synthesiser, seed and sizes."""
    marker = _read_marker(Path(out) / MARKER)
    want = _wanted_marker(synth, seed, sizes)
    return marker is not None and all(marker.get(k) == v for k, v in want.items())


def build(out: str | Path, *, synth: str = "espeak", seed: int = 0, sizes: Sizes = Sizes(),
          jobs: int = 2, program: str | None = None, force: bool = False) -> dict:
    """Write ``out/casia`` and ``out/modma``; returns the marker (with counts and time).

    ``synth`` names the synthesiser (``SYNTHS``); ``program`` overrides its executable.
    Skips the work when ``out`` already holds a complete build with the same version,
    synthesiser, seed and sizes (unless ``force``). Writes into a temporary folder inside ``out`` and moves
    the two trees into place when both are complete; an earlier build's trees are replaced
    only if they carry this script's marker.

    Raises:
        MissingProgram: the synthesiser's program is not installed.
    """
    out = Path(out)
    if synth not in SYNTHS:
        raise ValueError(f"unknown synthesiser {synth!r}; known: {', '.join(SYNTHS)}")
    if not force and is_complete(out, synth=synth, seed=seed, sizes=sizes):
        marker = _read_marker(out / MARKER)
        marker["skipped"] = True
        return marker
    exe = find_program(synth, program)
    version = SYNTHS[synth].version(exe)
    for name in ("casia", "modma"):
        old = out / name
        if old.exists() and _read_marker(old / MARKER) is None:
            raise FileExistsError(f"{old} exists and was not written by this script; "
                                  f"remove it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-realistic-", dir=out))
    try:
        casia, modma = tmp / "casia", tmp / "modma"
        casia_jobs = [CasiaJob(si, ei, j) for si in range(len(CASIA_SPEAKERS))
                      for ei in range(len(CASIA_EMOTIONS)) for j in range(sizes.casia_per_cell)]
        for speaker, _ in CASIA_SPEAKERS:
            for emotion in CASIA_EMOTIONS:
                (casia / speaker / emotion).mkdir(parents=True)
        subjects = modma_subjects(seed=seed, n_mdd=sizes.n_mdd, n_hc=sizes.n_hc)
        voices = SYNTHS[synth].modma_voices(seed, subjects)
        modma_jobs = [ModmaJob(s, voices[s.subject_id], k) for s in subjects
                      for k in sizes.modma_items]
        for s in subjects:
            (modma / s.subject_id).mkdir(parents=True)
        casia_voices = {CASIA_SPEAKERS[si][0]: _casia_speaker(synth, seed, si)[0].name
                        for si in range(len(CASIA_SPEAKERS))}
        tasks = [(_write_casia_file, casia, j) for j in casia_jobs]
        tasks += [(_write_modma_file, modma, j) for j in modma_jobs]
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for f in [pool.submit(fn, root, synth, exe, seed, job) for fn, root, job in tasks]:
                f.result()
        broken = _break_files(modma, seed, subjects, sizes.modma_items, sizes.unreadable)
        write_modma_sheet(modma / MODMA_SHEET_FILE, subjects)
        marker = {
            **_wanted_marker(synth, seed, sizes), "synth_version": version,
            "casia": {"files": len(casia_jobs), "speakers": len(CASIA_SPEAKERS),
                      "emotions": len(CASIA_EMOTIONS), "sample_rate": CASIA_SR},
            "modma": {"files": len(modma_jobs), "readable": len(modma_jobs) - len(broken),
                      "unreadable": [str(p.relative_to(modma)) for p in broken],
                      "subjects": len(subjects),
                      "MDD": sum(s.label == "MDD" for s in subjects),
                      "HC": sum(s.label == "HC" for s in subjects),
                      "sample_rate": MODMA_SR, "subtype": "PCM_24"},
            "voices": {**casia_voices, **{sid: v.name for sid, v in voices.items()}},
        }
        text = json.dumps(marker, indent=1, sort_keys=True) + "\n"
        for root in (casia, modma):
            (root / MARKER).write_text(text, encoding="utf-8")
        (out / MARKER).unlink(missing_ok=True)
        for name in ("casia", "modma"):
            if (out / name).exists():
                shutil.rmtree(out / name)
            os.replace(tmp / name, out / name)
        marker["seconds"] = round(time.perf_counter() - started, 1)
        (out / MARKER).write_text(json.dumps(marker, indent=1, sort_keys=True) + "\n",
                                  encoding="utf-8")  # last: its presence means complete
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    marker["skipped"] = False
    return marker


# --------------------------------------------------------------------------- sanity check


def sanity_check(out: Path, *, shuffles: int = 3) -> None:
    """Print a logistic regression on MFCC mean+std per utterance (librosa, 16 kHz, as in
    ``synthetic_difficulty.py``): MODMA 5-fold StratifiedGroupKFold by subject, CASIA
    leave-one-speaker-out; UA = balanced accuracy."""
    from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from synthetic_difficulty import balanced_accuracy, classifier, mfcc_stats

    from domadapt.corpora import load_corpus

    for name in ("modma", "casia"):
        corpus = load_corpus(name, out / name)
        t = time.perf_counter()
        x = np.stack([mfcc_stats(u.path) for u in corpus.utterances])
        y = np.array([u.label for u in corpus.utterances])
        g = np.array([u.subject for u in corpus.utterances])
        print(f"[{name}] {len(y)} utterances, {len(np.unique(g))} subjects, "
              f"{len(corpus.skipped)} skipped; features {time.perf_counter() - t:.1f} s")
        if name == "modma":
            uas, first, subj = [], [], []
            for rs in range(shuffles):
                pred = np.empty_like(y)
                for tr, te in StratifiedGroupKFold(5, shuffle=True, random_state=rs).split(x, y, g):
                    pred[te] = classifier().fit(x[tr], y[tr]).predict(x[te])
                    uas.append(balanced_accuracy(y[te], pred[te]))
                    if rs == 0:
                        first.append(uas[-1])
                subjects = np.unique(g)
                truth = np.array([y[g == s][0] for s in subjects])
                votes = np.array([max(set(pred[g == s]), key=list(pred[g == s]).count)
                                  for s in subjects])
                subj.append(balanced_accuracy(truth, votes))
            print(f"[modma] HC vs MDD, StratifiedGroupKFold(5) by subject: utterance UA "
                  f"{np.mean(first):.3f} ± {np.std(first):.3f} over the 5 folds (shuffle 0); "
                  f"{np.mean(uas):.3f} ± {np.std(uas):.3f} over {shuffles}x5 folds; "
                  f"subject UA (majority vote) {np.mean(subj):.3f} over {shuffles} shuffles")
        else:
            pred = np.empty_like(y)
            folds = []
            for tr, te in LeaveOneGroupOut().split(x, y, g):
                pred[te] = classifier().fit(x[tr], y[tr]).predict(x[te])
                folds.append(balanced_accuracy(y[te], pred[te]))
            print(f"[casia] 6 emotions, leave-one-speaker-out: UA {np.mean(folds):.3f} ± "
                  f"{np.std(folds):.3f} over the 4 speakers (pooled UA "
                  f"{balanced_accuracy(y, pred):.3f})")


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="writes OUT/casia and OUT/modma")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--synth", choices=tuple(SYNTHS), default="espeak",
                    help="the synthesiser: espeak (espeak-ng) or flite")
    ap.add_argument("--jobs", type=int, default=2, help="synthesiser processes at a time")
    ap.add_argument("--tiny", action="store_true", help="48 CASIA files, 4 subjects x 4 items")
    ap.add_argument("--force", action="store_true", help="rebuild even if complete")
    ap.add_argument("--check", action="store_true",
                    help="then print a logistic-regression sanity check (needs scikit-learn)")
    args = ap.parse_args(argv)
    sizes = Sizes.tiny() if args.tiny else Sizes()
    try:
        m = build(args.out, synth=args.synth, seed=args.seed, sizes=sizes, jobs=args.jobs,
                  force=args.force)
    except (MissingProgram, FileExistsError) as exc:
        print(f"realistic_corpus.py: {exc}", file=sys.stderr)
        return 2
    c, d = m["casia"], m["modma"]
    how = "already complete, not rebuilt" if m["skipped"] else f"built in {m['seconds']:.1f} s"
    print(f"{args.out}: {how} ({m['synth']}: {m['synth_version']}; seed {m['seed']}, "
          f"script v{m['version']})")
    print(f"  casia: {c['files']} files ({c['speakers']} speakers x {c['emotions']} emotions x "
          f"{sizes.casia_per_cell}), {c['sample_rate']} Hz 16-bit")
    print(f"  modma: {d['files']} files, {d['readable']} readable ({len(d['unreadable'])} "
          f"unreadable on purpose), {d['subjects']} subjects ({d['MDD']} MDD, {d['HC']} HC), "
          f"{d['sample_rate']} Hz 24-bit")
    if args.check:
        sanity_check(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
