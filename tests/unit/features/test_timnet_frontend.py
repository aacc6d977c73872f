"""TIM-Net's front-end preset: one centred clip per utterance at 22,050 Hz, raw MFCCs
(official Code/extract_feature.py: librosa.load, centre pad/crop, librosa.feature.mfcc)."""

from __future__ import annotations

from types import SimpleNamespace

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from domadapt.recipe_loader import build_config, load_recipe
from domadapt.corpora.base import Corpus, Utterance
from domadapt.errors import DomadaptError
from domadapt.run import build_fold
from domadapt.features import FeatureConfig, cut_windows, extract_segments
from domadapt.features.config import TIMNET_CLIP_SAMPLES
from domadapt.splits import build_splitter

PAPER = build_config(load_recipe("timnet_paper_casia")).features


def official_clip(signal: np.ndarray, length: int) -> np.ndarray:
    """extract_feature.py's get_feature, the padding / cropping part, restated."""
    if len(signal) < length:
        pad = length - len(signal)
        return np.pad(signal, (pad // 2, pad // 2 + pad % 2))
    start = (len(signal) - length) // 2
    return signal[start : start + length]


def test_frames_per_corpus_with_the_official_hop():
    # librosa's centred frames: 1 + samples // 512 (README of the official code: 172 for CASIA)
    expected = {"casia": 172, "emodb": 188, "emovo": 188, "iemocap": 606, "ravdess": 215, "savee": 254}
    assert set(TIMNET_CLIP_SAMPLES) == set(expected)
    for corpus, frames in expected.items():
        cfg = PAPER.for_corpus(corpus)
        assert cfg.clip_samples == TIMNET_CLIP_SAMPLES[corpus]
        assert cfg.frames == 1 + TIMNET_CLIP_SAMPLES[corpus] // 512 == frames
    assert (PAPER.sample_rate, PAPER.n_mfcc, PAPER.standardize, PAPER.stft_pad_mode) == (22050, 39, False, "reflect")


def test_unknown_corpus_and_bad_values_are_one_line_errors():
    with pytest.raises(DomadaptError, match="no clip length for corpus 'modma'"):
        PAPER.for_corpus("modma")
    with pytest.raises(DomadaptError, match="features.clip_samples='paper'"):
        FeatureConfig(clip_samples="paper")
    with pytest.raises(DomadaptError, match="features.clip_samples=0"):
        FeatureConfig(clip_samples=0)
    with pytest.raises(DomadaptError, match="pads with zeros"):
        FeatureConfig(clip_samples=100, pad="repeat")


@pytest.mark.parametrize("n", [7, 8, 10, 13, 3])
def test_centre_pad_and_crop_as_the_official_code(n):
    cfg = FeatureConfig(clip_samples=10, min_seconds=0.0)
    wave = torch.arange(1, n + 1, dtype=torch.float32)
    got = cut_windows(wave, cfg)
    assert got.shape == (1, 10)
    assert got[0].tolist() == official_clip(wave.numpy(), 10).tolist()


def test_clips_are_raw_librosa_mfccs_of_the_centred_signal(tmp_path):
    sr = 22050
    rng = np.random.default_rng(0)
    lengths = {"short": 3000, "long": 9001}
    utterances = []
    for name, n in lengths.items():
        t = np.arange(n) / sr
        signal = (0.3 * np.sin(2 * np.pi * 180 * t) + 0.01 * rng.standard_normal(n)).astype(np.float32)
        sf.write(tmp_path / f"{name}.wav", signal, sr, subtype="FLOAT")
        utterances.append(Utterance(path=tmp_path / f"{name}.wav", label="a", subject=name, domain="toy"))
    corpus = Corpus(name="toy", root=tmp_path, classes=("a",), utterances=utterances)
    cfg = FeatureConfig(sample_rate=sr, clip_samples=6000, standardize=False, stft_pad_mode="reflect", min_seconds=0.0)
    segs = extract_segments(corpus, cfg, cache_dir=False)
    assert segs.x.shape == (2, 39, 1 + 6000 // 512)
    for row, name in enumerate(lengths):
        signal = sf.read(tmp_path / f"{name}.wav", dtype="float32")[0]
        # librosa 0.8.1 (the official requirement) reflect-padded its centred frames
        ref = librosa.feature.mfcc(y=official_clip(signal, 6000), sr=sr, n_mfcc=39, pad_mode="reflect")
        np.testing.assert_allclose(segs.x[row].numpy(), ref, atol=5e-3)


def test_raw_features_reach_the_fold_unstandardised():
    x = torch.randn(40, 39, 8) * 30 + 100
    segs = SimpleNamespace(
        x=x, y=torch.arange(40) % 2, subject=torch.arange(40) % 4, utterance=torch.arange(40), classes=("a", "b")
    )
    domains = SimpleNamespace(target_segments=segs, sources=[], source_segments=[], shared_labels=True)
    fold = next(iter(build_splitter("utterance_kfold", n_splits=4, seed=0, allow_subject_overlap=True).split(
        segs.y.numpy(), segs.subject.numpy(), utterances=segs.utterance.numpy())))
    raw = build_fold(domains, fold, val_fraction=0.1, seed=0, device=torch.device("cpu"), standardize_features=False)
    assert torch.equal(raw.target_test.x, x[torch.as_tensor(fold.test)])
    scaled = build_fold(domains, fold, val_fraction=0.1, seed=0, device=torch.device("cpu"))
    assert abs(scaled.target_train.x.mean().item()) < 1e-4  # the default still z-scores
    # the utterance split keeps every speaker in training: validation is carved by utterance
    assert set(raw.target_train.groups.tolist()) == {0, 1, 2, 3}


def test_cache_key_follows_the_clip_not_the_standardisation(tmp_path):
    from domadapt.features.cache import cache_key

    corpus = Corpus(name="toy", root=tmp_path, classes=("a",), utterances=[])
    base = FeatureConfig()
    assert cache_key(corpus, base) == cache_key(corpus, base.replace(standardize=False))  # applied after the cache
    assert cache_key(corpus, base) != cache_key(corpus, base.replace(clip_samples=88_000))
