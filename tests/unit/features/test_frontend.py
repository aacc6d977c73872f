"""The front-end: librosa parity, shapes, bookkeeping, resampling, down-mix and bad input."""

import logging

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from domadapt.corpora.base import Corpus, Utterance
from domadapt.errors import DomadaptError
from domadapt.features import FeatureConfig, extract_segments, log_mel, mfcc

# Parity with librosa.feature.mfcc (float32, CPU): max abs difference of any coefficient.
# MFCCs of these clips span ~1000 units (c0 of a quiet clip is near -500), so this is ~5e-6
# of the range; measured ~1e-3.
PARITY_ATOL = 5e-3

CFG = FeatureConfig()


def speech_like(
    sr: int, seconds: float, *, seed: int = 0, peak: float = 0.3, harmonics: int = 20, noise: float = 0.02
) -> np.ndarray:
    """A gliding harmonic tone (f0 90-150 Hz, <= 3 kHz) with syllable-rate bursts and breath noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, harmonics + 1))
    envelope = np.clip(np.sin(2 * np.pi * 3.5 * t + seed), 0, None) ** 2
    wave = voiced * envelope + noise * rng.standard_normal(t.shape)
    return (peak * wave / np.abs(wave).max()).astype(np.float32)


def write(path, data, sr=16000, subtype="PCM_16"):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, subtype=subtype)
    return path


def corpus_of(root, items, classes=("hc", "mdd")):
    """``items``: (path, label, subject) triples."""
    utts = [Utterance(path=p, label=lab, subject=s, domain="toy") for p, lab, s in items]
    return Corpus(name="toy", root=root, classes=classes, utterances=utts)


def librosa_mfcc(rows: np.ndarray, sr: int) -> np.ndarray:
    # TIM-Net's exact call (librosa's defaults spelled out).
    return np.stack(
        [librosa.feature.mfcc(y=r, sr=sr, n_mfcc=39, n_fft=2048, hop_length=512, n_mels=128) for r in rows]
    )


# ---------------------------------------------------------------------------- parity


@pytest.mark.parametrize("sr", [16000, 22050])
def test_mfcc_matches_librosa(sr):
    rng = np.random.default_rng(1)
    n = 3 * sr
    half_silent = speech_like(sr, 3.0, seed=2)
    half_silent[n // 2 :] = 0  # exercises the per-clip top_db floor
    rows = np.stack(
        [
            speech_like(sr, 3.0, seed=0),
            0.01 * speech_like(sr, 3.0, seed=1),  # MODMA-quiet
            (0.1 * rng.standard_normal(n)).astype(np.float32),  # white noise
            half_silent,
        ]
    )
    cfg = CFG.replace(sample_rate=sr)
    ours = mfcc(torch.from_numpy(rows), cfg).numpy()
    ref = librosa_mfcc(rows, sr)
    assert ours.shape == ref.shape == (4, 39, 1 + n // 512)
    assert np.abs(ours - ref).max() < PARITY_ATOL
    # batching does not change a clip's numbers (top_db is per clip, not per batch)
    alone = mfcc(torch.from_numpy(rows[1:2]), cfg).numpy()
    np.testing.assert_allclose(alone[0], ours[1], atol=1e-4)


def test_logmel_matches_librosa():
    rows = np.stack([speech_like(16000, 3.0, seed=3), 0.01 * speech_like(16000, 3.0, seed=4)])
    ours = log_mel(torch.from_numpy(rows), CFG).numpy()
    ref = np.stack([librosa.power_to_db(librosa.feature.melspectrogram(y=r, sr=16000)) for r in rows])
    assert ours.shape == (2, 128, 94)
    assert np.abs(ours - ref).max() < PARITY_ATOL


def test_librosa_backend_agrees_with_torchaudio(tmp_path):
    items = [(write(tmp_path / f"{i}.wav", speech_like(16000, 4.0, seed=i)), "hc", f"s{i}") for i in range(2)]
    corpus = corpus_of(tmp_path, items)
    ta = extract_segments(corpus, CFG, cache_dir=False)
    lr = extract_segments(corpus, CFG.replace(backend="librosa"), cache_dir=False)
    assert ta.x.shape == lr.x.shape == (4, 39, 94)
    assert (ta.x - lr.x).abs().max() < PARITY_ATOL


# ---------------------------------------------------------------------------- shapes and bookkeeping


def test_shapes_and_bookkeeping(tmp_path):
    items = [
        (write(tmp_path / "a1.wav", speech_like(16000, 7.0, seed=0)), "mdd", "A"),  # -> 3 windows
        (write(tmp_path / "b1.wav", speech_like(16000, 2.0, seed=1)), "hc", "B"),  # -> 1 padded
        (write(tmp_path / "a2.wav", speech_like(16000, 3.0, seed=2)), "mdd", "A"),  # -> 1
    ]
    segs = extract_segments(corpus_of(tmp_path, items), CFG, cache_dir=False)
    assert segs.x.shape == (5, 39, 1 + 48000 // 512) and segs.x.dtype == torch.float32
    assert segs.x.is_contiguous() and segs.x.device.type == "cpu"
    assert segs.utterance_keys == tuple(str(p) for p, _, _ in items)
    assert segs.utterance.tolist() == [0, 0, 0, 1, 2]
    assert [segs.subjects[i] for i in segs.subject] == ["A", "A", "A", "B", "A"]
    assert [segs.classes[i] for i in segs.y] == ["mdd", "mdd", "mdd", "hc", "mdd"]
    assert segs.domain == "toy" and segs.skipped == [] and not segs.synthetic
    assert segs.subject_labels().tolist() == [1, 0]  # A: mdd, B: hc
    # the first window of the 7 s file is the MFCC of its first 3 s
    first3 = torch.from_numpy(sf.read(str(items[0][0]), dtype="float32")[0][:48000])
    torch.testing.assert_close(segs.x[0], mfcc(first3[None], CFG)[0])


def test_feature_batch_size_does_not_change_a_bit(tmp_path, monkeypatch):
    import domadapt.features.frontend as frontend

    items = [(write(tmp_path / f"u{i}.wav", speech_like(16000, 4.0 + i, seed=i)), "hc", f"S{i}") for i in range(6)]
    corpus = corpus_of(tmp_path, items)
    out = []
    for windows in (1, 5, 64):  # the CPU default is 5 windows per batch
        monkeypatch.setitem(frontend._BATCH_SAMPLES, "cpu", windows * CFG.segment_samples)
        out.append(extract_segments(corpus, CFG, cache_dir=False).x)
    assert out[0].shape[0] == 15  # 4..9 s: 2+2+2+3+3+3 windows, i.e. 3 batches of 5
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])


def test_logmel_kind_and_normalisation(tmp_path):
    items = [(write(tmp_path / f"{i}.wav", speech_like(16000, 6.0, seed=i)), "hc", f"s{i}") for i in range(2)]
    corpus = corpus_of(tmp_path, items)
    assert extract_segments(corpus, CFG.replace(kind="logmel"), cache_dir=False).x.shape == (4, 128, 94)
    utt = extract_segments(corpus, CFG.replace(normalize="utterance"), cache_dir=False)
    for u in range(2):
        frames = utt.x[utt.utterance == u].permute(1, 0, 2).reshape(39, -1)
        torch.testing.assert_close(frames.mean(1), torch.zeros(39), atol=1e-4, rtol=0)
        torch.testing.assert_close(frames.std(1, unbiased=False), torch.ones(39), atol=1e-3, rtol=0)
    whole = extract_segments(corpus, CFG.replace(normalize="corpus"), cache_dir=False).x
    torch.testing.assert_close(whole.mean(dim=(0, 2)), torch.zeros(39), atol=1e-4, rtol=0)


def test_waveform_normalize_removes_gain(tmp_path):
    wave = speech_like(16000, 3.0)
    items = [
        (write(tmp_path / "loud.wav", wave, subtype="FLOAT"), "hc", "a"),
        (write(tmp_path / "quiet.wav", 0.05 * wave, subtype="FLOAT"), "hc", "b"),
    ]
    corpus = corpus_of(tmp_path, items)
    off = extract_segments(corpus, CFG, cache_dir=False).x
    on = extract_segments(corpus, CFG.replace(waveform_normalize=True), cache_dir=False).x
    assert (off[0, 0] - off[1, 0]).abs().mean() > 10  # c0 tracks the level
    assert (on[0] - on[1]).abs().max() < 1e-2


# ---------------------------------------------------------------------------- rates and channels


@pytest.mark.parametrize("sr", [44100, 8000])
def test_resampled_to_target_rate(tmp_path, sr):
    # band-limited below 3 kHz and noise-free, so an 8 kHz recording carries the same content
    native = write(tmp_path / "native.wav", speech_like(16000, 3.0, noise=0.0), 16000, "FLOAT")
    other = write(tmp_path / f"at{sr}.wav", speech_like(sr, 3.0, noise=0.0), sr, "FLOAT")
    corpus = corpus_of(tmp_path, [(native, "hc", "a"), (other, "hc", "b")])
    segs = extract_segments(corpus, CFG, cache_dir=False)
    assert segs.x.shape == (2, 39, 94)
    # the same sound recorded at another rate gives nearly the same MFCCs (measured mean
    # abs diff 0.01 from 44.1 kHz, 0.06 from 8 kHz, on values spanning hundreds)
    assert (segs.x[0] - segs.x[1]).abs().mean() < 0.2


def test_stereo_is_downmixed(tmp_path):
    mono = speech_like(16000, 3.0)
    noise = np.random.default_rng(0).standard_normal(mono.shape).astype(np.float32) * 0.01
    left, right = mono + noise, mono - noise
    items = [
        (write(tmp_path / "mono.wav", mono, subtype="FLOAT"), "hc", "a"),
        (write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), subtype="FLOAT"), "hc", "b"),
    ]
    segs = extract_segments(corpus_of(tmp_path, items), CFG, cache_dir=False)
    assert segs.x.shape == (2, 39, 94)
    assert (segs.x[0] - segs.x[1]).abs().max() < 1e-2  # (L + R) / 2 == mono


# ---------------------------------------------------------------------------- bad input


def test_bad_files_are_skipped_with_reasons(tmp_path, caplog):
    good = [(write(tmp_path / f"ok{i}.wav", speech_like(16000, 3.0, seed=i)), "hc", "good") for i in range(3)]
    quiet = write(tmp_path / "quiet.wav", 0.01 * speech_like(16000, 3.0), subtype="PCM_24")  # MODMA-like
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF but not really a wave file" * 10)
    nan = speech_like(16000, 3.0)
    nan[100] = np.nan
    bad = {
        "unreadable": garbage,
        "zero-length": write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32)),
        "silent": write(tmp_path / "silent.wav", np.zeros(48000, dtype=np.float32)),
        "too short": write(tmp_path / "short.wav", speech_like(16000, 0.2)),
        "NaN": write(tmp_path / "nan.wav", nan, subtype="FLOAT"),
        "missing": tmp_path / "missing.wav",
    }
    items = good + [(quiet, "mdd", "quiet")] + [(p, "mdd", "bad") for p in bad.values()]
    with caplog.at_level(logging.WARNING, logger="domadapt"):
        segs = extract_segments(corpus_of(tmp_path, items), CFG, cache_dir=False)
    assert len(segs) == 4 and "quiet" in segs.subjects  # quiet is not silent
    reasons = {s.path: s.reason for s in segs.skipped}
    assert set(reasons) >= {str(p) for p in bad.values()}
    assert "unreadable" in reasons[str(garbage)]
    assert "zero-length" in reasons[str(bad["zero-length"])] or "no audio" in reasons[str(bad["zero-length"])]
    assert "silent" in reasons[str(bad["silent"])]
    assert "too short" in reasons[str(bad["too short"])]
    assert "NaN" in reasons[str(bad["NaN"])]
    assert "unreadable" in reasons[str(bad["missing"])]
    # the subject whose every file was bad is reported once, and is not among the subjects
    subject_skips = [s.reason for s in segs.skipped if s.reason.startswith("subject")]
    assert subject_skips == ["subject bad: no usable audio"]
    assert "bad" not in segs.subjects
    assert "silent" in caplog.text and "subject bad: no usable audio" in caplog.text


def test_drop_policy_skips_short_utterances(tmp_path):
    items = [
        (write(tmp_path / "long.wav", speech_like(16000, 4.0)), "hc", "a"),
        (write(tmp_path / "short.wav", speech_like(16000, 2.0)), "hc", "a"),
    ]
    segs = extract_segments(corpus_of(tmp_path, items), CFG.replace(pad="drop"), cache_dir=False)
    assert len(segs) == 1 and "pad='drop'" in segs.skipped[0].reason


def test_all_bad_corpus_raises_naming_root(tmp_path):
    silent = np.zeros(16000, dtype=np.float32)
    items = [(write(tmp_path / f"z{i}.wav", silent), "hc", f"s{i}") for i in range(2)]
    with pytest.raises(DomadaptError, match=f"at {tmp_path}.*none of its 2 utterances"):
        extract_segments(corpus_of(tmp_path, items), CFG, cache_dir=False)
    with pytest.raises(DomadaptError, match="no utterances"):
        extract_segments(corpus_of(tmp_path, []), CFG, cache_dir=False)


def test_unknown_label_is_an_error(tmp_path):
    items = [(write(tmp_path / "a.wav", speech_like(16000, 1.0)), "angry", "s")]
    with pytest.raises(DomadaptError, match="not among its classes"):
        extract_segments(corpus_of(tmp_path, items), CFG, cache_dir=False)


def test_cut_utterances_and_auto_device(tmp_path):
    path = write(tmp_path / "long.wav", speech_like(16000, 10.0))
    utts = [
        Utterance(path=path, label="hc", subject="p1", domain="daic", start=1.0, end=5.0),
        Utterance(path=path, label="hc", subject="p1", domain="daic", start=6.0, end=6.2),  # too short
    ]
    corpus = Corpus(name="daic", root=tmp_path, classes=("hc", "mdd"), utterances=utts)
    device = "cpu" if torch.cuda.is_available() else "auto"  # tests stay on CPU
    segs = extract_segments(corpus, CFG, device=device, cache_dir=False)
    assert len(segs) == 2 and segs.utterance_keys == (f"{path}@1.0-5.0",)
    assert segs.skipped[0].reason.endswith("[6.0-6.2 s]")


def test_mixed_rates_and_chunking_keep_corpus_order(tmp_path, monkeypatch):
    import domadapt.features.frontend as frontend

    specs = [
        (44100, 4.0, "mdd", "A"), (16000, 7.0, "hc", "B"), (44100, 2.0, "hc", "C"), (8000, 3.5, "mdd", "A")
    ]
    items = [
        (write(tmp_path / f"{i}.wav", speech_like(sr, sec, seed=i), sr, "FLOAT"), lab, subj)
        for i, (sr, sec, lab, subj) in enumerate(specs)
    ]
    corpus = corpus_of(tmp_path, items)
    whole = extract_segments(corpus, CFG, cache_dir=False)
    assert whole.utterance.tolist() == [0, 0, 1, 1, 1, 2, 3, 3]
    assert [whole.classes[i] for i in whole.y] == ["mdd"] * 2 + ["hc"] * 4 + ["mdd"] * 2
    assert [whole.subjects[i] for i in whole.subject] == ["A", "A", "B", "B", "B", "C", "A", "A"]
    # tiny chunks and feature batches (a flush per file, a batch per window) change nothing
    monkeypatch.setattr(frontend, "_CHUNK_SAMPLES", 20000)
    monkeypatch.setattr(frontend, "_BATCH_SAMPLES", {"cpu": 1})
    pieces = extract_segments(corpus, CFG, cache_dir=False)
    assert torch.equal(pieces.utterance, whole.utterance) and torch.equal(pieces.y, whole.y)
    torch.testing.assert_close(pieces.x, whole.x, atol=1e-3, rtol=0)


def test_packed_resampling_equals_one_by_one():
    import torchaudio

    from domadapt.features import resample_packed

    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) for n in (44100, 30000, 52000, 100)]
    out = [None] * len(waves)
    for flat, members, offsets, lengths in resample_packed(waves, 44100, CFG, torch.device("cpu")):
        for m, o, n in zip(members, offsets, lengths):
            out[m] = flat[o : o + n]
    one = torchaudio.transforms.Resample(44100, 16000)
    for w, got in zip(waves, out):
        ref = one(torch.from_numpy(w))
        assert got.shape == ref.shape
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------- custom extractors


class FrameEnergy(torch.nn.Module):
    """Log-energy and a learned projection of 20 ms frames: ``[B, S] -> [B, 3, S // 320]``."""

    deterministic = True

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(320, 2)
        self.calls = 0

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        frames = wave[:, : wave.shape[1] // 320 * 320].reshape(wave.shape[0], -1, 320)
        energy = frames.square().mean(-1, keepdim=True).add(1e-8).log()
        return torch.cat([energy, self.proj(frames)], dim=-1).transpose(1, 2)


CUSTOM = FeatureConfig(kind="custom")


def _two_files(tmp_path):
    items = [
        (write(tmp_path / "a.wav", speech_like(16000, 7.0, seed=0)), "mdd", "A"),  # 3 windows
        (write(tmp_path / "b.wav", speech_like(16000, 2.0, seed=1)), "hc", "B"),  # 1 padded
    ]
    return corpus_of(tmp_path, items), items


def test_custom_module_through_the_api_is_cached_when_deterministic(tmp_path):
    corpus, items = _two_files(tmp_path)
    torch.manual_seed(0)
    ex = FrameEnergy().train()
    segs = extract_segments(corpus, CUSTOM, extractor=ex, cache_dir=tmp_path / "cache")
    assert segs.x.shape == (4, 3, 150) and segs.x.dtype == torch.float32
    assert segs.utterance.tolist() == [0, 0, 0, 1]
    assert ex.training and ex.calls == 1  # one batch; its training mode given back
    first3 = torch.from_numpy(sf.read(str(items[0][0]), dtype="float32")[0][:48000])
    with torch.no_grad():
        torch.testing.assert_close(segs.x[0], ex(first3[None])[0])
    ex.calls = 0
    again = extract_segments(corpus, CUSTOM, extractor=ex, cache_dir=tmp_path / "cache")
    assert ex.calls == 0 and torch.equal(again.x, segs.x)  # read from the cache
    with torch.no_grad():
        ex.proj.bias.add_(1.0)  # other weights: another entry
    extract_segments(corpus, CUSTOM, extractor=ex, cache_dir=tmp_path / "cache")
    assert ex.calls == 1


def test_custom_callable_without_determinism_is_never_cached(tmp_path):
    corpus, _ = _two_files(tmp_path)
    calls = []

    def mean_frames(wave):
        calls.append(wave.shape)
        return wave.reshape(wave.shape[0], 1, -1, 480).mean(-1)  # [B, 1, 100]

    for _ in range(2):
        segs = extract_segments(corpus, CUSTOM, extractor=mean_frames, cache_dir=tmp_path / "cache")
    assert segs.x.shape == (4, 1, 100) and len(calls) == 2
    assert not (tmp_path / "cache").exists()


def test_registered_extractor_by_name_from_a_recipe(tmp_path):
    from domadapt.recipe_loader import build_config
    from domadapt.features import FEATURE_EXTRACTORS

    @FEATURE_EXTRACTORS.register("toy_frames")
    class ToyFrames(torch.nn.Module):
        """Mean of 30 ms frames, scaled; D = 1."""

        deterministic = True

        def __init__(self, *, sample_rate: int, scale: float = 2.0) -> None:
            super().__init__()
            self.hop = int(0.03 * sample_rate)
            self.scale = scale

        def forward(self, wave):
            n = wave.shape[1] // self.hop * self.hop
            return self.scale * wave[:, :n].reshape(wave.shape[0], 1, -1, self.hop).mean(-1)

    try:
        cfg = build_config({"features": {"kind": "custom", "model": "toy_frames"}}).features
        corpus, _ = _two_files(tmp_path)
        segs = extract_segments(corpus, cfg, cache_dir=False)
        assert segs.x.shape == (4, 1, 100)
        assert FEATURE_EXTRACTORS.doc("toy_frames") == "Mean of 30 ms frames, scaled; D = 1."
    finally:
        FEATURE_EXTRACTORS.unregister("toy_frames")
    with pytest.raises(DomadaptError, match="features.model='toy_frames': expected one of"):
        FeatureConfig(kind="custom", model="toy_frames")


def test_custom_extractor_errors(tmp_path):
    corpus, _ = _two_files(tmp_path)
    with pytest.raises(DomadaptError, match="features.kind is 'mfcc'; set kind='custom'"):
        extract_segments(corpus, CFG, extractor=FrameEnergy(), cache_dir=False)
    with pytest.raises(DomadaptError, match="kind='custom' needs an extractor"):
        extract_segments(corpus, CUSTOM, cache_dir=False)
    with pytest.raises(DomadaptError, match=r"expected features of shape \(4, D, T\).*got \(4, 48000\)"):
        extract_segments(corpus, CUSTOM, extractor=lambda w: w, cache_dir=False)
    with pytest.raises(DomadaptError, match=r"got \(4, 2, 1, 48000\)"):  # [B, L, D, T] is the SSL kind's only
        extract_segments(corpus, CUSTOM, extractor=lambda w: w[:, None, None].repeat(1, 2, 1, 1), cache_dir=False)
    with pytest.raises(DomadaptError, match="expected an nn.Module or a callable"):
        extract_segments(corpus, CUSTOM, extractor="FrameEnergy", cache_dir=False)
