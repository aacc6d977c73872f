"""The sweep's space file: what it accepts and the one-line errors for what it does not."""

import pytest

from domadapt.recipe_loader import load_recipe, recipes_dir
from domadapt.errors import DomadaptError
from domadapt.sweep import Param, check_space, load_space


def _space(tmp_path, text):
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


def test_ranges_and_choices_become_float_int_and_categorical_params(tmp_path):
    path = _space(tmp_path, """
[params."train.lr"]
low = 1e-4
high = 1e-2
log = true
[params."train.step_size"]
low = 2
high = 8
[params."model.dropout"]
choices = [0.0, 0.3]
""")
    assert load_space(path) == [
        Param("train.lr", 1e-4, 1e-2, log=True),
        Param("train.step_size", 2, 8),
        Param("model.dropout", choices=(0.0, 0.3)),
    ]

    class Trial:  # what each param asks optuna for
        def suggest_float(self, name, low, high, step=None, log=False):
            return ("float", name, low, high, log)

        def suggest_int(self, name, low, high, step=1, log=False):
            return ("int", name, low, high, step)

        def suggest_categorical(self, name, choices):
            return ("categorical", name, choices)

    assert [p.suggest(Trial()) for p in load_space(path)] == [
        ("float", "train.lr", 1e-4, 1e-2, True), ("int", "train.step_size", 2, 8, 1), ("categorical", "model.dropout", [0.0, 0.3]),
    ]


@pytest.mark.parametrize("text, message", [
    ('[params."features.kind"]\nchoices = ["mfcc"]', r'params."features.kind"\]: a sweep varies train.KEY or model.KEY'),
    ('[params."train.lr"]\nlow = 1e-2\nhigh = 1e-4', r"expected numbers low < high"),
    ('[params."train.lr"]\nlow = 0.0\nhigh = 1e-2\nlog = true', r"low > 0 with log = true"),
    ('[params."train.lr"]\nlow = 1e-4\nhigh = 1e-2\nscale = "log"', r"unknown key\(s\) scale"),
    ('[train]\nlr = 1e-3', r'expected only \[params."section.key"\] tables'),
])
def test_a_bad_space_file_is_one_line_naming_the_file_and_key(tmp_path, text, message):
    path = _space(tmp_path, text)
    with pytest.raises(DomadaptError, match=message) as err:
        load_space(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_keys_and_values_are_checked_against_the_configuration_before_the_search(tmp_path):
    path = _space(tmp_path, '[params."train.lrate"]\nlow = 1e-4\nhigh = 1e-2')
    with pytest.raises(DomadaptError, match=r'params."train.lrate"\] = 0.0001: .*unknown key\(s\) lrate'):
        check_space(load_space(path), load_recipe("casia2modma"), overrides={}, quick=True, where=path)
    path = _space(tmp_path, '[params."model.dropout"]\nlow = 0.5\nhigh = 1.5')
    with pytest.raises(DomadaptError, match=r'params."model.dropout"\] = 1.5'):
        check_space(load_space(path), load_recipe("casia2modma"), overrides={}, quick=True, where=path)


@pytest.mark.parametrize("path", sorted((recipes_dir() / "spaces").glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_space_fits_its_recipe(path):
    recipe = path.stem.split("_")[0]  # recipes/spaces/RECIPE_WHAT.toml
    check_space(load_space(path), load_recipe(recipe), overrides={}, quick=False, where=path)
