"""Front-ends: audio -> fixed windows of features, with an on-disk cache.

``extract_segments(corpus, FeatureConfig())`` is the entry point; it returns a SegmentSet
(``x`` [N, C, T] on CPU plus label / subject / utterance indices per window). Kinds: MFCC-39
and log-mel (``frontend``), a frozen wav2vec 2.0 / HuBERT / WavLM from a local checkpoint
(``ssl``; ``LayerWeighting`` is the learned layer mix of ``layer = "weighted"``), or your own
extractor (``extractors``: ``extract_segments(..., extractor=...)`` or
``FEATURE_EXTRACTORS``).
"""

import importlib

# Each name is imported on first use (as in ``domadapt/__init__.py``), so that importing
# ``domadapt.features.config`` (the light FeatureConfig that ``domadapt.config`` needs) loads
# no torch, librosa or SSL code.
_LAZY = {
    "FRONTEND_VERSION": "domadapt.features.cache",
    "cache_key": "domadapt.features.cache",
    "cache_path": "domadapt.features.cache",
    "default_cache_dir": "domadapt.features.cache",
    "FeatureConfig": "domadapt.features.config",
    "FEATURE_EXTRACTORS": "domadapt.features.extractors",
    "compute_features": "domadapt.features.frontend",
    "extract_segments": "domadapt.features.frontend",
    "librosa_features": "domadapt.features.frontend",
    "log_mel": "domadapt.features.frontend",
    "mfcc": "domadapt.features.frontend",
    "normalize_features": "domadapt.features.frontend",
    "resample_packed": "domadapt.features.frontend",
    "SegmentSet": "domadapt.features.segments",
    "cut_windows": "domadapt.features.segments",
    "gather_windows": "domadapt.features.segments",
    "window_plan": "domadapt.features.segments",
    "window_starts": "domadapt.features.segments",
    "LayerWeighting": "domadapt.features.ssl",
    "SSLEncoder": "domadapt.features.ssl",
    "load_ssl_encoder": "domadapt.features.ssl",
    "needs_layer_weighting": "domadapt.features.ssl",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'domadapt.features' has no attribute {name!r}")


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
