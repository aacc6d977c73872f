"""Front-ends: audio -> fixed windows of MFCC-39 / log-mel features, with an on-disk cache.

``extract_segments(corpus, FeatureConfig())`` is the entry point; it returns a SegmentSet
(``x`` [N, C, T] on CPU plus label / subject / utterance indices per window).
"""

from domadapt.features.cache import FRONTEND_VERSION, cache_key, cache_path, default_cache_dir
from domadapt.features.config import FeatureConfig
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

__all__ = [
    "FRONTEND_VERSION",
    "FeatureConfig",
    "SegmentSet",
    "cache_key",
    "cache_path",
    "compute_features",
    "cut_windows",
    "default_cache_dir",
    "extract_segments",
    "gather_windows",
    "librosa_features",
    "log_mel",
    "mfcc",
    "normalize_features",
    "resample_packed",
    "window_plan",
    "window_starts",
]
