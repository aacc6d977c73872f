"""Window policy and SegmentSet bookkeeping (no audio files involved)."""

import numpy as np
import pytest
import torch

from domadapt.errors import DomadaptError
from domadapt.features import FeatureConfig, SegmentSet, cut_windows, window_starts

SR = 1000  # a low rate keeps the arithmetic readable: 1 s = 1000 samples
CFG = FeatureConfig(sample_rate=SR, n_fft=64, hop_length=16, n_mels=40, n_mfcc=13)


@pytest.mark.parametrize(
    "seconds, expected_starts_s",
    [
        (7.0, [0, 3, 6]),  # two full windows + a 1 s tail >= min_seconds, padded
        (6.0, [0, 3]),  # exact fit: no tail
        (6.2, [0, 3]),  # 0.2 s tail < min_seconds 0.5: dropped
        (6.5, [0, 3, 6]),  # 0.5 s tail: kept
        (3.0, [0]),
        (2.0, [0]),  # shorter than a window: one padded window
        (0.5, [0]),
        (0.3, []),  # below min_seconds: no window (the front-end skips it with a reason)
    ],
)
def test_window_counts_default_policy(seconds, expected_starts_s):
    starts, n_full = window_starts(int(seconds * SR), CFG)
    assert starts.tolist() == [s * SR for s in expected_starts_s]
    expected_full = int((seconds - 3.0) // 3.0) + 1 if seconds >= 3.0 else 0
    assert n_full == expected_full


def test_drop_policy_drops_tails_and_short_utterances():
    cfg = CFG.replace(pad="drop")
    assert window_starts(7 * SR, cfg)[0].tolist() == [0, 3 * SR]
    assert window_starts(2 * SR, cfg)[0].tolist() == []


def test_overlapping_windows():
    cfg = CFG.replace(segment_hop_seconds=1.0)
    starts, n_full = window_starts(int(5.5 * SR), cfg)
    # full windows at 0,1,2 s (end 5 s); the 0.5 s of new audio gets a partial window at 3 s
    assert starts.tolist() == [0, 1000, 2000, 3000] and n_full == 3


def test_max_segments_spreads_over_the_utterance():
    cfg = CFG.replace(max_segments_per_utterance=3)
    starts, n_full = window_starts(31 * SR, cfg)  # 10 full windows + 1 s tail = 11 windows
    assert starts.tolist() == [0, 15 * SR, 30 * SR]
    assert n_full == 2  # the last kept one is the padded tail


def test_cut_windows_zeros_and_repeat():
    wave = torch.arange(1, 7001, dtype=torch.float32)  # 7 s, no zeros inside
    w = cut_windows(wave, CFG)
    assert w.shape == (3, 3000)
    assert torch.equal(w[1], wave[3000:6000])
    assert torch.equal(w[2, :1000], wave[6000:]) and (w[2, 1000:] == 0).all()
    r = cut_windows(wave, CFG.replace(pad="repeat"))
    assert torch.equal(r[2], wave[6000:].repeat(3))
    short = cut_windows(torch.ones(100), CFG)  # 0.1 s < min_seconds
    assert short.shape == (0, 3000)


def test_slice_copies_and_index_gather_cut_the_same_windows():
    from domadapt.features.segments import _copy_windows, _index_windows

    flat = torch.arange(1, 10_001, dtype=torch.float32)  # utterances end to end, no zeros
    start = torch.tensor([0, 3000, 6500, 9000])
    valid = torch.tensor([3000, 3000, 2000, 1000])  # the last two are padded tails
    copied = _copy_windows(flat, start, valid, CFG.segment_samples)
    assert torch.equal(copied, _index_windows(flat, start, valid, CFG))
    assert torch.equal(copied[2, :2000], flat[6500:8500]) and (copied[2, 2000:] == 0).all()
    assert _copy_windows(flat, start[:0], valid[:0], 3000).shape == (0, 3000)


def _toy_set():
    # 6 windows: utterances 0,0,1,2,2,2 ; subjects a,a,a,b,b,b ; labels by utterance
    return SegmentSet(
        x=torch.arange(6 * 2 * 3, dtype=torch.float32).reshape(6, 2, 3),
        y=torch.tensor([0, 0, 1, 1, 1, 1]),
        subject=torch.tensor([0, 0, 0, 1, 1, 1]),
        utterance=torch.tensor([0, 0, 1, 2, 2, 2]),
        classes=("hc", "mdd"),
        subjects=("a", "b"),
        utterance_keys=("u0", "u1", "u2"),
        domain="toy",
        synthetic=True,
    )


def test_subset_keeps_tables_and_accepts_masks():
    s = _toy_set()
    sub = s.subset(np.array([5, 0]))
    assert len(sub) == 2 and sub.subjects == s.subjects and sub.utterance_keys == s.utterance_keys
    assert sub.utterance.tolist() == [2, 0] and torch.equal(sub.x[0], s.x[5]) and sub.x.is_contiguous()
    masked = s.subset(s.subject == 1)
    assert masked.y.tolist() == [1, 1, 1]
    assert s.subset([]).x.shape == (0, 2, 3)


def test_subject_labels_majority_ties_and_absent():
    s = _toy_set()
    assert s.subject_labels().tolist() == [0, 1]  # a: 2x hc vs 1x mdd; b: mdd
    tie = s.subset([1, 2, 3])  # a: one hc, one mdd -> lower index wins
    assert tie.subject_labels().tolist() == [0, 1]
    only_b = s.subset([3])
    assert only_b.subject_labels().tolist() == [-1, 1]


def test_config_replace_and_validation():
    cfg = FeatureConfig()
    assert cfg.frames == 1 + 48000 // 512 == 94 and cfg.channels == 39
    assert cfg.replace(kind="logmel").channels == 128
    with pytest.raises(DomadaptError, match="valid keys:.*n_mfcc"):
        cfg.replace(n_mfc=13)
    with pytest.raises(DomadaptError, match="expected one of zeros, repeat, drop"):
        cfg.replace(pad="mirror")
    with pytest.raises(DomadaptError, match="max_segments_per_utterance"):
        cfg.replace(max_segments_per_utterance=0)
