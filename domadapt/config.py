"""Experiment configuration: frozen dataclasses hold the defaults, a recipe TOML overrides
them, ``--set section.key=value`` overrides the recipe. One place each, no YAML engine.

A recipe file looks like::

    [recipe]
    name = "casia2modma"
    extends = "_base"      # recipes/_base.toml, deep-merged under this file
    import = ["my_lab.plugins"]   # modules that register your own corpora, backbones, ...
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
    [protocols."leave-one-speaker-out"]   # optional: one run per protocol, one table
    "eval.splitter" = "leave_one_subject_out"

The whole configuration is checked when it is built (:func:`build_config`): every key, type
and range declared on the dataclasses below, and every name and option against the
registries, so that a wrong value fails before any audio is read.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from domadapt.errors import DomadaptError
from domadapt.features.config import FeatureConfig
from domadapt.registry import Registry, check_values, dataclass_specs, import_modules, option


@dataclass(frozen=True)
class DataConfig:
    source: tuple[str, ...] = ("casia",)  # registered corpus names; several = multi-source
    target: str = "modma"
    # Loader options per corpus name, e.g. {"modma": {"tasks": ["interview"]}}.
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Per corpus name, its classes renamed onto shared classes, the unmapped dropped (closed-set
    # cross-corpus emotion), e.g. {"emodb": {"angry": "angry", "happy": "happy"}}: see
    # domadapt.corpora.labels.
    label_map: dict[str, dict[str, str]] = field(default_factory=dict)
    # Keep at most this many utterances per subject (None = all); --quick uses it to stay small.
    max_utterances_per_subject: int | None = option(None, min=1)
    # Keep at most this many source utterances per class (None = all).
    max_source_per_class: int | None = option(None, min=1)


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "tim"  # any name of domadapt.models.list_backbones()
    backbone_options: dict[str, Any] = field(default_factory=dict)
    specific_dim: int = option(64, min=1)  # width of each task's specific extractor (Linear+ReLU+Dropout)
    dropout: float = option(0.2, min=0.0, lt=1.0)  # the notes' usual dropout
    # A BatchNorm1d after the general extractor: a normalised bottleneck every task and every
    # alignment loss reads (TIM's fused features start at std ~0.002, where a scale-free
    # alignment loss's gradient dwarfs the task's: benchmarks/align_gradient_ratio.py).
    general_norm: Literal["none", "batchnorm"] = "batchnorm"
    # "mlp": each task's specific extractor (Linear+ReLU+Dropout, specific_dim wide) before its
    # head, as in the notes; "none": the head reads the general features directly (the
    # official TIM-Net: one Dense(K) on the fused 39-d vector).
    specific: Literal["mlp", "none"] = "mlp"
    # "torch": PyTorch's default initialisation; "keras": Glorot-uniform weights and zero
    # biases in every conv and linear layer (Keras' defaults, which the official TIM-Net used).
    init: Literal["torch", "keras"] = "torch"
    # Every BatchNorm's running-average momentum and eps, in PyTorch's terms (new = (1 - m) *
    # old + m * batch). PyTorch's defaults; Keras' momentum 0.99, eps 1e-3 are 0.01, 1e-3 here.
    batchnorm_momentum: float = option(0.1, gt=0.0, max=1.0)
    batchnorm_eps: float = option(1e-5, gt=0.0)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = option(20, min=1)  # per training stage
    pretrain_epochs: int = option(10, min=1)  # source pre-training stage of pretrain_*/ddg/multitrain_ae
    # >= 2: BatchNorm cannot normalise a batch of one
    batch_size: int = option(64, min=2)
    lr: float = option(4e-4, gt=0.0)  # the notes' typical lr
    # the notes used 0.2-0.5 as Adam "regularisation"; AdamW-scale here
    weight_decay: float = option(1e-4, min=0.0)
    optimizer: str = option("adam", choices=("adam", "adamw"))
    # Adam's (beta1, beta2): PyTorch's defaults; the official TIM-Net trained with (0.93, 0.98).
    betas: tuple[float, ...] = (0.9, 0.999)
    # Cross-entropy label smoothing of every supervised task term (the official TIM-Net: 0.1,
    # the same (1 - e) * one_hot + e / K targets as its smooth_labels).
    label_smoothing: float = option(0.0, min=0.0, lt=1.0)
    scheduler: str = option("step", choices=("step", "cosine", "none"))
    step_size: int = option(20, min=1)  # StepLR, notes: 20-30
    gamma: float = option(0.3, gt=0.0, max=1.0)  # StepLR, notes: 0.3-0.4; > 1 would grow the lr
    grad_clip: float = option(5.0, min=0.0)  # max grad norm; 0 disables
    amp: bool = True  # bf16 autocast on CUDA only; ignored on CPU
    # share of the training subjects held out for model selection (carve_validation needs
    # at least one subject on each side). 0: none held out - every training subject trains
    # and each stage keeps its last epoch; for target corpora of a few dozen subjects, where
    # a handful of validation subjects rank epochs no better than chance
    # (benchmarks/diagnose_small_corpus.py, benchmarks/RESULTS.md)
    val_fraction: float = option(0.2, min=0.0, lt=1.0)
    # lambda of the alignment term and its warm-up lambda(p) (a name of list_schedules());
    # unset = each loss family's own (AlignmentLoss.default_weight / default_schedule)
    align_weight: float | None = option(None, min=0.0)
    align_schedule: str | None = None
    # model selection of the stages that read no target label: "im" (information
    # maximisation) or "snd" (soft neighbourhood density, Saito et al. 2021); see engine.scoring
    unsupervised_selection: str = option("im", choices=("im", "snd"))
    # With eval.seeds > 1, train a fold's seeds as one vmapped model where the method allows
    # (domadapt.engine); false = one run per seed. Equal results at dropout 0.
    vmap_seeds: bool = True
    # torch.compile the general extractor (the bulk of a step) in place; never required. Pays
    # back its one-off compile (about two minutes per process on a 2-core CPU) only on long runs:
    # see benchmarks/bench_compile.py. Not applied to vmapped seeds.
    compile: bool = False

    def __post_init__(self) -> None:
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise DomadaptError(f"train.betas = {list(self.betas)!r}: expected two numbers in [0, 1)")


@dataclass(frozen=True)
class EvalConfig:
    splitter: str = "subject_kfold"  # a name of domadapt.splits.list_splitters()
    folds: int = option(5, min=2)  # a k-fold needs a train and a test side
    seeds: int = option(1, min=1)
    seed: int = option(0, min=0)  # first seed; runs use seed, seed+1, ... (numpy wants >= 0)
    allow_subject_overlap: bool = False  # leakage guard; True only for the notes' random splits
    # A learning curve: train with this many labelled target subjects per fold (each an int or
    # "all"; the same stratified, nested subsets for every method and seed). () = all only.
    target_subjects: tuple[int | str, ...] = ()
    # Paired comparisons (Δ, 95% CI, p, Holm) of every row against the row of this label;
    # None = none. A recipe that drops that row gets a table saying there is no such row.
    baseline: str | None = None
    # Write each (method, fold, seed) model as a model folder under OUT/models/ (with what
    # the run scored on the fold's test files): domadapt.trained_models
    save_models: bool = False


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
        """The row's method name in results: ``label`` if given, else what the method class
        says for these options (``align:mmd``, ``baseline:egemaps``), else the name."""
        if "label" in self.options:
            return str(self.options["label"])
        from domadapt.methods import METHODS  # here: methods import this module

        label = getattr(METHODS.get(self.name), "label", None) if self.name in METHODS else None
        return label(self.name, self.method_options) if callable(label) else self.name

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


def _build_section(name: str, cls: type, values: Any):
    if not isinstance(values, dict):
        raise DomadaptError(f"[{name}] must be a table of key = value, got {values!r}")
    specs = dataclass_specs(cls)
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise DomadaptError(
            f"[{name}] unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(specs))}"
        )
    # a single name where a list is expected: data.source = "iemocap"
    values = {
        k: (v,) if isinstance(v, str) and specs[k].kinds == (tuple,) else v for k, v in values.items()
    }
    return cls(**check_values(specs, values, label=lambda key: f"{name}.{key}"))


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


#: keys of a recipe's ``[recipe]`` table
RECIPE_KEYS = ("name", "description", "extends", "import")


def recipe_protocols(recipe: dict[str, Any]) -> list[str]:
    """The labels of a recipe's ``[protocols.LABEL]`` tables, in order ([] = none).

    A protocol is a set of dotted overrides (``"eval.splitter" = ...``): the recipe runs once
    per protocol on the same data and prints one table (``python -m domadapt.recipe``).
    """
    tree = recipe
    if "extends" in tree.get("recipe", {}):
        tree = resolve_extends(tree, recipes_dir())
    protocols = tree.get("protocols", {})
    if not isinstance(protocols, dict) or not all(isinstance(v, dict) for v in protocols.values()):
        raise DomadaptError("[protocols]: expected tables [protocols.\"LABEL\"] of \"section.key\" = value")
    return list(protocols)


def build_config(
    recipe: dict[str, Any],
    *,
    overrides: dict[str, Any] | None = None,
    quick: bool = False,
    check_corpora: bool = True,
    protocol: str | None = None,
) -> ExperimentConfig:
    """Defaults <- recipe TOML tree <- its ``[protocols.PROTOCOL]`` (if ``protocol``) <-
    ``[quick]`` (if ``quick``) <- ``overrides`` (dotted keys), then checked whole
    (:func:`check_config`) before anything is loaded. With a protocol, the name becomes
    ``NAME [PROTOCOL]``, so that every title and merged row carries it.

    The modules of ``[recipe] import`` are imported first, so that what they register is
    known to the check. ``check_corpora=False`` skips the corpus names and options (the
    library API, whose corpora are loaded already and named by the caller).
    """
    tree = {k: (dict(v) if isinstance(v, dict) else v) for k, v in recipe.items()}
    if "extends" in tree.get("recipe", {}):
        tree = resolve_extends(tree, recipes_dir())
    protocols = tree.pop("protocols", {})
    if protocol is not None:
        if protocol not in protocols:
            raise DomadaptError(f"protocol {protocol!r}: not in this recipe ({', '.join(protocols) or 'none'})")
        for dotted, value in protocols[protocol].items():
            _set_dotted(tree, dotted, value)
    quick_over = tree.pop("quick", {})
    if quick:
        for dotted, value in quick_over.items():
            _set_dotted(tree, dotted, value)
    for dotted, value in (overrides or {}).items():
        if dotted.startswith("methods."):
            raise DomadaptError(f"--set {dotted}: methods are chosen in the recipe's [[methods]]")
        _set_dotted(tree, dotted, value)

    head = tree.pop("recipe", {})
    unknown = sorted(set(head) - set(RECIPE_KEYS))
    if unknown:
        raise DomadaptError(f"[recipe] unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(RECIPE_KEYS)}")
    import_modules(_import_list(head.get("import", [])))
    methods_raw = tree.pop("methods", None)
    unknown = sorted(set(tree) - set(_SECTIONS))
    if unknown:
        raise DomadaptError(
            f"unknown recipe section(s) {', '.join(unknown)}; valid: recipe, methods, quick, protocols, "
            + ", ".join(_SECTIONS)
        )
    sections = {name: _build_section(name, cls, tree.get(name, {})) for name, cls in _SECTIONS.items()}
    methods: tuple[MethodSpec, ...] = ExperimentConfig().methods
    if methods_raw is not None:
        specs = []
        for entry in methods_raw:
            if not isinstance(entry, dict) or "name" not in entry:
                raise DomadaptError(f"[[methods]] entry {entry} has no name")
            entry = dict(entry)
            specs.append(MethodSpec(name=entry.pop("name"), options=entry))
        methods = tuple(specs)
    name = str(head.get("name", "experiment"))
    cfg = ExperimentConfig(
        name=name if protocol is None else f"{name} [{protocol}]",
        description=str(head.get("description", "")),
        methods=methods,
        **sections,
    )
    check_config(cfg, corpora=check_corpora)
    return cfg


def check_config(cfg: ExperimentConfig, *, corpora: bool = True) -> None:
    """Every name and option of ``cfg`` against the registries; raises a one-line
    DomadaptError naming the key, the value and what is allowed.

    The sections' own types and ranges are checked when they are built; this adds what
    only the registries know: corpus, backbone, method, splitter and schedule names and
    the options of each (``corpora=False`` leaves the corpora out).
    """
    # imported here: the registries import torch and the models, and methods import this module
    from domadapt.align.schedule import SCHEDULES
    from domadapt.corpora import CORPORA
    from domadapt.corpora.labels import check_label_map, corpus_labels
    from domadapt.methods import METHODS
    from domadapt.models import BACKBONES
    from domadapt.splits import SPLITTERS

    if corpora:
        for name in cfg.data.source:
            _check_name(CORPORA, "data.source", name)
        _check_name(CORPORA, "data.target", cfg.data.target)
        for name, options in cfg.data.options.items():
            _prefixed(f"data.options.{name}", CORPORA.check, name, options)
        used = (*cfg.data.source, cfg.data.target)
        for name, mapping in cfg.data.label_map.items():
            if name not in used:
                raise DomadaptError(
                    f"data.label_map.{name}: not a corpus of this recipe (source {', '.join(cfg.data.source) or '-'}, "
                    f"target {cfg.data.target})"
                )
            check_label_map(f"data.label_map.{name}", mapping, corpus_labels(name))
    _check_name(SPLITTERS, "eval.splitter", cfg.eval.splitter)
    for point in cfg.eval.target_subjects:
        if point != "all" and not (isinstance(point, int) and not isinstance(point, bool) and point >= 2):
            raise DomadaptError(
                f"eval.target_subjects: {point!r}: expected a number of subjects >= 2 or \"all\""
            )
    if cfg.train.align_schedule is not None:
        _check_name(SCHEDULES, "train.align_schedule", cfg.train.align_schedule)
    _check_name(BACKBONES, "model.backbone", cfg.model.backbone)
    _prefixed("model.backbone_options", BACKBONES.check, cfg.model.backbone, cfg.model.backbone_options)
    for i, spec in enumerate(cfg.methods):
        where = f"methods[{i}] ({spec.name})"
        _check_row_keys(where, spec.options)
        if spec.name not in METHODS:
            known = sorted(METHODS)
            raise DomadaptError(f"{where}: name = {spec.name!r}: expected one of {', '.join(known)}")
        if hasattr(METHODS, "check"):
            _prefixed(where, METHODS.check, spec.name, spec.method_options)
        backbone, options = spec.backbone(cfg.model)
        if backbone not in BACKBONES:
            _check_name(BACKBONES, f"{where}: backbone", backbone)
        _prefixed(f"{where}: backbone_options", BACKBONES.check, backbone, options)


def _check_name(registry: Registry, key: str, name: Any) -> None:
    if name not in registry:
        raise DomadaptError(
            f"{key} = {name!r}: expected one of {', '.join(registry.names())} "
            f"(or --import the module that registers your own {registry.kind})"
        )


def _prefixed(where: str, check: Any, *args: Any) -> None:
    try:
        check(*args)
    except DomadaptError as exc:
        raise DomadaptError(f"{where}: {exc}") from None


def _check_row_keys(where: str, options: dict[str, Any]) -> None:
    kinds = {"label": str, "backbone": str, "backbone_options": dict}
    for key, kind in kinds.items():
        if key in options and not isinstance(options[key], kind):
            what = "a table" if kind is dict else "a string"
            raise DomadaptError(f"{where}: {key} = {options[key]!r}: expected {what}")


def _import_list(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise DomadaptError(f"recipe.import = {value!r}: expected a list of module names or .py paths")
    return items


def recipes_location() -> tuple[Path, str]:
    """The shipped recipes' folder and how it was found: ``"package data"`` is
    ``domadapt.recipes`` (setup.cfg/setup.py install the top-level ``recipes/`` folder
    there), which a wheel and an editable install both provide; ``"checkout"`` is the
    ``recipes/`` folder beside the package of a checkout that is not installed."""
    try:
        return Path(str(importlib.resources.files("domadapt.recipes"))), "package data"
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "recipes", "checkout"


def recipes_dir() -> Path:
    """The shipped recipes' folder (:func:`recipes_location`)."""
    return recipes_location()[0]


def list_recipes() -> list[str]:
    """The runnable recipes: ``recipes/*.toml`` except the shared bases (``_base``)."""
    return sorted(p.stem for p in recipes_dir().glob("*.toml") if not p.stem.startswith("_"))


def load_recipe(name_or_path: str) -> dict[str, Any]:
    """Read ``recipes/NAME.toml`` (or a path to a TOML file) into a plain dict, with its
    ``extends`` chain merged in and the ``.py`` paths of ``import`` made absolute."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = recipes_dir() / f"{name_or_path}.toml"
    if not path.is_file():
        raise DomadaptError(
            f"recipe {name_or_path!r}: no file {path}; known recipes: {', '.join(list_recipes())}"
        )
    return _load_tree(path, chain=())


def _load_tree(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            tree = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise DomadaptError(f"{path}: invalid TOML ({exc})") from exc
    head = tree.get("recipe", {})
    if "import" in head:  # a file next to the recipe, wherever it is run from
        head["import"] = [
            str((path.parent / item).resolve()) if item.endswith(".py") else item
            for item in _import_list(head["import"])
        ]
    return resolve_extends(tree, path.parent, chain=(*chain, path.resolve()))


def resolve_extends(tree: dict[str, Any], folder: Path, *, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """``tree`` deep-merged over the recipe its ``[recipe] extends`` names (looked up in
    ``folder``, then in ``recipes/``): tables merge key by key, anything else (a value, the
    ``[[methods]]`` list) is replaced; ``import`` lists add up, the base's first."""
    head = dict(tree.get("recipe", {}))
    base_name = head.pop("extends", None)
    if base_name is None:
        return tree
    if not isinstance(base_name, str):
        raise DomadaptError(f"recipe.extends = {base_name!r}: expected a recipe name")
    file = base_name if base_name.endswith(".toml") else f"{base_name}.toml"
    candidates = [folder / file, recipes_dir() / file]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise DomadaptError(f"recipe.extends = {base_name!r}: no file {candidates[0]}")
    if path.resolve() in chain:
        raise DomadaptError(f"recipe.extends = {base_name!r}: a cycle ({' -> '.join(p.stem for p in chain)})")
    base = _load_tree(path, chain)
    imports = [*base.get("recipe", {}).get("import", []), *head.get("import", [])]
    merged = _deep_merge(base, {**tree, "recipe": head})
    if imports:
        merged["recipe"]["import"] = list(dict.fromkeys(imports))
    return merged


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
