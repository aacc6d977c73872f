"""Units in worker processes (``--jobs 2``) give the in-process run's numbers to the digit:
the same per-run files, metrics, histories and table as ``--jobs 1``."""

import json

import pytest

from domadapt import recipe as recipe_cli

pytestmark = pytest.mark.slow  # whole recipes, twice

ARGS = [
    "casia2modma", "--quick", "--quiet", "--methods", "target_only,align:mmd", "--seeds", "2",
    "--set", "train.epochs=2", "--set", "train.batch_size=16", "--set", "model.backbone_options={filters=8, levels=2}",
]


def _roots(trees):
    return ["--source-root", str(trees["casia"]), "--target-root", str(trees["modma"])]


def _per_run(out):
    """Each (method, fold, seed) run's JSON: metrics, history, per-subject predictions."""
    return {str(p.relative_to(out)): json.loads(p.read_text()) for p in sorted((out / "runs").rglob("*.json"))}


def test_two_jobs_give_the_one_job_results_to_the_digit(tiny_trees, tmp_path):
    outs = {}
    for jobs in ("1", "2"):
        outs[jobs] = tmp_path / f"jobs{jobs}"
        assert recipe_cli.main([*ARGS, *_roots(tiny_trees), "--jobs", jobs, "--out", str(outs[jobs])]) == 0
    one, two = (json.loads((outs[j] / "results.json").read_text()) for j in ("1", "2"))
    assert [r["metrics"] for r in two["rows"]] == [r["metrics"] for r in one["rows"]]
    runs_one, runs_two = _per_run(outs["1"]), _per_run(outs["2"])
    assert len(runs_one) == 2 * 2 * 2 and runs_two == runs_one  # 2 methods x 2 folds x 2 seeds
    table = lambda d: (d / "results.md").read_text().replace(str(d), "OUT")  # noqa: E731
    assert table(outs["2"]) == table(outs["1"])
