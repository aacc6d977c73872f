"""Backbones ``[B, features, T] -> [B, out_dim]`` by name: ``build_backbone("tim", in_channels=39)``.

Every backbone class has an ``Options`` frozen dataclass (the defaults, each with its
reason) and a keyword-only constructor ``cls(in_channels=..., options=Options(...))``, and
sets ``out_dim``. :data:`BACKBONES` turns plain TOML values into those options and says
which names and options exist when one is wrong. Your own backbone, in your own module::

    from domadapt.models import BACKBONES

    @BACKBONES.register("tiny_cnn")
    class TinyCNN(nn.Module):
        '''Two 1-D convolutions, mean over time; out_dim = width.'''
        Options = TinyCNNOptions  # or plain keyword parameters: __init__(self, *, in_channels, width=16)
        ...
"""

from __future__ import annotations

from typing import Any

from torch import nn

from domadapt.models.mlp import MLP
from domadapt.models.tcn import TCN
from domadapt.models.tim import TIM, ATDeltaTIM, ATTIM, DeltaTIM, MultiTIM
from domadapt.models.transformer import SET, TransformerDeltaTIM, TransformerTIM
from domadapt.registries import BACKBONES


def __getattr__(name: str) -> Any:
    # BACKBONE_DOCS, kept for callers of the old dict: computed from the registry, so that
    # backbones registered later (user modules) are in it too.
    if name == "BACKBONE_DOCS":
        return {key: BACKBONES.doc(key) for key in BACKBONES}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def list_backbones() -> list[str]:
    """The registered backbone names, sorted."""
    return BACKBONES.names()


def backbone_options(name: str) -> dict[str, Any]:
    """Option name -> default of backbone ``name`` (what a recipe may set)."""
    return BACKBONES.options(name)


def build_backbone(name: str | type, *, in_channels: int, **options: Any) -> nn.Module:
    """Build backbone ``name`` (a registered name, or a class to register) for
    ``in_channels`` input features with TOML-style ``options``.

    Lists become tuples; ints are accepted where a float is expected. Raises DomadaptError
    for an unknown name (listing the known ones), an unknown option (listing the valid
    ones), a value of the wrong type or a value out of its range.

    Example:
        >>> build_backbone("at_delta_tim", in_channels=39, levels=6).out_dim
        39
    """
    return BACKBONES.build(BACKBONES.adopt(name), in_channels=int(in_channels), **options)


__all__ = [
    "BACKBONES",
    "ATDeltaTIM",
    "ATTIM",
    "DeltaTIM",
    "MultiTIM",
    "SET",
    "TCN",
    "TIM",
    "TransformerDeltaTIM",
    "TransformerTIM",
    "backbone_options",
    "build_backbone",
    "list_backbones",
]
