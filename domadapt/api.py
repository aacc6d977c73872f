"""The library API: your own source/target pair in a dozen lines.

Example (the README's; ``tests/test_api.py`` runs it)::

    from domadapt import Experiment, load_corpus

    source = load_corpus("casia", "/data/CASIA database")
    target = load_corpus("folder", "/data/my_clinic")  # <label>/<subject>/<file>.wav
    exp = Experiment(
        sources=[source],
        target=target,
        backbone="tim",
        methods=["target_only", "align:coral"],
        train={"epochs": 5},
        eval={"folds": 3, "seeds": 2},
    )
    exp.fit(out_dir="runs/casia2clinic")
    print(exp.table())
    results = exp.evaluate()  # {"rows": [{"method", "metrics": {"uar": {"mean", ...}}}], ...}

Where a backbone, loss or corpus is named, the class (or loader function) itself works too:
``backbone=MyBackbone``, ``methods=[("align", {"loss": MyLoss})]``,
``load_corpus(load_my_clinic, root)``; one not registered yet is registered under its name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from domadapt.config import ExperimentConfig
from domadapt.recipe_loader import build_config
from domadapt.corpora.base import Corpus
from domadapt.device import resolve_device
from domadapt.errors import DomadaptError


def parse_method(entry: str | tuple[str, dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
    """``"align:coral"`` -> ``{"name": "align", "loss": "coral"}``; ``("ddg", {"dann": True})``
    and ``{"name": ..., ...}`` pass through as recipe ``[[methods]]`` entries. A ``loss`` or
    ``backbone`` given as a class becomes its registered name."""
    if isinstance(entry, str):
        name, _, loss = entry.partition(":")
        row = {"name": name, "loss": loss} if loss else {"name": name}
    elif isinstance(entry, tuple):
        name, options = entry
        row = {"name": name, **options}
    elif isinstance(entry, dict) and "name" in entry:
        row = dict(entry)
    else:
        raise DomadaptError(f"method {entry!r}: expected 'name', 'align:LOSS', (name, options) or a dict with 'name'")
    if "loss" in row and not isinstance(row["loss"], str):
        from domadapt.align import LOSSES

        row["loss"] = LOSSES.adopt(row["loss"])
    if "backbone" in row and not isinstance(row["backbone"], str):
        from domadapt.models import BACKBONES

        row["backbone"] = BACKBONES.adopt(row["backbone"])
    return row


class Experiment:
    """Sources + target + backbone + methods, evaluated over folds x seeds.

    Args:
        sources: one or more loaded source corpora (``load_corpus(...)``).
        target: the loaded target corpus.
        backbone: a name of ``domadapt.models.list_backbones()``, or a backbone class
            (registered under its class name if it is not yet).
        backbone_options: options of that backbone (e.g. ``{"residual": "add"}``).
        methods: entries like ``"target_only"``, ``"align:mmd"``, ``("ddg", {"dann": True})``,
            ``("align", {"loss": MyLoss})``.
        features, model, train, eval: overrides of the matching config sections (plain dicts
            with the keys of ``FeatureConfig``, ``ModelConfig``, ``TrainConfig``, ``EvalConfig``).
        device: ``auto | cpu | cuda``.
        name: used in titles and file names.
    """

    def __init__(
        self,
        *,
        sources: Corpus | Sequence[Corpus],
        target: Corpus,
        backbone: str | type = "tim",
        backbone_options: dict[str, Any] | None = None,
        methods: Sequence[str | tuple[str, dict[str, Any]] | dict[str, Any]] = ("target_only",),
        features: dict[str, Any] | None = None,
        model: dict[str, Any] | None = None,
        train: dict[str, Any] | None = None,
        eval: dict[str, Any] | None = None,  # noqa: A002 - the config section's name
        device: str = "auto",
        name: str = "experiment",
        cache_dir: Path | None = None,
    ) -> None:
        from domadapt.models import BACKBONES

        self.sources = [sources] if isinstance(sources, Corpus) else list(sources)
        self.target = target
        backbone = BACKBONES.adopt(backbone)
        tree: dict[str, Any] = {
            "recipe": {"name": name},
            "data": {"source": [c.name for c in self.sources], "target": target.name},
            "model": {"backbone": backbone, "backbone_options": dict(backbone_options or {}), **(model or {})},
            "features": dict(features or {}),
            "train": dict(train or {}),
            "eval": dict(eval or {}),
            "methods": [parse_method(m) for m in methods],
        }
        # the corpora are loaded already, their names are the caller's: not registry names
        self.config: ExperimentConfig = build_config(tree, check_corpora=False)
        self.device = resolve_device(device)
        self.cache_dir = cache_dir
        self.results: dict[str, Any] | None = None

    def fit(self, out_dir: str | Path | None = None, *, resume: bool = False, progress: bool = False) -> "Experiment":
        """Extract features, train and test every method on every fold x seed; the results
        files go to ``out_dir`` (default ``runs/<name>``). Returns ``self``."""
        from domadapt.run import extract_domains, run_experiment

        domains = extract_domains(
            self.config, self.sources, self.target, device=self.device, cache_dir=self.cache_dir, progress=progress
        )
        out = Path(out_dir) if out_dir is not None else Path("runs") / self.config.name
        self.results = run_experiment(
            self.config, domains, out_dir=out, device=self.device, resume=resume, progress=progress,
            say=lambda *a, **k: None,
        )
        return self

    def evaluate(self) -> dict[str, Any]:
        """The results of :meth:`fit`: per method, mean/std/runs of every metric on the test folds."""
        if self.results is None:
            raise DomadaptError("Experiment.evaluate(): call fit() first")
        return self.results

    def table(self) -> str:
        """The results table as text, as the recipes print it."""
        from domadapt.report import format_table

        return format_table(self.evaluate())
