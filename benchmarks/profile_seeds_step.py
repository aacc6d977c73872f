"""Where the time of a vmapped step goes: torch.profiler on one forward + backward of K
stacked TIM models under ``torch.func.vmap`` vs the K models one after another.

    python benchmarks/profile_seeds_step.py [--seeds 5] [--batch 64] [--threads 1] [--rows 12]

Prints the mean wall time of each side (3 calls, after a warm-up, interleaved twice) and,
per side, torch.profiler's table of operators by self CPU time. A diagnostic, not a ratio
benchmark: it explains ``bench_seeds.py``'s figures (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helpers
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from bench_training_step import describe, tim_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="K models (default 5)")
    parser.add_argument("--batch", type=int, default=64, help="batch per model (default 64, the recipes')")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    parser.add_argument("--rows", type=int, default=12, help="operators shown per side")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    k, b = args.seeds, args.batch
    models = [tim_model(s, dropout=0.0) for s in range(k)]
    base = copy.deepcopy(models[0]).to("meta")
    params, buffers = stack_module_state(models)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(k, b, 39, 94, generator=g)
    y = torch.randint(0, 2, (k, b), generator=g)

    def one(p, buf, xb, yb):
        return F.cross_entropy(functional_call(base, (p, buf), (xb, "target")).logits, yb)

    stacked = vmap(one, randomness="different")

    def vmapped() -> None:
        stacked(params, buffers, x, y).sum().backward()

    def sequential() -> None:
        for i, m in enumerate(models):
            F.cross_entropy(m(x[i], "target").logits, y[i]).backward()

    print(describe(torch.device("cpu")))
    print(f"K={k} TIM models (39 filters, 8 levels, dropout 0), batch {b} x [39, 94], forward + backward")
    sides = {"vmapped": vmapped, "sequential": sequential}
    for fn in sides.values():
        fn()  # warm-up
    for _ in range(2):
        for name, fn in sides.items():
            start = time.perf_counter()
            for _ in range(3):
                fn()
            print(f"{name:<10} {(time.perf_counter() - start) / 3 * 1000:8.1f} ms per call")
    for name, fn in sides.items():
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fn()
        print(f"\n== {name}")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
