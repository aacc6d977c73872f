"""The TIM step in each precision and layout: why domadapt's TIM runs channel-major with bf16.

    python benchmarks/bench_tim_step.py [--quick] [--device auto|cpu|cuda]

One training step (forward, cross-entropy, backward, clipping, Adam) of the recipes' TIM (39
filters, 8 levels, dropout 0.1) on a joint step's batch (64 source + 64 target windows of
``[39, 94]``), timed in three layouts on the same weights and batch:

  - ``conv``: the encoder as torch's channels-first layers compute it, ``[B, C, T]``: each
    causal conv a left-padded ``F.conv1d`` (oneDNN's dilated convolution on the CPU),
    ``F.batch_norm`` and ``F.dropout1d`` over channels (domadapt's first layout);
  - ``time-major``: ``[B, T, C]``, each causal conv one matrix product of the time-shifted
    copies ``[B*T, k*C]`` by the kernel, BatchNorm over ``[B*T, C]`` (its second);
  - ``channel-major``: domadapt's own modules, ``[C, B, T]``: the kernel times the stacked
    shifted copies ``[k*C, B*T]``, BatchNorm over one contiguous run per channel
    (``domadapt.models.tcn``);

each in float32 and under ``domadapt.device.autocast`` (bf16 where the device computes it
in hardware, else float32 again: the line says which), all with the fused Adam the training
loop builds; and domadapt's first default, conv in float32 with the per-tensor Adam.
Then TIM's two streams (the forward and the time-reversed sequence) in one pass, as domadapt
runs them, against one after the other (``BiTIMEncoder.pair_streams = False``), channel-major
under the autocast: on the recipes' TIM and batch, and on ``casia2modma_small``'s smaller TIM
(16 filters, 4 levels, 2 s windows of 62 frames, 64 windows a step), where each operator's
fixed cost weighs more. Medians of interleaved repeats, one intra-op thread (what a unit gets
by default). The last line is ``tim_step_default_over_conv_float32_lower_is_better ratio=``:
domadapt's default (channel-major, its autocast, fused Adam) over that first default.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

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


def time_major_causal(h: torch.Tensor, conv: torch.nn.Conv1d) -> torch.Tensor:
    """The causal conv on ``[B, T, C]``: the shifted copies side by side, one ``F.linear``."""
    frames, (k,), (d,) = h.shape[1], conv.kernel_size, conv.dilation
    taps = [(h if s == 0 else F.pad(h[:, : frames - s], (0, 0, s, 0)), conv.weight[:, :, j])
            for j in range(k) for s in [(k - 1 - j) * d] if s < frames]
    return F.linear(torch.cat([t for t, _ in taps], dim=-1), torch.cat([w for _, w in taps], dim=1), conv.bias)


def _bn(x: torch.Tensor, bn: torch.nn.BatchNorm1d) -> torch.Tensor:
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.training, bn.momentum, bn.eps)


def reference_tim(model: TIM, x: torch.Tensor, layout: str) -> torch.Tensor:
    """``model``'s forward (official TIM: 1x1 prepare, gated ``mul`` TABs, weight fusion) in
    ``layout`` ``conv`` (``[B, C, T]``) or ``time-major`` (``[B, T, C]``)."""
    enc = model.encoder
    time_dim = 2 if layout == "conv" else 1
    if layout == "conv":
        causal = conv_causal
        norm = _bn
        drop = lambda h, p: F.dropout1d(h, p.p, p.training)  # noqa: E731
    else:
        x = x.transpose(1, 2)
        causal = time_major_causal
        norm = lambda h, bn: _bn(h.reshape(-1, h.shape[-1]), bn).view_as(h)  # noqa: E731
        drop = lambda h, p: F.dropout1d(h.transpose(1, 2), p.p, p.training).transpose(1, 2)  # noqa: E731

    def unit(h: torch.Tensor, body: torch.nn.Sequential) -> torch.Tensor:
        for i in range(0, len(body), 4):  # conv -> BatchNorm -> ReLU -> spatial dropout
            conv, bn, _, dropout = body[i : i + 4]
            h = drop(torch.relu(norm(causal(h, conv), bn)), dropout)
        return h

    fwd = causal(x, enc.prepare_forward[0])
    bwd = causal(torch.flip(x, dims=(time_dim,)), enc.prepare_backward[0])
    levels = []
    for block_f, block_b in zip(enc.forward_blocks, enc.backward_blocks):
        fwd = fwd * torch.sigmoid(unit(fwd, block_f.body))
        bwd = bwd * torch.sigmoid(unit(bwd, block_b.body))
        levels.append(fwd.mean(dim=time_dim) + bwd.mean(dim=time_dim))
    return model.fusion(torch.stack(levels, dim=1))


LAYOUTS = ("conv", "time-major", "channel-major")


def general(model, x: torch.Tensor, layout: str) -> torch.Tensor:
    return model.general(x) if layout == "channel-major" else reference_tim(model.general, x, layout)


def step(model, opt, x, y, *, layout: str, amp: bool, dev: torch.device) -> None:
    with autocast(dev, amp):
        logits = model.from_general(general(model, x, layout), TARGET_TASK).logits
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
    with torch.no_grad():  # the three layouts compute the same function
        model.eval()
        ours = general(model, x, "channel-major")
        diff = max((general(model, x, layout) - ours).abs().max().item() for layout in LAYOUTS[:2])
        model.train()
    print(describe(dev))
    print(f"conv, time-major and channel-major forwards, float32, eval mode: max abs difference {diff:.1e}")
    variants = {
        (layout, amp): (lambda layout=layout, amp=amp: step(model, opt, x, y, layout=layout, amp=amp, dev=dev))
        for layout in LAYOUTS
        for amp in (False, True)
    }
    timed = {f"{k[0]} {k[1]}": fn for k, fn in variants.items()}
    timed["previous"] = lambda: step(model, per_tensor, x, y, layout="conv", amp=False, dev=dev)
    times = median_seconds(timed, 5 if quick else 15, synchronizer(dev))
    autocast_name = precision(dev, True)
    print(f"TIM step, batch {BATCH} of [39, {FRAMES}], forward + backward + fused Adam, ms (median):")
    for (layout, amp), _ in variants.items():
        label = autocast_name if amp else "float32"
        print(f"  {layout:<13} {label:<13} {times[f'{layout} {amp}'] * 1e3:7.1f}")
    print(f"first default (conv, float32, per-tensor Adam): {times['previous'] * 1e3:.1f} ms")
    for amp, label in ((True, f"under {autocast_name}"), (False, "in float32")):
        cm = times[f"channel-major {amp}"]
        print(f"channel-major over conv {label}: ratio={cm / times[f'conv {amp}']:.3f}; "
              f"over time-major: ratio={cm / times[f'time-major {amp}']:.3f}")
    for label, size in (("the recipes' TIM", dict(batch=BATCH)), ("casia2modma_small's TIM", SMALL)):
        (paired, n_paired), (in_turn, n_in_turn) = streams(dev, 5 if quick else 15, **size)
        print(f"{label}, batch {size['batch']}: streams in one pass {paired * 1e3:.1f} ms ({n_paired}), "
              f"one after the other {in_turn * 1e3:.1f} ms ({n_in_turn}): ratio={paired / in_turn:.3f}")
    ratio = times["channel-major True"] / times["previous"]
    print(f"{NAME} ratio={ratio:.3f}")
    return ratio


SMALL = dict(batch=64, filters=16, levels=4, frames=62)  # casia2modma_small's TIM and windows


class OperatorCount(TorchDispatchMode):
    """Counts the aten operators dispatched while it is on (forward and backward alike), and
    those whose first output has ``large`` elements or more (an activation's, not a weight's)."""

    def __init__(self, large: int) -> None:
        super().__init__()
        self.large, self.n, self.n_large = large, 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        first = out[0] if isinstance(out, (tuple, list)) and out else out
        self.n += 1
        self.n_large += isinstance(first, torch.Tensor) and first.numel() >= self.large
        return out


def streams(
    dev: torch.device, repeats: int, *, batch: int, filters: int = 39, levels: int = 8, frames: int = FRAMES
) -> tuple[tuple[float, str], tuple[float, str]]:
    """The autocast channel-major step with TIM's two streams in one pass and one after the
    other, the same model and batch: each one's median seconds and its operators a step."""
    model = tim_model(0, filters=filters, levels=levels).to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 39, frames, generator=g).to(dev)
    y = torch.randint(0, 2, (batch,), generator=g).to(dev)
    encoder = model.general.encoder

    def step_with(pair_streams: bool) -> None:
        encoder.pair_streams = pair_streams
        step(model, opt, x, y, layout="channel-major", amp=True, dev=dev)

    step_with(True)  # Adam's state is made at its first step: not what a step costs after it
    counts = {}
    for pair_streams in (True, False):
        with OperatorCount(large=batch * frames) as count:  # an activation [C, B, T] has B*T per channel
            step_with(pair_streams)
        counts[pair_streams] = f"{count.n} aten operators, {count.n_large} of them on activations"
    times = median_seconds({"paired": lambda: step_with(True), "in turn": lambda: step_with(False)}, repeats, synchronizer(dev))
    encoder.pair_streams = True
    return (times["paired"], counts[True]), (times["in turn"], counts[False])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    a = parser.parse_args()
    run(a.quick, a.device)
