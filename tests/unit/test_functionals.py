"""Utterance functionals: dims per kind, audio handling, skips, non-finite values, cache."""

import os

import numpy as np
import pytest
import soundfile as sf
import torch

import domadapt.features.functionals as fn
from domadapt.corpora.base import Corpus, Utterance
from domadapt.errors import DomadaptError
from domadapt.features import FeatureConfig, extract_segments
from domadapt.features.functionals import UtteranceFeatures, utterance_functionals

opensmile = pytest.importorskip("opensmile")

DIMS = {"egemaps": 88, "compare": 6373, "mfcc_stats": 78}
F0_HZ = 200.0


def _voice(sr: int, seconds: float, f0: float = F0_HZ, amp: float = 0.3) -> np.ndarray:
    """A harmonic-rich tone (sum of 10 harmonics, 1/k amplitudes): pitch trackers see f0."""
    t = np.arange(int(sr * seconds)) / sr
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 11))
    return (amp * wave / np.abs(wave).max()).astype(np.float32)


def _noise(sr: int, seconds: float, seed: int) -> np.ndarray:
    return (0.05 * np.random.default_rng(seed).standard_normal(int(sr * seconds))).astype(np.float32)


@pytest.fixture
def corpus(tmp_path):
    """Four readable files (one 44.1 kHz 24-bit) and one corrupt .wav."""
    files = {
        "a.wav": (_voice(16000, 1.5), 16000, "PCM_16"),
        "b.wav": (_noise(16000, 1.2, 1), 16000, "PCM_16"),
        "c.wav": (_voice(44100, 1.5), 44100, "PCM_24"),  # MODMA's format
        "d.wav": (_voice(22050, 1.0, f0=150.0) + _noise(22050, 1.0, 2), 22050, "FLOAT"),
    }
    utts = []
    for i, (name, (wave, sr, subtype)) in enumerate(files.items()):
        sf.write(str(tmp_path / name), wave, sr, subtype=subtype)
        utts.append(Utterance(path=tmp_path / name, label=("hc", "mdd")[i % 2], subject=f"s{i}", domain="toy"))
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    utts.append(Utterance(path=tmp_path / "bad.wav", label="hc", subject="s9", domain="toy"))
    return Corpus(name="toy", root=tmp_path, classes=("hc", "mdd"), utterances=utts)


@pytest.mark.parametrize("kind", sorted(DIMS))
def test_dims_rows_and_skips(corpus, kind):
    f = utterance_functionals(corpus, kind, cache_dir=False)
    assert isinstance(f, UtteranceFeatures)
    assert f.x.shape == (4, DIMS[kind]) and f.x.dtype == np.float32
    assert np.isfinite(f.x).all()
    assert len(f.names) == DIMS[kind] and len(set(f.names)) == DIMS[kind]
    assert f.keys == tuple(u.key for u in corpus.utterances[:4])
    assert f.subjects == ("s0", "s1", "s2", "s3")
    assert f.y.tolist() == [0, 1, 0, 1] and f.classes == ("hc", "mdd")
    # The corrupt file is listed with its path and a reason, not dropped silently.
    assert [s.path for s in f.skipped] == [str(corpus.utterances[4].path)]
    assert "unreadable" in f.skipped[0].reason
    # Different audio, different rows (nothing constant or zeroed by mistake).
    assert len({row.tobytes() for row in f.x}) == 4


def test_egemaps_pitch_of_a_24bit_44k_file(corpus):
    """The 44.1 kHz 24-bit tone is read at its true rate: eGeMAPS' mean F0 in semitones
    from 27.5 Hz matches 200 Hz (a wrong rate would shift it by octaves)."""
    f = utterance_functionals(corpus, "egemaps", cache_dir=False)
    col = f.names.index("F0semitoneFrom27.5Hz_sma3nz_amean")
    expected = 12 * np.log2(F0_HZ / 27.5)  # 34.35
    assert f.x[0, col] == pytest.approx(expected, abs=0.5)  # 16 kHz file
    assert f.x[2, col] == pytest.approx(expected, abs=0.5)  # 44.1 kHz 24-bit file
    assert f.x[3, col] == pytest.approx(12 * np.log2(150 / 27.5), abs=0.5)


def test_mfcc_stats_are_the_frontend_mfcc_mean_and_std(corpus):
    cfg = FeatureConfig()
    f = utterance_functionals(corpus, "mfcc_stats", cfg=cfg, cache_dir=False)
    wave = torch.from_numpy(sf.read(str(corpus.utterances[0].path), dtype="float32")[0])[None]
    m = fn.compute_features(wave, cfg, torch.device("cpu"))[0].double()  # [39, T]
    ref = torch.cat([m.mean(1), m.std(1, unbiased=False)]).float().numpy()
    np.testing.assert_allclose(f.x[0], ref, rtol=1e-5, atol=1e-4)
    assert f.names[0] == "mfcc0_mean" and f.names[39] == "mfcc0_std"


def test_time_span_is_honoured(tmp_path):
    """An utterance cut out of a longer file equals the same audio as a file of its own."""
    sr = 16000
    voice, noise = _voice(sr, 1.0), _noise(sr, 1.0, 3)
    sf.write(str(tmp_path / "long.wav"), np.concatenate([voice, noise]), sr, subtype="FLOAT")
    sf.write(str(tmp_path / "first.wav"), voice, sr, subtype="FLOAT")
    utts = [
        Utterance(path=tmp_path / "long.wav", label="a", subject="s", domain="t", start=0.0, end=1.0),
        Utterance(path=tmp_path / "first.wav", label="a", subject="s", domain="t"),
        Utterance(path=tmp_path / "long.wav", label="a", subject="s", domain="t"),
    ]
    corpus = Corpus(name="cut", root=tmp_path, classes=("a",), utterances=utts)
    for kind in ("mfcc_stats", "egemaps"):
        f = utterance_functionals(corpus, kind, cache_dir=False)
        assert f.keys[0].endswith("@0.0-1.0") and f.keys[0] != f.keys[2]
        np.testing.assert_allclose(f.x[0], f.x[1], rtol=1e-5, atol=1e-4)
        assert not np.allclose(f.x[0], f.x[2])


def test_keys_map_segments_to_rows(corpus):
    """SegmentSet.utterance_keys and UtteranceFeatures.keys name utterances alike."""
    segs = extract_segments(corpus, FeatureConfig(), cache_dir=False)
    f = utterance_functionals(corpus, "mfcc_stats", cache_dir=False)
    rows = f.rows(segs.utterance_keys[i] for i in segs.utterance.tolist())
    assert rows.shape == (len(segs),)
    assert (f.y[rows] == segs.y.numpy()).all()
    with pytest.raises(ValueError, match="no mfcc_stats row"):
        f.rows([str(corpus.utterances[4].path)])  # the corrupt file
    sub = f.subset(np.array([False, True, False, True]))
    assert sub.keys == (f.keys[1], f.keys[3]) and sub.x.shape == (2, 78)


def test_silent_and_too_short_are_skipped(tmp_path):
    sr = 16000
    sf.write(str(tmp_path / "ok.wav"), _voice(sr, 1.0), sr)
    sf.write(str(tmp_path / "silent.wav"), np.zeros(sr, np.float32), sr)
    sf.write(str(tmp_path / "short.wav"), _voice(sr, 0.2), sr)
    utts = [Utterance(path=tmp_path / n, label="a", subject="s", domain="t") for n in ("ok.wav", "silent.wav", "short.wav")]
    corpus = Corpus(name="t", root=tmp_path, classes=("a",), utterances=utts)
    f = utterance_functionals(corpus, "egemaps", cache_dir=False)
    assert len(f) == 1
    reasons = {os.path.basename(s.path): s.reason for s in f.skipped}
    assert reasons.keys() == {"silent.wav", "short.wav"}
    assert "silent" in reasons["silent.wav"] and "too short" in reasons["short.wav"]


def test_nonfinite_values_are_imputed_by_column_median_and_all_nan_rows_skipped(corpus, monkeypatch):
    real = fn._make_extractor
    calls = {"n": 0}

    def patched(kind, cfg):
        ex = real(kind, cfg)

        def fake(wave):
            calls["n"] += 1
            row = ex.fn(wave).copy()
            if calls["n"] == 2:
                row[[0, 5]] = np.nan  # two bad cells
            if calls["n"] == 3:
                row[1] = np.inf
            if calls["n"] == 4:
                row[:] = np.nan  # nothing usable: skipped, not imputed
            return row

        return fn._Extractor(ex.names, fake)

    monkeypatch.setattr(fn, "_make_extractor", patched)
    f = utterance_functionals(corpus, "mfcc_stats", cache_dir=False)
    assert np.isfinite(f.x).all() and f.x.shape == (3, 78)
    keys = [u.key for u in corpus.utterances]
    assert f.keys == (keys[0], keys[1], keys[2])
    assert f.imputed == {keys[1]: 2, keys[2]: 1}
    # Column 0's finite values are rows 0 and 2: the median of two is their mean.
    assert f.x[1, 0] == pytest.approx((f.x[0, 0] + f.x[2, 0]) / 2, rel=1e-6)
    assert f.x[2, 1] == pytest.approx((f.x[0, 1] + f.x[1, 1]) / 2, rel=1e-6)
    skipped = {s.path: s.reason for s in f.skipped}
    assert "NaN" in skipped[str(corpus.utterances[3].path)]


def test_cache_hit_does_not_extract_again(corpus, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = utterance_functionals(corpus, "egemaps", cache_dir=cache)
    path = fn.functionals_cache_path(corpus, "egemaps", FeatureConfig(), cache)
    assert path.is_file() and path.parent == cache / "functionals"
    assert not list(path.parent.glob("*.tmp"))

    def boom(*args, **kwargs):
        raise AssertionError("extractor called on a cache hit")

    monkeypatch.setattr(fn, "_make_extractor", boom)
    second = utterance_functionals(corpus, "egemaps", cache_dir=cache)
    np.testing.assert_array_equal(first.x, second.x)
    assert second.keys == first.keys and second.names == first.names
    assert second.skipped == first.skipped and second.y.tolist() == first.y.tolist()
    # Settings an openSMILE kind does not use share the entry; ones it uses do not.
    assert fn.functionals_cache_path(corpus, "egemaps", FeatureConfig(n_mfcc=20), cache) == path
    assert fn.functionals_cache_path(corpus, "egemaps", FeatureConfig(sample_rate=22050), cache) != path
    assert fn.functionals_cache_path(corpus, "compare", FeatureConfig(), cache) != path
    with pytest.raises(AssertionError, match="cache hit"):  # another kind is not cached yet
        utterance_functionals(corpus, "compare", cache_dir=cache)


def test_cache_key_follows_files_and_opensmile_version(corpus, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    before = fn.functionals_cache_path(corpus, "egemaps", FeatureConfig(), cache)
    st = os.stat(corpus.utterances[1].path)
    os.utime(corpus.utterances[1].path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    touched = fn.functionals_cache_path(corpus, "egemaps", FeatureConfig(), cache)
    assert touched != before
    monkeypatch.setattr(fn, "_opensmile_version", lambda: "9.9.9")
    assert fn.functionals_cache_path(corpus, "egemaps", FeatureConfig(), cache) != touched


def test_corrupt_cache_entry_is_rebuilt(corpus, tmp_path):
    cache = tmp_path / "cache"
    first = utterance_functionals(corpus, "mfcc_stats", cache_dir=cache)
    path = fn.functionals_cache_path(corpus, "mfcc_stats", FeatureConfig(), cache)
    path.write_bytes(b"truncated")
    again = utterance_functionals(corpus, "mfcc_stats", cache_dir=cache)
    np.testing.assert_array_equal(first.x, again.x)


def test_unknown_kind_names_the_known_ones(corpus):
    with pytest.raises(ValueError, match="egemaps, compare, mfcc_stats"):
        utterance_functionals(corpus, "gemaps", cache_dir=False)


def test_nothing_usable_raises_naming_the_root(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"junk")
    corpus = Corpus(name="t", root=tmp_path, classes=("a",),
                    utterances=[Utterance(path=tmp_path / "bad.wav", label="a", subject="s", domain="t")])
    with pytest.raises(ValueError, match=str(tmp_path)):
        utterance_functionals(corpus, "egemaps", cache_dir=False)


def test_a_functional_kind_feeds_one_segment_per_utterance_from_the_baselines_cache(corpus, tmp_path):
    """features.kind = "egemaps": x [U, 88, 1], one row per usable utterance, equal to the
    baseline row's functionals of the same files and read from the same cache entry."""
    cache = tmp_path / "cache"
    segs = extract_segments(corpus, FeatureConfig(kind="egemaps"), cache_dir=cache)
    f = utterance_functionals(corpus, "egemaps", cache_dir=False)  # computed afresh
    assert segs.x.shape == (4, 88, 1) and segs.x.dtype == torch.float32
    assert segs.utterance.tolist() == [0, 1, 2, 3]
    assert segs.utterance_keys == f.keys
    np.testing.assert_array_equal(segs.x[:, :, 0].numpy(), f.x)
    assert segs.y.tolist() == f.y.tolist()
    assert [segs.subjects[i] for i in segs.subject.tolist()] == list(f.subjects)
    # the corrupt file and its subject are listed, as extract_segments lists them for MFCC
    assert [s.reason for s in segs.skipped][-1] == "subject s9: no usable audio"
    # one cache entry, the baseline's (functionals/), none among the MFCC segment entries
    entries = sorted(p.relative_to(cache).parts[0] for p in cache.rglob("*.pt"))
    assert entries == ["functionals"]
    assert fn.functionals_cache_path(corpus, "egemaps", FeatureConfig(), cache).is_file()


def test_functional_kinds_refuse_what_one_vector_cannot_honour():
    with pytest.raises(DomadaptError, match="normalize='utterance' with kind='egemaps'"):
        FeatureConfig(kind="egemaps", normalize="utterance")
    with pytest.raises(DomadaptError, match="waveform_normalize=true with kind='mfcc_stats'"):
        FeatureConfig(kind="mfcc_stats", waveform_normalize=True)


def test_a_backbone_that_needs_frames_is_refused_with_a_functional_kind():
    from domadapt.recipe_loader import build_config

    recipe = {"features": {"kind": "egemaps"}, "methods": [{"name": "baseline"}, {"name": "target_only"}]}
    with pytest.raises(DomadaptError) as err:
        build_config(recipe, overrides={"model.backbone": "tim"})
    assert str(err.value) == (
        "methods[1] (target_only): backbone = 'tim' needs frames, but features.kind = 'egemaps' gives one "
        'vector per utterance ([N, D, 1]); use backbone = "mlp" (or a backbone with reads_vectors = True)'
    )
    cfg = build_config(recipe, overrides={"model.backbone": "mlp"})
    assert cfg.features.one_vector_per_utterance
    # a baseline row trains no backbone: alone, it passes with TIM
    build_config({"features": {"kind": "egemaps"}, "methods": [{"name": "baseline"}]}, overrides={"model.backbone": "tim"})
