"""What setup.cfg promises: install_requires holds the lock (requirements.txt) inside its
ranges, so the lock is one working install of the package; the recipes ship with it."""

import configparser
from pathlib import Path

from packaging.requirements import Requirement

from domadapt.cli import main as cli_main
from domadapt.recipe_loader import list_recipes, recipes_location

ROOT = Path(__file__).resolve().parents[2]


def _options():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg["options"], cfg["options.extras_require"]


def _requirements(text):
    lines = (line.split("#")[0].strip() for line in text.splitlines())
    return {r.name.lower(): r for r in map(Requirement, filter(None, lines))}


def test_the_lock_is_inside_install_requires():
    options, _ = _options()
    needed = _requirements(options["install_requires"])
    lock = _requirements((ROOT / "requirements.txt").read_text())
    assert set(needed) <= set(lock), f"not in the lock: {sorted(set(needed) - set(lock))}"
    for name, req in needed.items():
        pins = [s.version for s in lock[name].specifier if s.operator == "=="]
        if pins:
            assert req.specifier.contains(pins[0]), f"{name}=={pins[0]} (lock) outside {req}"
        else:  # the lock's own range (setuptools<81): the same limit
            assert str(lock[name].specifier) == str(req.specifier), name
    # the limits pytorch-adapt 0.0.83 needs (DESIGN.md): without them an install fails on import
    assert not needed["setuptools"].specifier.contains("81.0")
    assert not needed["torchmetrics"].specifier.contains("0.10.0")
    assert not needed["pytorch-metric-learning"].specifier.contains("2.0.0")
    assert {"torchvision", "scipy"} <= set(needed)


def test_extras():
    _, extras = _options()
    assert Requirement(extras["ray"].strip()).specifier.contains("2.60.0")
    assert Requirement(extras["sweep"].strip()).name == "optuna"
    # domadapt export --format onnx: the exporter's packages and the runtime, each inside the lock's pin
    onnx = _requirements(extras["onnx"])
    lock = _requirements((ROOT / "requirements.txt").read_text())
    assert set(onnx) == {"onnx", "onnxscript", "onnxruntime"}
    for name, req in onnx.items():
        (pin,) = [s.version for s in lock[name].specifier if s.operator == "=="]
        assert req.specifier.contains(pin), f"{name}=={pin} (lock) outside {req}"
    reference = _requirements(extras["reference"])  # benchmarks/reference_da.py's SKADA columns
    assert set(reference) == {"skada", "skorch"}
    for name, req in reference.items():
        assert req.specifier.contains(next(iter(lock[name].specifier)).version), name


def test_recipes_are_found_with_their_origin(capsys):
    folder, origin = recipes_location()
    assert origin in ("package data", "checkout")
    assert folder.samefile(ROOT / "recipes")  # a checkout or an editable install: the same files
    assert "casia2modma" in list_recipes() and "_base" not in list_recipes()
    assert cli_main(["list", "recipes"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# {origin}: {folder}")
    assert f"    {folder / 'casia2modma.toml'}\n" in out
    assert "casia2modma: CASIA emotion -> MODMA depression" in out  # its description, through extends
