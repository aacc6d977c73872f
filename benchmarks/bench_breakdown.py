"""Where the time goes: a run's phases, and how far a TIM training step is from the machine's peak.

    python benchmarks/bench_breakdown.py [--quick] [--device auto|cpu|cuda]

1. The TIM step against the peak: one training step of the recipes' TIM (39 filters, 8
   levels, batch 64 of ``[39, 94]`` windows: forward, backward, Adam), its floating-point
   operations counted by ``torch.utils.flop_counter.FlopCounterMode`` and its median time
   taken, gives the achieved GFLOP/s; the machine's measured peak is the GFLOP/s of one
   square float32 matmul of the same operation count. Prints both and
   ``tim_step_over_matmul_peak ratio=`` (achieved / peak: the distance to the limit).
2. The default run (``casia2modma``; ``--quick``: its ``--quick`` sizes) from an empty cache
   (a temporary ``DOMADAPT_CACHE``), phase by phase: generating the synthetic corpora
   (``load_corpora``), the MFCC windows (``extract_domains``), the eGeMAPS functionals of
   the classical rows (``utterance_functionals``, which the run then reads from the cache)
   and the units (``run_experiment`` with the command line's default executor: one worker
   per core, one thread each); generation and functionals with one worker per core, as
   the command line's default run has them. Prints each phase's seconds and share of the whole.

The step is timed with the threads a unit gets by default (one).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helpers
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from bench_training_step import FRAMES, _train_step, describe, median_seconds, synchronizer, tim_model

from domadapt.device import resolve_device

NAME = "tim_step_over_matmul_peak"
BATCH = 64


def step_against_peak(dev: torch.device, repeats: int) -> float:
    """Achieved GFLOP/s of a TIM training step / GFLOP/s of a matmul of the same size."""
    model = tim_model(0).to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(BATCH, 39, FRAMES, device=dev)
    y = torch.randint(0, 2, (BATCH,), device=dev)
    _train_step(model, opt, x, y)  # Adam's state exists before counting
    with FlopCounterMode(display=False) as counter:
        _train_step(model, opt, x, y)
    flops = counter.get_total_flops()
    n = round((flops / 2) ** (1 / 3))  # an n x n @ n x n matmul costs 2 n^3
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    times = median_seconds({"step": lambda: _train_step(model, opt, x, y), "matmul": lambda: a @ b}, repeats, synchronizer(dev))
    step_gflops = flops / times["step"] / 1e9
    peak_gflops = 2 * n**3 / times["matmul"] / 1e9
    print(describe(dev))
    print(
        f"TIM step (batch {BATCH}, [39, {FRAMES}], forward+backward+Adam): {flops / 1e9:.2f} GFLOP in "
        f"{times['step'] * 1e3:.1f} ms = tim_step_gflops={step_gflops:.1f}"
    )
    print(f"matmul {n}x{n} (same GFLOP): {times['matmul'] * 1e3:.1f} ms = matmul_peak_gflops={peak_gflops:.1f}")
    ratio = step_gflops / peak_gflops
    print(f"{NAME} ratio={ratio:.3f}")
    return ratio


def phases(quick: bool, dev: torch.device) -> dict[str, float]:
    """Seconds of each phase of the default run from an empty cache."""
    from domadapt.recipe_loader import build_config, load_recipe
    from domadapt.executors import build_executor
    from domadapt.run import extract_domains, load_corpora, run_experiment
    from domadapt.features.functionals import utterance_functionals
    from domadapt.methods import METHODS, method_class

    cfg = build_config(load_recipe("casia2modma"), quick=quick)
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="domadapt-breakdown-") as tmp:
        cache = Path(tmp) / "cache"
        start = time.perf_counter()
        sources, target = load_corpora(cfg, source_roots=[], target_root=None, cache_dir=cache, jobs=None)
        seconds["generation"] = time.perf_counter() - start
        start = time.perf_counter()
        domains = extract_domains(cfg, sources, target, device=dev, cache_dir=cache)
        seconds["features"] = time.perf_counter() - start
        start = time.perf_counter()
        for spec in cfg.methods:
            if method_class(spec).trained_by == "engine":  # a deep row: no functionals
                continue
            options = METHODS.get(spec.name).Options(**METHODS.check(spec.name, spec.method_options))
            for corpus in [target, *(sources if options.use_source else [])]:
                utterance_functionals(corpus, options.features, cfg=cfg.features, cache_dir=cache, jobs=None)
        seconds["egemaps_functionals"] = time.perf_counter() - start
        start = time.perf_counter()
        with build_executor("local", jobs=None, threads=1) as executor:
            run_experiment(cfg, domains, out_dir=Path(tmp) / "out", device=dev, cache_dir=cache, executor=executor,
                           say=lambda *a, **k: None)
        seconds["training"] = time.perf_counter() - start
    total = sum(seconds.values())
    print(f"casia2modma{' --quick' if quick else ''} from an empty cache on {dev}, {os.cpu_count()} cores: {total:.0f} s")
    for name, s in seconds.items():
        print(f"  {name:<20} {s:7.1f} s  {100 * s / total:5.1f} %")
    return seconds


def run(quick: bool = False, device: str = "auto") -> float:
    dev = resolve_device(device)
    torch.set_num_threads(1)
    ratio = step_against_peak(dev, repeats=5 if quick else 20)
    seconds = phases(quick, dev)
    print(f"breakdown_training_share ratio={seconds['training'] / sum(seconds.values()):.3f}")
    print(f"{NAME} ratio={ratio:.3f}")
    return ratio if math.isfinite(ratio) else math.nan


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the recipe's --quick sizes")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    a = parser.parse_args()
    run(a.quick, a.device)
