"""Cost of each alignment loss: a joint training step with the loss vs the same step without.

One TIM model (official defaults), one fixed batch (64 CASIA-like source + 64 MODMA-like
target segments ``[39, 94]``). Each method's own stage step is timed as the training loop runs it:
``out = stage.step(batch, p)``, ``loss = task + λ·align``, backward, clipping, Adam step.
The baseline is ``joint`` (both domains' task losses, no alignment term); each ``align`` run
adds one loss from the registry: mmd, coral, dann, sinkhorn, energy. Medians of interleaved
repeats after a warm-up.

    python benchmarks/bench_alignment.py [--quick] [--device auto|cpu|cuda] [--threads N]

One line per loss, ``align_<loss>_over_joint_lower_is_better ratio=<step with loss / joint step>``,
and last the worst of them, ``align_worst_over_joint_lower_is_better ratio=...``.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helpers
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from bench_training_step import (
    describe,
    median_seconds,
    random_fold,
    set_threads,
    standard_main,
    synchronizer,
    tim_model,
)

from domadapt.align import AlignmentLoss
from domadapt.config import MethodSpec, TrainConfig
from domadapt.device import resolve_device
from domadapt.methods import build_method
from domadapt.methods.base import SourceBatch, StepBatch

NAME = "align_worst_over_joint_lower_is_better"
LOSSES = ("mmd", "coral", "dann", "sinkhorn", "energy")


def _step_fn(spec: MethodSpec, cfg: TrainConfig, model, data, batch: StepBatch, p: float):
    """One optimisation step of ``spec``'s (single) stage on a fixed batch, as the loop runs it."""
    method = build_method(spec, cfg, model).to(batch.x_t.device)
    stage = method.stages(data)[0]
    params = list(method.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    losses = [m for m in method.modules() if isinstance(m, AlignmentLoss)]
    model.train()
    method.train()

    def step() -> None:
        for loss_module in losses:
            loss_module.set_progress(p)
        out = stage.step(batch, p)
        loss = out.task if out.align is None else out.task + 0.5 * out.align
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()

    return step


def run(quick: bool = False, device: str = "auto", threads: int | None = None) -> float:
    """Time the joint step with each loss and without; print the ratios; return the worst."""
    dev = resolve_device(device)
    set_threads(threads, dev)
    repeats = 5 if quick else 15
    data = random_fold(n_source=64, n_target=64, n_eval=64, device=dev)
    cfg = TrainConfig(batch_size=64, lr=1e-3)
    src = data.sources[0]
    batch = StepBatch(
        x_t=data.target_train.x, y_t=data.target_train.y, sources=[SourceBatch(task=src.task, x=src.x, y=src.y)]
    )
    base = tim_model(0).to(dev)
    steps = {"joint": _step_fn(MethodSpec("joint"), cfg, copy.deepcopy(base), data, batch, 0.5)}
    for name in LOSSES:
        steps[name] = _step_fn(MethodSpec("align", {"loss": name}), cfg, copy.deepcopy(base), data, batch, 0.5)
    times = median_seconds(steps, repeats, synchronizer(dev))
    print(describe(dev))
    print(
        f"TIM (39 filters, 8 levels), source [64, 39, 94] + target [64, 39, 94], alignment on the "
        f"general features [64, 39]; median of {repeats} interleaved steps"
    )
    print(f"joint step (no alignment): {times['joint'] * 1e3:8.2f} ms")
    ratios = {}
    for name in LOSSES:
        ratios[name] = times[name] / times["joint"]
        extra = (times[name] - times["joint"]) * 1e3
        print(f"joint + {name:<9}          {times[name] * 1e3:8.2f} ms   ({extra:+6.2f} ms)")
    for name in LOSSES:
        print(f"align_{name}_over_joint_lower_is_better ratio={ratios[name]:.3f}")
    worst = max(ratios.values())
    print(f"{NAME} ratio={worst:.3f}")
    return worst


def main(argv: list[str] | None = None) -> int:
    return standard_main(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
