"""The synthetic stand-in corpora: layouts, formats, levels, determinism and the cache."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import openpyxl
import pytest
import soundfile as sf

from domadapt.corpora import load_corpus
from domadapt.corpora import synthetic
from domadapt.corpora.synthetic import (
    CASIA_EMOTIONS,
    CASIA_TARGET_SPEAKERS,
    CORPUS_KINDS,
    LOADERS,
    DEPRESSION_DIRECTION,
    EMOTION_PROFILES,
    GENERATOR_VERSION,
    MARKER_NAME,
    ROOT_NAMES,
    MODMA_COLUMNS,
    casia_target_speakers,
    default_cache_dir,
    is_synthetic_root,
    modma_subjects,
    synthetic_root,
    write_casia,
    write_casia_target,
    write_emodb,
    write_iemocap,
    write_modma,
)
from domadapt.errors import DomadaptError

CASIA_SPEAKERS = {"liuchanhg", "wangzhe", "zhaoquanyin", "ZhaoZuoxiang"}
UTTERANCE_LINE = re.compile(
    r"^\[(\d+\.\d{4}) - (\d+\.\d{4})\]\t(Ses0\d[FM]_\w+_([FM])\d{3})\t([a-z]{3})\t"
    r"\[\d\.\d{4}, \d\.\d{4}, \d\.\d{4}\]$"
)


def tree_bytes(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def assert_speech_level(y: np.ndarray, *, peak_range: tuple[float, float]) -> None:
    peak = float(np.max(np.abs(y)))
    assert peak_range[0] <= peak <= peak_range[1], peak
    # Speech with pauses: loud frames and near-silent frames, not noise or a constant tone.
    frames = y[: len(y) // 400 * 400].reshape(-1, 400)
    energy_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    assert np.percentile(energy_db, 95) - np.percentile(energy_db, 5) > 20


@pytest.fixture(scope="module")
def casia(tmp_path_factory) -> Path:
    return write_casia(tmp_path_factory.mktemp("c") / "CASIA database", files_per_class=2)


@pytest.fixture(scope="module")
def casia_target(tmp_path_factory) -> Path:
    return write_casia_target(tmp_path_factory.mktemp("ct") / "CASIA target database",
                              files_per_class=2)


@pytest.fixture(scope="module")
def modma(tmp_path_factory) -> Path:
    return write_modma(tmp_path_factory.mktemp("m") / "audio", n_mdd=2, n_hc=2, duration_scale=0.5)


@pytest.fixture(scope="module")
def iemocap(tmp_path_factory) -> Path:
    return write_iemocap(tmp_path_factory.mktemp("i") / "IEMOCAP", sessions=2,
                         utterances_per_speaker=5, dialogs_per_session=2)


# --------------------------------------------------------------------------- CASIA


def test_casia_layout_and_format(casia: Path) -> None:
    assert {p.name for p in casia.iterdir() if p.is_dir()} == CASIA_SPEAKERS
    for speaker in CASIA_SPEAKERS:
        assert {p.name for p in (casia / speaker).iterdir()} == set(CASIA_EMOTIONS)
        for emotion in CASIA_EMOTIONS:
            names = sorted(p.name for p in (casia / speaker / emotion).iterdir())
            assert names == ["201.wav", "202.wav"]
    wavs = sorted(casia.rglob("*.wav"))
    assert len(wavs) == 4 * 6 * 2
    for wav in wavs[::7]:
        info = sf.info(str(wav))
        assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
        assert 1.0 < info.duration < 6.0
        y, _ = sf.read(str(wav))
        assert_speech_level(y, peak_range=(0.03, 0.96))
    assert is_synthetic_root(casia)


def test_casia_is_read_by_the_real_loader(casia: Path) -> None:
    corpus = load_corpus("casia", casia)
    assert len(corpus.utterances) == 48
    assert set(corpus.subjects()) == CASIA_SPEAKERS
    assert set(corpus.label_counts().values()) == {8}


# --------------------------------------------------------------------------- EMODB


def test_emodb_layout_is_read_by_the_real_loader(tmp_path: Path) -> None:
    from domadapt.corpora.emodb import CLASSES, SPEAKERS, parse_name

    root = write_emodb(tmp_path / "emodb", texts=2)
    wavs = sorted((root / "wav").glob("*.wav"))
    assert len(wavs) == 10 * 7 * 2
    assert all(isinstance(parse_name(w.stem), dict) for w in wavs)  # the release's name codes
    assert {w.stem[2:5] for w in wavs} == {"a01", "a02"} and {w.stem[6] for w in wavs} == {"a"}
    for wav in wavs[::17]:
        info = sf.info(str(wav))
        assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
        assert 0.5 < info.duration < 8.0
        assert_speech_level(sf.read(str(wav))[0], peak_range=(0.03, 0.96))
    corpus = load_corpus("emodb", root)
    assert corpus.synthetic and corpus.classes == CLASSES and not corpus.skipped
    assert sorted(corpus.subjects()) == sorted(SPEAKERS)
    assert set(corpus.label_counts().values()) == {10 * 2}
    assert {u.meta["gender"] for u in corpus.utterances if u.subject == "08"} == {"female"}
    with pytest.raises(DomadaptError, match="texts must be 1..10"):
        write_emodb(tmp_path / "bad", texts=11)


def test_emodb_emotions_differ_in_prosody_like_casias(tmp_path: Path) -> None:
    # boredom is low and quiet, anger loud: a speaker's mean level orders them
    root = write_emodb(tmp_path / "emodb", texts=1)
    level = {}
    for letter in ("W", "L", "N"):
        y = np.concatenate([sf.read(str(p))[0] for p in (root / "wav").glob(f"??a01{letter}a.wav")])
        level[letter] = float(np.sqrt(np.mean(y**2)))
    assert level["W"] > level["N"] > level["L"]


# --------------------------------------------------------------------------- CASIA target


def test_casia_target_is_read_by_the_casia_loader(casia_target: Path) -> None:
    assert LOADERS["casia_target"] == "casia"
    corpus = load_corpus("casia", casia_target)
    assert corpus.synthetic
    assert corpus.classes == CASIA_EMOTIONS
    assert len(corpus.utterances) == 8 * 6 * 2
    assert corpus.label_counts() == {e: 16 for e in CASIA_EMOTIONS}
    speakers = set(corpus.subjects())
    assert speakers == {name for name, _ in CASIA_TARGET_SPEAKERS}
    assert {g for _, g in CASIA_TARGET_SPEAKERS}.issubset({"F", "M"})
    assert [g for _, g in CASIA_TARGET_SPEAKERS].count("F") == 4
    assert not speakers & CASIA_SPEAKERS  # other people than the source's
    assert not corpus.skipped


def test_casia_target_has_modmas_channel(casia_target: Path) -> None:
    wavs = sorted(casia_target.rglob("*.wav"))
    for wav in wavs[::13]:
        info = sf.info(str(wav))
        assert (info.samplerate, info.channels, info.subtype) == (44_100, 1, "PCM_24")
        y, _ = sf.read(str(wav))
        # Quiet: neutral speech peaks at MODMA's levels, angry speech up to ~+11 dB louder.
        assert_speech_level(y, peak_range=(0.005, 0.5))
        # Band-limited at 5.5 kHz: next to nothing above 7 kHz.
        power = np.abs(np.fft.rfft(y)) ** 2
        freqs = np.fft.rfftfreq(len(y), 1 / 44_100)
        assert power[freqs > 7000].sum() < 1e-3 * power.sum()
    assert is_synthetic_root(casia_target)


def test_casia_target_sizes_and_errors(tmp_path: Path) -> None:
    root = write_casia_target(tmp_path / "t", files_per_class=1, n_speakers=2)
    assert len(list(root.rglob("*.wav"))) == 2 * 6
    with pytest.raises(DomadaptError, match="n_speakers"):
        write_casia_target(tmp_path / "u", n_speakers=0)
    with pytest.raises(DomadaptError, match="files_per_class"):
        write_casia_target(tmp_path / "v", files_per_class=0)


def test_casia_target_beyond_eight_speakers_keeps_the_first_eight(tmp_path: Path) -> None:
    """The powered testbed's target: more voices named target09, ...; the first speakers'
    files are those of the 8-speaker casia_target (the same seeds), byte for byte."""
    assert [name for name, _ in casia_target_speakers(10)[8:]] == ["target09", "target10"]
    assert [g for _, g in casia_target_speakers(12)[8:]] == ["F", "M", "F", "M"]
    small = write_casia_target(tmp_path / "small", files_per_class=1, n_speakers=1)
    large = write_casia_target(tmp_path / "large", files_per_class=1, n_speakers=10)
    assert {p.name for p in large.iterdir() if p.is_dir()} == {name for name, _ in casia_target_speakers(10)}
    for wav in small.rglob("*.wav"):
        assert wav.read_bytes() == (large / wav.relative_to(small)).read_bytes()


def test_casia_target_powered_is_its_own_kind_read_under_its_own_name(tmp_path: Path, monkeypatch) -> None:
    def tiny_powered(root: Path, *, seed: int = 0, progress: bool = False, jobs: int | None = 1) -> Path:
        return write_casia_target(root, seed=seed, files_per_class=1, n_speakers=9)

    monkeypatch.setitem(synthetic._WRITERS, "casia_target_powered", tiny_powered)
    root = synthetic_root("casia_target_powered", cache_dir=tmp_path)
    assert root.name == ROOT_NAMES["casia_target_powered"] != ROOT_NAMES["casia_target"]
    corpus = load_corpus("casia_target_powered", root)
    assert corpus.name == "casia_target_powered"
    assert {u.domain for u in corpus.utterances} == {"casia_target_powered"}
    assert len(corpus.subjects()) == 9


# --------------------------------------------------------------------------- MODMA


def test_modma_subject_table_defaults() -> None:
    subjects = modma_subjects(seed=0)
    labels = [s.label for s in subjects]
    assert (labels.count("MDD"), labels.count("HC")) == (23, 29)
    ids = [s.subject_id for s in subjects]
    assert len(set(ids)) == 52 and all(re.fullmatch(r"020[12]\d{4}", i) for i in ids)
    # The label is not derivable from the id prefix: both prefixes hold both groups.
    assert {(s.subject_id[:4], s.label) for s in subjects} == {
        ("0201", "MDD"), ("0201", "HC"), ("0202", "MDD"), ("0202", "HC")}
    mdd = [s.phq9 for s in subjects if s.label == "MDD"]
    hc = [s.phq9 for s in subjects if s.label == "HC"]
    assert min(mdd) >= 10 and max(hc) <= 9
    # Severities overlap: the groups are not separable on the hidden variable alone.
    sev_mdd = min(s.severity for s in subjects if s.label == "MDD")
    assert sev_mdd < max(s.severity for s in subjects if s.label == "HC")


def test_modma_layout_sheet_and_format(modma: Path) -> None:
    folders = sorted(p.name for p in modma.iterdir() if p.is_dir())
    assert len(folders) == 4 and all(re.fullmatch(r"\d{8}", f) for f in folders)
    for folder in folders:
        names = sorted(p.name for p in (modma / folder).iterdir())
        assert names == [f"{k:02d}.wav" for k in range(1, 30)]
    book = openpyxl.load_workbook(modma / "subjects_information_audio_lanzhou_2015.xlsx")
    assert book.sheetnames == ["Sheet1"]
    rows = list(book["Sheet1"].iter_rows(values_only=True))
    assert rows[0] == MODMA_COLUMNS
    assert rows[0][4] == "education（years）"  # full-width parentheses
    assert rows[0][11] is None and rows[0][12] is None
    assert any(r[11] is not None for r in rows[1:])  # header-less columns exist as columns
    ids = [r[0] for r in rows[1:]]
    assert all(isinstance(i, int) for i in ids)  # stored as numbers: 02010002 -> 2010002
    assert sorted(f"{i:08d}" for i in ids) == folders
    assert sorted(r[1] for r in rows[1:]) == ["HC", "HC", "MDD", "MDD"]
    for k in (1, 19, 20, 29):
        wav = modma / folders[0] / f"{k:02d}.wav"
        info = sf.info(str(wav))
        assert (info.samplerate, info.channels, info.subtype) == (44_100, 1, "PCM_24")
        y, _ = sf.read(str(wav))
        assert_speech_level(y, peak_range=(0.005, 0.15))  # very quiet, as the release


def test_modma_is_read_by_the_real_loader(modma: Path) -> None:
    corpus = load_corpus("modma", modma)
    assert len(corpus.utterances) == 4 * 29
    assert corpus.label_counts() == {"HC": 58, "MDD": 58}
    assert not corpus.skipped


# --------------------------------------------------------------------------- IEMOCAP


def test_iemocap_layout_and_label_files(iemocap: Path) -> None:
    assert sorted(p.name for p in iemocap.iterdir() if p.is_dir()) == ["Session1", "Session2"]
    labelled: dict[str, tuple[float, float, str]] = {}
    for session in (1, 2):
        eval_dir = iemocap / f"Session{session}" / "dialog" / "EmoEvaluation"
        for txt in sorted(eval_dir.glob("*.txt")):
            lines = txt.read_text(encoding="utf-8").split("\n")
            assert lines[0] == "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"
            assert lines[1] == ""
            for line in lines[2:]:
                m = UTTERANCE_LINE.match(line)
                if m:
                    assert m[3].startswith(txt.stem + "_")
                    labelled[m[3]] = (float(m[1]), float(m[2]), m[5])
                else:
                    assert line == "" or re.match(r"^[CA]-[EF]\d:\t", line), line
    assert set(v[2] for v in labelled.values()) <= {"neu", "hap", "exc", "ang", "sad", "fru", "xxx"}
    wavs = {p.stem: p for p in iemocap.rglob("*.wav") if not p.name.startswith("._")}
    assert set(wavs) == set(labelled)
    assert len(wavs) == 2 * 2 * 5
    for utt, (start, end, _) in list(labelled.items())[:6]:
        info = sf.info(str(wavs[utt]))
        assert (info.samplerate, info.subtype) == (16_000, "PCM_16")
        assert abs(info.duration - (end - start)) < 1e-3
        assert re.fullmatch(r"Ses0\d[FM]_(impro\d\d|script\d\d_\d)_[FM]\d{3}", utt)
    per_speaker = {}
    for utt in labelled:
        speaker = utt[4] + utt.rsplit("_", 1)[1][0]  # session + the LAST F/M
        per_speaker[speaker] = per_speaker.get(speaker, 0) + 1
    assert per_speaker == {"1F": 5, "1M": 5, "2F": 5, "2M": 5}
    junk = sorted(iemocap.rglob("._*.wav"))
    assert len(junk) == 2 and all(p.stat().st_size < 100 for p in junk)


def test_iemocap_is_read_by_the_real_loader(iemocap: Path) -> None:
    corpus = load_corpus("iemocap", iemocap)
    assert set(corpus.subjects()) <= {"1F", "1M", "2F", "2M"}
    assert set(corpus.label_counts()) == {"neu", "hap", "ang", "sad"}
    assert 0 < len(corpus.utterances) <= 20


# --------------------------------------------------------------------------- signal design


def test_sadness_shares_the_direction_of_depression() -> None:
    sad = np.array(EMOTION_PROFILES["sad"]._values())
    depression = np.array(DEPRESSION_DIRECTION._values())
    assert np.array_equal(np.sign(sad), np.sign(depression))
    cosine = sad @ depression / np.linalg.norm(sad) / np.linalg.norm(depression)
    assert cosine > 0.99


# --------------------------------------------------------------------------- determinism


def test_same_seed_is_byte_identical_other_seed_differs(tmp_path: Path) -> None:
    def write_all(out: Path, seed: int) -> dict[str, bytes]:
        write_casia(out / "CASIA database", seed=seed, files_per_class=1)
        write_modma(out / "modma", seed=seed, n_mdd=1, n_hc=1, duration_scale=0.2)
        write_iemocap(out / "iemocap", seed=seed, sessions=1, utterances_per_speaker=2,
                      dialogs_per_session=1)
        write_casia_target(out / "casia_target", seed=seed, files_per_class=1, n_speakers=2)
        return tree_bytes(out)

    a, b = write_all(tmp_path / "a", 0), write_all(tmp_path / "b", 0)
    c = write_all(tmp_path / "c", 1)
    assert a == b
    assert "modma/subjects_information_audio_lanzhou_2015.xlsx" in a
    same_name = set(a) & set(c)
    wavs = [k for k in same_name if k.endswith(".wav") and "/._" not in k]
    assert wavs and all(a[k] != c[k] for k in wavs)
    assert any(k.startswith("casia_target/") for k in wavs)


def test_worker_processes_write_the_same_bytes(tmp_path: Path) -> None:
    """Speakers (sessions, subjects) shared out to two worker processes: every file as one
    process writes it."""
    def write_all(out: Path, jobs: int) -> dict[str, bytes]:
        write_casia(out / "CASIA database", files_per_class=1, jobs=jobs)
        write_modma(out / "modma", n_mdd=2, n_hc=1, duration_scale=0.2, jobs=jobs)
        write_iemocap(out / "iemocap", sessions=2, utterances_per_speaker=2, dialogs_per_session=1, jobs=jobs)
        return tree_bytes(out)

    one, two = write_all(tmp_path / "one", 1), write_all(tmp_path / "two", 2)
    assert sum(k.endswith(".wav") for k in one) == 24 + 3 * 29 + 2 * 2 * 2 + 2  # with the 2 '._' files
    assert two == one


# --------------------------------------------------------------------------- cache


@pytest.fixture
def tiny_writers(monkeypatch):
    """Make synthetic_root fast: a tiny CASIA, and count the writer calls."""
    calls = []

    def tiny_casia(root: Path, *, seed: int = 0, progress: bool = False, jobs: int | None = 1) -> Path:
        calls.append(root)
        return write_casia(root, seed=seed, files_per_class=1)

    monkeypatch.setitem(synthetic._WRITERS, "casia", tiny_casia)
    return calls


def test_synthetic_root_ignores_a_crashed_temp_and_caches(tmp_path: Path, tiny_writers) -> None:
    base = tmp_path / "synthetic" / f"v{GENERATOR_VERSION}-seed0"
    crashed = base / ".tmp-casia-crashed"
    (crashed / "wangzhe" / "angry").mkdir(parents=True)
    (crashed / "wangzhe" / "angry" / "201.wav").write_bytes(b"RIFF half-written")

    root = synthetic_root("casia", cache_dir=tmp_path)
    assert root == base / "CASIA database"
    assert is_synthetic_root(root) and (root / MARKER_NAME).is_file()
    assert len(list(root.rglob("*.wav"))) == 24
    assert tiny_writers[0].parent == base and tiny_writers[0].name.startswith(".tmp-")
    assert not tiny_writers[0].exists()  # renamed into place
    assert synthetic_root("casia", cache_dir=tmp_path) == root
    assert len(tiny_writers) == 1  # the second call reused the cache


def test_synthetic_root_builds_casia_target_next_to_casia(tmp_path: Path, monkeypatch,
                                                          tiny_writers) -> None:
    def tiny_target(root: Path, *, seed: int = 0, progress: bool = False, jobs: int | None = 1) -> Path:
        return write_casia_target(root, seed=seed, files_per_class=1, n_speakers=2)

    monkeypatch.setitem(synthetic._WRITERS, "casia_target", tiny_target)
    target = synthetic_root("casia_target", cache_dir=tmp_path)
    source = synthetic_root("casia", cache_dir=tmp_path)
    assert target == source.parent / "CASIA target database"
    assert json.loads((target / MARKER_NAME).read_text())["kind"] == "casia_target"
    corpus = load_corpus(LOADERS["casia_target"], target)
    assert set(corpus.subjects()) == {"fangjing", "gaoming"}
    assert not set(corpus.subjects()) & set(load_corpus("casia", source).subjects())


def test_synthetic_root_loser_of_a_race_discards_its_copy(tmp_path: Path, monkeypatch) -> None:
    final = tmp_path / "synthetic" / f"v{GENERATOR_VERSION}-seed0" / "CASIA database"

    def racing_casia(root: Path, *, seed: int = 0, progress: bool = False, jobs: int | None = 1) -> Path:
        write_casia(final, seed=seed, files_per_class=1)  # another process finishes first
        return write_casia(root, seed=seed, files_per_class=1)

    monkeypatch.setitem(synthetic._WRITERS, "casia", racing_casia)
    assert synthetic_root("casia", cache_dir=tmp_path) == final
    assert is_synthetic_root(final)
    assert [p.name for p in final.parent.iterdir()] == ["CASIA database"]  # temp removed


def test_cache_dir_resolution_and_errors(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOMADAPT_CACHE", str(tmp_path / "dc"))
    assert default_cache_dir() == tmp_path / "dc"
    monkeypatch.delenv("DOMADAPT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "domadapt"
    with pytest.raises(DomadaptError, match="casia, iemocap, modma, casia_target, emodb, casia_target_powered, arrays, arrays_target"):
        synthetic_root("savee", cache_dir=tmp_path)
    assert CORPUS_KINDS == ("casia", "iemocap", "modma", "casia_target", "emodb", "casia_target_powered")
    assert set(LOADERS) == set(CORPUS_KINDS + synthetic.VECTOR_KINDS) == set(synthetic._WRITERS)
    assert not is_synthetic_root(tmp_path)
    (tmp_path / MARKER_NAME).write_text("not json")
    assert not is_synthetic_root(tmp_path)
