"""Training-loop speed: domadapt's on-device index-slice batches vs a DataLoader loop.

One TIM model (official defaults: 39 filters, 8 levels) on MFCC-39 segments ``[39, 94]``
(3 s at 16 kHz) trains the same number of steps (forward, cross-entropy, backward, gradient
clipping, Adam) with its batches drawn two ways:

  (a) domadapt: the segments live on the device; a batch is ``index_batches`` (one
      ``randperm`` per epoch) + ``DomainData.take`` (one ``index_select``);
  (b) ``torch.utils.data.DataLoader(TensorDataset(x, y), shuffle=True)`` over host tensors
      (per-sample ``__getitem__`` + ``default_collate``), each batch then moved to the device
      (``pin_memory`` on CUDA), the usual PyTorch pattern.

Both run from identical model copies; medians of interleaved repeats after a warm-up. The
batch-only times (drawing every batch of an epoch, no model) are printed as well.

    python benchmarks/bench_training_step.py [--quick] [--device auto|cpu|cuda] [--threads N]

The last line is ``ondevice_batches_speedup ratio=<dataloader seconds / domadapt seconds>``.

This file also holds the timing and data helpers the other step benchmarks share.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from domadapt.data import TARGET_TASK, DomainData, FoldData, index_batches
from domadapt.device import resolve_device
from domadapt.models import build_backbone
from domadapt.models.transfer import TransferModel

NAME = "ondevice_batches_speedup"
FRAMES = 94  # [39, 94] = one 3 s MFCC-39 window at 16 kHz, hop 512 (domadapt's default)


# ---------------------------------------------------------------------------- shared helpers


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe(device: torch.device) -> str:
    """One line naming the machine a figure was measured on."""
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    return f"device={device} ({where}), torch {torch.__version__}, intra-op threads={torch.get_num_threads()}"


def synchronizer(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def median_seconds(fns: dict[str, Callable[[], object]], repeats: int, sync: Callable[[], None]) -> dict[str, float]:
    """Median wall time of each callable: one warm-up each, then the repeats interleave, so
    load from other processes on a shared machine falls on every side alike."""
    for fn in fns.values():
        fn()
        sync()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def random_domain(
    task: str, n: int, classes: int, *, seed: int, device: torch.device, shift: float = 0.0
) -> DomainData:
    """``n`` random MFCC-sized segments ``[39, FRAMES]`` whose class moves channel 0."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randn(n, 39, FRAMES, generator=g) + shift
    x[:, 0] += y[:, None].float()
    return DomainData(task, x.to(device), y.to(device), np.arange(n) % 8, classes)


def random_fold(*, n_source: int, n_target: int, n_eval: int, device: torch.device) -> FoldData:
    """A CASIA-like source (6 classes) and a MODMA-like target (2 classes), on ``device``."""
    src = "source:casia"
    return FoldData(
        sources=[random_domain(src, n_source, 6, seed=1, device=device, shift=0.5)],
        source_val=[random_domain(src, n_eval, 6, seed=2, device=device, shift=0.5)],
        target_train=random_domain(TARGET_TASK, n_target, 2, seed=3, device=device),
        target_val=random_domain(TARGET_TASK, n_eval, 2, seed=4, device=device),
        target_test=random_domain(TARGET_TASK, n_eval, 2, seed=5, device=device),
        shared_labels=False,
    )


def tim_model(
    seed: int | None = 0, *, dropout: float = 0.1, filters: int = 39, levels: int = 8, general_norm: str = "none"
) -> TransferModel:
    """TIM (official defaults: 39 filters, 8 levels) as general extractor, a CASIA and a
    MODMA task (as the recipes). ``seed=None``: the caller has seeded the global RNG."""
    if seed is not None:
        torch.manual_seed(seed)
    general = build_backbone("tim", in_channels=39, dropout=dropout, filters=filters, levels=levels)
    tasks = {TARGET_TASK: 2, "source:casia": 6}
    return TransferModel(general, tasks, specific_dim=64, dropout=dropout, general_norm=general_norm)


def set_threads(threads: int | None, device: torch.device) -> None:
    """Intra-op threads for timing: ``threads`` if given, else 1 on CPU.

    Why 1: on a small shared machine torch's OpenMP threads busy-wait at every barrier, and
    one other busy process on a 2-core box made a 2-thread TIM step 20-75x slower (measured:
    ~0.1 s -> 7.7 s), while a 1-thread step only doubles. One thread gives figures that
    another process cannot wreck; ``--threads 2`` measures the machine when it is quiet.
    """
    if threads is None and device.type == "cpu":
        threads = 1
    if threads:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------- benchmark


def _train_step(model: TransferModel, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    loss = F.cross_entropy(model(x, TARGET_TASK).logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()


def run(quick: bool = False, device: str = "auto", threads: int | None = None) -> float:
    """Time both loops; print them and the ratio; return dataloader_time / domadapt_time."""
    dev = resolve_device(device)
    set_threads(threads, dev)
    batch, n, repeats = (64, 256, 3) if quick else (64, 1024, 5)  # n % batch == 0: equal steps
    steps = n // batch
    domain = random_domain(TARGET_TASK, n, 2, seed=0, device=dev)
    host_x, host_y = domain.x.cpu(), domain.y.cpu()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(host_x, host_y),
        batch_size=batch,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
        pin_memory=dev.type == "cuda",
    )
    gen = torch.Generator().manual_seed(0)
    base = tim_model(0).to(dev)
    models = {"domadapt": base, "dataloader": copy.deepcopy(base)}
    opts = {k: torch.optim.Adam(m.parameters(), lr=1e-3) for k, m in models.items()}
    for m in models.values():
        m.train()

    def ondevice_batches():
        return [domain.take(idx) for idx in index_batches(n, batch, generator=gen, device=dev)]

    def dataloader_batches():
        return [(x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)) for x, y in loader]

    def ondevice_epoch():
        for idx in index_batches(n, batch, generator=gen, device=dev):
            _train_step(models["domadapt"], opts["domadapt"], *domain.take(idx))

    def dataloader_epoch():
        for x, y in loader:
            _train_step(
                models["dataloader"], opts["dataloader"], x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            )

    assert len(ondevice_batches()) == len(dataloader_batches()) == steps
    sync = synchronizer(dev)
    data_only = median_seconds({"domadapt": ondevice_batches, "dataloader": dataloader_batches}, repeats * 3, sync)
    full = median_seconds({"domadapt": ondevice_epoch, "dataloader": dataloader_epoch}, repeats, sync)
    ratio = full["dataloader"] / full["domadapt"]
    print(f"{describe(dev)}")
    print(f"TIM (39 filters, 8 levels), x [{batch}, 39, {FRAMES}], {steps} steps per epoch, median of {repeats} epochs")
    print(
        f"batches only, one epoch:  domadapt {data_only['domadapt'] * 1e3:8.2f} ms   "
        f"DataLoader {data_only['dataloader'] * 1e3:8.2f} ms   "
        f"({data_only['dataloader'] / data_only['domadapt']:.1f}x)"
    )
    print(
        f"training epoch:           domadapt {full['domadapt'] * 1e3:8.1f} ms   "
        f"DataLoader {full['dataloader'] * 1e3:8.1f} ms"
    )
    print(
        f"per step:                 domadapt {full['domadapt'] / steps * 1e3:8.2f} ms   "
        f"DataLoader {full['dataloader'] / steps * 1e3:8.2f} ms"
    )
    print(f"{NAME} ratio={ratio:.2f}")
    return ratio


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="a smaller, faster measurement")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: 1 on CPU, torch's default on CUDA)"
    )


def standard_main(run: Callable[..., float], doc: str, argv: list[str] | None = None) -> int:
    """The command line of a benchmark whose ``run`` takes only the common arguments."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    run(quick=args.quick, device=args.device, threads=args.threads)
    return 0


def main(argv: list[str] | None = None) -> int:
    return standard_main(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
