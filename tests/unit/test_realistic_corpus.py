"""benchmarks/realistic_corpus.py: a tiny build per synthesiser is read by the project's own
loaders with the exact counts, classes, subjects and formats; reruns skip; output is
deterministic; flite follows the pitch and pause controls.

Needs the system programs espeak-ng and flite (``apt-get install espeak-ng flite``; neither
is installed by pip): the tests of a missing one skip, naming it; the missing-program
message is checked without either.
"""

from __future__ import annotations

import collections
import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from domadapt.corpora import load_corpus

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "realistic_corpus.py"
PROGRAMS = {"espeak": "espeak-ng", "flite": "flite"}


def _absent(synth: str) -> str | None:
    """The skip reason when ``synth``'s program is missing, else None."""
    program = PROGRAMS[synth]
    if shutil.which(program) is None:
        return f"{program} is not installed (apt-get install {program})"
    return None


needs_espeak = pytest.mark.skipif(_absent("espeak") is not None, reason=str(_absent("espeak")))
needs_flite = pytest.mark.skipif(_absent("flite") is not None, reason=str(_absent("flite")))


def _load_script():
    spec = importlib.util.spec_from_file_location("realistic_corpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


rc = _load_script()


@pytest.fixture(scope="module", params=["espeak", "flite"])
def tiny(request, tmp_path_factory):
    """A tiny build per synthesiser: ``(out, marker, synth)``."""
    synth = request.param
    if _absent(synth):
        pytest.skip(_absent(synth))
    out = tmp_path_factory.mktemp(f"realistic-{synth}")
    marker = rc.build(out, synth=synth, seed=0, sizes=rc.Sizes.tiny(), jobs=2)
    return out, marker, synth


@pytest.mark.parametrize("synth", ["espeak", "flite"])
def test_missing_program_is_one_line_naming_it(synth, tmp_path, capsys, monkeypatch):
    program = PROGRAMS[synth]
    with pytest.raises(rc.MissingProgram, match=f"no-such-{program} not found"):
        rc.build(tmp_path / "out", synth=synth, program=f"no-such-{program}")
    assert not (tmp_path / "out").exists()

    real_which = shutil.which
    def which(name, *args, **kwargs):
        return None if name == program else real_which(name, *args, **kwargs)

    monkeypatch.setattr(rc.shutil, "which", which)
    code = rc.main(["--out", str(tmp_path / "out"), "--tiny", "--synth", synth])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and f"{program} not found" in err
    assert f"apt-get install {program}" in err and f"--synth {synth}" in err
    assert not (tmp_path / "out").exists()


def test_unknown_synth_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown synthesiser 'festival'; known: espeak, flite"):
        rc.build(tmp_path, synth="festival")


def test_casia_layout_read_by_the_loader(tiny):
    out, marker, _ = tiny
    corpus = load_corpus("casia", out / "casia")
    assert corpus.classes == ("angry", "fear", "happy", "neutral", "sad", "surprise")
    assert corpus.subjects() == sorted(["liuchanhg", "wangzhe", "zhaoquanyin", "ZhaoZuoxiang"])
    assert len(corpus.utterances) == 4 * 6 * 2 == marker["casia"]["files"]
    cells = collections.Counter((u.subject, u.label) for u in corpus.utterances)
    assert set(cells.values()) == {2} and len(cells) == 24
    assert {u.meta["item"] for u in corpus.utterances} == {"201", "202"}
    assert corpus.skipped == [] and not corpus.synthetic
    for u in corpus.utterances[::5]:
        info = sf.info(str(u.path))
        assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
        assert 1.0 < info.duration < 8.0


def test_modma_layout_read_by_the_loader(tiny):
    out, marker, _ = tiny
    corpus = load_corpus("modma", out / "modma")
    subjects = rc.modma_subjects(seed=0, n_mdd=2, n_hc=2)
    truth = {s.subject_id: s.label for s in subjects}
    assert corpus.classes == ("HC", "MDD")
    assert corpus.subjects() == sorted(truth)
    assert collections.Counter(truth.values()) == {"MDD": 2, "HC": 2}
    assert all(u.label == truth[u.subject] for u in corpus.utterances)  # from the sheet
    broken = set(marker["modma"]["unreadable"])
    assert len(broken) == 2
    assert len(corpus.utterances) == 4 * 4 - 2 == marker["modma"]["readable"]
    assert {f"{u.subject}/{u.meta['item']}.wav" for u in corpus.utterances} == {
        f"{s}/{k:02d}.wav" for s in truth for k in rc.MODMA_TINY_ITEMS} - broken
    skipped = {str(Path(s.path).relative_to(out / "modma")) for s in corpus.skipped}
    assert skipped == broken
    tasks = {u.meta["task"] for u in corpus.utterances}
    assert tasks <= {"interview", "reading", "words", "picture"}
    peaks = []
    for u in corpus.utterances:
        info = sf.info(str(u.path))
        assert (info.samplerate, info.channels, info.subtype) == (44_100, 1, "PCM_24")
        peaks.append(np.abs(sf.read(str(u.path))[0]).max())
    assert 0.005 < min(peaks) and max(peaks) < 0.2  # very quiet, as the release


def test_modma_sheet_has_the_release_columns(tiny):
    import openpyxl

    out, _, synth = tiny
    book = openpyxl.load_workbook(out / "modma" / rc.MODMA_SHEET_FILE)
    sheet = book["Sheet1"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:11] == ("subject id", "type", "age", "gender", "education（years）",
                            "PHQ-9", "CTQ-SF", "LES", "SSRS", "GAD-7", "PSQI")
    assert rows[0][11] is None  # a header-less column, as pandas' "Unnamed: 11"
    ids = [r[0] for r in rows[1:] if r[0] is not None]
    assert len(ids) == 4 and all(isinstance(i, int) for i in ids)  # ids stored as numbers


def test_second_run_skips(tiny):
    out, _, synth = tiny
    probe = out / "casia" / "wangzhe" / "sad" / "201.wav"
    before = probe.stat().st_mtime_ns
    marker = rc.build(out, synth=synth, seed=0, sizes=rc.Sizes.tiny())
    assert marker["skipped"] is True and marker["synth"] == synth
    assert probe.stat().st_mtime_ns == before
    assert rc.is_complete(out, synth=synth, seed=0, sizes=rc.Sizes.tiny())
    assert not rc.is_complete(out, synth=synth, seed=1, sizes=rc.Sizes.tiny())
    assert not rc.is_complete(out, synth=synth, seed=0, sizes=rc.Sizes())
    other = next(s for s in PROGRAMS if s != synth)
    assert not rc.is_complete(out, synth=other, seed=0, sizes=rc.Sizes.tiny())


def test_files_are_deterministic(tiny, tmp_path):
    out, _, synth = tiny
    exe = rc.find_program(synth)
    job = rc.CasiaJob(speaker_index=2, emotion_index=4, item=1)
    speaker = rc.CASIA_SPEAKERS[2][0]
    (tmp_path / speaker / "sad").mkdir(parents=True)
    rc._write_casia_file(tmp_path, synth, exe, 0, job)
    name = f"{speaker}/sad/202.wav"
    assert (tmp_path / name).read_bytes() == (out / "casia" / name).read_bytes()

    subjects = rc.modma_subjects(seed=0, n_mdd=2, n_hc=2)
    voices = rc.SYNTHS[synth].modma_voices(0, subjects)
    broken = set(rc.build(out, synth=synth, sizes=rc.Sizes.tiny())["modma"]["unreadable"])
    s, k = next((s, k) for s in subjects for k in rc.MODMA_TINY_ITEMS
                if f"{s.subject_id}/{k:02d}.wav" not in broken)
    (tmp_path / s.subject_id).mkdir()
    rc._write_modma_file(tmp_path, synth, exe, 0, rc.ModmaJob(s, voices[s.subject_id], k))
    name = f"{s.subject_id}/{k:02d}.wav"
    assert (tmp_path / name).read_bytes() == (out / "modma" / name).read_bytes()


@needs_espeak
@needs_flite
def test_the_synthesisers_speak_differently(tiny):
    """Same seed, text, prosody and random draws: the same synthesiser renders the same
    samples, the other one a different waveform."""
    out, marker, synth = tiny
    assert marker["voices"]["wangzhe"] == {"espeak": "en-gb-x-rp+m3", "flite": "awb/M"}[synth]

    def say(which: str) -> np.ndarray:
        voice = rc._casia_speaker(which, 0, 1)[0]
        return rc.render(which, rc.find_program(which), rc.CASIA_SENTENCES[0], voice,
                         rc.prosody(), np.random.default_rng(0), sr=16_000)

    other = next(s for s in PROGRAMS if s != synth)
    y, z = say(synth), say(other)
    assert np.array_equal(y, say(synth))
    n = min(len(y), len(z))
    assert abs(np.corrcoef(y[:n], z[:n])[0, 1]) < 0.3


def _median_f0(y: np.ndarray, sr: int) -> float:
    import librosa

    f0, voiced, _ = librosa.pyin(y.astype(np.float32), fmin=60, fmax=400, sr=sr)
    return float(np.median(f0[voiced]))


@needs_flite
def test_flite_follows_pitch_and_pause_controls():
    """The depression cue lives in pitch, rate and pauses: each control must reach the audio
    (flite's ``rms`` model, for one, ignores the f0 target; it is not in the decks)."""
    flite, words = rc.find_program("flite"), rc._phrases("The train leaves at seven.",
                                                         np.random.default_rng(0), pause=-9.0,
                                                         words_list=False)
    assert all(ms is None for _, ms in words)
    for model in rc.Flite.female + rc.Flite.male:
        voice = rc.Voice(name=f"{model}/M", pitch=50, wpm=165, range_pct=100, pause=0,
                         jitter=0, breath=0, tilt=0, alpha=1)
        low = rc.Flite().speak(flite, voice, words, pitch=30, wpm=165, range_pct=100, word_gap=0)
        high = rc.Flite().speak(flite, voice, words, pitch=70, wpm=165, range_pct=100, word_gap=0)
        ratio = _median_f0(high, rc.RENDER_SR) / _median_f0(low, rc.RENDER_SR)
        assert ratio == pytest.approx(np.exp(0.009 * 40), rel=0.1), model
        slow = rc.Flite().speak(flite, voice, words, pitch=50, wpm=110, range_pct=100, word_gap=0)
        paused = rc.Flite().speak(flite, voice, [("The train", 700), ("leaves at seven.", None)],
                                  pitch=50, wpm=165, range_pct=100, word_gap=0)
        base = rc.Flite().speak(flite, voice, words, pitch=50, wpm=165, range_pct=100, word_gap=0)
        assert len(slow) / len(base) == pytest.approx(165 / 110, rel=0.15), model
        # the 0.7 s inserted, plus the phrase-final lengthening of "train" (~0.2 s); without
        # the trim of flite's own edge silence it would be ~0.4 s more
        assert (len(paused) - len(base)) / rc.RENDER_SR == pytest.approx(0.9, abs=0.15), model


@needs_espeak
def test_refuses_to_replace_trees_it_did_not_write(tmp_path):
    (tmp_path / "casia").mkdir()
    with pytest.raises(FileExistsError, match="not written by this script"):
        rc.build(tmp_path, sizes=rc.Sizes.tiny())
