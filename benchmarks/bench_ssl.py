"""SSL front-end throughput: segments per second of ``extract_segments`` with ``kind = "ssl"``.

Writes N speech-like 3 s WAV clips at 16 kHz to a temporary folder and a randomly
initialised wav2vec 2.0 checkpoint of two sizes (nothing is downloaded; random weights cost
what trained ones do):

  tiny  the tests' model: 16-channel CNN, 2 transformer layers of width 32;
  base  WAV2VEC2_BASE's architecture (torchaudio.pipelines.WAV2VEC2_BASE._params): 512-channel
        CNN, 12 layers of width 768, 95 M parameters (HuBERT / WavLM base cost about the same).

and times ``extract_segments(corpus, cfg, cache_dir=False)`` (soundfile reads, windowing,
the model in device batches, the copy back to the host) at the last layer, i.e. the whole
model (median of a few repeats after one warm-up). ``layer = "weighted"`` runs the same
model and keeps every hidden state: the same compute, 13x the output.

    python benchmarks/bench_ssl.py [--quick] [--device auto|cpu|cuda] [--threads N] [--batches]

One line per model, ``ssl_frontend_segments_per_second value=<segments/s> model=<size>
device=<device>``; ``--batches`` adds the base model's throughput at several windows per
batch (what ``frontend._MODEL_BATCH_SAMPLES`` is chosen from). ``run`` returns the base
model's figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import torchaudio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from bench_frontend import make_corpus  # noqa: E402  (benchmarks/ is on sys.path)
from bench_training_step import (  # noqa: E402
    add_common_arguments,
    describe,
    median_seconds,
    set_threads,
    synchronizer,
)

from domadapt.device import resolve_device
from domadapt.features import FeatureConfig, extract_segments, frontend
from domadapt.features.ssl import TINY_CONFIG, save_random_checkpoint

NAME = "ssl_frontend_segments_per_second"


def run(quick: bool = False, device: str = "auto", threads: int | None = None, batches: bool = False) -> float:
    """Time the tiny and the base-sized model; print one line each; return the base figure."""
    dev = resolve_device(device)
    set_threads(threads, dev)
    sync = synchronizer(dev)
    big = dev.type == "cuda"
    n_base = (256 if big else 8) if quick else (1024 if big else 24)
    sizes = {  # size -> (builder arguments, clips, repeats)
        "tiny": (TINY_CONFIG, 64 if quick else 256, 5 if quick else 7),
        "base": (dict(torchaudio.pipelines.WAV2VEC2_BASE._params), n_base, 3),
    }
    print(describe(dev))
    figures = {}
    with tempfile.TemporaryDirectory(prefix="domadapt-bench-ssl-") as tmp:
        root = Path(tmp)
        corpus_all = make_corpus(root, max(n for _, n, _ in sizes.values()))
        for size, (config, n_clips, repeats) in sizes.items():
            corpus = dataclasses.replace(corpus_all, utterances=corpus_all.utterances[:n_clips])
            ckpt = root / f"{size}.pt"
            save_random_checkpoint(ckpt, **config)
            cfg = FeatureConfig(kind="ssl", model="WAV2VEC2_BASE", checkpoint=str(ckpt), layer=-1)
            def extract() -> object:
                return extract_segments(corpus, cfg, device=dev, cache_dir=False)

            shape = tuple(extract().x.shape)
            seconds = median_seconds({size: extract}, repeats, sync)[size]
            figures[size] = n_clips / seconds
            print(f"{size}: {n_clips} clips x 3.0 s -> x {shape}, median of {repeats}: {seconds:.2f} s")
            print(f"{NAME} value={figures[size]:.2f} model={size} device={dev.type}")
            if batches and size == "base":
                default = frontend._MODEL_BATCH_SAMPLES[dev.type] // cfg.segment_samples
                for per_batch in (1, 2, 5, 16) if dev.type == "cpu" else (16, 64, 128, 256):
                    frontend._MODEL_BATCH_SAMPLES[dev.type] = per_batch * cfg.segment_samples
                    t = median_seconds({"batch": extract}, repeats, sync)["batch"]
                    mark = " (default)" if per_batch == default else ""
                    print(f"  base, {per_batch:3d} windows per batch: {n_clips / t:.2f} segments/s{mark}")
                frontend._MODEL_BATCH_SAMPLES[dev.type] = default * cfg.segment_samples
    return figures["base"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--batches", action="store_true", help="also the base model at several batch sizes")
    args = parser.parse_args(argv)
    run(quick=args.quick, device=args.device, threads=args.threads, batches=args.batches)
    return 0


if __name__ == "__main__":
    sys.exit(main())
