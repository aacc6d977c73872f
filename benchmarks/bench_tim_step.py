"""The TIM step in each precision and layout: why domadapt's TIM runs time-major with bf16.

    python benchmarks/bench_tim_step.py [--quick] [--device auto|cpu|cuda]

One training step (forward, cross-entropy, backward, clipping, Adam) of the recipes' TIM (39
filters, 8 levels, dropout 0.1) on a joint step's batch (64 source + 64 target windows of
``[39, 94]``), timed four ways on the same weights and batch:

  - ``conv``: the encoder as torch's channels-first layers compute it, ``[B, C, T]``: each
    causal conv a left-padded ``F.conv1d`` (oneDNN's dilated convolution on the CPU),
    ``F.batch_norm`` and ``F.dropout1d`` over channels (what domadapt ran before);
  - ``time-major``: domadapt's own modules, ``[B, T, C]``: each causal conv one matrix
    product over the time-shifted copies (``domadapt.models.tcn.CausalConv1d``);

each in float32 and under ``domadapt.device.autocast`` (bf16 where the device computes it
in hardware, else float32 again: the line says which), all with the fused Adam the training
loop builds; and the previous default, conv in float32 with the per-tensor Adam. Medians of
interleaved repeats, one intra-op thread (what a unit gets by default). The last line is
``tim_step_default_over_conv_float32_lower_is_better ratio=``: domadapt's default (time-major,
its autocast, fused Adam) over the previous default.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helpers
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from bench_training_step import FRAMES, describe, median_seconds, synchronizer, tim_model

from domadapt.data import TARGET_TASK
from domadapt.device import autocast, precision, resolve_device
from domadapt.models.tim import TIM

NAME = "tim_step_default_over_conv_float32_lower_is_better"
BATCH = 128  # a joint step: 64 source + 64 target windows through the general extractor


def conv_causal(x: torch.Tensor, conv: torch.nn.Conv1d) -> torch.Tensor:
    pad = (conv.kernel_size[0] - 1) * conv.dilation[0]
    return F.conv1d(F.pad(x, (pad, 0)), conv.weight, conv.bias, dilation=conv.dilation)


def conv_unit(x: torch.Tensor, body: torch.nn.Sequential) -> torch.Tensor:
    """conv -> BatchNorm -> ReLU -> spatial dropout, repeated, on ``[B, C, T]``."""
    for i in range(0, len(body), 4):
        conv, bn, _, drop = body[i : i + 4]
        x = F.batch_norm(conv_causal(x, conv), bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.training, bn.momentum, bn.eps)
        x = F.dropout1d(torch.relu(x), drop.p, drop.training)
    return x


def conv_tim(model: TIM, x: torch.Tensor) -> torch.Tensor:
    """``model``'s forward (official TIM: 1x1 prepare, gated ``mul`` TABs, weight fusion) channels-first."""
    enc = model.encoder
    fwd = conv_causal(x, enc.prepare_forward[0])
    bwd = conv_causal(torch.flip(x, dims=(2,)), enc.prepare_backward[0])
    levels = []
    for block_f, block_b in zip(enc.forward_blocks, enc.backward_blocks):
        fwd = fwd * torch.sigmoid(conv_unit(fwd, block_f.body))
        bwd = bwd * torch.sigmoid(conv_unit(bwd, block_b.body))
        levels.append(fwd.mean(dim=2) + bwd.mean(dim=2))
    return model.fusion(torch.stack(levels, dim=1))


def step(model, opt, x, y, *, layout: str, amp: bool, dev: torch.device) -> None:
    with autocast(dev, amp):
        general = conv_tim(model.general, x) if layout == "conv" else model.general(x)
        logits = model.from_general(general, TARGET_TASK).logits
        loss = F.cross_entropy(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()


def run(quick: bool = False, device: str = "auto") -> float:
    dev = resolve_device(device)
    torch.set_num_threads(1)
    model = tim_model(0).to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    per_tensor = torch.optim.Adam(model.parameters(), lr=1e-3)  # the previous default's
    g = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, 39, FRAMES, generator=g).to(dev)
    y = torch.randint(0, 2, (BATCH,), generator=g).to(dev)
    with torch.no_grad():  # the two layouts compute the same function
        model.eval()
        diff = (conv_tim(model.general, x) - model.general(x)).abs().max().item()
        model.train()
    print(describe(dev))
    print(f"conv vs time-major forward, float32, eval mode: max abs difference {diff:.1e}")
    variants = {
        (layout, amp): (lambda layout=layout, amp=amp: step(model, opt, x, y, layout=layout, amp=amp, dev=dev))
        for layout in ("conv", "time-major")
        for amp in (False, True)
    }
    timed = {f"{k[0]} {k[1]}": fn for k, fn in variants.items()}
    timed["previous"] = lambda: step(model, per_tensor, x, y, layout="conv", amp=False, dev=dev)
    times = median_seconds(timed, 5 if quick else 15, synchronizer(dev))
    autocast_name = precision(dev, True)
    print(f"TIM step, batch {BATCH} of [39, {FRAMES}], forward + backward + fused Adam, ms (median):")
    for (layout, amp), _ in variants.items():
        label = autocast_name if amp else "float32"
        print(f"  {layout:<10} {label:<13} {times[f'{layout} {amp}'] * 1e3:7.1f}")
    print(f"previous default (conv, float32, per-tensor Adam): {times['previous'] * 1e3:.1f} ms")
    conv_amp, tm_amp = times["conv True"], times["time-major True"]
    print(f"time-major over conv under {autocast_name}: ratio={tm_amp / conv_amp:.3f}")
    print(f"time-major over conv in float32: ratio={times['time-major False'] / times['conv False']:.3f}")
    ratio = tm_amp / times["previous"]
    print(f"{NAME} ratio={ratio:.3f}")
    return ratio


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    a = parser.parse_args()
    run(a.quick, a.device)
