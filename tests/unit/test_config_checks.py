"""The configuration is checked whole when it is built: every key, type, range, name and
option, before any corpus is loaded or any feature extracted."""

from dataclasses import dataclass

import pytest

import domadapt.recipe_loader
from domadapt import recipe as recipe_cli
from domadapt.recipe_loader import build_config, load_recipe
from domadapt.corpora import CORPORA
from domadapt.errors import DomadaptError
from domadapt.registry import Registry, option


def _error(recipe=None, **overrides) -> str:
    with pytest.raises(DomadaptError) as err:
        build_config(recipe or {}, overrides=overrides)
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("train.optimizer", "sgd", "train.optimizer = 'sgd': expected one of adam, adamw"),
        ("train.scheduler", "plateau", "train.scheduler = 'plateau': expected one of step, cosine, none"),
        ("train.epochs", -1, "train.epochs = -1: expected an int >= 1"),
        ("train.epochs", "ten", "train.epochs = 'ten': expected an int >= 1"),
        ("train.pretrain_epochs", 0, "train.pretrain_epochs = 0: expected an int >= 1"),
        ("train.batch_size", 1, "train.batch_size = 1: expected an int >= 2"),
        ("train.lr", 0, "train.lr = 0: expected a number > 0"),
        ("train.val_fraction", 1.0, "train.val_fraction = 1.0: expected a number in [0, 1)"),
        ("train.amp", "yes", "train.amp = 'yes': expected true or false"),
        ("model.dropout", 1, "model.dropout = 1: expected a number in [0, 1)"),
        ("eval.folds", 1, "eval.folds = 1: expected an int >= 2"),
        ("eval.seeds", 0, "eval.seeds = 0: expected an int >= 1"),
        ("data.max_utterances_per_subject", 0, "data.max_utterances_per_subject = 0: expected an int >= 1"),
    ],
)
def test_section_values_name_key_value_and_what_is_allowed(key, value, expected):
    assert _error(**{key: value}) == expected


def test_registry_names_list_the_registered_ones():
    message = _error(**{"eval.splitter": "random"})
    assert message.startswith("eval.splitter = 'random': expected one of leave_one_session_out, "
                              "leave_one_subject_out, official, subject_kfold, utterance_kfold")
    assert _error(**{"train.align_schedule": "cosine"}).startswith(
        "train.align_schedule = 'cosine': expected one of constant, dann, linear")
    assert "model.backbone = 'timnet': expected one of at_delta_tim, at_tim," in _error(**{"model.backbone": "timnet"})
    assert "data.source = 'crema_d': expected one of arrays, arrays_target, casia, casia_target, casia_target_powered, daic_woz, emodb, emovo, folder, iemocap, modma, ravdess, savee" in _error(
        **{"data.source": ["casia", "crema_d"]})
    assert "data.target = 'modmaa'" in _error(**{"data.target": "modmaa"})


def test_options_are_checked_against_their_entry():
    assert _error(**{"model.backbone_options": {"filters": "39"}}) == (
        "model.backbone_options: backbone 'tim' option filters = '39': expected an int >= 1")
    # the option's declared choices, reached before anything is built
    assert _error(**{"model.backbone_options": {"residual": "x"}}) == (
        "model.backbone_options: backbone 'tim' option residual = 'x': expected one of mul, add")
    # a rule across options (the Options dataclass's __post_init__), also before anything is built
    assert _error(**{"model.backbone_options": {"bidiff": True}}) == (
        "model.backbone_options: backbone 'tim': backbone option bidiff=True needs a diff_* fusion, not fusion='weight'")
    assert _error(**{"data.options": {"modma": {"task": ["reading"]}}}) == (
        "data.options.modma: corpus 'modma': unknown option(s) task; valid options: tasks")
    assert _error(**{"data.options": {"casia": {"layout": "tree"}}}) == (
        "data.options.casia: corpus 'casia' option layout = 'tree': expected one of auto, speaker, flat")


def test_every_method_row_backbone_is_checked():
    rows = [{"name": "target_only"}, {"name": "target_only", "label": "b", "backbone": "at_timm"}]
    assert "methods[1] (target_only): backbone = 'at_timm': expected one of" in _error({"methods": rows})
    rows[1] = {"name": "target_only", "backbone_options": {"levels": 0}}
    assert _error({"methods": rows}) == (
        "methods[1] (target_only): backbone_options: backbone 'tim' option levels = 0: expected an int >= 1")
    rows[1] = {"name": "target_only", "label": 3}
    assert _error({"methods": rows}) == "methods[1] (target_only): label = 3: expected a string"


def test_method_names_and_options_go_to_the_method_registry(monkeypatch):
    methods = Registry("method")

    @methods.register("toy")
    class Toy:
        @dataclass(frozen=True)
        class Options:
            mult: float = option(0.1, min=0)

    monkeypatch.setattr(domadapt.recipe_loader, "METHODS", methods)
    assert build_config({"methods": [{"name": "toy", "mult": 2, "label": "t"}]}).methods[0].options["mult"] == 2
    assert _error({"methods": [{"name": "toy", "mult": -1}]}) == (
        "methods[0] (toy): method 'toy' option mult = -1: expected a number >= 0")
    assert _error({"methods": [{"name": "toyy"}]}) == "methods[0] (toyy): name = 'toyy': expected one of toy"
    # a registry without check (a plain dict): only the name is checked
    monkeypatch.setattr(domadapt.recipe_loader, "METHODS", {"toy": Toy})
    assert build_config({"methods": [{"name": "toy", "anything": 1}]}).methods[0].name == "toy"
    assert _error({"methods": [{"name": "toyy"}]}) == "methods[0] (toyy): name = 'toyy': expected one of toy"


def test_recipe_table_keys_and_loaded_corpora():
    assert _error({"recipe": {"nmae": "x"}}) == (
        "[recipe] unknown key(s) nmae; valid keys: name, description, extends, import")
    # the library API names corpora it has loaded itself: no registry check for them
    cfg = build_config({"data": {"source": "my_clinic", "target": "their_clinic"}}, check_corpora=False)
    assert cfg.data.source == ("my_clinic",)


# -- before any audio: through the recipe command -------------------------------------------


class Reached(Exception):
    """A corpus loader, the synthetic generator or the feature extraction was called."""


@pytest.fixture
def guarded(monkeypatch, tmp_path):
    """Every way to audio raises Reached; returns --source-root/--target-root of empty folders."""
    calls = []

    def reached(what):
        def spy(*args, **kwargs):
            calls.append(what)
            raise Reached(what)
        return spy

    monkeypatch.setattr(CORPORA, "build", reached("CORPORA.build"))
    monkeypatch.setattr(CORPORA, "get", reached("CORPORA.get"))
    # domadapt.run.corpora first: importing it binds its own extract_segments, which must be the real one
    monkeypatch.setattr("domadapt.run.corpora.extract_segments", reached("extract_segments"), raising=False)
    monkeypatch.setattr("domadapt.run.corpora.synthetic_root", reached("synthetic_root"), raising=False)
    monkeypatch.setattr("domadapt.features.extract_segments", reached("extract_segments"))
    for side in ("source", "target"):
        (tmp_path / side).mkdir()
    roots = ["--source-root", str(tmp_path / "source"), "--target-root", str(tmp_path / "target")]
    return calls, roots + ["--out", str(tmp_path / "out"), "--quiet"]


def test_a_valid_recipe_does_reach_the_guarded_loaders(guarded):
    calls, args = guarded
    with pytest.raises(Reached):
        recipe_cli.main(["casia2modma", "--quick", *args])
    assert calls == ["CORPORA.build"]  # so the refusals below are not vacuous


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--set", "train.optimizer=sgd"], "error: train.optimizer = 'sgd': expected one of adam, adamw"),
        (["--set", "train.epochs=-1"], "error: train.epochs = -1: expected an int >= 1"),
        (["--set", 'model.backbone_options={filters="39"}'],
         "error: model.backbone_options: backbone 'tim' option filters = '39': expected an int"),
        (["--set", "eval.splitter=random"], "error: eval.splitter = 'random': expected one of leave_one_session_out"),
        (["--set", "train.unsupervised_selection=dev"],
         "error: train.unsupervised_selection = 'dev': expected one of im, snd (or --import the module that registers your own validator)"),
    ],
)
def test_a_wrong_set_value_fails_before_any_corpus_is_read(guarded, capsys, extra, expected):
    calls, args = guarded
    assert recipe_cli.main(["casia2modma", "--quick", *args, *extra]) == 2
    assert capsys.readouterr().err.startswith(expected)
    assert calls == []


def test_a_wrong_recipe_value_fails_before_any_corpus_is_read(guarded, capsys, tmp_path):
    calls, args = guarded
    path = tmp_path / "mine.toml"
    path.write_text('[recipe]\nname = "mine"\nextends = "casia2modma"\n\n[train]\nscheduler = "plateau"\n')
    assert load_recipe(str(path))["train"] == {"epochs": 6, "pretrain_epochs": 4, "batch_size": 64, "lr": 1e-3,
                                                "scheduler": "plateau"}
    assert recipe_cli.main([str(path), *args]) == 2
    assert capsys.readouterr().err.strip() == "error: train.scheduler = 'plateau': expected one of step, cosine, none"
    path.write_text('[recipe]\nextends = "casia2modma"\n[[methods]]\nname = "align"\nbackbone = "tim"\n'
                    'backbone_options = { residual = "multiply" }\n')
    assert recipe_cli.main([str(path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: methods[0] (align): backbone_options: backbone 'tim'")
    assert "option residual = 'multiply': expected one of mul, add" in err
    assert calls == []
