"""Where the tensors live and how the CPU's threads wait: ``--device auto|cpu|cuda`` resolved
once, with a clear error when CUDA is asked for but absent, and OpenMP told to let its idle
threads sleep.

torch is imported inside the functions: :func:`passive_openmp_waits` must run before torch
loads (``domadapt/__init__.py`` calls it).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

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
