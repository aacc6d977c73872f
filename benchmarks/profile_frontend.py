"""The two CPU choices of the front-end, timed: the feature batch size, and how windows are
cut (``_copy_windows`` slice copies vs ``_index_windows`` one index gather).

    python benchmarks/profile_frontend.py [--clips 64] [--threads 1]

(1) MFCC-39 of ``--clips`` 3 s windows at 16 kHz computed in batches of 64, 32, 16, 8, 5,
4, 2 and 1 windows (mean of 3 calls after a warm-up); (2) cutting 5 windows of 48,000 samples
both ways (mean of 200 calls). A diagnostic behind ``_BATCH_SAMPLES`` in
domadapt/features/frontend.py and ``gather_windows`` in domadapt/features/segments.py;
``bench_frontend.py`` holds the end-to-end ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from domadapt.features import FeatureConfig
from domadapt.features.frontend import mfcc
from domadapt.features.segments import _copy_windows, _index_windows


def _mean_seconds(fn, calls: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=64, help="3 s windows in (1) (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = FeatureConfig(sample_rate=16000)
    seg = cfg.segment_samples
    x = torch.randn(args.clips, seg, generator=torch.Generator().manual_seed(0))
    print(f"torch {torch.__version__}, intra-op threads={torch.get_num_threads()}")
    print(f"(1) MFCC-39 of {args.clips} windows of {seg} samples, by feature batch size (mean of 3):")
    for batch in (64, 32, 16, 8, 5, 4, 2, 1):

        def run(batch=batch):
            return torch.cat([mfcc(x[i : i + batch], cfg) for i in range(0, len(x), batch)])

        print(f"    batch {batch:>2}: {_mean_seconds(lambda: [run() for _ in range(3)], 1) / 3 * 1000:7.1f} ms")
    flat = torch.randn(16 * seg, generator=torch.Generator().manual_seed(1))
    start = torch.arange(0, 5 * seg, seg)
    valid = torch.full((5,), seg)
    assert torch.equal(_copy_windows(flat, start, valid, seg), _index_windows(flat, start, valid, cfg))
    t_copy = _mean_seconds(lambda: _copy_windows(flat, start, valid, seg), 200)
    t_index = _mean_seconds(lambda: _index_windows(flat, start, valid, cfg), 200)
    print(f"(2) 5 windows of {seg} samples: slice copies {t_copy * 1e6:.0f} us, index gather {t_index * 1e6:.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
