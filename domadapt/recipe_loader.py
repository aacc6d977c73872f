"""Recipes: a TOML file read into a checked :class:`~domadapt.config.ExperimentConfig`.

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
and range declared on the dataclasses of :mod:`domadapt.config`, and every name and option
against the registries, so that a wrong value fails before any audio is read.
"""

from __future__ import annotations

import importlib.resources
import tomllib
from pathlib import Path
from typing import Any

from domadapt.config import (
    DataConfig,
    EvalConfig,
    ExperimentConfig,
    MethodSpec,
    ModelConfig,
    TrainConfig,
)
from domadapt.corpora.labels import check_label_map, corpus_labels
from domadapt.errors import DomadaptError
from domadapt.features.config import FeatureConfig
from domadapt.registries import BACKBONES, CORPORA, METHODS, SCHEDULES, SPLITTERS, VALIDATORS
from domadapt.plugins import import_modules
from domadapt.registry import Registry, check_values, dataclass_specs

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
    only the registries know: corpus, backbone, method, splitter, schedule and validator
    names and the options of each (``corpora=False`` leaves the corpora out).
    """
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
    _check_name(VALIDATORS, "train.unsupervised_selection", cfg.train.unsupervised_selection)
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
        _check_reads_vectors(cfg, where, spec, backbone)


def _check_reads_vectors(cfg: ExperimentConfig, where: str, spec: MethodSpec, backbone: str) -> None:
    """A functional ``features.kind`` gives one frame per utterance: only a backbone that
    declares ``reads_vectors`` (``mlp``) can train on it; a baseline row trains no backbone."""
    if not cfg.features.one_vector_per_utterance or getattr(METHODS.get(spec.name), "trained_by", "engine") != "engine":
        return
    if not getattr(BACKBONES.get(backbone), "reads_vectors", False):
        raise DomadaptError(
            f"{where}: backbone = {backbone!r} needs frames, but features.kind = {cfg.features.kind!r} gives one "
            f"vector per utterance ([N, D, 1]); use backbone = \"mlp\" (or a backbone with reads_vectors = True)"
        )


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
