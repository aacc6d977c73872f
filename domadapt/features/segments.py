"""Fixed-length windows: cutting one utterance into windows, and the set of all windows.

Window policy (``FeatureConfig``: ``segment_seconds`` = W, ``segment_hop_seconds`` = H,
``pad``, ``min_seconds`` = M, all applied at the target sample rate):

* an utterance of length L >= W gets the full windows starting at 0, H, 2H, ... that fit
  (``1 + (L - W) // H`` of them); if the audio after the last full window (the *tail*) is
  at least M long, one more window starts at the next hop and is padded to W;
* an utterance with M <= L < W gets one window, padded to W;
* ``pad="zeros"`` pads with zeros (TIM-Net's choice), ``"repeat"`` tiles the audio,
  ``"drop"`` drops partial tails, and an utterance shorter than one window is then skipped;
* ``max_segments_per_utterance`` keeps that many windows spread evenly over the utterance;
* with ``clip_samples`` (TIM-Net's front-end) each utterance is one window of that length
  instead, its centre: a longer utterance is cropped to its middle, a shorter one padded
  with zeros on both sides (the odd sample on the right), as TIM-Net's extract_feature.py.

So with the defaults (W = H = 3 s, M = 0.5 s): 7 s -> 3 windows (0-3, 3-6, 6-7 padded),
6.2 s -> 2 windows (the 0.2 s tail is dropped), 2 s -> 1 padded window, 0.3 s -> skipped.
Every utterance at least M long is represented by >= 1 window unless ``pad="drop"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from domadapt.corpora.base import SkippedFile
from domadapt.features.config import FeatureConfig


def window_starts(n_samples: int, cfg: FeatureConfig) -> tuple[np.ndarray, int]:
    """Start samples of the windows of an ``n_samples``-long utterance, and how many of
    them (the first ones) are full. The last window may be partial (to be padded).

    Returns ``(starts [W] int64, n_full)``; ``W == 0`` means the utterance gets no window
    (shorter than ``min_seconds``, or shorter than one window with ``pad="drop"``).
    Applies ``max_segments_per_utterance``.
    """
    seg, hop, min_len = cfg.segment_samples, cfg.segment_hop_samples, cfg.min_samples
    if n_samples < max(min_len, 1):
        return np.zeros(0, dtype=np.int64), 0
    if cfg.clip_samples is not None:  # one centred clip: cropped (start > 0) or padded (start 0)
        return np.array([max(0, (n_samples - seg) // 2)], dtype=np.int64), int(n_samples >= seg)
    n_full = 1 + (n_samples - seg) // hop if n_samples >= seg else 0
    starts = np.arange(n_full, dtype=np.int64) * hop
    covered = int(starts[-1]) + seg if n_full else 0
    tail = n_samples - covered
    partial_start = n_full * hop
    # A partial window must add >= min_seconds of new audio and hold >= min_seconds
    # (the two differ only when windows overlap or leave gaps).
    enough = max(min_len, 1)
    wants_partial = n_full == 0 or (tail >= enough and n_samples - partial_start >= enough)
    if wants_partial and cfg.pad != "drop":
        starts = np.append(starts, partial_start)
    cap = cfg.max_segments_per_utterance
    if cap is not None and len(starts) > cap:
        keep = np.unique(np.round(np.linspace(0, len(starts) - 1, cap)).astype(np.int64))
        starts = starts[keep]
        n_full = int((keep < n_full).sum())
    return starts, n_full


def window_plan(
    lengths: list[int] | np.ndarray, cfg: FeatureConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows of several utterances of ``lengths`` samples (at the target rate).

    Returns ``(owner, start, valid)``, each ``[W]`` int64: the utterance each window comes
    from (position in ``lengths``), its start sample within that utterance, and how many of
    its ``segment_samples`` are real audio (the rest is padding).
    """
    seg = cfg.segment_samples
    per_utt = [window_starts(int(n), cfg)[0] for n in lengths]  # a loop over files, not samples
    counts = np.array([len(s) for s in per_utt], dtype=np.int64)
    owner = np.repeat(np.arange(len(per_utt), dtype=np.int64), counts)
    start = np.concatenate(per_utt) if per_utt else np.zeros(0, dtype=np.int64)
    valid = np.minimum(seg, np.asarray(lengths, dtype=np.int64)[owner] - start)
    return owner, start.astype(np.int64), valid


def gather_windows(
    flat: torch.Tensor, start: torch.Tensor, valid: torch.Tensor, cfg: FeatureConfig
) -> torch.Tensor:
    """Cut windows out of ``flat`` [S] (utterances laid end to end) in one gather.

    ``start`` [W] is each window's first sample in ``flat`` and ``valid`` [W] its number of
    real samples; the rest is zeros (``pad="zeros"``/``"drop"``) or the window's own audio
    tiled (``"repeat"``). The real samples start the window, except for a centred clip
    (``clip_samples``), where they sit in its middle. Returns ``[W, segment_samples]`` on
    ``flat``'s device.
    """
    centre = cfg.clip_samples is not None
    if cfg.pad != "repeat" and flat.device.type == "cpu":
        return _copy_windows(flat, start, valid, cfg.segment_samples, centre=centre)
    return _index_windows(flat, start, valid, cfg)


def _lead(seg: int, valid: torch.Tensor, centre: bool) -> torch.Tensor:
    """Zeros before the real samples of each window: half the padding of a centred clip."""
    return (seg - valid) // 2 if centre else torch.zeros_like(valid)


def _index_windows(flat: torch.Tensor, start: torch.Tensor, valid: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """One gather with a ``[W, segment_samples]`` index: one kernel on a GPU."""
    seg = cfg.segment_samples
    offs = torch.arange(seg, device=flat.device)
    start = start.to(flat.device).unsqueeze(1)
    valid = valid.to(flat.device).unsqueeze(1)
    if cfg.pad == "repeat":
        return flat[start + offs % valid]
    lead = _lead(seg, valid, cfg.clip_samples is not None)
    idx = (start + offs - lead).clamp(0, flat.shape[0] - 1)
    return torch.where((offs >= lead) & (offs < lead + valid), flat[idx], flat.new_zeros(()))


def _copy_windows(
    flat: torch.Tensor, start: torch.Tensor, valid: torch.Tensor, seg: int, *, centre: bool = False
) -> torch.Tensor:
    """Zero-padded windows by slice copies: on a CPU ~15x faster than the index gather, which
    must build a 2 MB int64 index for 5 windows of 48,000 samples (64-110 us vs 1.0-2.0 ms;
    benchmarks/profile_frontend.py)."""
    out = flat.new_zeros((len(start), seg))
    lead = _lead(seg, valid, centre)
    for row, (first, n, pad) in enumerate(zip(start.tolist(), valid.tolist(), lead.tolist())):
        out[row, pad : pad + n] = flat[first : first + n]
    return out


def cut_windows(wave: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """The windows of one utterance ``wave`` ``[S]`` as ``[W, segment_samples]`` (same
    device and dtype; ``W`` may be 0), padded per ``cfg.pad``."""
    _, start, valid = window_plan([int(wave.shape[0])], cfg)
    if len(start) == 0:
        return wave.new_zeros((0, cfg.segment_samples))
    return gather_windows(wave, torch.from_numpy(start), torch.from_numpy(valid), cfg)


def _as_index(idx: Any, n: int) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(idx) if not isinstance(idx, torch.Tensor) else idx)
    if t.dtype == torch.bool:
        if t.shape != (n,):
            raise IndexError(f"boolean mask of shape {tuple(t.shape)} for {n} segments")
        return t.nonzero().flatten()
    return t.to(torch.long).flatten()


@dataclass
class SegmentSet:
    """All windows of one corpus, with the bookkeeping that ties each to its utterance.

    Shapes: ``x`` [N, C, T] float32, CPU, contiguous (C = 39 for MFCC, T = cfg.frames);
    ``y`` [N] int64 index into ``classes``; ``subject`` [N] int64 index into ``subjects``;
    ``utterance`` [N] int64 index into ``utterance_keys``. ``classes`` is the corpus'
    label order (possibly with classes that have no segment); ``subjects`` and
    ``utterance_keys`` list only those with at least one segment. ``skipped`` lists the
    corpus loader's skips followed by the front-end's.
    """

    x: torch.Tensor
    y: torch.Tensor
    subject: torch.Tensor
    utterance: torch.Tensor
    classes: tuple[str, ...]
    subjects: tuple[str, ...]
    utterance_keys: tuple[str, ...]
    domain: str
    synthetic: bool = False
    skipped: list[SkippedFile] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, idx: Any) -> "SegmentSet":
        """Rows ``idx`` (int indices or a boolean mask; array, list or tensor). The name
        tables are kept whole, so indices keep meaning the same subject / utterance."""
        t = _as_index(idx, len(self))
        return SegmentSet(
            x=self.x.index_select(0, t).contiguous(),
            y=self.y.index_select(0, t),
            subject=self.subject.index_select(0, t),
            utterance=self.utterance.index_select(0, t),
            classes=self.classes,
            subjects=self.subjects,
            utterance_keys=self.utterance_keys,
            domain=self.domain,
            synthetic=self.synthetic,
            skipped=list(self.skipped),
        )

    def subject_labels(self) -> torch.Tensor:
        """``[len(subjects)]`` int64: each subject's majority class over its segments (ties
        go to the lower class index; -1 for a subject with no segment in this subset).
        The input of a subject-grouped stratified split."""
        counts = torch.zeros(len(self.subjects), len(self.classes), dtype=torch.long)
        counts.index_put_((self.subject, self.y), torch.ones_like(self.y), accumulate=True)
        labels = counts.argmax(dim=1)  # first maximum on ties
        return torch.where(counts.sum(dim=1) > 0, labels, torch.full_like(labels, -1))

    def summary(self) -> str:
        counts = torch.bincount(self.y, minlength=len(self.classes)).tolist()
        per_class = ", ".join(f"{c}={n}" for c, n in zip(self.classes, counts))
        return (
            f"{self.domain}: {len(self)} segments x {tuple(self.x.shape[1:])} from "
            f"{len(self.utterance_keys)} utterances, {len(self.subjects)} subjects ({per_class}); "
            f"{len(self.skipped)} skipped" + (" [synthetic]" if self.synthetic else "")
        )
