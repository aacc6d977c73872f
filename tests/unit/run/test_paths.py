"""RunPaths: every file of a unit named in one place, and the report reads back what it names."""

from __future__ import annotations

from pathlib import Path

from domadapt.report.runs import _RUN_FILE
from domadapt.run import RunPaths


def test_a_units_files_share_one_name_per_fold_point_and_seed():
    paths = RunPaths(Path("out"), "align-mmd", fold=2, seeds=(0, 1), point=4)
    assert paths.result(1) == Path("out/runs/align-mmd/fold2-n4-seed1.json")
    assert paths.checkpoint == Path("out/checkpoints/align-mmd/fold2-n4-seed0-1.pt")
    assert paths.tensorboard(0) == Path("out/tensorboard/align-mmd/fold2-n4-seed0")
    assert paths.features_picture == Path("out/plots/align-mmd-features.png")


def test_one_seed_without_a_curve_point_and_a_search_unit():
    paths = RunPaths(Path("out"), "target_only", fold=0, seeds=(3,))
    assert paths.result(3) == Path("out/runs/target_only/fold0-seed3.json")
    assert paths.checkpoint == Path("out/checkpoints/target_only/fold0-seed3.pt")
    search = RunPaths(Path("out"), "target_only", fold=0, seeds=(3,), search=True)
    assert search.result(3) == Path("out/validation/target_only/fold0-seed3.json")


def test_the_report_parses_the_result_names_the_runner_writes():
    for point, expected in (("all", None), (8, "8")):
        name = RunPaths(Path("out"), "k", fold=11, seeds=(5, 6), point=point).result(6).name
        m = _RUN_FILE.match(name)
        assert m is not None and (m["fold"], m["point"], m["seed"]) == ("11", expected, "6")
