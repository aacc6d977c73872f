"""Where the tensors live, in what precision, and how the CPU's threads wait: ``--device
auto|cpu|cuda`` resolved once, with a clear error when CUDA is asked for but absent; bf16
autocast (``train.amp``) wherever the device computes bf16 in hardware; and OpenMP told to
let its idle threads sleep.

torch is imported inside the functions: :func:`passive_openmp_waits` must run before torch
loads (``domadapt/__init__.py`` calls it).
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, ContextManager

from domadapt.errors import DomadaptError

if TYPE_CHECKING:
    import torch


def passive_openmp_waits() -> None:
    """Idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``) unless the
    user chose a policy (``OMP_WAIT_POLICY``, or libgomp's ``GOMP_SPINCOUNT``).

    torch's CPU kernels run in an OpenMP team (libgomp in the Linux wheels) whose threads by
    default spin at every barrier before sleeping; when other processes hold the cores, a
    spinning thread burns the time slice its descheduled teammate needs, and a run slows by
    far more than its fair share (benchmarks/RESULTS.md, "Contention"). libgomp reads the
    policy once, when it loads with torch, so setting it later does nothing; worker
    processes inherit it from this process's environment.
    """
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def resolve_device(name: str = "auto") -> "torch.device":
    """``auto`` picks CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DomadaptError("--device cuda: no CUDA device is available (use auto or cpu)")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise DomadaptError(f"--device {name!r}: expected auto, cpu or cuda")


BF16, FLOAT32 = "bf16 autocast", "float32"  # what :func:`precision` says


def native_bf16(device: "torch.device") -> bool:
    """Whether ``device`` computes bfloat16 in hardware: a CUDA GPU that supports it, or an
    x86 CPU whose flags list AVX512-BF16 or AMX-BF16 (Linux). Elsewhere bf16 would be
    emulated, slower than float32, so autocast stays off."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them in /proc/cpuinfo (empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def autocast(device: "torch.device", amp: bool) -> ContextManager:
    """``train.amp``'s context: bf16 autocast where :func:`native_bf16`, else float32 (a no-op).
    Weights, optimiser state, losses that autocast keeps in float32 and every alignment
    loss (``domadapt.align``) stay float32; matrix products and convolutions run in bf16."""
    import torch

    if amp and native_bf16(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def precision(device: "torch.device", amp: bool) -> str:
    """What :func:`autocast` runs on ``device``, for the run's header and results."""
    return BF16 if amp and native_bf16(device) else FLOAT32
