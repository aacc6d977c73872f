import pytest

from domadapt.config import MethodSpec
from domadapt.recipe_loader import build_config, list_recipes, load_recipe, parse_value
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


def test_bases_are_not_runnable_recipes():
    names = list_recipes()
    assert not [n for n in names if n.startswith("_")]
    assert {"casia+iemocap2modma", "casia2modma", "iemocap2modma", "tim_ablation", "da_testbed"} <= set(names)


def test_pair_recipes_hold_only_what_differs_and_resolve_to_the_shared_settings():
    import tomllib

    from domadapt.recipe_loader import recipes_dir

    for name, source in [("casia2modma", ("casia",)), ("iemocap2modma", ("iemocap",)),
                         ("casia+iemocap2modma", ("casia", "iemocap"))]:
        raw = tomllib.loads((recipes_dir() / f"{name}.toml").read_text())
        assert set(raw) == {"recipe", "data"} and raw["recipe"]["extends"] == "_transfer", name
        cfg = build_config(load_recipe(name))
        assert cfg.name == name and cfg.data.source == source and cfg.data.target == "modma"
        assert (cfg.train.epochs, cfg.train.pretrain_epochs, cfg.train.batch_size, cfg.train.lr) == (6, 4, 64, 1e-3)
        assert cfg.train.align_weight is None  # each loss family's own lambda
        assert (cfg.eval.splitter, cfg.eval.folds, cfg.eval.seeds) == ("subject_kfold", 5, 1)
        assert len(cfg.methods) == 11 and cfg.methods[3].options == {"general_lr_mult": 0.1}
        quick = build_config(load_recipe(name), quick=True)
        assert (quick.train.epochs, quick.train.batch_size, quick.train.lr, quick.eval.folds) == (3, 16, 3e-3, 2)
        assert (quick.data.max_utterances_per_subject, quick.data.max_source_per_class) == (6, 30)
    ablation = build_config(load_recipe("tim_ablation"))
    assert ablation.train.align_weight is None  # no row aligns
    assert [m.options["backbone"] for m in ablation.methods if m.name != "baseline"] == [
        "at_tim", "tim", "delta_tim", "at_delta_tim", "tim", "at_delta_tim"]
    assert build_config(load_recipe("tim_ablation"), quick=True).train.batch_size == 16


def test_extends_deep_merges_tables_replaces_lists_and_adds_imports(tmp_path):
    (tmp_path / "base.toml").write_text(
        '[recipe]\nimport = ["json"]\n[train]\nepochs = 4\nlr = 0.5\n[[methods]]\nname = "joint"\n'
        '[quick]\n"train.epochs" = 1\n"eval.folds" = 2\n'
    )
    (tmp_path / "child.toml").write_text(
        '[recipe]\nname = "c"\nextends = "base"\nimport = ["csv"]\n[train]\nepochs = 9\n'
        '[[methods]]\nname = "target_only"\n[quick]\n"eval.folds" = 3\n'
    )
    tree = load_recipe(str(tmp_path / "child.toml"))
    assert tree["recipe"] == {"name": "c", "import": ["json", "csv"]}
    assert tree["train"] == {"epochs": 9, "lr": 0.5}
    assert tree["methods"] == [{"name": "target_only"}]
    assert tree["quick"] == {"train.epochs": 1, "eval.folds": 3}
    # a recipe outside recipes/ may extend a shipped base
    (tmp_path / "mine.toml").write_text('[recipe]\nextends = "_base"\n[data]\nsource = "iemocap"\n')
    assert build_config(load_recipe(str(tmp_path / "mine.toml"))).train.epochs == 6
    (tmp_path / "a.toml").write_text('[recipe]\nextends = "b"\n')
    (tmp_path / "b.toml").write_text('[recipe]\nextends = "a"\n')
    with pytest.raises(DomadaptError, match=r"recipe.extends = 'a': a cycle \(a -> b\)"):
        load_recipe(str(tmp_path / "a.toml"))
    (tmp_path / "d.toml").write_text('[recipe]\nextends = "nope"\n')
    with pytest.raises(DomadaptError, match=r"recipe.extends = 'nope': no file .*nope.toml"):
        load_recipe(str(tmp_path / "d.toml"))


def test_protocols_are_overrides_applied_before_quick_and_named_in_the_config():
    from domadapt.recipe_loader import recipe_protocols

    tree = load_recipe("timnet_paper_casia")
    assert recipe_protocols(tree) == ["paper protocol (speakers on both sides)", "leave-one-speaker-out"]
    paper = build_config(tree, protocol="paper protocol (speakers on both sides)")
    assert paper.name == "timnet_paper_casia [paper protocol (speakers on both sides)]"
    assert (paper.eval.splitter, paper.eval.folds, paper.eval.seed, paper.eval.allow_subject_overlap) == (
        "utterance_kfold", 10, 32, True)
    loso = build_config(tree, protocol="leave-one-speaker-out")
    assert (loso.eval.splitter, loso.eval.allow_subject_overlap) == ("leave_one_subject_out", False)
    assert build_config(tree, protocol="paper protocol (speakers on both sides)", quick=True).eval.folds == 2
    plain = build_config(tree)  # without a protocol: the recipe as written
    assert plain.name == "timnet_paper_casia" and plain.eval.splitter == "subject_kfold"
    with pytest.raises(DomadaptError, match="protocol 'lopo': not in this recipe"):
        build_config(tree, protocol="lopo")
    assert recipe_protocols(load_recipe("casia2modma")) == []
