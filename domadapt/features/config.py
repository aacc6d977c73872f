"""Front-end settings: one frozen dataclass, every field a plain TOML value.

A recipe's ``[features]`` table overrides these defaults; ``FeatureConfig.replace`` applies
overrides with a clear error for a misspelt key. Every field takes part in the feature cache
key (see ``domadapt.features.cache``), so changing any of them rebuilds the features.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from domadapt.errors import DomadaptError

KINDS = ("mfcc", "logmel")
BACKENDS = ("torchaudio", "librosa")
PAD_POLICIES = ("zeros", "repeat", "drop")
NORMALIZATIONS = ("none", "utterance", "corpus")
STFT_PAD_MODES = ("constant", "reflect")


@dataclass(frozen=True)
class FeatureConfig:
    """How audio becomes a ``[N, C, T]`` segment tensor.

    With the defaults, one 3 s window at 16 kHz (48,000 samples) becomes a ``[39, 94]`` MFCC
    matrix: ``T = 1 + segment_samples // hop_length`` frames (``center=True``).
    """

    # "mfcc": the 39 coefficients TIM-Net is built for; "logmel": n_mels log-mel bands (dB).
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
    # Cap per utterance (None = all), windows spread evenly over the utterance: keeps one
    # 10-minute interview from outweighing everything else.
    max_segments_per_utterance: int | None = None
    # Per-coefficient mean/std: "utterance" over each utterance's frames, "corpus" over the
    # whole corpus given (the trainer may re-standardise from training folds only).
    normalize: str = "none"
    # Zero-mean unit-variance waveform per utterance. The notes found it hurt: off.
    waveform_normalize: bool = False

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
        cap = self.max_segments_per_utterance
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise DomadaptError(f"features.max_segments_per_utterance={cap!r}: must be None or >= 1")

    @property
    def channels(self) -> int:
        """C of the ``[N, C, T]`` output: n_mfcc for MFCC, n_mels for log-mel."""
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    @property
    def segment_samples(self) -> int:
        return int(round(self.segment_seconds * self.sample_rate))

    @property
    def segment_hop_samples(self) -> int:
        return max(1, int(round(self.segment_hop_seconds * self.sample_rate)))

    @property
    def min_samples(self) -> int:
        return int(round(self.min_seconds * self.sample_rate))

    @property
    def frames(self) -> int:
        """T of the ``[N, C, T]`` output (centred frames): ``1 + segment_samples // hop``."""
        return 1 + self.segment_samples // self.hop_length

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
