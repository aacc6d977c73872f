"""Front-ends: audio -> fixed windows of features, with an on-disk cache.

``extract_segments(corpus, FeatureConfig())`` is the entry point; it returns a SegmentSet
(``x`` [N, C, T] on CPU plus label / subject / utterance indices per window). Kinds: MFCC-39
and log-mel (``frontend``), a frozen wav2vec 2.0 / HuBERT / WavLM from a local checkpoint
(``ssl``; ``LayerWeighting`` is the learned layer mix of ``layer = "weighted"``), or your own
extractor (``extractors``: ``extract_segments(..., extractor=...)`` or
``FEATURE_EXTRACTORS``).
"""

from domadapt.features.cache import FRONTEND_VERSION, cache_key, cache_path, default_cache_dir
from domadapt.features.config import FeatureConfig
from domadapt.features.extractors import FEATURE_EXTRACTORS
from domadapt.features.frontend import (
    compute_features,
    extract_segments,
    librosa_features,
    log_mel,
    mfcc,
    normalize_features,
    resample_packed,
)
from domadapt.features.segments import SegmentSet, cut_windows, gather_windows, window_plan, window_starts
from domadapt.features.ssl import LayerWeighting, SSLEncoder, load_ssl_encoder, needs_layer_weighting

__all__ = [
    "FEATURE_EXTRACTORS",
    "FRONTEND_VERSION",
    "FeatureConfig",
    "LayerWeighting",
    "SSLEncoder",
    "SegmentSet",
    "cache_key",
    "cache_path",
    "compute_features",
    "cut_windows",
    "default_cache_dir",
    "extract_segments",
    "gather_windows",
    "librosa_features",
    "load_ssl_encoder",
    "log_mel",
    "mfcc",
    "needs_layer_weighting",
    "normalize_features",
    "resample_packed",
    "window_plan",
    "window_starts",
]
