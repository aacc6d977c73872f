"""Backbones ``[B, features, T] -> [B, out_dim]`` by name: ``build_backbone("tim", in_channels=39)``.

Every backbone class has an ``Options`` frozen dataclass (the defaults, each with its
reason) and a keyword-only constructor ``cls(in_channels=..., options=Options(...))``.
``build_backbone`` turns plain TOML values into those options and says which names and
options exist when one is wrong. Adding a backbone = one class + one line in ``BACKBONES``
and one in ``BACKBONE_DOCS``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from domadapt.errors import DomadaptError
from domadapt.models.tcn import TCN
from domadapt.models.tim import TIM, ATDeltaTIM, ATTIM, DeltaTIM, MultiTIM
from domadapt.models.transformer import SET, TransformerDeltaTIM, TransformerTIM

BACKBONES: dict[str, type[nn.Module]] = {
    "tim": TIM,
    "delta_tim": DeltaTIM,
    "at_tim": ATTIM,
    "at_delta_tim": ATDeltaTIM,
    "multi_tim": MultiTIM,
    "transformer_tim": TransformerTIM,
    "transformer_delta_tim": TransformerDeltaTIM,
    "set": SET,
    "tcn": TCN,
}

BACKBONE_DOCS: dict[str, str] = {
    "tim": "TIM-Net as in the official code: 1x1 prepare, 8 bidirectional gated TABs (mul), "
    "per-level GAP, weight-layer fusion; out_dim = filters (39)",
    "delta_tim": "TIM with DIFF fusion: consecutive level differences + last level, Linear "
    "(the notes' 'Vanilla+DIFF'); out_dim = filters",
    "at_tim": "TIM with self-attention inside every TAB (AT_TAB: mha 128/4 | aft_local | "
    "aft_simple); out_dim = filters",
    "at_delta_tim": "AT_TAB + DIFF Linear fusion + MHA(128, 4) + mul residual: the notes' "
    "final choice; out_dim = filters",
    "multi_tim": "TIM stacks in series (num_layer=[3,3]), levels added stack to stack, DIFF "
    "Linear fusion; out_dim = filters",
    "transformer_tim": "TIM pooled levels as tokens into nn.TransformerEncoder, mean over "
    "tokens; out_dim = d_model (64)",
    "transformer_delta_tim": "transformer_tim whose tokens are the DIFF items (converged "
    "fastest in the notes); out_dim = d_model",
    "set": "Transformer encoder on the input frames (optional sinusoidal positions), mean "
    "over time; out_dim = d_model",
    "tcn": "plain unidirectional dilated TCN (additive residual) with a prepare step, mean "
    "over time; out_dim = filters",
}


def list_backbones() -> list[str]:
    """The registered backbone names, sorted."""
    return sorted(BACKBONES)


def backbone_options(name: str) -> dict[str, Any]:
    """Option name -> default of backbone ``name`` (what a recipe may set)."""
    cls = _backbone_class(name)
    return {f.name: f.default for f in dataclasses.fields(cls.Options)}


def build_backbone(name: str, *, in_channels: int, **options: Any) -> nn.Module:
    """Build backbone ``name`` for ``in_channels`` input features with TOML-style ``options``.

    Lists become tuples; ints are accepted where a float is expected. Raises DomadaptError
    for an unknown name (listing the known ones), an unknown option (listing the valid
    ones), a value of the wrong type or a value out of its range.

    Example:
        >>> build_backbone("at_delta_tim", in_channels=39, levels=6).out_dim
        39
    """
    cls = _backbone_class(name)
    fields = {f.name: f for f in dataclasses.fields(cls.Options)}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise DomadaptError(
            f"backbone {name!r}: unknown option(s) {', '.join(unknown)}; valid options: "
            f"{', '.join(sorted(fields))}"
        )
    values = {key: _coerce(name, key, value, fields[key].default) for key, value in options.items()}
    return cls(in_channels=int(in_channels), options=cls.Options(**values))


def _backbone_class(name: str) -> type[nn.Module]:
    if name not in BACKBONES:
        raise DomadaptError(f"unknown backbone {name!r}; known backbones: {', '.join(list_backbones())}")
    return BACKBONES[name]


def _coerce(backbone: str, key: str, value: Any, default: Any) -> Any:
    """``value`` as the type of ``default`` (bool, int, float, str or tuple of ints)."""

    def wrong() -> DomadaptError:
        return DomadaptError(
            f"backbone {backbone!r} option {key}={value!r}: expected a {type(default).__name__} "
            f"like the default {default!r}"
        )

    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise wrong()
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong()
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong()
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise wrong()
        return value
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise wrong()
        return tuple(value)
    return value
