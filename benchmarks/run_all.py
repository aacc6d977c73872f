"""Run every benchmark and end with one ``NAME ratio=FLOAT`` line per benchmark.

    python benchmarks/run_all.py [--quick] [--device auto|cpu|cuda] [--threads N] [--only a,b]

Benchmarks (each also runs on its own, see its docstring):

  frontend       bench_frontend.py       batched torchaudio MFCC vs a librosa loop (speedup)
  training_step  bench_training_step.py  on-device index batches vs a DataLoader (speedup)
  seeds          bench_seeds.py          K=5 vmapped seeds / 5 sequential runs (lower is better)
  alignment      bench_alignment.py      worst joint+loss step / joint step (lower is better)
  recipe         bench_recipe.py         casia2modma --quick wall time / 180 s (lower is better)
  compile        bench_compile.py        compiled fit (cached code) / eager fit (lower is better);
                                         only with --only compile (a cold compile takes minutes)
  executor       bench_executor.py       quick recipe as Ray tasks / in process (lower is better);
                                         only with --only executor (a Ray instance, about 2 minutes)
  reference_da   reference_da.py         1 - share of the source-only -> oracle gap domadapt's
                                         methods close on rotated moons (lower is better), with
                                         SKADA's columns beside; only with --only reference_da
  contention     bench_contention.py     a run beside two busy processes / alone, old and new
                                         thread defaults (fair share on 2 cores: about 2); only
                                         with --only contention (about 8 minutes; 2 with --quick)
  breakdown      bench_breakdown.py      the default run's phases (generation, features, eGeMAPS
                                         functionals, training) and a TIM step's GFLOP/s / a
                                         matmul's; only with --only breakdown (the default run
                                         from an empty cache; --quick: its --quick sizes)
  tim_step       bench_tim_step.py       a TIM training step channel-major with its default precision
                                         / channels-first conv in float32 (lower is better), all
                                         four printed; in the default set (about a minute)
  phases         bench_phases.py         the data preparation (synthetic corpora, eGeMAPS
                                         functionals) in one process / in worker processes
                                         (higher is better); only with --only phases
  selection      selection_objectives.py the test accuracy lost to the oracle's pick by the best
                                         label-free sweep objective (SND, IM, DEV, source
                                         validation) on rotated moons (lower is better); only with
                                         --only selection (grid sweeps of DANN and MMD, 3 seeds)

Each benchmark's ``run(quick, device)`` is called in a fresh interpreter, so that nothing one
leaves behind (librosa/numba thread pools, allocator state, warmed caches) changes the next
one's figures. ``--threads`` (default 1 on CPU; see ``bench_training_step.set_threads``) is
passed to every child as ``OMP_NUM_THREADS``. ``--quick`` takes about four minutes on a
2-core CPU, most of it the recipe run. A benchmark that fails prints its error and
``NAME ratio=nan``; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the benchmark scripts
sys.path.insert(0, str(HERE.parent))  # run from a checkout, uninstalled

# key -> (module, the NAME of its ratio line)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "frontend": ("bench_frontend", "frontend_speedup"),
    "training_step": ("bench_training_step", "ondevice_batches_speedup"),
    "seeds": ("bench_seeds", "seeds_vmapped_over_sequential_lower_is_better"),
    "alignment": ("bench_alignment", "align_worst_over_joint_lower_is_better"),
    "recipe": ("bench_recipe", "recipe_quick_over_3min_budget_lower_is_better"),
    "compile": ("bench_compile", "compile_steady_over_eager_lower_is_better"),
    "executor": ("bench_executor", "executor_ray_over_local_lower_is_better"),
    "reference_da": ("reference_da", "reference_da_gap_left_lower_is_better"),
    "contention": ("bench_contention", "contention_slowdown"),
    "breakdown": ("bench_breakdown", "tim_step_over_matmul_peak"),
    "tim_step": ("bench_tim_step", "tim_step_default_over_conv_float32_lower_is_better"),
    "phases": ("bench_phases", "preparation_speedup"),
    "selection": ("selection_objectives", "selection_best_label_free_regret_lower_is_better"),
}
#: run when --only is not given; ``compile`` (a cold torch.compile, about two minutes on a
#: 2-core CPU), ``executor`` (a Ray instance and the quick recipe twice), ``reference_da``
#: (every method on three problems in two toolkits), ``contention`` (six timed runs, some
#: beside busy processes), ``breakdown`` (the default run from an empty cache), ``phases``
#: (the default corpora written three times) and ``selection`` (grid sweeps) only on
#: request, so that ``--quick`` stays under five minutes
DEFAULT = ["frontend", "training_step", "tim_step", "seeds", "alignment", "recipe"]


def _run_child(key: str, quick: bool, device: str, threads: int | None) -> float:
    """``BENCHMARKS[key]``'s ``run(quick, device)`` in a fresh interpreter; its ratio."""
    module, name = BENCHMARKS[key]
    code = (
        f"import sys; sys.path[:0] = [{str(HERE)!r}, {str(HERE.parent)!r}]; "
        f"import {module}; {module}.run({quick!r}, {device!r})"
    )
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=HERE.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ratio = math.nan
    pattern = re.compile(rf"^{re.escape(name)} ratio=(\S+)$")
    for line in proc.stdout:
        print(line, end="", flush=True)
        match = pattern.match(line.strip())
        if match:
            ratio = float(match.group(1))
    if proc.wait() != 0:
        print(f"run_all: {key} exited with code {proc.returncode}")
        return math.nan
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smaller, faster measurement of each benchmark")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument(
        "--threads", type=int, default=None, help="intra-op threads of every benchmark (default: 1 on CPU)"
    )
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    chosen = [k.strip() for k in args.only.split(",") if k.strip()] or DEFAULT
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")

    import torch
    from bench_training_step import cpu_model

    from domadapt.device import resolve_device

    threads = args.threads
    if threads is None and resolve_device(args.device).type == "cpu":
        threads = 1
    print(
        f"cpu={cpu_model()}, cores={os.cpu_count()}, torch {torch.__version__}, threads={threads or 'default'}, "
        f"quick={args.quick}, device={args.device}"
    )
    ratios: dict[str, float] = {}
    seconds: dict[str, float] = {}
    start_all = time.perf_counter()
    for key in chosen:
        name = BENCHMARKS[key][1]
        print(f"\n== {key} ==", flush=True)
        start = time.perf_counter()
        ratios[name] = _run_child(key, args.quick, args.device, threads)
        seconds[name] = time.perf_counter() - start
    print(f"\n== summary ({time.perf_counter() - start_all:.0f} s in all) ==")
    for name in ratios:
        print(f"# {name}: {seconds[name]:.0f} s")
    for name, ratio in ratios.items():
        print(f"{name} ratio={ratio:.3f}")
    return 1 if any(math.isnan(r) for r in ratios.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
