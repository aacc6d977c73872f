"""domadapt: domain adaptation for speech paralinguistics (emotion corpora -> depression corpora)."""

__version__ = "0.1.0"
