"""domadapt: domain adaptation for speech paralinguistics (emotion corpora -> depression corpora).

The library API in one import::

    from domadapt import Experiment, load_corpus
    model = domadapt.load_model("models/x")   # a model folder: model.predict_file("a.wav")
"""

__version__ = "0.1.0"

from domadapt.device import passive_openmp_waits  # noqa: E402  (no torch import)

passive_openmp_waits()  # before any domadapt module loads torch: libgomp reads it only then

_LAZY = {
    "Experiment": "domadapt.api",
    "load_corpus": "domadapt.corpora",
    "list_corpora": "domadapt.corpora",
    "build_backbone": "domadapt.models",
    "list_backbones": "domadapt.models",
    "build_loss": "domadapt.align",
    "list_losses": "domadapt.align",
    "list_methods": "domadapt.methods",
    "FeatureConfig": "domadapt.features",
    "DomadaptError": "domadapt.errors",
    "load_model": "domadapt.inference",
}


def __getattr__(name: str):
    # Imported on first use, so `import domadapt` stays cheap (torch loads only when needed).
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'domadapt' has no attribute {name!r}")


__all__ = sorted(_LAZY)
