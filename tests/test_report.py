import csv
import json

import numpy as np
import pytest

from domadapt.errors import DomadaptError
from domadapt.evaluate import summarize_runs
from domadapt.report import (
    CSV_COLUMNS,
    format_table,
    merge_results,
    plot_confusion,
    plot_curves,
    write_results,
)


def make_results(**over):
    results = {
        "recipe": "casia2modma",
        "data": "synthetic",
        "title": "CASIA -> MODMA",
        "subject_overlap": False,
        "config": {"seed": 0, "lr": 4e-4},
        "git": "abc1234",
        "skipped": [{"path": "modma/02010001/07.wav", "reason": "unreadable"}],
        "rows": [
            {"method": "target_only", "backbone": "tim",
             "metrics": {"accuracy": summarize_runs([0.9705, 0.9719, 0.9775]),
                         "uar": summarize_runs([0.96, 0.97, 0.98]),
                         "macro_f1": summarize_runs([0.95, 0.96, 0.97]),
                         "subject_accuracy": summarize_runs([0.9, 0.8, 1.0])}},
            {"method": "ddg", "backbone": "tim",
             "metrics": {"accuracy": {"mean": np.float64(0.99), "std": 0.0, "runs": [0.99]}}},
        ],
    }
    results.update(over)
    return results


def test_write_results_files_parse(tmp_path):
    paths = write_results(tmp_path / "run", make_results())
    assert set(paths) == {"json", "csv", "md"} and all(p.is_file() for p in paths.values())
    back = json.loads(paths["json"].read_text())
    assert back["rows"][1]["metrics"]["accuracy"]["mean"] == 0.99
    assert back["git"] == "abc1234" and back["config"]["lr"] == 4e-4
    # atomic writes leave no temp file behind
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "results.csv", "results.json", "results.md"]


def test_csv_columns_and_rows(tmp_path):
    paths = write_results(tmp_path, make_results())
    with paths["csv"].open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 5  # 4 metrics of target_only + 1 of ddg
    acc = next(r for r in rows if r["method"] == "target_only" and r["metric"] == "accuracy")
    assert acc["n_runs"] == "3" and acc["recipe"] == "casia2modma"
    assert [float(v) for v in acc["runs"].split(";")] == [0.9705, 0.9719, 0.9775]


def test_markdown_table_and_flags(tmp_path):
    md = write_results(tmp_path, make_results(subject_overlap=True))["md"].read_text()
    title = md.splitlines()[0]
    assert "SYNTHETIC stand-in data" in title
    assert "subjects overlap between train and test" in title
    assert "| target_only | tim | 97.33 ± 0.37 |" in md
    assert "97.05, 97.19, 97.75" in md  # the per-run list, like the notes
    assert "| ddg | tim | 99.00 ± 0.00 | – | – | – | – | – | 99.00 |" in md  # no validation, no gap recorded
    assert "modma/02010001/07.wav" in md and "unreadable" in md


def test_validation_flag_and_domain_gap_columns(tmp_path):
    results = make_results()
    row = results["rows"][0]
    row["validation"] = {"uar": {"mean": 0.52, "std": 0.01, "runs": [0.51, 0.53]}, "runs_at_chance": 2,
                         "runs_judged": 3, "at_chance": True}
    gap = {m: {"before": {"mean": 1.5, "std": 0.0, "runs": [1.5]}, "after": {"mean": 0.25, "std": 0.0, "runs": [0.25]}}
           for m in ("a_distance", "mmd")}
    row["domain_gap"] = {"general": gap, "specific": gap}
    md = write_results(tmp_path, results)["md"].read_text()
    assert f"| {row['method']} | tim |" in md
    line = next(x for x in md.splitlines() if x.startswith(f"| {row['method']} |"))
    assert "| 52.00 (AT CHANCE 2/3) | 1.50 → 0.25 |" in line


def test_real_data_has_no_flags(tmp_path):
    md = write_results(tmp_path, make_results(data="real", skipped=[]))["md"].read_text()
    assert "SYNTHETIC" not in md and "overlap" not in md and "Skipped" not in md


def test_format_table_plain_text():
    text = format_table(make_results())
    lines = text.splitlines()
    assert "SYNTHETIC stand-in data" in lines[0]
    assert any(line.startswith("target_only") and "97.33 ± 0.37" in line for line in lines)
    assert "|" not in text


def test_bad_results_rejected(tmp_path):
    with pytest.raises(DomadaptError, match="data must be"):
        write_results(tmp_path, make_results(data="fake"))
    bad = make_results()
    del bad["git"]
    with pytest.raises(DomadaptError, match="git"):
        write_results(tmp_path, bad)
    with pytest.raises(DomadaptError, match="mean"):
        write_results(tmp_path, make_results(rows=[{"method": "m", "backbone": "b",
                                                    "metrics": {"accuracy": 0.5}}]))


def test_nan_becomes_null(tmp_path):
    rows = [{"method": "m", "backbone": "b",
             "metrics": {"uar": {"mean": float("nan"), "std": 0.0, "runs": [float("nan")]}}}]
    paths = write_results(tmp_path, make_results(rows=rows))
    assert json.loads(paths["json"].read_text())["rows"][0]["metrics"]["uar"]["mean"] is None
    assert "| m | b | – | – |" in paths["md"].read_text()


def test_merge_two_runs(tmp_path):
    write_results(tmp_path / "a", make_results())
    write_results(tmp_path / "b", make_results(recipe="iemocap2modma", data="real", skipped=[],
                                               subject_overlap=True))
    merged = merge_results([tmp_path / "a", tmp_path / "b"])
    assert merged["data"] == "mixed" and merged["subject_overlap"] is True
    assert len(merged["rows"]) == 4
    labels = [r["method"] for r in merged["rows"]]
    assert labels[0] == "casia2modma/target_only (synthetic)"
    assert labels[2] == "iemocap2modma/target_only (real, subjects overlap)"
    text = format_table(merged)
    assert "MIXED data" in text and "subjects overlap" in text.splitlines()[0]
    paths = write_results(tmp_path / "merged", merged)
    assert "iemocap2modma/target_only" in paths["md"].read_text()


def test_merge_same_kind_keeps_plain_labels(tmp_path):
    write_results(tmp_path / "a", make_results())
    write_results(tmp_path / "b", make_results(recipe="x"))
    merged = merge_results([tmp_path / "a", tmp_path / "b" / "results.json"])
    assert merged["data"] == "synthetic" and merged["git"] == "abc1234"
    assert merged["rows"][2]["method"] == "x/target_only"


def test_merge_missing_or_corrupt(tmp_path):
    with pytest.raises(DomadaptError, match="nothing"):
        merge_results([tmp_path / "nothing"])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{not json")
    with pytest.raises(DomadaptError, match="bad"):
        merge_results([tmp_path / "bad"])
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "results.json").write_text('{"recipe": "r"}')
    with pytest.raises(DomadaptError, match="partial.*missing"):
        merge_results([tmp_path / "partial"])


def test_plots_write_pngs(tmp_path):
    cm = plot_confusion([[5, 1], [2, 7]], ["HC", "MDD"], tmp_path / "plots" / "cm.png", title="fold 1")
    curves = plot_curves({"train_loss": [1.0, 0.7, 0.5], "val_loss": [1.1, 0.9, 0.8],
                          "val_uar": [0.5, 0.6, 0.7]}, tmp_path / "curves.png", title="training")
    for p in (cm, curves):
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    with pytest.raises(DomadaptError, match="does not fit"):
        plot_confusion([[1, 2]], ["a", "b"], tmp_path / "x.png", title="t")
    with pytest.raises(DomadaptError):
        plot_curves({}, tmp_path / "y.png", title="t")
