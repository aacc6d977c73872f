"""Seeds in one pass: K=5 replicas trained as one vmapped model vs 5 eager replicas one after another.

Same fold, same method, same epochs, every dropout at 0 (so that both sides compute the same
models: vmap draws dropout masks from another random stream). Besides the two wall times it
prints how far apart the results are: the max abs difference of the K models' target-test
probabilities and of their test UA.

    python benchmarks/bench_seeds.py [--quick] [--device auto|cpu|cuda] [--threads N]
                                     [--method target_only|joint|align] [--loss mmd|dann|...]
                                     [--seeds 5]
                                     [--filters 39] [--levels 8] [--batch 64]

The defaults are the recipes' model and batch; smaller ``--filters/--levels/--batch`` show
the regime where per-operation overhead, not arithmetic, bounds a step.

The last line is ``seeds_vmapped_over_sequential_lower_is_better ratio=<vmapped / sequential>``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helpers
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from bench_training_step import add_common_arguments, describe, random_fold, set_threads, synchronizer, tim_model

from domadapt.config import MethodSpec, TrainConfig
from domadapt.device import resolve_device
from domadapt.engine import build_replicas, fit
from domadapt.evaluate import segment_metrics
from domadapt.methods import build_method

NAME = "seeds_vmapped_over_sequential_lower_is_better"


def _train(cfg, spec, data, seeds, dev, build) -> torch.Tensor:
    """Test probabilities [K, N, C] of ``seeds``: one eager replica, or K vmapped ones."""
    replicas = build_replicas(lambda: build_method(spec, cfg, build()), seeds, data, dev)
    fit(replicas, cfg)
    return replicas.predict(replicas.method.target_logits, data.target_test.x)


def _sequential(cfg, spec, data, seeds, dev, build) -> list[torch.Tensor]:
    return [_train(cfg, spec, data, [s], dev, build)[0] for s in seeds]


def run(
    quick: bool = False,
    device: str = "auto",
    threads: int | None = None,
    *,
    method: str = "target_only",
    loss: str = "mmd",
    k: int = 5,
    filters: int = 39,
    levels: int = 8,
    batch: int = 64,
) -> float:
    """Time both; print them, the result differences and the ratio; return vmapped / sequential."""
    dev = resolve_device(device)
    set_threads(threads, dev)
    n_target, n_source, epochs = (128, 128, 2) if quick else (512, 512, 4)
    data = random_fold(n_source=n_source, n_target=n_target, n_eval=64, device=dev)
    cfg = TrainConfig(epochs=epochs, pretrain_epochs=epochs, batch_size=batch, lr=1e-3)
    spec = MethodSpec(method, {"loss": loss} if method == "align" else {})
    seeds = list(range(k))
    sync = synchronizer(dev)

    def build():
        return tim_model(None, dropout=0.0, filters=filters, levels=levels)

    # Warm-up of both paths (allocator, kernels/oneDNN primitives) on one epoch, untimed.
    warm = TrainConfig(epochs=1, pretrain_epochs=1, batch_size=batch, lr=1e-3)
    _train(warm, spec, data, seeds, dev, build)
    _sequential(warm, spec, data, seeds[:1], dev, build)
    sync()

    # Interleaved repeats, the median of each side: load from other processes falls on both.
    repeats = 3 if quick else 2
    vmap_times, seq_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        vmapped = _train(cfg, spec, data, seeds, dev, build)
        sync()
        vmap_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        seq = _sequential(cfg, spec, data, seeds, dev, build)
        sync()
        seq_times.append(time.perf_counter() - start)
    t_vmap, t_seq = statistics.median(vmap_times), statistics.median(seq_times)

    y = data.target_test.y.cpu().numpy()

    def ua(p: torch.Tensor) -> float:
        return float(segment_metrics(y, p.argmax(1).numpy(), num_classes=2)["uar"])

    prob_diff = max(float((v - p).abs().max()) for v, p in zip(vmapped, seq))
    ua_diff = max(abs(ua(v) - ua(p)) for v, p in zip(vmapped, seq))
    ratio = t_vmap / t_seq
    print(describe(dev))
    print(
        f"method={method}{f' ({loss})' if method == 'align' else ''}, K={k} seeds, TIM ({filters} filters, {levels} levels, dropout 0), target train "
        f"{n_target} x [39, 94], batch {batch}, {epochs} epochs per stage, "
        f"after a 1-epoch warm-up, median of {repeats} interleaved timed runs each"
    )
    print(f"vmapped K replicas:       {t_vmap:7.2f} s   (runs: {', '.join(f'{t:.2f}' for t in vmap_times)})")
    print(f"{k} x eager replica:       {t_seq:7.2f} s   (runs: {', '.join(f'{t:.2f}' for t in seq_times)})")
    print(f"max abs diff, test probabilities: {prob_diff:.2e}; test UA: {ua_diff:.2e}")
    print(f"{NAME} ratio={ratio:.2f}")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--method", default="target_only", help="target_only | joint | align | ...")
    parser.add_argument("--loss", default="mmd", help="the alignment loss of --method align (default mmd)")
    parser.add_argument("--seeds", type=int, default=5, help="K, the number of seeds")
    parser.add_argument("--filters", type=int, default=39, help="TIM filters (default 39, official)")
    parser.add_argument("--levels", type=int, default=8, help="TIM levels (default 8, official)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64, the recipes')")
    args = parser.parse_args(argv)
    run(
        quick=args.quick,
        device=args.device,
        threads=args.threads,
        method=args.method,
        loss=args.loss,
        k=args.seeds,
        filters=args.filters,
        levels=args.levels,
        batch=args.batch,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
