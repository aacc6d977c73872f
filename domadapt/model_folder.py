"""A model folder: one trained model that stands alone, without the run that made it.

Two files::

    MODEL/model.safetensors   every tensor of the trained method (safetensors: loading it
                              reads numbers, never executes code, unlike a pickle)
    MODEL/model.json          everything that turns a wav into a prediction: the front-end
                              and window settings, the target's standardisation statistics,
                              the backbone and model options, the method and its options,
                              class names, the subject aggregation rule, the training data
                              (corpora and counts, no file paths), domadapt's version and git hash

:func:`write_model_folder` writes one from a trained method; :func:`read_model_folder`
rebuilds the method (eval mode, on the CPU) and returns it with the JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from domadapt import __version__
from domadapt.config import MethodSpec
from domadapt.errors import DomadaptError
from domadapt.methods import build_method
from domadapt.models.transfer import build_transfer_model
from domadapt.recipe_loader import build_config

#: the folder layout's version: a reader refuses a folder of another format (its JSON keys
#: or weight names may mean something else there)
MODEL_FORMAT = 1
WEIGHTS_FILE = "model.safetensors"
INFO_FILE = "model.json"
#: how windows become a subject's prediction: the evaluation's rules (domadapt.evaluate)
SUBJECT_AGGREGATION = {
    "class": "majority vote of the windows' argmax classes; a tie goes to the tied class with the higher mean probability",
    "class_meanprob": "argmax of the mean window probability",
}


def write_model_folder(
    path: Path,
    method: torch.nn.Module,
    *,
    cfg: Any,
    spec: Any,
    target: str,
    classes: tuple[str, ...],
    tasks: dict[str, int],
    input_shape: tuple[int, ...],
    mean: torch.Tensor | None,
    std: torch.Tensor | None,
    training: dict[str, Any],
    precision: str,
    git: str | None,
) -> Path:
    """Write ``method`` (trained, any device) and what its inputs need into ``path``.

    ``cfg`` is the run's :class:`~domadapt.config.ExperimentConfig`, ``spec`` the row's
    :class:`~domadapt.config.MethodSpec`; ``target`` the target corpus' name (its resolved
    feature settings are kept); ``tasks`` the model's heads (``{"target": K, ...}``);
    ``input_shape`` one window's features ``(C, T)``; ``mean``/``std`` the target's
    standardisation (``[1, C, 1]``; None when the run fed raw features); ``training`` what
    it trained on (corpora, counts, epochs, how the budget was chosen: no file paths);
    ``precision`` what its forward passes ran in (``Replicas.precision``), which prediction
    repeats.
    """
    features = cfg.features.for_corpus(target)
    if not features.spectral:
        raise DomadaptError(f"features.kind = {features.kind!r}: a model folder holds MFCC / log-mel models only")
    if features.normalize == "corpus":
        raise DomadaptError(
            "features.normalize = 'corpus': the statistics are the training corpus' own, unknown for a new "
            "recording; a model folder needs 'utterance' or 'none'"
        )
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    # clones: safetensors refuses tensors that share memory (a loss holding the model's module)
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in method.state_dict().items()}
    backbone, backbone_options = spec.backbone(cfg.model)
    info = {
        "format": MODEL_FORMAT,
        "domadapt_version": __version__,
        "git": git,
        "method": {"name": spec.name, "label": spec.label, "options": dict(spec.options)},
        "backbone": {"name": backbone, "options": backbone_options},
        "classes": list(classes),
        "tasks": dict(tasks),
        "input_shape": list(input_shape),
        "standardization": None if mean is None else {
            "mean": mean.detach().cpu().reshape(-1).tolist(), "std": std.detach().cpu().reshape(-1).tolist(),
        },
        "subject_aggregation": SUBJECT_AGGREGATION,
        "window_probability": "mean over the file's windows of each window's softmax probabilities",
        "precision": precision,
        "features": dataclasses.asdict(features),
        "config": cfg.to_dict(),
        "training": training,
    }
    _atomic(path / WEIGHTS_FILE, lambda tmp: save_file(state, str(tmp), metadata={"format": str(MODEL_FORMAT)}))
    _atomic(path / INFO_FILE, lambda tmp: tmp.write_text(json.dumps(info, indent=2, default=str)))
    return path


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def read_info(path: Path) -> dict[str, Any]:
    """``model.json`` of the folder ``path``, checked to be of this domadapt's format."""
    path = Path(path)
    file = path / INFO_FILE
    if not file.is_file():
        raise DomadaptError(f"{path}: not a model folder (no {INFO_FILE})")
    try:
        info = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DomadaptError(f"{file}: unreadable model description ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT:
        found = info.get("format") if isinstance(info, dict) else None
        version = info.get("domadapt_version") if isinstance(info, dict) else None
        raise DomadaptError(
            f"{path}: a model folder of format {found} written by domadapt {version}; this is domadapt "
            f"{__version__}, which reads format {MODEL_FORMAT}"
        )
    return info


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors`` (CPU). safetensors parses a header and raw numbers:
    a file made to run code when unpickled is refused, never run."""
    file = Path(path) / WEIGHTS_FILE
    if not file.is_file():
        raise DomadaptError(f"{path}: no {WEIGHTS_FILE}")
    try:
        return load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise DomadaptError(f"{file}: not a safetensors weights file ({exc})") from None


def read_model_folder(path: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained method of the folder ``path`` (eval mode, CPU) and its ``model.json``.

    The method is rebuilt from the JSON (its backbone, heads and options; plug-in names need
    their ``--import`` first) and given the folder's tensors, every one of them (strict)."""
    info = read_info(path)
    cfg = config_from_dict(info["config"], where=Path(path) / INFO_FILE)
    spec = MethodSpec(info["method"]["name"], dict(info["method"]["options"]))
    model = build_transfer_model(cfg.model, spec, input_shape=tuple(info["input_shape"]), tasks=info["tasks"])
    method = build_method(spec, cfg.train, model)
    weights = read_weights(path)
    try:
        method.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise DomadaptError(f"{Path(path) / WEIGHTS_FILE}: weights do not fit {spec.label} as {INFO_FILE} describes it ({first[0]} ...)") from None
    return method.eval(), info


def config_from_dict(tree: dict[str, Any], *, where: Path) -> Any:
    """The :class:`~domadapt.config.ExperimentConfig` that ``cfg.to_dict()`` wrote (checked as
    a recipe is, corpus names aside: the model runs without its corpora)."""

    try:
        recipe = {
            "recipe": {"name": tree["name"], "description": tree["description"]},
            **{k: tree[k] for k in ("data", "features", "model", "train", "eval")},
            "methods": [{"name": m["name"], **m["options"]} for m in tree["methods"]],
        }
    except (KeyError, TypeError) as exc:
        raise DomadaptError(f"{where}: config lacks {exc}") from None
    try:
        return build_config(recipe, check_corpora=False)
    except DomadaptError as exc:  # e.g. a key a later domadapt added, or a plug-in method not imported
        raise DomadaptError(f"{where}: {exc}") from None
