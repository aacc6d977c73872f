"""``domadapt export MODEL --format torchscript|onnx``: the network of a model folder outside Python's domadapt.

What is exported: window features ``[N, C, T]`` (the front-end's raw MFCC / log-mel of
``features.segment_seconds`` windows) -> target class probabilities ``[N, K]``, with the
folder's standardisation inside. The front-end (reading, resampling, windowing, MFCC) stays
in Python (``domadapt.features``): what a caller feeds the exported network is
``extract_windows``' output, as ``domadapt predict`` computes it.

- ``torchscript``: ``MODEL/model.torchscript.pt`` (``torch.jit.load``), traced.
- ``onnx``: ``MODEL/model.onnx`` through ``torch.onnx.export`` (the dynamo exporter, which
  needs the ``onnx`` and ``onnxscript`` packages: ``pip install "domadapt[onnx]"``); the
  batch dimension is dynamic. Run it with ``onnxruntime``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from domadapt.errors import DomadaptError
from domadapt.inference import Model, load_model

FORMATS = ("torchscript", "onnx")
FILES = {"torchscript": "model.torchscript.pt", "onnx": "model.onnx"}


class ProbabilityNetwork(nn.Module):
    """Raw window features ``[N, C, T]`` -> probabilities ``[N, K]``: the folder's
    standardisation, then the method's target logits, then a softmax."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.method = model.method
        mean, std = (model.mean, model.std) if model.mean is not None else (torch.zeros(1), torch.ones(1))
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.method.target_logits((x - self.mean) / self.std), dim=-1)


def example_input(model: Model, n: int = 2) -> torch.Tensor:
    """``n`` windows of the folder's input shape (random: tracing needs shapes, not values)."""
    return torch.randn(n, *model.info["input_shape"], generator=torch.Generator().manual_seed(0))


def export_model(folder: Path, fmt: str, *, out: Path | None = None) -> Path:
    """Export the network of the model folder ``folder`` as ``fmt``; returns the file written
    (default: inside ``folder``)."""
    if fmt not in FORMATS:
        raise DomadaptError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    model = load_model(folder, device="cpu")
    net = ProbabilityNetwork(model).eval()
    x = example_input(model)
    path = Path(out) if out is not None else Path(folder) / FILES[fmt]
    with torch.no_grad():
        if fmt == "torchscript":
            traced = torch.jit.trace(net, (x,), check_trace=False)
            traced.save(str(path))
            return path
        try:
            import onnx  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError as exc:
            raise DomadaptError(f"--format onnx needs the onnx and onnxscript packages ({exc}): pip install 'domadapt[onnx]'") from None
        batch = torch.export.Dim("batch", min=1)
        program = torch.onnx.export(net, (x,), dynamo=True, input_names=["features"], output_names=["probabilities"],
                                    dynamic_shapes=({0: batch},), verbose=False)
        program.save(str(path))
    return path
