import pytest

from domadapt.config import MethodSpec, build_config, list_recipes, load_recipe, parse_value
from domadapt.errors import DomadaptError


def test_defaults_then_recipe_then_quick_then_set():
    recipe = {
        "recipe": {"name": "r"},
        "train": {"epochs": 7, "lr": 1},
        "quick": {"train.epochs": 2, "eval.folds": 2},
    }
    cfg = build_config(recipe)
    assert cfg.name == "r" and cfg.train.epochs == 7 and cfg.eval.folds == 5
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    quick = build_config(recipe, quick=True)
    assert quick.train.epochs == 2 and quick.eval.folds == 2
    over = build_config(recipe, quick=True, overrides={"train.epochs": 4, "model.backbone": "delta_tim"})
    assert over.train.epochs == 4 and over.model.backbone == "delta_tim"


def test_unknown_key_lists_valid_ones():
    with pytest.raises(DomadaptError, match="unknown key.*epoch.*valid keys:.*epochs"):
        build_config({"train": {"epoch": 3}})
    with pytest.raises(DomadaptError, match="unknown recipe section"):
        build_config({"trian": {}})


def test_methods_and_labels():
    cfg = build_config({"methods": [{"name": "target_only"}, {"name": "align", "loss": "coral"}]})
    assert [m.label for m in cfg.methods] == ["target_only", "align:coral"]
    assert MethodSpec("align").label == "align:mmd"


def test_parse_value():
    assert parse_value("3") == 3
    assert parse_value("1e-3") == pytest.approx(1e-3)
    assert parse_value("true") is True
    assert parse_value('["a", "b"]') == ["a", "b"]
    assert parse_value("tim") == "tim"


def test_source_string_becomes_tuple():
    assert build_config({"data": {"source": "iemocap"}}).data.source == ("iemocap",)


def test_every_shipped_recipe_builds():
    names = list_recipes()
    assert "casia2modma" in names and "iemocap2modma" in names
    for name in names:
        cfg = build_config(load_recipe(name), quick=True)
        assert cfg.methods, name


def test_unknown_recipe_lists_known():
    with pytest.raises(DomadaptError, match="known recipes:.*casia2modma"):
        load_recipe("nope")
