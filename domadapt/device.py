"""``--device auto|cpu|cuda`` resolved once, with a clear error when CUDA is asked for but absent."""

from __future__ import annotations

import torch

from domadapt.errors import DomadaptError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
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
