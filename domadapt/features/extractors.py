"""Your own front-end: ``features.kind = "custom"``.

An extractor is any ``nn.Module`` or callable taking windows ``wave`` ``(B, S)`` (float32,
``features.sample_rate``, on the extraction device) to features ``(B, D, T)``. Give one to
the library API::

    segs = extract_segments(corpus, FeatureConfig(kind="custom"), extractor=MyExtractor())

or register it by name, for recipes (``features.model = "my_frontend"`` with
``--import my_module``)::

    from domadapt.features import FEATURE_EXTRACTORS

    @FEATURE_EXTRACTORS.register("my_frontend")
    class MyFrontend(nn.Module):
        '''Log-energy of 25 ms frames; D = 1.'''
        deterministic = True        # same window, same features: the output may be cached

        def __init__(self, *, sample_rate: int) -> None: ...   # sample_rate is passed if taken
        def forward(self, wave): ...

A registered class is instantiated (with ``sample_rate=`` when its constructor takes it,
its other parameters at their defaults); a registered function is the extractor itself.

Caching: only an extractor with ``deterministic = True`` is cached, keyed by every setting
plus its identity: its registered name, its class or function's module and name, a hash of
its source code, a hash of an ``nn.Module``'s state_dict, and its ``cache_id`` attribute if
it has one (set ``cache_id`` to anything else the output depends on: closures, files).
One whose source cannot be read and without ``cache_id`` is not cached.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from typing import Any, Callable

import torch
from torch import nn

from domadapt.errors import DomadaptError
from domadapt.features.config import FeatureConfig
from domadapt.registries import FEATURE_EXTRACTORS

log = logging.getLogger("domadapt")

__all__ = ["FEATURE_EXTRACTORS", "extractor_identity", "is_deterministic", "resolve_extractor"]


Extractor = Callable[[torch.Tensor], torch.Tensor]


def resolve_extractor(cfg: FeatureConfig, extractor: Extractor | None = None) -> Extractor:
    """The extractor of a ``kind="custom"`` config: ``extractor`` if given, else the one
    registered as ``cfg.model`` (a class is instantiated, a function used as it is)."""
    if extractor is not None:
        if not callable(extractor):
            raise DomadaptError(f"extractor={extractor!r}: expected an nn.Module or a callable wave -> features")
        return extractor
    if cfg.model is None:
        raise DomadaptError(
            "features.kind='custom' needs an extractor: pass extractor= to extract_segments, or set "
            f"features.model to a registered name ({', '.join(FEATURE_EXTRACTORS.names()) or 'none registered'})"
        )
    entry = FEATURE_EXTRACTORS.get(cfg.model)
    if inspect.isclass(entry):
        return FEATURE_EXTRACTORS.build(cfg.model, sample_rate=cfg.sample_rate)
    return entry


def is_deterministic(extractor: Any) -> bool:
    """Whether ``extractor`` declares ``deterministic = True`` (its output may be cached)."""
    return getattr(extractor, "deterministic", False) is True


def extractor_identity(extractor: Any, *, name: str | None = None) -> dict[str, Any] | None:
    """What the cached features of ``extractor`` depend on besides the settings, as plain
    JSON values; None when there is no stable identity (no source, no ``cache_id``)."""
    kind = extractor if inspect.isfunction(extractor) or inspect.ismethod(extractor) else type(extractor)
    ident: dict[str, Any] = {
        "extractor": f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', repr(kind))}",
    }
    if name is not None:
        ident["registered_as"] = name
    cache_id = getattr(extractor, "cache_id", None)
    if cache_id is not None:
        ident["cache_id"] = str(cache_id)
    try:
        ident["source_sha256"] = hashlib.sha256(inspect.getsource(kind).encode()).hexdigest()
    except (OSError, TypeError):
        if cache_id is None:
            log.info("custom extractor %s: no source to hash and no cache_id; not cached", ident["extractor"])
            return None
    if isinstance(extractor, nn.Module):
        ident["state_sha256"] = _state_digest(extractor)
    return ident


def _state_digest(module: nn.Module) -> str:
    h = hashlib.sha256()
    for key, value in module.state_dict().items():
        h.update(key.encode())
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
