"""Self-supervised speech front-ends (wav2vec 2.0, HuBERT, WavLM) from local checkpoints.

``features.kind = "ssl"`` turns each window the segmenter cuts (16 kHz) into hidden states of
a frozen pre-trained model, ``[B, D, T]`` like an MFCC matrix (D = the model's width, 768
for the base models; T = 149 frames of 20 ms for a 3 s window), so every backbone and method
takes it unchanged. torchaudio 2.11 ships the model builders and the bundles' architecture
settings (``torchaudio.pipelines.<NAME>._params``); only the weights come from a file, and
nothing is ever downloaded.

The checkpoint (``features.checkpoint``) is a file written by ``torch.save``, either

* the ``state_dict`` of the named bundle's model, saved once on a machine with internet::

      import torch, torchaudio
      model = torchaudio.pipelines.WAVLM_BASE_PLUS.get_model()
      torch.save(model.state_dict(), "wavlm_base_plus.pt")

  (``get_model()``'s wrapper prefix ``model.`` and an ASR bundle's CTC head ``aux.*`` are
  accepted and ignored), or
* ``{"builder": NAME, "config": {builder keyword arguments}, "state_dict": ...}`` for any
  other size, NAME one of :data:`SSL_BUILDERS` (``torchaudio.models.wav2vec2_model``,
  ``wavlm_model``, ``hubert_base``, ...); an optional ``"normalize_waveform": bool``
  overrides the bundle's input convention. The tests build tiny models this way.

Layers (``features.layer``), numbered as SUPERB / Hugging Face ``hidden_states`` do: 0 is
the CNN features entering the transformer (after the feature projection and the
convolutional position embedding), k the output of transformer layer k, negative indices
count from the last. A list of layers gives their mean (D unchanged); ``"weighted"`` keeps
every hidden state, ``x`` ``[N, L, D, T]`` with L = layers + 1, for a :class:`LayerWeighting`
trained with the downstream model (SUPERB's weighted sum, Yang et al., Interspeech 2021).
Only the layers up to the deepest one asked for are computed.

Memory: a 3 s window of a base model is 768 x 149 float32 = 458 KB for one layer (31x an
MFCC-39 window) and 13 x that = 5.9 MB with ``"weighted"``; the cache and the training
folds hold all of it.

Models whose bundle normalises the waveform (the large/XLSR ones) get zero mean and unit
variance per window here; torchaudio's own wrapper normalises a whole batch together,
which only agrees for a batch of one.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torchaudio
from torch import nn
from torch.nn import functional as F

from domadapt.errors import DomadaptError
from domadapt.features.config import FeatureConfig

__all__ = [
    "SSL_BUILDERS",
    "TINY_CONFIG",
    "LayerWeighting",
    "SSLEncoder",
    "bundle_names",
    "checkpoint_digest",
    "load_ssl_encoder",
    "needs_layer_weighting",
    "resolve_checkpoint",
    "save_random_checkpoint",
]

#: torchaudio.models builders a ``{"builder": ...}`` checkpoint may name (each returns a
#: Wav2Vec2Model; HuBERT and WavLM share its layout)
SSL_BUILDERS = (
    "wav2vec2_model",
    "wavlm_model",
    "wav2vec2_base",
    "wav2vec2_large",
    "wav2vec2_large_lv60k",
    "wav2vec2_xlsr_300m",
    "wav2vec2_xlsr_1b",
    "wav2vec2_xlsr_2b",
    "hubert_base",
    "hubert_large",
    "hubert_xlarge",
    "wavlm_base",
    "wavlm_large",
)
_FACTORIES = {"Wav2Vec2": "wav2vec2_model", "WavLM": "wavlm_model"}  # a bundle's _model_type

#: ``wav2vec2_model`` arguments of a tiny model: the bundles' CNN strides (20 ms frames,
#: 149 per 3 s) with 16 channels, 2 transformer layers of width 32 (HuBERT base has the
#: wav2vec 2.0 base layout, so this stands for both). See :func:`save_random_checkpoint`.
TINY_CONFIG: dict[str, Any] = dict(
    extractor_mode="group_norm",
    extractor_conv_layer_config=[(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2,
    extractor_conv_bias=False,
    encoder_embed_dim=32,
    encoder_projection_dropout=0.1,
    encoder_pos_conv_kernel=16,
    encoder_pos_conv_groups=4,
    encoder_num_layers=2,
    encoder_num_heads=2,
    encoder_attention_dropout=0.1,
    encoder_ff_interm_features=64,
    encoder_ff_interm_dropout=0.0,
    encoder_dropout=0.1,
    encoder_layer_norm_first=False,
    encoder_layer_drop=0.05,
    aux_num_out=None,
)
_WAVLM_EXTRA = {"encoder_max_distance": 80, "encoder_num_buckets": 32}  # tiny relative-position buckets
_BUNDLE_URL = "https://download.pytorch.org/torchaudio/models/"


# ---------------------------------------------------------------------------- the learned mix


class LayerWeighting(nn.Module):
    """A learned softmax weighting of an SSL model's hidden states, SUPERB's weighted sum.

    ``y = sum_l softmax(w)_l * x[:, l]``: the weights start equal (the mean of all layers)
    and are trained with the downstream model, while the SSL model stays frozen (its hidden
    states are precomputed features). From Yang et al., "SUPERB: Speech processing Universal
    PERformance Benchmark", Interspeech 2021.

    Args:
        num_layers: L, the number of hidden states (``needs_layer_weighting(cfg)``, or
            ``x.shape[1]`` of the segments).

    Shape:
        x ``(B, L, D, T)`` -> ``(B, D, T)``.

    Example::

        >>> mix = LayerWeighting(13)
        >>> mix(torch.randn(4, 13, 768, 149)).shape
        torch.Size([4, 768, 149])
    """

    def __init__(self, num_layers: int) -> None:
        super().__init__()
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise DomadaptError(f"LayerWeighting(num_layers={num_layers!r}): expected an int >= 1")
        self.num_layers = num_layers
        self.logits = nn.Parameter(torch.zeros(num_layers))  # softmax(0) = equal weights

    @property
    def weights(self) -> torch.Tensor:
        """The current mixing weights ``(L,)`` (detached; they sum to 1)."""
        return torch.softmax(self.logits.detach(), dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.num_layers:
            raise ValueError(
                f"LayerWeighting({self.num_layers}) expects x of shape (B, {self.num_layers}, D, T), "
                f"got {tuple(x.shape)}"
            )
        b, n_layers, d, t = x.shape
        w = torch.softmax(self.logits, dim=0).to(x.dtype)
        # (L) @ (B, L, D*T) -> (B, D*T): one batched product, no (B, L, D, T) temporary
        return torch.matmul(w, x.reshape(b, n_layers, d * t)).reshape(b, d, t)

    def extra_repr(self) -> str:
        return f"num_layers={self.num_layers}"


def needs_layer_weighting(cfg: FeatureConfig) -> int | None:
    """L, the number of hidden states a :class:`LayerWeighting` must mix, when ``cfg`` asks
    for ``layer = "weighted"``; None otherwise (the features are ``[N, D, T]`` already).

    Reads the checkpoint's architecture (builds it on the ``meta`` device, no weights), so
    the file must exist; ``x.shape[1]`` of the extracted segments is the same number.
    """
    if cfg.kind != "ssl" or cfg.layer != "weighted":
        return None
    builder, kwargs, _ = _architecture(cfg, _read_header(resolve_checkpoint(cfg)))
    with torch.device("meta"):
        model = builder(**kwargs)
    return len(model.encoder.transformer.layers) + 1


# ---------------------------------------------------------------------------- the encoder


class SSLEncoder(nn.Module):
    """A frozen wav2vec 2.0 / HuBERT / WavLM model returning chosen hidden states.

    Always in eval mode (no dropout, no layer drop) with ``requires_grad=False`` weights:
    gradients may flow to its input, never into it.

    Args:
        model: a ``torchaudio.models.Wav2Vec2Model`` (wav2vec 2.0, HuBERT or WavLM).
        layer: an index, a list of indices (their mean) or ``"weighted"`` (all hidden
            states, stacked); see the module docstring for the numbering.
        normalize_waveform: zero mean, unit variance per window first (the large models).

    Shape:
        wave ``(B, S)`` at 16 kHz -> ``(B, D, T)``, or ``(B, L, D, T)`` for ``"weighted"``.
    """

    deterministic = True  # the same window always gives the same features: cacheable

    def __init__(
        self, model: nn.Module, *, layer: int | tuple[int, ...] | list[int] | str, normalize_waveform: bool = False
    ) -> None:
        super().__init__()
        self.model = model
        self.normalize_waveform = bool(normalize_waveform)
        self.num_hidden_states = len(model.encoder.transformer.layers) + 1
        self.weighted = layer == "weighted"
        n = self.num_hidden_states
        wanted = list(range(n)) if self.weighted else [layer] if isinstance(layer, int) else list(layer)
        bad = [k for k in wanted if not -n <= k < n]
        if bad:
            raise DomadaptError(
                f"features.layer={layer!r}: this model has hidden states 0..{n - 1} "
                f"(0 = the CNN features, {n - 1} = the last transformer layer; negative counts from the end)"
            )
        self.layers = tuple(k % n for k in wanted)
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "SSLEncoder":
        """Frozen: stays in eval mode whatever the caller asks (dropout would make the
        cached features random)."""
        return self

    def hidden_states(self, wave: torch.Tensor, upto: int) -> list[torch.Tensor]:
        """Hidden states ``0..upto`` of ``wave`` ``(B, S)``, each ``(B, T, D)``.

        The same computation as ``Wav2Vec2Model.extract_features`` (which returns states
        1..L), with state 0, the transformer's input, kept as well.
        """
        if self.normalize_waveform:
            wave = F.layer_norm(wave, wave.shape[-1:])
        x, _ = self.model.feature_extractor(wave, None)
        encoder = self.model.encoder
        x, mask = encoder._preprocess(x, None)  # feature projection (torchaudio internals)
        transformer = encoder.transformer
        x = transformer._preprocess(x)  # + convolutional position embedding, layer norm
        states = [x]
        position_bias = None  # WavLM's relative position bias, passed from layer to layer
        for layer in transformer.layers[:upto]:
            x, position_bias = layer(x, mask, position_bias=position_bias)
            states.append(x)
        return states

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() != 2:
            raise ValueError(f"SSLEncoder expects wave of shape (B, S), got {tuple(wave.shape)}")
        states = self.hidden_states(wave, max(self.layers))
        if self.weighted:
            return torch.stack(states, dim=1).transpose(2, 3).contiguous()  # (B, L, D, T)
        if len(self.layers) == 1:
            return states[self.layers[0]].transpose(1, 2).contiguous()
        mean = torch.stack([states[k] for k in self.layers]).mean(dim=0)
        return mean.transpose(1, 2).contiguous()


def load_ssl_encoder(
    cfg: FeatureConfig, *, device: str | torch.device = "cpu", path: Path | None = None
) -> SSLEncoder:
    """The frozen encoder ``cfg`` describes (``kind="ssl"``), weights from the local
    checkpoint, on ``device``. Raises a one-line DomadaptError for a missing or mismatched
    file."""
    path = resolve_checkpoint(cfg) if path is None else path
    obj = _load(path)
    builder, kwargs, normalize = _architecture(cfg, obj)
    state = obj["state_dict"] if _is_builder_file(obj) else obj
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DomadaptError(f"checkpoint {path}: {_FORMAT}")
    state = dict(state)
    if state and all(k.startswith("model.") for k in state):  # saved from get_model()'s wrapper
        state = {k[len("model."):]: v for k, v in state.items()}
    if not _is_builder_file(obj):
        state = {k: v for k, v in state.items() if not k.startswith("aux.")}  # an ASR bundle's head
    try:
        model = builder(**kwargs)
    except TypeError as exc:
        raise DomadaptError(f"checkpoint {path}: its config does not fit its builder ({exc})") from None
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a shape mismatch
        first = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else str(exc)
        raise DomadaptError(
            f"checkpoint {path} does not match {_what(cfg, obj)}: {first.strip()}"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        raise DomadaptError(
            f"checkpoint {path} does not match {_what(cfg, obj)}: {len(result.missing_keys)} missing "
            f"(e.g. {result.missing_keys[:2]}), {len(result.unexpected_keys)} unexpected "
            f"(e.g. {result.unexpected_keys[:2]}) weights"
        )
    encoder = SSLEncoder(model, layer=cfg.layer, normalize_waveform=normalize)
    return encoder.to(device)


# ---------------------------------------------------------------------------- the file


def save_random_checkpoint(
    path: str | Path, *, builder: str = "wav2vec2_model", seed: int = 0, **config: Any
) -> nn.Module:
    """Write a randomly initialised model as a ``{"builder", "config", "state_dict"}``
    checkpoint and return it (eval mode): :data:`TINY_CONFIG` updated with ``config``
    (plus WavLM's position buckets for ``wavlm_model``). For tests, benchmarks and smoke
    runs of an SSL recipe where the real weights are absent: its features mean nothing::

        save_random_checkpoint("tiny.pt", builder="wavlm_model")
        # python -m domadapt.recipe casia2modma_ssl --quick \
        #     --set features.checkpoint=tiny.pt --set features.layer=2
    """
    if builder not in ("wav2vec2_model", "wavlm_model"):
        raise DomadaptError(f"save_random_checkpoint: builder {builder!r}: expected wav2vec2_model or wavlm_model")
    full = {**TINY_CONFIG, **(_WAVLM_EXTRA if builder == "wavlm_model" else {}), **config}
    torch.manual_seed(seed)
    model = getattr(torchaudio.models, builder)(**full).eval()
    torch.save({"builder": builder, "config": full, "state_dict": model.state_dict()}, path)
    return model


def bundle_names() -> tuple[str, ...]:
    """The torchaudio bundles ``features.model`` may name (wav2vec 2.0, HuBERT, WavLM, ...)."""
    return _bundle_names()


@functools.cache
def _bundle_names() -> tuple[str, ...]:
    pipelines = torchaudio.pipelines
    return tuple(
        sorted(n for n in dir(pipelines) if isinstance(getattr(pipelines, n), pipelines.Wav2Vec2Bundle))
    )


def _bundle(name: str) -> Any:
    return getattr(torchaudio.pipelines, name)


def resolve_checkpoint(cfg: FeatureConfig) -> Path:
    """The checkpoint file of ``cfg``: as given if absolute (``~`` expanded); a relative
    path in the working directory, else in ``<cache root>/checkpoints/``. A missing file is
    a one-line DomadaptError saying how to make it."""
    from domadapt.features.cache import default_cache_dir

    if cfg.checkpoint is None:
        raise DomadaptError("features.checkpoint: kind='ssl' needs a local weights file")
    given = Path(cfg.checkpoint).expanduser()
    places = [given] if given.is_absolute() else [Path.cwd() / given, default_cache_dir() / "checkpoints" / given]
    for place in places:
        if place.is_file():
            return place
    bundle = _bundle(cfg.model) if cfg.model in bundle_names() else None
    source = f" ({_BUNDLE_URL}{bundle._path})" if bundle is not None else ""
    raise DomadaptError(
        f"features.checkpoint={cfg.checkpoint!r}: no such file (looked in {' and '.join(map(str, places))}); "
        f"nothing is downloaded here: on a machine with internet run `python -c \"import torch, torchaudio; "
        f"torch.save(torchaudio.pipelines.{cfg.model}.get_model().state_dict(), '{given.name}')\"`{source} "
        f"and copy the file to {places[-1].parent}"
    )


@functools.lru_cache(maxsize=8)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def checkpoint_digest(path: str | Path) -> str:
    """SHA-256 of the file's bytes (what the feature cache is keyed by, not its path),
    computed once per process for a given size and modification time."""
    real = os.path.realpath(path)
    st = os.stat(real)
    return _digest(real, st.st_size, st.st_mtime_ns)


_FORMAT = (
    "expected a state_dict of the bundle's model or {'builder': NAME, 'config': {...}, 'state_dict': {...}} "
    "(see domadapt.features.ssl)"
)


def _load(path: Path, *, mmap: bool = False) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # noqa: BLE001 - not a zip, a pickle the safe loader refuses: one message
        if mmap:
            return _load(path)  # an old-format file cannot be memory-mapped
        first = str(exc).strip().split("\n")[0]
        raise DomadaptError(f"checkpoint {path}: not a readable torch.save file ({first})") from None


def _read_header(path: Path) -> Any:
    """The checkpoint, memory-mapped: its config without reading every weight."""
    return _load(path, mmap=True)


def _is_builder_file(obj: Any) -> bool:
    return isinstance(obj, Mapping) and "builder" in obj and "state_dict" in obj


def _what(cfg: FeatureConfig, obj: Any) -> str:
    return f"builder {obj['builder']}" if _is_builder_file(obj) else f"the {cfg.model} architecture"


def _architecture(cfg: FeatureConfig, obj: Any) -> tuple[Any, dict[str, Any], bool]:
    """(builder function, its keyword arguments, normalise the waveform?) for a loaded file."""
    bundle = _bundle(cfg.model)
    if not isinstance(obj, Mapping):
        raise DomadaptError(f"checkpoint {cfg.checkpoint}: {_FORMAT}")
    if _is_builder_file(obj):
        name, config = obj["builder"], obj.get("config", {})
        if name not in SSL_BUILDERS:
            raise DomadaptError(
                f"checkpoint {cfg.checkpoint}: builder {name!r}: expected one of {', '.join(SSL_BUILDERS)}"
            )
        if not isinstance(config, Mapping):
            raise DomadaptError(f"checkpoint {cfg.checkpoint}: config must be a dict of {name} keyword arguments")
        normalize = obj.get("normalize_waveform", bundle._normalize_waveform)
        return getattr(torchaudio.models, name), dict(config), bool(normalize)
    params = {**bundle._params, "aux_num_out": None}  # features only: no CTC head
    return getattr(torchaudio.models, _FACTORIES[bundle._model_type]), params, bool(bundle._normalize_waveform)
