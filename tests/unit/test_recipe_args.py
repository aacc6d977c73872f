"""The recipe command's argparse conventions: usage errors through the parser (exit 2, before
any data), choices where the values are known, --version, and the Ctrl-C line."""

import shlex

import pytest

from domadapt import __version__
from domadapt import cli
from domadapt import recipe as recipe_cli
from domadapt.errors import DomadaptError


def _usage_error(argv, capsys, main=recipe_cli.main):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ")
    return err.splitlines()[-1]


def test_no_recipe_name_is_a_usage_error_and_list_still_lists(capsys):
    assert _usage_error([], capsys) == (
        "python -m domadapt.recipe: error: a recipe NAME or path to a .toml is required (--list shows the recipes)"
    )
    assert recipe_cli.main(["--list"]) == 0
    assert "casia2modma" in capsys.readouterr().out.split()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["casia2modma", "--device", "gpu"], "argument --device: invalid choice: 'gpu' (choose from"),
        (["casia2modma", "--threads", "0"], "argument --threads: '0': expected a positive whole number"),
        (["casia2modma", "--seeds", "-1"], "argument --seeds: '-1': expected a positive whole number"),
        (["casia2modma", "--folds", "two"], "argument --folds: 'two': expected a positive whole number"),
    ],
)
def test_bad_values_are_usage_errors(argv, expected, capsys):
    assert expected in _usage_error(argv, capsys)


def test_version_on_both_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        recipe_cli.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"python -m domadapt.recipe {__version__}\n"
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"domadapt {__version__}\n"


def test_leading_options_of_domadapt_go_to_the_recipe(monkeypatch):
    seen = []
    monkeypatch.setattr(recipe_cli, "main", lambda argv: seen.append(argv) or 0)
    assert cli.main(["-vv", "--import", "m", "-q", "recipe", "casia2modma", "--quick"]) == 0
    assert seen == [["casia2modma", "--quick", "-vv", "--import", "m", "-q"]]


def test_interrupted_line_says_what_was_kept_and_how_to_resume(tmp_path):
    assert recipe_cli.interrupted(None, [], prog="p") == "interrupted before any run started: nothing kept"
    out = tmp_path / "my run"
    (out / "runs" / "target_only").mkdir(parents=True)
    for seed in (0, 1):
        (out / "runs" / "target_only" / f"fold0-seed{seed}.json").write_text("{}")
    (out / "checkpoints" / "joint").mkdir(parents=True)
    (out / "checkpoints" / "joint" / "fold0-seed0.pt").write_bytes(b"")
    argv = ["casia2modma", "--quick", "--out=old", "--set", "train.lr=1e-3", "--resume"]
    line = recipe_cli.interrupted(out, argv, prog="python -m domadapt.recipe")
    kept, command = line.split("; resume with: ")
    assert kept == f"interrupted: 2 finished runs kept in {out}/runs and 1 checkpoint of unfinished ones"
    assert shlex.split(command) == [
        "python", "-m", "domadapt.recipe", "casia2modma", "--quick", "--set", "train.lr=1e-3", "--out", str(out), "--resume",
    ]


def test_jobs_default_comes_from_domadapt_jobs_and_a_bad_value_is_one_line(monkeypatch):
    args = recipe_cli.build_parser().parse_args(["casia2modma"])
    monkeypatch.setenv("DOMADAPT_JOBS", "3")
    assert recipe_cli.build_executor_from(args).jobs == 3
    monkeypatch.delenv("DOMADAPT_JOBS")
    assert recipe_cli.build_executor_from(args).jobs is None  # one worker per core, as memory allows
    assert recipe_cli.build_executor_from(recipe_cli.build_parser().parse_args(["casia2modma", "--jobs", "2"])).jobs == 2
    monkeypatch.setenv("DOMADAPT_JOBS", "two")
    with pytest.raises(DomadaptError, match=r"^DOMADAPT_JOBS='two': expected a positive whole number"):
        recipe_cli.build_executor_from(args)
