"""benchmarks/realistic_corpus.py: a tiny build is read by the project's own loaders with
the exact counts, classes, subjects and formats; reruns skip; output is deterministic.

Needs the system program espeak-ng (``apt-get install espeak-ng``); without it only the
missing-program message is checked.
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
HAVE_ESPEAK = shutil.which("espeak-ng") is not None
needs_espeak = pytest.mark.skipif(
    not HAVE_ESPEAK, reason="espeak-ng is not installed (apt-get install espeak-ng)")


def _load_script():
    spec = importlib.util.spec_from_file_location("realistic_corpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


rc = _load_script()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    if not HAVE_ESPEAK:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    out = tmp_path_factory.mktemp("realistic")
    marker = rc.build(out, seed=0, sizes=rc.Sizes.tiny(), jobs=2)
    return out, marker


def test_missing_espeak_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    with pytest.raises(rc.MissingProgram, match="no-such-espeak-ng not found"):
        rc.build(tmp_path / "out", espeak="no-such-espeak-ng")
    assert not (tmp_path / "out").exists()

    real_which = shutil.which
    def which(name, *args, **kwargs):
        return None if name == "espeak-ng" else real_which(name, *args, **kwargs)

    monkeypatch.setattr(rc.shutil, "which", which)
    code = rc.main(["--out", str(tmp_path / "out"), "--tiny"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "espeak-ng not found" in err and "apt-get install" in err


@needs_espeak
def test_casia_layout_read_by_the_loader(tiny):
    out, marker = tiny
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


@needs_espeak
def test_modma_layout_read_by_the_loader(tiny):
    out, marker = tiny
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


@needs_espeak
def test_modma_sheet_has_the_release_columns(tiny):
    import openpyxl

    out, _ = tiny
    book = openpyxl.load_workbook(out / "modma" / rc.MODMA_SHEET_FILE)
    sheet = book["Sheet1"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:11] == ("subject id", "type", "age", "gender", "education（years）",
                            "PHQ-9", "CTQ-SF", "LES", "SSRS", "GAD-7", "PSQI")
    assert rows[0][11] is None  # a header-less column, as pandas' "Unnamed: 11"
    ids = [r[0] for r in rows[1:] if r[0] is not None]
    assert len(ids) == 4 and all(isinstance(i, int) for i in ids)  # ids stored as numbers


@needs_espeak
def test_second_run_skips(tiny):
    out, _ = tiny
    probe = out / "casia" / "wangzhe" / "sad" / "201.wav"
    before = probe.stat().st_mtime_ns
    marker = rc.build(out, seed=0, sizes=rc.Sizes.tiny())
    assert marker["skipped"] is True
    assert probe.stat().st_mtime_ns == before
    assert not rc.is_complete(out, seed=1, sizes=rc.Sizes.tiny())
    assert not rc.is_complete(out, seed=0, sizes=rc.Sizes())


@needs_espeak
def test_files_are_deterministic(tiny, tmp_path):
    out, _ = tiny
    espeak = rc.find_espeak()
    job = rc.CasiaJob(speaker_index=2, emotion_index=4, item=1)
    speaker = rc.CASIA_SPEAKERS[2][0]
    (tmp_path / speaker / "sad").mkdir(parents=True)
    rc._write_casia_file(tmp_path, espeak, 0, job)
    name = f"{speaker}/sad/202.wav"
    assert (tmp_path / name).read_bytes() == (out / "casia" / name).read_bytes()

    subjects = rc.modma_subjects(seed=0, n_mdd=2, n_hc=2)
    voices = rc._modma_voices(0, subjects)
    broken = set(rc.build(out, sizes=rc.Sizes.tiny())["modma"]["unreadable"])
    s, k = next((s, k) for s in subjects for k in rc.MODMA_TINY_ITEMS
                if f"{s.subject_id}/{k:02d}.wav" not in broken)
    (tmp_path / s.subject_id).mkdir()
    rc._write_modma_file(tmp_path, espeak, 0, rc.ModmaJob(s, voices[s.subject_id], k))
    name = f"{s.subject_id}/{k:02d}.wav"
    assert (tmp_path / name).read_bytes() == (out / "modma" / name).read_bytes()


@needs_espeak
def test_refuses_to_replace_trees_it_did_not_write(tmp_path):
    (tmp_path / "casia").mkdir()
    with pytest.raises(FileExistsError, match="not written by this script"):
        rc.build(tmp_path, sizes=rc.Sizes.tiny())
