"""Where the TIM training step's time goes on this CPU, and what was measured against it.

    python benchmarks/profile_tim_step.py [--quick] [--compile] [--device auto|cpu|cuda]

The step of ``bench_tim_step.py`` as domadapt runs it: channel-major TIM (39 filters, 8
levels, dropout 0.1) on a joint step's 128 windows of ``[39, 94]``, forward, cross-entropy,
backward, clipping and fused Adam under ``domadapt.device.autocast``, one thread. Prints:

- torch.profiler's self time over 5 steps: the share of the matrix products (``mm``,
  ``addmm``, ``addmv``) and of every other operator (elementwise ops, copies, BatchNorm,
  fills, ...), and the operators with the most self time;
- a multiply of two ``[39, 128, 94]`` activations alone, on a warm cache, against the same
  multiply's average inside the step;
- the step at 2, 8, 32 and 128 windows and the least-squares line through them: the time a
  step costs whatever its batch, and the time per window;
- the step with every spatial dropout off (p = 0): what the dropouts cost;
- the step with each conv unit's modules run one after another (``nn.Sequential``'s forward:
  the dropout a full-size multiply) against domadapt's ``ConvUnits`` (the dropout folded into
  the BatchNorm, ``domadapt.models.tcn.norm_relu_dropout``);
- a forward pass outside training (eval mode, no gradient, as validation and prediction)
  over 768 windows in batches of 512, 256, 192 (``domadapt.engine.replicas.PREDICT_BATCH``)
  and 128: the time per window and the largest difference from the 512-row batches' logits;
- with ``--compile``: the step with each conv unit's BatchNorm -> ReLU -> dropout and each
  block's gate compiled by ``torch.compile`` (dynamic shapes, a fresh inductor cache), the
  lighter use of the compiler than ``train.compile``'s whole encoder (``bench_compile.py``):
  the seconds to compile, then the step against eager. Needs a C++ compiler on the CPU.

Step times are medians of interleaved repeats (``bench_training_step.median_seconds``). A
diagnostic, no ratio line; the figures are in benchmarks/RESULTS.md ("Where the TIM step's
time goes").
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helpers
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from bench_tim_step import BATCH, step
from bench_training_step import FRAMES, describe, median_seconds, synchronizer, tim_model

from domadapt.data import TARGET_TASK
from domadapt.device import autocast, native_bf16, precision, resolve_device
from domadapt.engine.replicas import PREDICT_BATCH
from domadapt.models.tcn import ChannelDropout, ConvUnits
from domadapt.models.tim import TemporalAwareBlock

MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::addmv", "aten::addmv_", "aten::bmm")
ACTIVATION = [39, BATCH, FRAMES]  # one channel-major activation of the joint step


def batch(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    return torch.randn(n, 39, FRAMES, generator=g).to(device), torch.randint(0, 2, (n,), generator=g).to(device)


def profile_shares(train, rows: int) -> float:
    """Print the matmul share and the top operators of 5 profiled steps; return the average
    self time of one activation-sized multiply inside the step, in seconds."""
    for _ in range(3):
        train()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(5):
            train()
    ops = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in ops)
    matmul = sum(e.self_cpu_time_total for e in ops if e.key in MATMUL_OPS)
    print(f"profiled self time of the aten operators: {total / 5e3:.1f} ms a step; matrix products "
          f"{matmul / total:.0%}, every other operator (elementwise ops, copies, BatchNorm, fills) "
          f"{1 - matmul / total:.0%}")
    for e in sorted(ops, key=lambda e: -e.self_cpu_time_total)[:rows]:
        print(f"  {e.key:<34} {e.self_cpu_time_total / total:6.1%}  {e.count // 5:4d} calls a step")
    muls = [e for e in prof.key_averages(group_by_input_shape=True)
            if e.key == "aten::mul" and e.input_shapes[:2] == [ACTIVATION, ACTIVATION]]
    return sum(e.self_cpu_time_total for e in muls) / max(1, sum(e.count for e in muls)) / 1e6


def warm_multiply(device: torch.device, dtype: torch.dtype) -> float:
    """Seconds of one multiply of two activations in ``dtype``, its inputs hot in the cache."""
    a, b = torch.randn(ACTIVATION, device=device).to(dtype), torch.randn(ACTIVATION, device=device).to(dtype)
    return median_seconds({"mul": lambda: a * b}, 50, synchronizer(device))["mul"]


def pointwise_unit(y, gamma, beta, mask, eps: float):
    """BatchNorm (batch statistics) -> ReLU -> spatial dropout of a ``[C, B, T]`` conv output
    in one function for the compiler; the batch mean and variance come back for the
    running statistics."""
    yf = y.float()
    var, mean = torch.var_mean(yf, dim=(1, 2), correction=0, keepdim=True)
    out = torch.relu((yf - mean) * (torch.rsqrt(var + eps) * gamma[:, None, None]) + beta[:, None, None])
    if mask is not None:
        out = out * mask
    return out.to(y.dtype), mean.flatten(), var.flatten()


def gate(skip, h):
    return skip * torch.sigmoid(h)


def compiled_block_forward(compiler=torch.compile):
    """A TemporalAwareBlock forward that, in training mode, runs each conv unit's BatchNorm
    -> ReLU -> dropout and the gate through ``compiler`` (the same function and the same
    masks as the eager block; the tests pass the identity to check that)."""
    unit, gated = compiler(pointwise_unit, dynamic=True), compiler(gate, dynamic=True)
    eager = TemporalAwareBlock.forward

    def forward(self: TemporalAwareBlock, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.attention is not None or self.residual != "mul":
            return eager(self, x)
        h, layers = x, list(self.body)
        for i in range(0, len(layers), 4):
            conv, bn, _, dropout = layers[i : i + 4]
            y = conv(h)
            mask = dropout.mask(y) if dropout.p > 0 else None
            h, mean, var = unit(y, bn.weight, bn.bias, mask, bn.eps)
            with torch.no_grad():
                n = y[0].numel()
                bn.running_mean.lerp_(mean, bn.momentum)
                bn.running_var.lerp_(var * n / (n - 1), bn.momentum)
                bn.num_batches_tracked += 1
        return gated(self.skip(x), h)

    return forward


@contextlib.contextmanager
def swapped_forward(cls: type, forward) -> Iterator[None]:
    """``cls.forward`` is ``forward`` while open."""
    eager, cls.forward = cls.forward, forward
    try:
        yield
    finally:
        cls.forward = eager


def predict_batches(model, dev: torch.device, repeats: int, sync) -> None:
    """Eval-mode logits of 768 windows in batches of several sizes: ms per window, and the
    largest difference from the 512-row batches' (0: the batch size changes no number)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(768, 39, FRAMES, generator=g).to(dev)
    model.eval()

    def logits(rows: int) -> torch.Tensor:
        with torch.no_grad(), autocast(dev, True):
            return torch.cat([model(x[i : i + rows], TARGET_TASK).logits.float() for i in range(0, len(x), rows)])

    sizes = (512, 256, PREDICT_BATCH, 128)
    reference = logits(512)
    diff = max((logits(n) - reference).abs().max().item() for n in sizes)
    t = median_seconds({n: (lambda n=n: logits(n)) for n in sizes}, repeats, sync)
    model.train()
    print("eval-mode forward of 768 windows, by batch: " + ", ".join(f"{n} rows {t[n] / len(x) * 1e3:.3f} ms a window" for n in sizes)
          + f" (largest difference from the 512-row logits: {diff:.1e})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--compile", action="store_true", help="also time the compiled pointwise chain")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--rows", type=int, default=10, help="operators listed")
    args = parser.parse_args(argv)
    if args.compile:  # before torch compiles anything: a cold compile
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="domadapt-inductor-")
    repeats = 5 if args.quick else 15
    dev = resolve_device(args.device)
    sync = synchronizer(dev)
    torch.set_num_threads(1)
    amp_dtype = torch.bfloat16 if native_bf16(dev) else torch.float32
    print(describe(dev))
    print(f"TIM step, channel-major, {precision(dev, True)}, one thread, forward + backward + fused Adam")

    model = tim_model(0).to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    x, y = batch(BATCH, dev)

    def train(m=model, o=opt, xb=x, yb=y) -> None:
        step(m, o, xb, yb, layout="channel-major", amp=True, dev=dev)

    in_step = profile_shares(train, args.rows)
    alone = warm_multiply(dev, amp_dtype)
    print(f"a multiply of two {ACTIVATION} {str(amp_dtype).removeprefix('torch.')} activations: "
          f"{alone * 1e6:.0f} us alone on a warm cache, {in_step * 1e6:.0f} us on average inside the step "
          f"({in_step / alone:.1f}x)")

    sizes = (2, 8, 32, BATCH)
    batches = {n: batch(n, dev) for n in sizes}
    times = median_seconds({n: (lambda xb=xb, yb=yb: train(xb=xb, yb=yb)) for n, (xb, yb) in batches.items()},
                           repeats, sync)
    slope, fixed = np.polyfit(sizes, [times[n] for n in sizes], 1)
    print("step by batch: " + ", ".join(f"{n} windows {times[n] * 1e3:.1f} ms" for n in sizes)
          + f"; a straight line: {fixed * 1e3:.1f} ms a step + {slope * 1e3:.2f} ms a window")

    no_dropout = copy.deepcopy(model)
    for module in no_dropout.modules():
        if isinstance(module, ChannelDropout):
            module.p = 0.0
    opt_nd = torch.optim.Adam(no_dropout.parameters(), lr=1e-3, fused=True)
    t = median_seconds({"dropout 0.1": train, "dropout 0": lambda: train(m=no_dropout, o=opt_nd)}, repeats, sync)
    print(f"spatial dropouts: step {t['dropout 0.1'] * 1e3:.1f} ms, with p = 0 {t['dropout 0'] * 1e3:.1f} ms "
          f"(the dropouts cost {(t['dropout 0.1'] - t['dropout 0']) * 1e3:.1f} ms)")

    def in_series() -> None:
        with swapped_forward(ConvUnits, torch.nn.Sequential.forward):
            train()

    t = median_seconds({"folded": train, "in series": in_series}, repeats, sync)
    print(f"conv units, the dropout folded into the BatchNorm: step {t['folded'] * 1e3:.1f} ms; the same modules "
          f"one after another: {t['in series'] * 1e3:.1f} ms ({t['folded'] / t['in series']:.3f}x)")

    predict_batches(model, dev, repeats, sync)

    if args.compile:
        forward = compiled_block_forward()

        def compiled() -> None:
            with swapped_forward(TemporalAwareBlock, forward):
                train()

        start = time.perf_counter()
        compiled()
        sync()
        first = time.perf_counter() - start
        t = median_seconds({"eager": train, "compiled": compiled}, repeats, sync)
        print(f"BatchNorm -> ReLU -> dropout and the gate through torch.compile: first step {first:.1f} s "
              f"(compiling, cold cache); then {t['compiled'] * 1e3:.1f} ms a step against eager "
              f"{t['eager'] * 1e3:.1f} ms ({t['compiled'] / t['eager']:.3f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
