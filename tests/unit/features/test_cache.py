"""The on-disk feature cache: hits, invalidation, atomic writes, corrupt entries."""

import logging
import os

import numpy as np
import pytest
import soundfile as sf
import torch

import domadapt.features.frontend as frontend
from domadapt.corpora.base import Corpus, Utterance
from domadapt.features import FeatureConfig, cache_path, default_cache_dir, extract_segments

CFG = FeatureConfig()


def _corpus(root):
    rng = np.random.default_rng(0)
    utts = []
    for i in range(3):
        path = root / f"{i}.wav"
        sf.write(str(path), (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32), 16000)
        utts.append(Utterance(path=path, label="hc" if i else "mdd", subject=f"s{i}", domain="toy"))
    return Corpus(name="toy corpus", root=root, classes=("hc", "mdd"), utterances=utts)


@pytest.fixture
def reads(monkeypatch):
    """Counts audio reads made by the front-end (0 new reads = served from cache)."""
    count = {"n": 0}
    real = frontend.read_audio

    def counting(*args, **kwargs):
        count["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(frontend, "read_audio", counting)
    return count


def test_hit_returns_identical_segments(tmp_path, reads):
    corpus = _corpus(tmp_path)
    first = extract_segments(corpus, CFG, cache_dir=tmp_path / "cache")
    assert reads["n"] == 3
    path = cache_path(corpus, CFG, tmp_path / "cache")
    assert path.is_file() and path.parent == tmp_path / "cache" / "features"
    assert path.name.startswith("toy_corpus-")
    second = extract_segments(corpus, CFG, cache_dir=tmp_path / "cache")
    assert reads["n"] == 3  # nothing re-read
    assert torch.equal(first.x, second.x) and torch.equal(first.y, second.y)
    assert second.subjects == first.subjects and second.utterance_keys == first.utterance_keys
    assert second.classes == first.classes and second.domain == "toy"


def test_touched_file_invalidates(tmp_path, reads):
    corpus = _corpus(tmp_path)
    before = cache_path(corpus, CFG, tmp_path / "c")
    extract_segments(corpus, CFG, cache_dir=tmp_path / "c")
    st = os.stat(corpus.utterances[1].path)
    os.utime(corpus.utterances[1].path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    after = cache_path(corpus, CFG, tmp_path / "c")
    assert after != before
    extract_segments(corpus, CFG, cache_dir=tmp_path / "c")
    assert reads["n"] == 6  # rebuilt


def test_changed_setting_or_label_invalidates(tmp_path):
    corpus = _corpus(tmp_path)
    base = cache_path(corpus, CFG, tmp_path)
    for change in ({"hop_length": 256}, {"normalize": "corpus"}, {"pad": "repeat"}, {"backend": "librosa"}):
        assert cache_path(corpus, CFG.replace(**change), tmp_path) != base, change
    relabelled = corpus.filter(lambda u: True)
    relabelled.utterances[0] = Utterance(
        path=corpus.utterances[0].path, label="hc", subject="s0", domain="toy"
    )
    assert cache_path(relabelled, CFG, tmp_path) != base


def test_leftover_tmp_is_ignored_and_write_is_atomic(tmp_path, reads):
    corpus = _corpus(tmp_path)
    path = cache_path(corpus, CFG, tmp_path / "c")
    path.parent.mkdir(parents=True)
    # a crash mid-write leaves a half-written temp file next to where the entry would be
    (path.parent / (path.name + ".abc123.tmp")).write_bytes(b"half a zip")
    segs = extract_segments(corpus, CFG, cache_dir=tmp_path / "c")
    assert reads["n"] == 3 and len(segs) == 3 and path.is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, path.name + ".abc123.tmp"])


def test_corrupt_entry_is_logged_and_rebuilt(tmp_path, reads, caplog):
    corpus = _corpus(tmp_path)
    path = cache_path(corpus, CFG, tmp_path / "c")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a torch file")
    with caplog.at_level(logging.WARNING, logger="domadapt"):
        segs = extract_segments(corpus, CFG, cache_dir=tmp_path / "c")
    assert "unreadable" in caplog.text and reads["n"] == 3 and len(segs) == 3
    extract_segments(corpus, CFG, cache_dir=tmp_path / "c")
    assert reads["n"] == 3  # the rebuilt entry is good


def test_default_location_and_disabled(tmp_path, monkeypatch, reads):
    monkeypatch.setenv("DOMADAPT_CACHE", str(tmp_path / "env-cache"))
    assert default_cache_dir() == tmp_path / "env-cache"
    (tmp_path / "data").mkdir()
    corpus = _corpus(tmp_path / "data")
    extract_segments(corpus, CFG)  # cache_dir=None: the default location
    assert list((tmp_path / "env-cache" / "features").glob("*.pt"))
    extract_segments(corpus, CFG.replace(n_mels=64), cache_dir=False)
    assert len(list((tmp_path / "env-cache" / "features").glob("*.pt"))) == 1
    extract_segments(corpus, CFG.replace(n_mels=64), cache_dir=False)
    assert reads["n"] == 9  # never cached
