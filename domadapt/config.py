"""Experiment configuration: frozen dataclasses hold the defaults, a recipe TOML overrides
them, ``--set section.key=value`` overrides the recipe. One place each, no YAML engine.

A recipe file looks like::

    [recipe]
    name = "casia2modma"
    [data]
    source = ["casia"]
    target = "modma"
    [train]
    epochs = 20
    [[methods]]
    name = "align"
    loss = "mmd"
    [quick]                # applied on top with --quick
    "train.epochs" = 2
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domadapt.errors import DomadaptError
from domadapt.features.config import FeatureConfig


@dataclass(frozen=True)
class DataConfig:
    source: tuple[str, ...] = ("casia",)  # registered corpus names; several = multi-source
    target: str = "modma"
    # Loader options per corpus name, e.g. {"modma": {"tasks": ["interview"]}}.
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Keep at most this many utterances per subject (None = all); --quick uses it to stay small.
    max_utterances_per_subject: int | None = None
    # Keep at most this many source utterances per class (None = all).
    max_source_per_class: int | None = None


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "tim"  # any name of domadapt.models.list_backbones()
    backbone_options: dict[str, Any] = field(default_factory=dict)
    specific_dim: int = 64  # width of each task's specific extractor (Linear+ReLU+Dropout)
    dropout: float = 0.2  # the notes' usual dropout


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20  # per training stage
    pretrain_epochs: int = 10  # source pre-training stage of pretrain_*/ddg/multitrain_ae
    batch_size: int = 64
    lr: float = 4e-4  # the notes' typical lr
    weight_decay: float = 1e-4  # the notes used 0.2-0.5 as Adam "regularisation"; AdamW-scale here
    optimizer: str = "adam"  # adam | adamw
    scheduler: str = "step"  # step | cosine | none
    step_size: int = 20  # StepLR, notes: 20-30
    gamma: float = 0.3  # StepLR, notes: 0.3-0.4
    grad_clip: float = 5.0  # max grad norm; 0 disables
    amp: bool = True  # bf16 autocast on CUDA only; ignored on CPU
    val_fraction: float = 0.2  # share of the training subjects held out for model selection
    align_weight: float = 1.0  # default lambda of alignment losses
    align_schedule: str = "dann"  # lambda(p) warm-up: constant | linear | dann
    # With eval.seeds > 1, train a fold's seeds as one vmapped model where the method allows
    # (domadapt.ensemble); false = one Trainer run per seed. Equal results at dropout 0.
    vmap_seeds: bool = True
    # torch.compile the general extractor (the bulk of a step) in place; never required. Pays
    # back its one-off compile (about two minutes per process on a 2-core CPU) only on long runs:
    # see benchmarks/bench_compile.py. Not applied to vmapped seeds.
    compile: bool = False


@dataclass(frozen=True)
class EvalConfig:
    splitter: str = "subject_kfold"  # see domadapt.splits.build_splitter
    folds: int = 5
    seeds: int = 1
    seed: int = 0  # first seed; runs use seed, seed+1, ...
    allow_subject_overlap: bool = False  # leakage guard; True only for the notes' random splits


#: ``[[methods]]`` keys every method accepts: the row's label and a per-row backbone
ROW_KEYS = ("label", "backbone", "backbone_options")


@dataclass(frozen=True)
class MethodSpec:
    """One row of the comparison: a method name plus its options (from ``[[methods]]``).

    Besides the method's own options a row may set ``label`` (its name in tables),
    ``backbone`` and ``backbone_options`` (a per-row backbone, as the ablation recipe does).
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The row's method name in results: ``label`` if given, ``align:LOSS`` for align."""
        if "label" in self.options:
            return str(self.options["label"])
        if self.name == "align":
            return f"align:{self.options.get('loss', 'mmd')}"
        return self.name

    @property
    def method_options(self) -> dict[str, Any]:
        """The options meant for the method itself (the row keys removed)."""
        return {k: v for k, v in self.options.items() if k not in ROW_KEYS}

    def backbone(self, model: "ModelConfig") -> tuple[str, dict[str, Any]]:
        """This row's backbone name and options: the row's own, else ``[model]``'s."""
        extra = dict(self.options.get("backbone_options", {}))
        if "backbone" in self.options:
            return str(self.options["backbone"]), extra
        return model.backbone, {**model.backbone_options, **extra}

    def backbone_label(self, model: "ModelConfig") -> str:
        """``tim`` or ``tim[residual=add]``: what the results' ``backbone`` column shows."""
        name, opts = self.backbone(model)
        own = {k: v for k, v in opts.items() if k in self.options.get("backbone_options", {})}
        return name + (f"[{','.join(f'{k}={v}' for k, v in sorted(own.items()))}]" if own else "")

    def key(self, model: "ModelConfig") -> str:
        """A file-system-safe name unique per row (runs/, checkpoints/, plots/)."""
        own_backbone = "backbone" in self.options or "backbone_options" in self.options
        text = f"{self.label}@{self.backbone_label(model)}" if own_backbone else self.label
        return "".join(c if c.isalnum() or c in "._-@=" else "-" for c in text)


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = "experiment"
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    methods: tuple[MethodSpec, ...] = (MethodSpec("target_only"),)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {
    "data": DataConfig,
    "features": FeatureConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
}


def parse_value(text: str) -> Any:
    """A ``--set`` value as TOML (``3``, ``1e-3``, ``true``, ``["a", "b"]``) or a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _build_section(name: str, cls: type, values: dict[str, Any]):
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise DomadaptError(
            f"[{name}] unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}"
        )
    converted = {}
    for key, value in values.items():
        default = getattr(cls(), key)
        if isinstance(default, tuple) and isinstance(value, (list, str)):
            value = tuple([value] if isinstance(value, str) else value)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        converted[key] = value
    return cls(**converted)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    if len(parts) < 2:
        raise DomadaptError(f"--set {dotted}=...: expected section.key=value (e.g. train.epochs=5)")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise DomadaptError(f"--set {dotted}: {part} is not a section")
    node[parts[-1]] = value


def build_config(
    recipe: dict[str, Any], *, overrides: dict[str, Any] | None = None, quick: bool = False
) -> ExperimentConfig:
    """Defaults <- recipe TOML tree <- ``[quick]`` (if ``quick``) <- ``overrides`` (dotted keys)."""
    tree = {k: (dict(v) if isinstance(v, dict) else v) for k, v in recipe.items()}
    quick_over = tree.pop("quick", {})
    if quick:
        for dotted, value in quick_over.items():
            _set_dotted(tree, dotted, value)
    for dotted, value in (overrides or {}).items():
        if dotted.startswith("methods."):
            raise DomadaptError(f"--set {dotted}: methods are chosen in the recipe's [[methods]]")
        _set_dotted(tree, dotted, value)

    head = tree.pop("recipe", {})
    methods_raw = tree.pop("methods", None)
    unknown = sorted(set(tree) - set(_SECTIONS))
    if unknown:
        raise DomadaptError(
            f"unknown recipe section(s) {', '.join(unknown)}; valid: recipe, methods, quick, "
            + ", ".join(_SECTIONS)
        )
    sections = {name: _build_section(name, cls, tree.get(name, {})) for name, cls in _SECTIONS.items()}
    methods: tuple[MethodSpec, ...] = ExperimentConfig().methods
    if methods_raw is not None:
        specs = []
        for entry in methods_raw:
            entry = dict(entry)
            if "name" not in entry:
                raise DomadaptError(f"[[methods]] entry {entry} has no name")
            specs.append(MethodSpec(name=entry.pop("name"), options=entry))
        methods = tuple(specs)
    return ExperimentConfig(
        name=str(head.get("name", "experiment")),
        description=str(head.get("description", "")),
        methods=methods,
        **sections,
    )


def recipes_dir() -> Path:
    """The repository's ``recipes/`` folder (next to the package)."""
    return Path(__file__).resolve().parent.parent / "recipes"


def list_recipes() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob("*.toml"))


def load_recipe(name_or_path: str) -> dict[str, Any]:
    """Read ``recipes/NAME.toml`` (or a path to a TOML file) into a plain dict."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = recipes_dir() / f"{name_or_path}.toml"
    if not path.is_file():
        raise DomadaptError(
            f"recipe {name_or_path!r}: no file {path}; known recipes: {', '.join(list_recipes())}"
        )
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise DomadaptError(f"{path}: invalid TOML ({exc})") from exc
