"""The quick recipe's units in this process vs as Ray tasks, side by side in one run.

The corpora are loaded and their segments extracted once (untimed, shared by both sides);
then ``run_experiment`` of ``casia2modma --quick`` runs with the local executor (one unit
after another) and with the Ray executor (a fresh local Ray instance, one task per unit,
``--cpus-per-run 1``), each into a fresh output folder. The Ray side's time includes
starting the instance and its workers, as a user's one command pays it.

On CUDA it also times 4 units on the GPU one after another (local) vs packed on it as Ray
tasks (``--gpus-per-run 0.25``).

    python benchmarks/bench_executor.py [--quick] [--device auto|cpu|cuda]

``--quick``: the recipe's target_only, align:mmd, align:coral and joint rows (8 units at 2
folds); without it every row (20 units). Prints each side's seconds, then
``executor_ray_over_local_lower_is_better ratio=<ray seconds / local seconds>`` (and on
CUDA first ``executor_gpu_packed_over_sequential_lower_is_better ratio=...``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helpers
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from bench_training_step import cpu_model

from domadapt.recipe_loader import build_config, load_recipe
from domadapt.device import resolve_device
from domadapt.executors import build_executor
from domadapt.run import extract_domains, load_corpora, run_experiment

NAME = "executor_ray_over_local_lower_is_better"
GPU_NAME = "executor_gpu_packed_over_sequential_lower_is_better"
QUICK_ROWS = ("target_only", "align:mmd", "align:coral", "joint")


def _timed_run(cfg, domains, device, executor, out: Path) -> float:
    start = time.perf_counter()
    with executor:
        run_experiment(cfg, domains, out_dir=out, device=device, executor=executor, say=lambda *a, **k: None)
    return time.perf_counter() - start


def run(quick: bool = True, device: str = "auto") -> float:
    """Time the local and the Ray executor on the quick recipe; return Ray / local."""
    dev = resolve_device(device)
    cfg = build_config(load_recipe("casia2modma"), quick=True)
    if quick:
        cfg = dataclasses.replace(cfg, methods=tuple(m for m in cfg.methods if m.label in QUICK_ROWS))
    sources, target = load_corpora(cfg, source_roots=[], target_root=None)
    domains = extract_domains(cfg, sources, target, device=dev)
    cpus = os.cpu_count() or 1
    print(
        f"cpu={cpu_model()}, cores={cpus}, device={dev}, threads per unit=1; casia2modma --quick, "
        f"{len(cfg.methods)} rows x {cfg.eval.folds} folds; segments extracted once, untimed"
    )
    with tempfile.TemporaryDirectory(prefix="domadapt-bench-executor-") as tmp:
        if dev.type == "cuda":
            gpu_cfg = dataclasses.replace(cfg, methods=cfg.methods[:2])  # 2 rows x 2 folds = 4 units
            one_by_one = _timed_run(gpu_cfg, domains, dev, build_executor("local"), Path(tmp) / "gpu-local")
            packed = _timed_run(
                gpu_cfg, domains, dev,
                build_executor("ray", gpus_per_run=0.25, cpus_per_run=max(1, cpus // 4), threads=1),
                Path(tmp) / "gpu-ray",
            )
            print(f"executor_gpu_sequential_s={one_by_one:.1f} executor_gpu_packed_s={packed:.1f} (4 units)")
            print(f"{GPU_NAME} ratio={packed / one_by_one:.2f}")
        local = _timed_run(cfg, domains, dev, build_executor("local"), Path(tmp) / "local")
        ray = _timed_run(cfg, domains, dev, build_executor("ray", cpus_per_run=1, threads=1), Path(tmp) / "ray")
    print(f"executor_local_s={local:.1f}")
    print(f"executor_ray_s={ray:.1f} (a fresh local Ray instance with {cpus} CPUs, its start included)")
    ratio = ray / local
    print(f"{NAME} ratio={ratio:.2f}")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 rows of the recipe instead of all")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = parser.parse_args(argv)
    run(quick=args.quick, device=args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
