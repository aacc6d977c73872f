"""Front-end speed: domadapt's batched torchaudio path vs a librosa loop, side by side.

Writes N speech-like 3 s WAV clips at 16 kHz to a temporary folder, then times (median of
a few repeats, after one warm-up each):

  (a) ``extract_segments`` without cache: soundfile reads + batched torchaudio MFCC-39;
  (b) the reference loop TIM-Net used: ``librosa.load`` + ``librosa.feature.mfcc`` per file.

    python benchmarks/bench_frontend.py [--quick] [--device auto|cpu|cuda]

The last line is ``frontend_speedup ratio=<librosa seconds / domadapt seconds>``.

OpenBLAS (numpy's BLAS, which librosa calls) runs single-threaded here unless
``OPENBLAS_NUM_THREADS`` is set: with its default threads, they spin on the cores after
each of librosa's small matrix products while torch's threads compute the other side, and
at 2 torch threads our side measured 104-132 ms instead of 50 ms for 64 clips, librosa's
184 ms either way (its loop did not get faster with more BLAS threads).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS; see above
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from bench_training_step import median_seconds  # noqa: E402  (benchmarks/ is on sys.path)

from domadapt.corpora.base import Corpus, Utterance
from domadapt.device import resolve_device
from domadapt.features import FeatureConfig, extract_segments

NAME = "frontend_speedup"

SR = 16000


def _speech_like(rng: np.random.Generator, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    f0 = rng.uniform(90, 220) + 25 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 16))
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(2.5, 5.0) * t), 0, None) ** 2
    wave = voiced * envelope + 0.02 * rng.standard_normal(t.shape)
    return (0.3 * wave / np.abs(wave).max()).astype(np.float32)


def make_corpus(root: Path, n_clips: int, seconds: float = 3.0) -> Corpus:
    rng = np.random.default_rng(0)
    utts = []
    for i in range(n_clips):
        path = root / f"clip{i:03d}.wav"
        sf.write(str(path), _speech_like(rng, seconds), SR, subtype="PCM_16")
        utts.append(Utterance(path=path, label="a", subject=f"s{i % 8}", domain="bench"))
    return Corpus(name="bench", root=root, classes=("a",), utterances=utts)


def _librosa_loop(corpus: Corpus, cfg: FeatureConfig) -> np.ndarray:
    import librosa

    feats = []
    for u in corpus.utterances:
        y, sr = librosa.load(u.path, sr=cfg.sample_rate)
        feats.append(
            librosa.feature.mfcc(
                y=y, sr=sr, n_mfcc=cfg.n_mfcc, n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_mels=cfg.n_mels
            )
        )
    return np.stack(feats)


def run(quick: bool = False, device: str = "auto") -> float:
    """Time both paths; print them and the ratio; return librosa_time / domadapt_time."""
    dev = resolve_device(device)
    n_clips, repeats = (16, 9) if quick else (64, 7)
    cfg = FeatureConfig(sample_rate=SR)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    with tempfile.TemporaryDirectory(prefix="domadapt-bench-") as tmp:
        corpus = make_corpus(Path(tmp), n_clips)
        ours = extract_segments(corpus, cfg, device=dev, cache_dir=False)
        ref = _librosa_loop(corpus, cfg)
        diff = float(np.abs(ours.x.numpy() - ref).max())
        medians = median_seconds(
            {
                "domadapt": lambda: extract_segments(corpus, cfg, device=dev, cache_dir=False),
                "librosa": lambda: _librosa_loop(corpus, cfg),
            },
            repeats,
            sync,
        )
    t_ours, t_ref = medians["domadapt"], medians["librosa"]
    ratio = t_ref / t_ours
    print(f"clips={n_clips} x 3.0 s @ {SR} Hz, device={dev}, torch threads={torch.get_num_threads()}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, median of {repeats}")
    print(f"domadapt extract_segments (soundfile + batched torchaudio MFCC): {t_ours * 1000:.1f} ms")
    print(f"librosa loop (librosa.load + librosa.feature.mfcc):             {t_ref * 1000:.1f} ms")
    print(f"max abs diff domadapt vs librosa: {diff:.2e}")
    print(f"{NAME} ratio={ratio:.2f}")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="16 clips, 9 repeats (default: 64 clips, 7 repeats)"
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = parser.parse_args(argv)
    run(quick=args.quick, device=args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
