"""User code registers through ``--import`` / ``[recipe] import``: a toy backbone, alignment
loss and corpus from ``toy_plugin.py`` run in a ``--quick`` recipe end to end."""

import json
import os
import sys
from pathlib import Path

import pytest

from domadapt import recipe as recipe_cli
from domadapt.align import LOSSES
from domadapt.cli import main as cli_main
from domadapt.recipe_loader import build_config, load_recipe
from domadapt.corpora import CORPORA
from domadapt.corpora.synthetic import MARKER_NAME, write_casia, write_modma
from domadapt.models import BACKBONES
from domadapt.plugins import import_modules

pytestmark = pytest.mark.slow

PLUGIN = Path(__file__).resolve().with_name("toy_plugin.py")

RECIPE = """
[recipe]
name = "toy2modma"
description = "a user's corpus, backbone and loss"
{imports}

[data]
source = ["toy_casia"]
target = "modma"
options = {{ toy_casia = {{ speakers = 2 }} }}

[model]
backbone = "toy_cnn"
backbone_options = {{ width = 6 }}

[eval]
folds = 2

[[methods]]
name = "target_only"
[[methods]]
name = "align"
loss = "toy_mean"
loss_options = {{ scale = 2.0 }}

[quick]
"data.max_utterances_per_subject" = 4
"data.max_source_per_class" = 4
"""
TINY = ["--set", "train.epochs=1", "--set", "train.pretrain_epochs=1", "--set", "train.batch_size=8"]


@pytest.fixture(scope="module", autouse=True)
def _forget_the_plugin_afterwards():
    """Other test modules see the built-in registries only (some assert their exact names)."""
    yield
    sys.modules.pop("toy_plugin", None)
    for registry, name in ((BACKBONES, "toy_cnn"), (LOSSES, "toy_mean"), (CORPORA, "toy_casia")):
        if name in registry:
            registry.unregister(name)


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("plugin-trees")
    casia = write_casia(base / "CASIA database", files_per_class=2)
    modma = write_modma(base / "MODMA", n_mdd=4, n_hc=4, duration_scale=0.3)
    for root in (casia, modma):
        (root / MARKER_NAME).unlink(missing_ok=True)
    return casia, modma


def test_quick_recipe_with_a_users_backbone_loss_and_corpus_through_import(trees, tmp_path):
    toy = import_modules([str(PLUGIN)])[0]  # the same module object --import will find
    toy.CALLS.clear()
    recipe = tmp_path / "toy2modma.toml"
    recipe.write_text(RECIPE.format(imports=""))
    out = tmp_path / "out"
    casia, modma = trees
    # --jobs 1: the units in this process, where the plugin's call counters can be read
    args = [str(recipe), "--import", str(PLUGIN), "--quick", "--quiet", "--out", str(out),
            "--source-root", str(casia), "--target-root", str(modma), "--jobs", "1", *TINY]
    assert recipe_cli.main(args) == 0

    results = json.loads((out / "results.json").read_text())
    assert results["data"] == "real"
    assert [r["method"] for r in results["rows"]] == ["target_only", "align:toy_mean"]
    assert [r["backbone"] for r in results["rows"]] == ["toy_cnn", "toy_cnn"]
    for row in results["rows"]:
        assert len(row["metrics"]["uar"]["runs"]) == 2  # 2 folds x 1 seed
    assert toy.CALLS["corpus speakers=2"] == 1  # the source, loaded once, with its option
    assert toy.CALLS["backbone"] > 0 and toy.CALLS["loss"] > 0
    # built with the recipe's options, never the defaults (width 8, scale 1.0)
    assert toy.CALLS["backbone width=6"] > 0 and toy.CALLS["backbone width=8"] == 0
    assert toy.CALLS["loss scale=2.0"] == toy.CALLS["loss"]
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["model"]["backbone_options"] == {"width": 6}


def test_recipe_import_key_is_resolved_next_to_the_recipe(tmp_path):
    relative = os.path.relpath(PLUGIN, tmp_path)
    recipe = tmp_path / "toy2modma.toml"
    recipe.write_text(RECIPE.format(imports=f"import = [{json.dumps(relative)}]"))
    tree = load_recipe(str(recipe))
    assert tree["recipe"]["import"] == [str(PLUGIN)]
    cfg = build_config(tree, quick=True)
    assert cfg.model.backbone == "toy_cnn" and cfg.data.source == ("toy_casia",)
    # a wrong option of the user's backbone is checked like a built-in one
    with pytest.raises(Exception, match=r"backbone 'toy_cnn' option width = 'six': expected an int$"):
        build_config(tree, overrides={"model.backbone_options": {"width": "six"}})


def test_cli_import_then_list_shows_the_users_entries(capsys):
    assert cli_main(["--import", str(PLUGIN), "list", "backbones"]) == 0
    out = capsys.readouterr().out
    assert "toy_cnn: One 1-D convolution, ReLU, mean over time; out_dim = width." in out
    assert "    width = 8  (an int)" in out
    assert cli_main(["--import", str(PLUGIN), "list"]) == 0
    out = capsys.readouterr().out
    assert "toy_casia" in out and "toy_mean" in out
    assert cli_main(["--import", "no_such_plugin_module", "list"]) == 2
    assert "import 'no_such_plugin_module': no module named" in capsys.readouterr().err
