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
from domadapt.registry import Registry

#: name -> backbone class, each with a one-line doc (``domadapt list backbones``).
BACKBONES = Registry("backbone", passed=("in_channels",))
_register = BACKBONES.register
_register(
    "tim",
    doc="TIM-Net's official graph without its head: 1x1 prepare, 8 bidirectional gated TABs "
    "(mul), per-level GAP, weight-layer fusion; out_dim = filters (39)",
)(TIM)
_register(
    "delta_tim",
    doc="TIM with DIFF fusion: consecutive level differences + last level, Linear "
    "(the notes' 'Vanilla+DIFF'); out_dim = filters",
)(DeltaTIM)
_register(
    "at_tim",
    doc="TIM with self-attention inside every TAB (AT_TAB: mha 128/4 | aft_local | "
    "aft_simple); out_dim = filters",
)(ATTIM)
_register(
    "at_delta_tim",
    doc="AT_TAB + DIFF Linear fusion + MHA(128, 4) + mul residual: the notes' "
    "final choice; out_dim = filters",
)(ATDeltaTIM)
_register(
    "multi_tim",
    doc="TIM stacks in series (num_layer=[3,3]), levels added stack to stack, DIFF "
    "Linear fusion; out_dim = filters",
)(MultiTIM)
_register(
    "transformer_tim",
    doc="TIM pooled levels as tokens into nn.TransformerEncoder, mean over "
    "tokens; out_dim = d_model (64)",
)(TransformerTIM)
_register(
    "transformer_delta_tim",
    doc="transformer_tim whose tokens are the DIFF items (converged "
    "fastest in the notes); out_dim = d_model",
)(TransformerDeltaTIM)
_register(
    "set",
    doc="Transformer encoder on the input frames (optional sinusoidal positions), mean "
    "over time; out_dim = d_model",
)(SET)
_register(
    "tcn",
    doc="plain unidirectional dilated TCN (additive residual) with a prepare step, mean "
    "over time; out_dim = filters",
)(TCN)
_register(
    "mlp",
    doc="Linear+ReLU per hidden width on the input averaged over time (feature vectors "
    "[B, D, 1]: corpus arrays); out_dim = hidden[-1] (32)",
)(MLP)
del _register


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
    return BACKBONES.build(BACKBONES.name_of(name), in_channels=int(in_channels), **options)
