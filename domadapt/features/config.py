"""Front-end settings: one frozen dataclass, every field a plain TOML value.

A recipe's ``[features]`` table overrides these defaults; ``FeatureConfig.replace`` applies
overrides with a clear error for a misspelt key. Every field takes part in the feature cache
key (see ``domadapt.features.cache``), so changing any of them rebuilds the features.

Kinds: ``mfcc`` and ``logmel`` (computed here, librosa's numbers); ``ssl``, a frozen
self-supervised speech model (wav2vec 2.0 / HuBERT / WavLM) loaded from a local checkpoint
(``domadapt.features.ssl``); ``custom``, any ``wave [B, S] -> [B, D, T]`` extractor given
to ``extract_segments(..., extractor=...)`` or registered by name
(``domadapt.features.extractors``); ``egemaps``, ``compare`` and ``mfcc_stats``, one vector
of functionals per whole utterance (``domadapt.features.functionals``, the numbers of the
``baseline`` rows) as a segment of one frame, ``[N, D, 1]``, for a backbone that reads
vectors (``mlp``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from domadapt.errors import DomadaptError
from domadapt.registries import FEATURE_EXTRACTORS

#: kinds that summarise a whole utterance in one vector: no windows, no frames
FUNCTIONAL_KINDS = ("egemaps", "compare", "mfcc_stats")
SPECTRAL_KINDS = ("mfcc", "logmel")  # computed here, window by window, from the waveform
KINDS = (*SPECTRAL_KINDS, "ssl", "custom", *FUNCTIONAL_KINDS)
BACKENDS = ("torchaudio", "librosa")
PAD_POLICIES = ("zeros", "repeat", "drop")
NORMALIZATIONS = ("none", "utterance", "corpus")
STFT_PAD_MODES = ("constant", "reflect")

#: TIM-Net's fixed clip length per corpus in samples at 22,050 Hz (its extract_feature.py
#: ``mean_signal_length``; README: "almost the same as the maximum length" of each corpus).
#: ``clip_samples = "timnet_paper"`` reads this table by corpus name.
TIMNET_CLIP_SAMPLES = {
    "casia": 88_000,
    "emodb": 96_000,
    "emovo": 96_000,
    "iemocap": 310_000,
    "ravdess": 110_000,
    "savee": 130_000,
}
CLIP_TABLES = {"timnet_paper": TIMNET_CLIP_SAMPLES}


@dataclass(frozen=True)
class FeatureConfig:
    """How audio becomes a ``[N, C, T]`` segment tensor.

    With the defaults, one 3 s window at 16 kHz (48,000 samples) becomes a ``[39, 94]`` MFCC
    matrix: ``T = 1 + segment_samples // hop_length`` frames (``center=True``).
    """

    # "mfcc": the 39 coefficients TIM-Net is built for; "logmel": n_mels log-mel bands (dB);
    # "egemaps" / "compare" / "mfcc_stats": one vector of functionals per utterance (the
    # window, clip and pad settings do not apply; backbone "mlp").
    kind: str = "mfcc"
    # "torchaudio": batched on the chosen device; "librosa": per-segment reference, slow.
    backend: str = "torchaudio"
    # Every corpus is resampled to one rate so that frames mean the same time span across
    # domains (CASIA/IEMOCAP/DAIC are 16 kHz; MODMA 44.1 kHz). TIM-Net's own scripts used
    # librosa.load's 22,050 Hz; 16 kHz loses nothing below 8 kHz where speech cues live.
    sample_rate: int = 16000
    n_mfcc: int = 39  # TIM-Net's input width (librosa.feature.mfcc(n_mfcc=39))
    # librosa.feature.mfcc / melspectrogram defaults, as TIM-Net's extract_feature.py used them.
    n_mels: int = 128
    n_fft: int = 2048
    hop_length: int = 512
    # librosa >= 0.10 pads centred frames with zeros; librosa < 0.10 (TIM-Net's era) reflected.
    stft_pad_mode: str = "constant"
    # librosa.power_to_db's default: per clip, floor at (clip max - 80 dB).
    top_db: float = 80.0
    # Fixed windows let utterances of any length share one batch; 3 s ~ CASIA's mean length.
    segment_seconds: float = 3.0
    segment_hop_seconds: float = 3.0  # = segment_seconds: windows do not overlap
    # Short utterances and partial tails: "zeros" pad (TIM-Net pads with zeros), "repeat"
    # tile the audio, "drop" discard (an utterance shorter than one window is then skipped).
    pad: str = "zeros"
    # Audio shorter than this is skipped with a reason; a partial tail shorter than this
    # is dropped (a window of mostly padding carries no information).
    min_seconds: float = 0.5
    # One clip per utterance instead of windows: None = windows of segment_seconds; a number =
    # that many samples, the utterance centre-cropped or centre-padded with zeros (TIM-Net's
    # extract_feature.py); "timnet_paper" = TIM-Net's length for the corpus (TIMNET_CLIP_SAMPLES).
    clip_samples: int | str | None = None
    # z-score every coefficient with the training fold's statistics before the network
    # (build_fold), per domain; false feeds the raw MFCCs, as TIM-Net did.
    standardize: bool = True
    # Cap per utterance (None = all), windows spread evenly over the utterance: keeps one
    # 10-minute interview from outweighing everything else.
    max_segments_per_utterance: int | None = None
    # Per-coefficient mean/std: "utterance" over each utterance's frames, "corpus" over the
    # whole corpus given (the trainer may re-standardise from training folds only).
    normalize: str = "none"
    # Zero-mean unit-variance waveform per utterance; off: it removes the loudness differences
    # between utterances, a cue of arousal that eGeMAPS keeps for that reason (Eyben et al.,
    # IEEE TAC 2016); the lab found it hurt (docs/lineage.md).
    waveform_normalize: bool = False
    # kind = "ssl": a torchaudio bundle name (WAV2VEC2_BASE, HUBERT_BASE, WAVLM_BASE_PLUS, ...;
    # its architecture and input convention; nothing is downloaded). kind = "custom": the
    # registered name of a feature extractor (None when one is passed to extract_segments).
    model: str | None = None
    # kind = "ssl": the local weights file (a relative path is looked up in the working
    # directory, then in <cache root>/checkpoints/). See domadapt.features.ssl for its format.
    checkpoint: str | None = None
    # kind = "ssl": which hidden state. 0 = the CNN features entering the transformer, k = the
    # output of transformer layer k, -1 = the last; a list = their mean (the frozen,
    # equal-weight case of "weighted", so D stays the model's width); "weighted" = every
    # hidden state kept ([N, L, D, T]) for a LayerWeighting trained with the downstream model
    # (SUPERB). The last layer is rarely the best for paralinguistics; recipes choose.
    layer: int | tuple[int, ...] | str = -1

    def __post_init__(self) -> None:
        choices = {
            "kind": KINDS,
            "backend": BACKENDS,
            "pad": PAD_POLICIES,
            "normalize": NORMALIZATIONS,
            "stft_pad_mode": STFT_PAD_MODES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise DomadaptError(
                    f"features.{name}={getattr(self, name)!r}: expected one of {', '.join(allowed)}"
                )
        positive = ("sample_rate", "n_mfcc", "n_mels", "n_fft", "hop_length",
                    "segment_seconds", "segment_hop_seconds", "top_db")
        for name in positive:
            if not getattr(self, name) > 0:
                raise DomadaptError(f"features.{name}={getattr(self, name)!r}: must be > 0")
        if self.min_seconds < 0:
            raise DomadaptError(f"features.min_seconds={self.min_seconds!r}: must be >= 0")
        if self.kind == "mfcc" and self.n_mfcc > self.n_mels:
            raise DomadaptError(
                f"features.n_mfcc={self.n_mfcc} exceeds n_mels={self.n_mels} (DCT of the mel bands)"
            )
        clip = self.clip_samples
        if clip is not None:
            if isinstance(clip, str) and clip not in CLIP_TABLES:
                raise DomadaptError(
                    f"features.clip_samples={clip!r}: expected a number of samples or one of {', '.join(CLIP_TABLES)}"
                )
            if not isinstance(clip, str) and (isinstance(clip, bool) or not isinstance(clip, int) or clip < 1):
                raise DomadaptError(f"features.clip_samples={clip!r}: expected a number of samples >= 1")
            if self.pad != "zeros":
                raise DomadaptError(f"features.pad={self.pad!r}: a centred clip (clip_samples) pads with zeros")
        if self.kind in FUNCTIONAL_KINDS:
            self._check_functional_fields()
        cap = self.max_segments_per_utterance
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise DomadaptError(f"features.max_segments_per_utterance={cap!r}: must be None or >= 1")
        self._check_model_fields()

    def _check_functional_fields(self) -> None:
        """What one vector per utterance cannot honour, refused rather than ignored."""
        if self.normalize == "utterance":
            raise DomadaptError(
                f"features.normalize='utterance' with kind={self.kind!r}: one vector per utterance has no "
                "frames to standardise over (use 'none', or 'corpus')"
            )
        if self.waveform_normalize:
            raise DomadaptError(
                f"features.waveform_normalize=true with kind={self.kind!r}: functionals are computed on the "
                "audio as recorded (as the baseline rows' are)"
            )

    @property
    def spectral(self) -> bool:
        """True for MFCC / log-mel: the front-end computes them (their shape is known here,
        inference and model folders can repeat them)."""
        return self.kind in SPECTRAL_KINDS

    @property
    def one_vector_per_utterance(self) -> bool:
        """True for the functional kinds: segments ``[N, D, 1]``, one per utterance."""
        return self.kind in FUNCTIONAL_KINDS

    def _check_model_fields(self) -> None:
        """Types of model / checkpoint / layer always; their meaning for kind ssl / custom."""
        for name in ("model", "checkpoint"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise DomadaptError(f"features.{name}={value!r}: expected a non-empty string or None")
        layer = self.layer
        if isinstance(layer, list):  # the Python API may pass a list; keep the config hashable
            layer = tuple(layer)
            object.__setattr__(self, "layer", layer)
        is_int = isinstance(layer, int) and not isinstance(layer, bool)
        ints = isinstance(layer, tuple) and layer and all(
            isinstance(k, int) and not isinstance(k, bool) for k in layer
        )
        if not (is_int or ints or layer == "weighted"):
            raise DomadaptError(
                f"features.layer={layer!r}: expected an int, a non-empty list of ints or 'weighted'"
            )
        if self.kind == "ssl":
            from domadapt.features.ssl import bundle_names  # torchaudio: only when asked for

            names = bundle_names()
            if self.model not in names:
                raise DomadaptError(
                    f"features.model={self.model!r}: kind='ssl' needs a torchaudio bundle name, "
                    f"one of {', '.join(names)}"
                )
            if self.checkpoint is None:
                raise DomadaptError(
                    "features.checkpoint: kind='ssl' needs a local weights file (nothing is downloaded; "
                    "see domadapt.features.ssl)"
                )
            if self.sample_rate != 16000:
                raise DomadaptError(
                    f"features.sample_rate={self.sample_rate}: {self.model} takes 16000 Hz audio"
                )
            if self.backend != "torchaudio":
                raise DomadaptError(f"features.backend={self.backend!r}: kind='ssl' runs on torchaudio only")
        elif self.kind == "custom":
            if self.backend != "torchaudio":
                raise DomadaptError(f"features.backend={self.backend!r}: kind='custom' takes no backend")
            if self.model is not None:
                if self.model not in FEATURE_EXTRACTORS:
                    raise DomadaptError(
                        f"features.model={self.model!r}: expected one of "
                        f"{', '.join(FEATURE_EXTRACTORS.names()) or '(none registered)'} "
                        "(or --import the module that registers your own feature extractor)"
                    )

    @property
    def channels(self) -> int:
        """C of the ``[N, C, T]`` output: n_mfcc for MFCC, n_mels for log-mel. For ``ssl``
        and ``custom`` the extractor decides: read ``SegmentSet.x.shape``."""
        self._computed_here("channels")
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    def for_corpus(self, name: str) -> "FeatureConfig":
        """This configuration for corpus ``name``: a named clip table (``"timnet_paper"``)
        resolved to that corpus' number of samples; otherwise unchanged."""
        if not isinstance(self.clip_samples, str):
            return self
        table = CLIP_TABLES[self.clip_samples]
        if name not in table:
            raise DomadaptError(
                f"features.clip_samples={self.clip_samples!r}: no clip length for corpus {name!r} "
                f"(known: {', '.join(table)}); give a number of samples instead"
            )
        return dataclasses.replace(self, clip_samples=table[name])

    @property
    def segment_samples(self) -> int:
        """Samples of one window, or of the one clip per utterance with ``clip_samples``."""
        if isinstance(self.clip_samples, str):
            raise DomadaptError(
                f"features.clip_samples={self.clip_samples!r} depends on the corpus: use for_corpus(name) first"
            )
        if self.clip_samples is not None:
            return self.clip_samples
        return int(round(self.segment_seconds * self.sample_rate))

    @property
    def segment_hop_samples(self) -> int:
        return max(1, int(round(self.segment_hop_seconds * self.sample_rate)))

    @property
    def min_samples(self) -> int:
        return int(round(self.min_seconds * self.sample_rate))

    @property
    def frames(self) -> int:
        """T of the ``[N, C, T]`` output (centred frames): ``1 + segment_samples // hop``
        (MFCC / log-mel only, like :attr:`channels`)."""
        self._computed_here("frames")
        return 1 + self.segment_samples // self.hop_length

    def _computed_here(self, what: str) -> None:
        if not self.spectral:
            raise DomadaptError(
                f"FeatureConfig.{what}: for kind={self.kind!r} the model decides; read SegmentSet.x.shape"
            )

    def replace(self, **overrides: Any) -> "FeatureConfig":
        """A copy with ``overrides`` applied; an unknown key raises listing the valid ones."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise DomadaptError(
                f"features: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}"
            )
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
