"""Audio -> features: read, resample, window, and compute MFCC / log-mel in device batches.

The same pipeline feeds the model front-ends: ``kind = "ssl"`` (a frozen wav2vec 2.0 /
HuBERT / WavLM from a local checkpoint, ``domadapt.features.ssl``) and ``kind = "custom"``
(your extractor, ``domadapt.features.extractors``) get the same 16 kHz windows in device
batches in place of the MFCC computation.

The torchaudio path reproduces ``librosa.feature.mfcc(y=y, sr=sr, n_mfcc=39)`` (TIM-Net's
front-end, librosa's defaults): periodic Hann window, centred frames padded like librosa
(``stft_pad_mode``), power spectrogram, Slaney mel scale with Slaney area normalisation,
``power_to_db`` (ref 1, amin 1e-10) floored at ``max - top_db`` **per clip**, DCT-II ortho.
The power is taken as re^2 + im^2 of torchaudio's complex Spectrogram and fed to
torchaudio's MelScale (MelSpectrogram's own ``abs().pow(2)`` cost more than the FFT on CPU).
``tests/features/test_frontend.py`` checks it against librosa on speech-like, quiet
(peak 0.01), white-noise and half-silent clips at 16 and 22.05 kHz in float32: max abs
difference < 5e-3 on coefficients that span ~1000 units (measured <= 1e-3, i.e. ~1e-6 of
the range); log-mel dB to the same tolerance.

The top_db floor depends on the clip's maximum, so every clip of a batch gets its own
floor (``amplitude_to_DB`` on a ``[B, 1, F, T]`` tensor); all clips of a batch are
windows of exactly ``segment_samples``, so batching never pads and never changes numbers.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torchaudio

from domadapt.audio import read_audio
from domadapt.corpora.arrays import VectorCorpus
from domadapt.corpora.base import Corpus, SkippedFile, Utterance
from domadapt.device import resolve_device
from domadapt.errors import DomadaptError
from domadapt.features import cache as feature_cache
from domadapt.features.config import FeatureConfig
from domadapt.features.segments import SegmentSet, gather_windows, window_plan
from domadapt.progress import Progress

log = logging.getLogger("domadapt")

# Files are read and resampled in chunks of about this much audio (~32 MB of float32).
_CHUNK_SAMPLES = 1 << 23
# Window samples per feature batch. On CPU small batches win: the STFT of a few windows stays
# in the CPU cache, one of 64 windows does not (benchmarks/profile_frontend.py measures both).
# A GPU wants large batches.
_BATCH_SAMPLES = {"cpu": 1 << 18, "cuda": 1 << 24}
# The same for a model front-end (ssl / custom). CPU: see _BATCH_SAMPLES and
# benchmarks/bench_ssl.py. CUDA: a base SSL model's first convolution holds
# 512 x S/5 floats per window (6.5 MB for 3 s): 1 << 22 samples (87 windows) keep it < 1 GB.
_MODEL_BATCH_SAMPLES = {"cpu": 1 << 18, "cuda": 1 << 22}
# Below this peak a file is treated as silent. MODMA's real audio peaks near 0.01: not silent.
SILENCE_PEAK = 1e-6
AMIN = 1e-10  # librosa.power_to_db's floor before the log
_LOGGED_SKIPS = 20  # individual warnings before skips are only summarised


# ---------------------------------------------------------------------------- transforms


@functools.lru_cache(maxsize=16)
def _stft_and_mel(
    sample_rate: int, n_fft: int, hop_length: int, n_mels: int, pad_mode: str, device: torch.device
) -> tuple[torchaudio.transforms.Spectrogram, torchaudio.transforms.MelScale]:
    """torchaudio's MelSpectrogram in its two parts, with librosa's settings (the power
    spectrogram is formed between them, see the module docstring)."""
    spec = torchaudio.transforms.Spectrogram(
        n_fft=n_fft,
        hop_length=hop_length,
        window_fn=torch.hann_window,  # periodic, like scipy's get_window("hann", fftbins=True)
        power=None,  # complex
        center=True,
        pad_mode=pad_mode,
    )
    mel = torchaudio.transforms.MelScale(
        n_mels=n_mels,
        sample_rate=sample_rate,
        f_min=0.0,
        f_max=sample_rate / 2.0,
        n_stft=n_fft // 2 + 1,
        norm="slaney",
        mel_scale="slaney",
    )
    return spec.to(device), mel.to(device)


@functools.lru_cache(maxsize=16)
def _dct_matrix(n_mfcc: int, n_mels: int, device: torch.device) -> torch.Tensor:
    return torchaudio.functional.create_dct(n_mfcc, n_mels, norm="ortho").to(device)  # [n_mels, n_mfcc]


@functools.lru_cache(maxsize=16)
def _resampler(orig: int, new: int, device: torch.device) -> torchaudio.transforms.Resample:
    return torchaudio.transforms.Resample(orig, new).to(device)


def _device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cpu")
    return device if isinstance(device, torch.device) else resolve_device(str(device))


def log_mel(wave: torch.Tensor, cfg: FeatureConfig, device: str | torch.device | None = None) -> torch.Tensor:
    """Log-mel power spectrogram in dB, like ``librosa.power_to_db(melspectrogram(y))``.

    ``wave`` [B, S] float32 -> [B, n_mels, 1 + S // hop_length] on ``device`` (default: the
    device of ``wave``). The top_db floor is computed per clip.
    """
    dev = wave.device if device is None else _device(device)
    wave = wave.to(dev, torch.float32)
    spec, mel_scale = _stft_and_mel(
        cfg.sample_rate, cfg.n_fft, cfg.hop_length, cfg.n_mels, cfg.stft_pad_mode, dev
    )
    stft = spec(wave)  # [B, n_fft // 2 + 1, T] complex
    mel = mel_scale(stft.real.square() + stft.imag.square())  # power spectrogram -> [B, n_mels, T]
    # [B, 1, F, T]: amplitude_to_DB takes the max per item of a 4-D input (per clip).
    db = torchaudio.functional.amplitude_to_DB(mel.unsqueeze(1), 10.0, AMIN, 0.0, cfg.top_db)
    return db.squeeze(1)


def mfcc(wave: torch.Tensor, cfg: FeatureConfig, device: str | torch.device | None = None) -> torch.Tensor:
    """MFCC matching ``librosa.feature.mfcc(y, sr, n_mfcc, n_fft, hop_length, n_mels)``.

    ``wave`` [B, S] float32 -> [B, n_mfcc, 1 + S // hop_length] on ``device`` (default: the
    device of ``wave``). Parity with librosa: max abs diff < 5e-3 (see the module docstring).
    """
    db = log_mel(wave, cfg, device)
    dct = _dct_matrix(cfg.n_mfcc, cfg.n_mels, db.device)
    return torch.einsum("bft,fc->bct", db, dct).contiguous()


def librosa_features(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The reference: librosa on each row of ``wave`` [B, S] -> [B, C, T] float32.

    ``kind="mfcc"`` is exactly TIM-Net's call ``librosa.feature.mfcc(y=..., sr=..., n_mfcc=39)``
    (with our n_fft / hop / n_mels, which default to librosa's).
    """
    import librosa  # only the reference backend needs it

    out = []
    for row in np.asarray(wave, dtype=np.float32):
        mel = librosa.feature.melspectrogram(
            y=row, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
            n_mels=cfg.n_mels, pad_mode=cfg.stft_pad_mode,
        )
        db = librosa.power_to_db(mel, top_db=cfg.top_db)
        out.append(librosa.feature.mfcc(S=db, n_mfcc=cfg.n_mfcc) if cfg.kind == "mfcc" else db)
    return np.stack(out).astype(np.float32)


def compute_features(windows: torch.Tensor, cfg: FeatureConfig, device: torch.device) -> torch.Tensor:
    """``windows`` [B, S] -> features [B, C, T] on CPU, with the configured kind and backend."""
    if cfg.backend == "librosa":
        return torch.from_numpy(librosa_features(windows.cpu().numpy(), cfg))
    fn = mfcc if cfg.kind == "mfcc" else log_mel
    return fn(windows, cfg, device).cpu()


# ---------------------------------------------------------------------------- waveforms


def resample_packed(
    waves: list[np.ndarray], orig: int, cfg: FeatureConfig, device: torch.device
) -> Iterator[tuple[torch.Tensor, list[int], np.ndarray, np.ndarray]]:
    """Resample 1-D float32 waves sharing the rate ``orig`` to ``cfg.sample_rate``, packed.

    Yields ``(flat, members, offsets, lengths)`` per batch: ``flat`` [S] on ``device`` holds
    the resampled waves ``members`` (positions in ``waves``) starting at ``offsets`` with
    ``lengths`` samples each; what lies between them is padding. Waves of similar length are
    zero-padded at the end into one ``[B, L]`` batch and resampled in one call (the sinc
    resampler treats a signal's end as zeros, so the kept samples are unchanged); at the
    target rate already, all waves are laid end to end with one transfer. Batches are
    assembled in numpy, so the per-file work is plain memory copies.
    """
    lengths = [int(w.shape[0]) for w in waves]
    if orig == cfg.sample_rate:
        members = list(range(len(waves)))
        flat = torch.from_numpy(np.concatenate(waves)).to(device)
        sizes = np.asarray(lengths, dtype=np.int64)
        yield flat, members, np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64), sizes
        return
    resampler = _resampler(orig, cfg.sample_rate, device)
    groups: list[list[int]] = [[]]
    total = 0
    for i in sorted(range(len(waves)), key=lengths.__getitem__):
        padded = lengths[i] * (len(groups[-1]) + 1)  # ascending: the newest is the longest
        # Start a new batch when padding would waste over half of it or exceed the budget.
        if groups[-1] and (padded > 2 * (total + lengths[i]) or padded > _CHUNK_SAMPLES):
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += lengths[i]
    for group in groups:
        batch = np.zeros((len(group), lengths[group[-1]]), dtype=np.float32)
        for row, i in enumerate(group):
            batch[row, : lengths[i]] = waves[i]
        res = resampler(torch.from_numpy(batch).to(device))  # [B, L_out]
        out_len = np.array([-(-lengths[i] * cfg.sample_rate // orig) for i in group], dtype=np.int64)
        offsets = np.arange(len(group), dtype=np.int64) * res.shape[1]
        yield res.reshape(-1), group, offsets, np.minimum(out_len, res.shape[1])


def _standardize_wave(wave: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance (what Wav2Vec2's feature extractor calls normalisation)."""
    return ((wave - wave.mean()) / max(float(wave.std()), 1e-7)).astype(np.float32)


# ---------------------------------------------------------------------------- normalisation


def normalize_features(x: torch.Tensor, utterance: torch.Tensor, how: str) -> torch.Tensor:
    """Per-coefficient standardisation of ``x`` [N, C, T]: ``"utterance"`` with each
    utterance's mean/std over all its frames (``utterance`` [N] groups the windows),
    ``"corpus"`` with the mean/std over every frame given, ``"none"`` unchanged.
    Padded frames count like any other. ``x`` [N, L, D, T] (all layers of an SSL model) is
    standardised per (layer, coefficient)."""
    if how == "none" or x.shape[0] == 0:
        return x
    if x.dim() == 4:
        n, n_layers, d, t = x.shape
        return normalize_features(x.reshape(n, n_layers * d, t), utterance, how).reshape(n, n_layers, d, t)
    x64 = x.double()
    if how == "corpus":
        mean = x64.mean(dim=(0, 2), keepdim=True)
        std = x64.std(dim=(0, 2), keepdim=True, unbiased=False)
        return ((x64 - mean) / std.clamp_min(1e-5)).float()
    n_utt = int(utterance.max()) + 1
    sums = torch.zeros(n_utt, x.shape[1], dtype=torch.float64).index_add_(0, utterance, x64.sum(dim=2))
    sq = torch.zeros(n_utt, x.shape[1], dtype=torch.float64).index_add_(0, utterance, (x64 * x64).sum(dim=2))
    frames = (torch.bincount(utterance, minlength=n_utt) * x.shape[2]).double().unsqueeze(1)
    mean = sums / frames
    std = (sq / frames - mean * mean).clamp_min(0).sqrt().clamp_min(1e-5)
    return ((x64 - mean[utterance].unsqueeze(2)) / std[utterance].unsqueeze(2)).float()


# ---------------------------------------------------------------------------- extraction


def _where(u: Utterance) -> str:
    return "" if u.start is None and u.end is None else f" [{u.start}-{u.end} s]"


def _read_utterance(u: Utterance) -> tuple[np.ndarray, int]:
    return read_audio(u.path, u.start, u.end)


class _Extraction:
    """Streams one corpus through read -> resample -> window -> features, in chunks."""

    def __init__(
        self,
        corpus: Corpus,
        cfg: FeatureConfig,
        device: torch.device,
        progress: bool,
        featurize: Callable[[torch.Tensor], torch.Tensor],
        batch_samples: int,
        reader: Callable[[Utterance], tuple[np.ndarray, int]] | None = None,
        log_skips: bool = True,
    ):
        self.corpus, self.cfg, self.device, self.progress = corpus, cfg, device, progress
        self.reader = reader or _read_utterance  # (wave, rate) of an utterance; raises DomadaptError
        self.log_skips = log_skips  # False: the caller reports ``skipped`` itself
        self.featurize = featurize  # windows [B, S] on the device -> features on CPU
        self.batch_samples = batch_samples
        self.skipped: list[SkippedFile] = []
        self.pending: dict[int, list[tuple[int, np.ndarray]]] = collections.defaultdict(list)
        self.pending_samples = 0
        self.feats: list[torch.Tensor] = []
        self.seg_utt: list[np.ndarray] = []  # per chunk: corpus utterance index of each window

    def skip(self, u: Utterance, reason: str) -> None:
        reason = reason.removeprefix(f"{u.path}: ") + _where(u)
        self.skipped.append(SkippedFile(str(u.path), reason))
        if self.log_skips and len(self.skipped) <= _LOGGED_SKIPS:
            log.warning("skipping %s: %s", u.path, reason)

    def read(self, i: int, u: Utterance) -> None:
        try:
            wav, sr = self.reader(u)  # mono float32; raises on unreadable/NaN/empty
        except DomadaptError as exc:
            self.skip(u, str(exc))
            return
        peak = float(np.abs(wav).max())
        if peak < SILENCE_PEAK:
            self.skip(u, f"silent (peak {peak:.1e} < {SILENCE_PEAK:.0e})")
            return
        seconds = wav.shape[0] / sr
        if seconds < self.cfg.min_seconds:
            self.skip(u, f"too short ({seconds:.2f} s < min_seconds {self.cfg.min_seconds} s)")
            return
        if self.cfg.waveform_normalize:  # before resampling: same statistics, cheaper in numpy
            wav = _standardize_wave(wav)
        self.pending[sr].append((i, wav))
        self.pending_samples += int(round(wav.shape[0] * self.cfg.sample_rate / sr))
        if self.pending_samples >= _CHUNK_SAMPLES:
            self.flush()

    def flush(self) -> None:
        """Resample the pending files into packed buffers on the device, cut every window
        with one gather per feature batch, and compute the features."""
        cfg, utts = self.cfg, self.corpus.utterances
        per_batch = max(1, self.batch_samples // cfg.segment_samples)
        for sr, items in self.pending.items():
            packed = resample_packed([w for _, w in items], sr, cfg, self.device)
            for flat, members, offsets, lengths in packed:
                ids = np.array([items[m][0] for m in members], dtype=np.int64)
                owner, start, valid = window_plan(lengths, cfg)
                for k in sorted(set(range(len(ids))) - set(owner.tolist())):
                    self.skip(utts[ids[k]], f"shorter than one {cfg.segment_seconds} s window (pad='drop')")
                first = torch.from_numpy(offsets[owner] + start)
                valid_t = torch.from_numpy(valid)
                for b in range(0, len(owner), per_batch):
                    windows = gather_windows(flat, first[b : b + per_batch], valid_t[b : b + per_batch], cfg)
                    self.feats.append(self.featurize(windows))
                self.seg_utt.append(ids[owner])
        self.pending.clear()
        self.pending_samples = 0

    def run(self, *, none_usable_ok: bool = False) -> SegmentSet | None:
        """The corpus' segments; with ``none_usable_ok`` None (not an error) when no
        utterance gave a window (``self.skipped`` says why)."""
        corpus, cfg = self.corpus, self.cfg
        utts = corpus.utterances
        if not utts:
            raise DomadaptError(f"corpus {corpus.name} at {corpus.root}: no utterances to extract")
        class_of = {c: k for k, c in enumerate(corpus.classes)}
        bad = sorted({u.label for u in utts} - set(class_of))
        if bad:
            raise DomadaptError(
                f"corpus {corpus.name}: labels {bad} are not among its classes {list(corpus.classes)}"
            )
        with Progress(len(utts), f"{corpus.name}: features", unit="utterances", enabled=self.progress) as bar:
            for i, u in enumerate(utts):
                self.read(i, u)
                bar.update(skipped=len(self.skipped))
            self.flush()
            bar.update(0, skipped=len(self.skipped))  # with the files too short for one window

        if not self.feats and none_usable_ok:
            return None
        if not self.feats:
            reasons = "; ".join(f"{s.path}: {s.reason}" for s in self.skipped[:3])
            raise DomadaptError(
                f"corpus {corpus.name} at {corpus.root}: none of its {len(utts)} utterances is "
                f"usable audio (e.g. {reasons})"
            )
        x = torch.cat(self.feats)
        seg_utt = np.concatenate(self.seg_utt)
        # Chunks group files by sample rate; restore corpus order (stable within an utterance).
        order = np.argsort(seg_utt, kind="stable")
        if (np.diff(order) != 1).any():
            seg_utt = seg_utt[order]
            x = x[torch.from_numpy(order)]

        kept_utts, utt_idx = np.unique(seg_utt, return_inverse=True)
        subj_names = np.array([u.subject for u in utts], dtype=object)
        subjects = tuple(sorted(set(subj_names[kept_utts])))
        subj_index = {s: k for k, s in enumerate(subjects)}
        utt_subject = np.array([subj_index[s] for s in subj_names[kept_utts]], dtype=np.int64)
        utt_label = np.array([class_of[utts[i].label] for i in kept_utts], dtype=np.int64)
        utterance = torch.from_numpy(utt_idx.astype(np.int64))

        for s in sorted(set(subj_names) - set(subjects)):
            files = [str(u.path) for u in utts if u.subject == s]
            where = os.path.commonpath(files) if len(files) > 1 else files[0]
            self.skipped.append(SkippedFile(where, f"subject {s}: no usable audio"))
            if self.log_skips:
                log.warning("%s: subject %s: no usable audio; left out", corpus.name, s)
        if self.log_skips and len(self.skipped) > _LOGGED_SKIPS:
            log.warning(
                "%s: %d files skipped in all (see SegmentSet.skipped)", corpus.name, len(self.skipped)
            )

        return SegmentSet(
            x=normalize_features(x, utterance, cfg.normalize).contiguous(),
            y=torch.from_numpy(utt_label[utt_idx]),
            subject=torch.from_numpy(utt_subject[utt_idx]),
            utterance=utterance,
            classes=tuple(corpus.classes),
            subjects=subjects,
            utterance_keys=tuple(utts[i].key for i in kept_utts),
            domain=utts[0].domain,
            synthetic=corpus.synthetic,
            skipped=list(corpus.skipped) + self.skipped,
        )


class _Frontend:
    """What turns windows into features for one ``cfg``: the function (built only when
    something must be computed: a cache hit never loads a model), its batch size, and what
    the cache key adds (None: not cacheable)."""

    def __init__(self, cfg: FeatureConfig, device: torch.device, extractor: Any = None):
        self.cfg, self.device = cfg, device
        self.key_extra: dict[str, Any] | None = {}
        self.cacheable = True
        if extractor is not None and cfg.kind != "custom":
            raise DomadaptError(
                f"extract_segments(extractor=...): features.kind is {cfg.kind!r}; set kind='custom' to use it"
            )
        if cfg.kind == "ssl":
            from domadapt.features import ssl

            # before any audio is read: a missing file fails here, in one line
            self.checkpoint = ssl.resolve_checkpoint(cfg)
            self.key_extra = {"checkpoint": ssl.checkpoint_digest(self.checkpoint)}
        elif cfg.kind == "custom":
            from domadapt.features import extractors

            self.extractor = extractors.resolve_extractor(cfg, extractor)
            identity = None
            if extractors.is_deterministic(self.extractor):
                name = cfg.model if extractor is None else None
                identity = extractors.extractor_identity(self.extractor, name=name)
            self.cacheable = identity is not None
            self.key_extra = {"extractor": identity} if identity is not None else None
        model_kind = cfg.kind in ("ssl", "custom")
        table = _MODEL_BATCH_SAMPLES if model_kind else _BATCH_SAMPLES
        self.batch_samples = table.get(device.type, 1 << 21)

    def build(self) -> Callable[[torch.Tensor], torch.Tensor]:
        cfg, dev = self.cfg, self.device
        if cfg.kind == "ssl":
            from domadapt.features.ssl import load_ssl_encoder

            encoder = load_ssl_encoder(cfg, device=dev, path=self.checkpoint)
            return _model_featurizer(encoder, dev, ndim=4 if encoder.weighted else 3)
        if cfg.kind == "custom":
            return _model_featurizer(self.extractor, dev, ndim=3)
        return functools.partial(compute_features, cfg=cfg, device=dev)


def _model_featurizer(extractor: Any, device: torch.device, *, ndim: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``windows [B, S] -> features [B, D, T]`` (``ndim`` 3; 4 for ``[B, L, D, T]``) float32
    on CPU, through a model in eval mode without autograd; an ``nn.Module`` is moved to
    ``device`` and gets its training mode back afterwards (see ``extract_segments``)."""
    if isinstance(extractor, torch.nn.Module):
        extractor.to(device)

    def featurize(windows: torch.Tensor) -> torch.Tensor:
        was_training = isinstance(extractor, torch.nn.Module) and extractor.training
        if was_training:
            extractor.eval()
        try:
            with torch.no_grad():
                out = extractor(windows.to(device, torch.float32))
        finally:
            if was_training:
                extractor.train()
        if not isinstance(out, torch.Tensor) or out.dim() != ndim or out.shape[0] != windows.shape[0]:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            want = "D, T" if ndim == 3 else "L, D, T"
            raise DomadaptError(
                f"feature extractor {type(extractor).__name__}: expected features of shape "
                f"({windows.shape[0]}, {want}) for windows {tuple(windows.shape)}, got {got}"
            )
        return out.float().cpu()

    return featurize


def vector_segments(corpus: VectorCorpus) -> SegmentSet:
    """A corpus of feature vectors as a SegmentSet of one-frame segments, ``x`` ``[N, D, 1]``."""
    utts = corpus.utterances
    if not utts:
        raise DomadaptError(f"{corpus.root}: corpus {corpus.name!r} has no rows left")
    rows = np.array([int(u.meta["row"]) for u in utts], dtype=np.int64)
    subjects = tuple(sorted({u.subject for u in utts}))
    subject_index = {s: i for i, s in enumerate(subjects)}
    return SegmentSet(
        x=torch.from_numpy(np.ascontiguousarray(corpus.vectors[rows])).unsqueeze(-1),
        y=torch.tensor([corpus.classes.index(u.label) for u in utts], dtype=torch.long),
        subject=torch.tensor([subject_index[u.subject] for u in utts], dtype=torch.long),
        utterance=torch.arange(len(utts), dtype=torch.long),
        classes=corpus.classes,
        subjects=subjects,
        utterance_keys=tuple(u.key for u in utts),
        domain=corpus.name,
        synthetic=corpus.synthetic,
        skipped=list(corpus.skipped),
    )


def extract_segments(
    corpus: Corpus,
    cfg: FeatureConfig | None = None,
    *,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None | bool = None,
    progress: bool = False,
    extractor: torch.nn.Module | Callable[[torch.Tensor], torch.Tensor] | None = None,
    jobs: int | None = 1,
) -> SegmentSet:
    """Every usable utterance of ``corpus`` as fixed windows of features.

    Returns a SegmentSet with ``x`` [N, C, T] float32 on CPU (C = cfg.channels,
    T = cfg.frames for MFCC / log-mel; the model's width and frames for ``ssl`` /
    ``custom``; ``[N, L, D, T]`` for ``ssl`` with ``layer = "weighted"``), computed on
    ``device`` ("cpu", "cuda", "auto" or a torch.device). A corpus of precomputed vectors
    (:class:`~domadapt.corpora.arrays.VectorCorpus`) gives its rows as ``[N, D, 1]``, and so
    does a functional kind (``egemaps``, ``compare``, ``mfcc_stats``: one vector per
    utterance, computed on CPU by ``domadapt.features.functionals``, cached there).
    Unreadable, empty, NaN, silent (peak < 1e-6) and too-short files are skipped with a
    logged reason in ``skipped``; so is a subject left with no usable audio. Raises
    DomadaptError naming the corpus root when no utterance at all is usable.

    ``extractor``: with ``cfg.kind = "custom"``, an ``nn.Module`` or callable
    ``wave [B, S] -> [B, D, T]`` (windows at ``cfg.sample_rate`` on ``device``), run without
    autograd (a module in eval mode, then moved to ``device``); cached only when it declares
    ``deterministic = True`` (see ``domadapt.features.extractors``).

    ``cache_dir``: the cache root (``None``: ``$DOMADAPT_CACHE`` or ``~/.cache/domadapt``;
    ``False``: no cache). See ``domadapt.features.cache``. ``jobs``: worker processes of a
    functional kind (as :func:`~domadapt.features.functionals.utterance_functionals`).
    """
    if isinstance(corpus, VectorCorpus):  # precomputed vectors: one-frame segments, nothing to extract
        return vector_segments(corpus)
    cfg = (cfg or FeatureConfig()).for_corpus(corpus.name)
    if cfg.one_vector_per_utterance:
        from domadapt.features.functionals import functional_segments  # it imports this module

        return functional_segments(corpus, cfg, cache_dir=cache_dir, progress=progress, jobs=jobs)
    dev = _device(device)
    frontend = _Frontend(cfg, dev, extractor)
    path = None
    if cache_dir is not False and frontend.cacheable:
        root = None if cache_dir in (None, True) else cache_dir
        path = feature_cache.cache_path(corpus, cfg, root, frontend.key_extra)
        cached = feature_cache.load_segments(path)
        if cached is not None:
            log.info("%s: features from cache %s", corpus.name, path)
            return cached
    segs = _Extraction(corpus, cfg, dev, progress, frontend.build(), frontend.batch_samples).run()
    if progress:
        log.info("%s", segs.summary())
    if path is not None:
        feature_cache.save_segments(segs, path)
    return segs


def extract_windows(
    corpus: Corpus,
    cfg: FeatureConfig,
    *,
    device: str | torch.device = "cpu",
    reader: Callable[[Utterance], tuple[np.ndarray, int]] | None = None,
    progress: bool = False,
) -> tuple[SegmentSet | None, list[SkippedFile]]:
    """:func:`extract_segments` without the cache and without failing when nothing is
    usable: the segments (None when no utterance gave a window) and what was skipped, and
    why (returned, not logged). ``reader(u)`` returns an utterance's mono float32 wave and its rate (default: read
    ``u.path``); ``cfg`` is used as given (already resolved for a corpus). The inference path
    of a model folder (``domadapt.inference``): the same reading, resampling, windows and
    features as the training data's."""
    if not cfg.spectral:
        raise DomadaptError(f"features.kind = {cfg.kind!r}: inference runs the MFCC / log-mel front-ends only")
    dev = _device(device)
    frontend = _Frontend(cfg, dev)
    extraction = _Extraction(
        corpus, cfg, dev, progress, frontend.build(), frontend.batch_samples, reader=reader, log_skips=False
    )
    segs = extraction.run(none_usable_ok=True)
    return segs, (extraction.skipped if segs is None else segs.skipped)
