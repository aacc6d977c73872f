import csv
import json

import numpy as np
import pytest

from domadapt.errors import DomadaptError
from domadapt.evaluate import summarize_runs
from domadapt.report import (
    CSV_COLUMNS,
    SUMMARY_CSV_COLUMNS,
    add_statistics,
    compare,
    find_baseline,
    format_table,
    merge_results,
    plot_confusion,
    plot_curves,
    subject_intervals,
    write_results,
)
from domadapt.stats import corrected_resampled_ttest, subject_bootstrap_ci


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
    assert set(paths) == {"json", "csv", "summary_csv", "md"} and all(p.is_file() for p in paths.values())
    back = json.loads(paths["json"].read_text())
    assert back["rows"][1]["metrics"]["accuracy"]["mean"] == 0.99
    assert back["git"] == "abc1234" and back["config"]["lr"] == 4e-4
    # atomic writes leave no temp file behind
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "results.csv", "results.json", "results.md", "results_summary.csv"]
    assert "comparison" not in back and "subject_bootstrap" not in back["rows"][0]  # no per-run files


def test_summary_csv_columns_and_rows(tmp_path):
    paths = write_results(tmp_path, make_results())
    with paths["summary_csv"].open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == SUMMARY_CSV_COLUMNS
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
    assert "97.05, 97.19, 97.75" in md  # every run's accuracy, listed after the mean
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


def test_long_csv_without_per_run_files_lists_each_run_value(tmp_path):
    with write_results(tmp_path, make_results())["csv"].open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 4 * 3 + 1  # target_only: 4 metrics x 3 runs; ddg: 1 x 1
    assert {r["fold"] for r in rows} == {""}  # unknown without the per-run files
    acc = [float(r["value"]) for r in rows if r["method"] == "target_only" and r["metric"] == "accuracy"]
    assert acc == [0.9705, 0.9719, 0.9775]


# --------------------------------------------------------------------------- per-run files

FOLDS, SEEDS = 5, 2


def _ua(fold, seed):
    """The baseline's UA per run: spread over 0.55 .. 0.67, not a constant."""
    return 0.55 + 0.03 * ((3 * fold + seed) % 5)


def _run_file(label, fold, seed, *, uar, subject_accuracy=None, cm=None, subjects=None,
              sizes="subjects", n_test=125):
    """A per-run result as the runner writes it (the keys report.py reads)."""
    cm = cm if cm is not None else [[3, 2], [1, 4]]
    metrics = {"accuracy": uar, "uar": uar, "macro_f1": uar,
               "subject_accuracy": subject_accuracy if subject_accuracy is not None else np.trace(cm) / np.sum(cm),
               "subject_confusion": cm, "subject_confusion_meanprob": cm, "num_subjects": int(np.sum(cm)),
               "confusion": [[50, 10], [12, 53]], "n": n_test}
    run = {"method": label, "fold": fold, "seed": seed, "trained": "test", "metrics": metrics, "history": {},
           "n_train": 400, "n_val": 100, "n_test": n_test}
    if sizes == "subjects":
        run.update(n_train_subjects=32, n_val_subjects=8, n_test_subjects=int(np.sum(cm)))
    if subjects is not None:
        run["test_subjects"] = subjects
    return run


def _write_run(root, recipe, rows, *, backbone="tim", write=True):
    """A run folder: runs/<key>/fold{F}-seed{S}.json for each row's runs and a results.json
    whose rows summarise exactly those runs. ``rows``: {label: [per-run dicts]}."""
    result_rows = []
    for label, runs in rows.items():
        folder = root / "runs" / label.replace(":", "-")
        folder.mkdir(parents=True, exist_ok=True)
        for run in runs:
            (folder / f"fold{run['fold']}-seed{run['seed']}.json").write_text(json.dumps(run))
        names = ("accuracy", "uar", "macro_f1", "subject_accuracy")
        result_rows.append({"method": label, "backbone": backbone,
                            "metrics": {m: summarize_runs(r["metrics"][m] for r in runs) for m in names}})
    results = make_results(recipe=recipe, rows=result_rows, skipped=[])
    if write:
        write_results(root, results)
    return results


def _table(label_fn, *, folds=FOLDS, seeds=SEEDS, **kw):
    return [_run_file(label_fn[0], f, s, uar=label_fn[1](f, s), **kw) for f in range(folds) for s in range(seeds)]


def _better(f, s):
    return _ua(f, s) + 0.10 + 0.01 * ((f + 2 * s) % 3)  # clearly better, by 10..12 points


def test_compare_better_identical_and_mismatched_rows(tmp_path):
    rows = {
        "target_only": _table(("target_only", _ua)),
        "align:mmd": _table(("align:mmd", _better)),
        "joint": _table(("joint", _ua)),  # identical to the baseline, run for run
        "ddg": _table(("ddg", _better), folds=FOLDS - 1),  # fold 4 missing
        "pretrain_freeze": _table(("pretrain_freeze", _better)),
    }
    rows["pretrain_freeze"][3]["n_test"] = 99  # fold 1 seed 1 tested another fold
    results = _write_run(tmp_path, "casia2modma", rows, write=False)
    c = compare(results, tmp_path, "target_only")
    assert c["baseline"] == "target_only" and c["metric"] == "uar"
    assert c["sizes"]["unit"] == "subjects" and c["sizes"]["n_train"] == 40 and c["sizes"]["n_test"] == 10

    better = c["rows"]["align:mmd"]
    diffs = [_better(f, s) - _ua(f, s) for f in range(FOLDS) for s in range(SEEDS)]
    ref = corrected_resampled_ttest(diffs, n_train=40, n_test=10)  # the subject counts, val counted as training
    assert better["status"] == "compared" and better["n_pairs"] == 10
    assert better["uar"]["mean_diff"] == pytest.approx(np.mean(diffs))
    assert better["uar"]["ci_low"] == pytest.approx(ref["ci_low"]) and ref["ci_low"] > 0.05
    assert better["uar"]["ci_high"] == pytest.approx(ref["ci_high"])
    assert better["uar"]["p_t_holm"] == pytest.approx(min(1.0, 2 * ref["p"]))  # Holm over 2 compared rows
    assert better["uar"]["p_wilcoxon"] == pytest.approx(2 / 2**10)  # all 10 differences positive
    assert better["mark"] == "*"

    same = c["rows"]["joint"]
    assert same["uar"]["mean_diff"] == 0 and (same["uar"]["ci_low"], same["uar"]["ci_high"]) == (0, 0)
    assert same["uar"]["p_t"] == 1 and same["mark"] == ""
    assert c["holm_over"]["uar"] == ["align:mmd", "joint"]

    # mismatched rows are reported with their reason, never silently dropped
    assert c["rows"]["ddg"]["status"] == "not compared"
    assert "only in the baseline: fold 4 seed 0, fold 4 seed 1" in c["rows"]["ddg"]["reason"]
    assert c["rows"]["pretrain_freeze"]["status"] == "not compared"
    assert "fold 1 seed 1: 99 test segments vs the baseline's 125" in c["rows"]["pretrain_freeze"]["reason"]

    # the files and the tables carry it
    paths = write_results(tmp_path, results, baseline="target_only")
    back = json.loads(paths["json"].read_text())
    assert back["comparison"]["rows"]["align:mmd"]["uar"]["ci_low"] == pytest.approx(ref["ci_low"])
    assert back["comparison"]["rows"]["ddg"]["status"] == "not compared"
    md = paths["md"].read_text()
    assert "| Δ UA vs target_only [95% CI] | Sig. |" in md
    line = lambda name: next(x for x in md.splitlines() if x.startswith(f"| {name} |"))  # noqa: E731
    lo, hi = 100 * ref["ci_low"], 100 * ref["ci_high"]
    assert f"| {100 * np.mean(diffs):+.2f} [{lo:+.2f}, {hi:+.2f}] | * |" in line("align:mmd")
    assert "| +0.00 [+0.00, +0.00] |  |" in line("joint")
    assert "| (baseline) |  |" in line("target_only")
    assert "| – |  |" in line("ddg")
    assert "not compared: not the same (fold, seed) runs" in md  # the details section says why
    text = format_table(back)
    assert "Δ UA vs target_only [95% CI]" in text and "ddg: not compared" in text


def test_compare_uses_segments_when_subject_counts_are_missing(tmp_path):
    rows = {"target_only": _table(("target_only", _ua), sizes=None),
            "align:mmd": _table(("align:mmd", _better), sizes=None)}
    results = _write_run(tmp_path, "r", rows, write=False)
    c = compare(results, tmp_path, "target_only")
    assert c["sizes"]["unit"] == "segments" and (c["sizes"]["n_train"], c["sizes"]["n_test"]) == (500, 125)
    diffs = [_better(f, s) - _ua(f, s) for f in range(FOLDS) for s in range(SEEDS)]
    ref = corrected_resampled_ttest(diffs, n_train=500, n_test=125)
    assert c["rows"]["align:mmd"]["uar"]["ci_low"] == pytest.approx(ref["ci_low"])


def test_compare_unknown_or_no_files(tmp_path):
    results = _write_run(tmp_path, "r", {"target_only": _table(("target_only", _ua))}, write=False)
    results["rows"].append({"method": "lonely", "backbone": "tim", "metrics": {"uar": summarize_runs([0.5, 0.6])}})
    c = compare(results, tmp_path, "target_only")
    assert c["rows"]["lonely"]["status"] == "not compared" and "no per-run files" in c["rows"]["lonely"]["reason"]
    with pytest.raises(DomadaptError, match="'nope' is not a row; rows: target_only, lonely"):
        compare(results, tmp_path, "nope")
    # written anyway, the error recorded: a long run's results are never lost to a typo
    back = json.loads(write_results(tmp_path, results, baseline="nope")["json"].read_text())
    assert "is not a row" in back["comparison"]["error"]


def _subjects(ids, true, pred):
    return {"ids": ids, "true": true, "pred": pred, "pred_meanprob": pred}


def test_subject_interval_matches_stats_on_one_fold(tmp_path):
    ids = [f"s{i:02d}" for i in range(12)]
    true = [0] * 6 + [1] * 6
    preds = [[0, 0, 0, 1, 0, 1, 1, 1, 0, 1, 1, 1], [0, 1, 0, 0, 0, 1, 1, 0, 1, 1, 1, 1]]
    runs = [_run_file("m", 0, s, uar=0.6, cm=[[1]], subjects=_subjects(ids, true, preds[s]),
                      subject_accuracy=float(np.mean(np.equal(true, preds[s])))) for s in range(2)]
    results = _write_run(tmp_path, "r", {"m": runs}, write=False)
    iv = subject_intervals(results, tmp_path)["m"]["subject_accuracy"]
    ref = subject_bootstrap_ci(true, np.array(preds), metric="accuracy", n_boot=2000, seed=0)
    assert iv["linking"] == "subject ids" and iv["n_subjects"] == 12 and iv["n_runs"] == 2
    assert (iv["estimate"], iv["ci_low"], iv["ci_high"]) == pytest.approx((ref["estimate"], ref["ci_low"], ref["ci_high"]))
    assert iv["estimate"] == pytest.approx(results["rows"][0]["metrics"]["subject_accuracy"]["mean"])
    uar = subject_intervals(results, tmp_path)["m"]
    assert set(uar) == {"subject_accuracy"}  # only the row's own subject metrics


def test_subject_interval_from_confusion_is_conservative(tmp_path):
    """Seed 0 is right on the first half of each class, seed 1 on the second: every subject
    is right once, so with subject ids the mean over seeds is 0.5 on every resample; from
    confusion matrices alone the seeds are lined up hit with hit and the interval widens."""
    ids = [f"s{i:02d}" for i in range(20)]
    true = [0] * 10 + [1] * 10
    halves = [[0] * 5 + [1] * 5 + [1] * 5 + [0] * 5, [1] * 5 + [0] * 5 + [0] * 5 + [1] * 5]
    with_ids = [_run_file("m", 0, s, uar=0.5, cm=[[5, 5], [5, 5]], subjects=_subjects(ids, true, halves[s]))
                for s in range(2)]
    _write_run(tmp_path / "ids", "r", {"m": with_ids})
    _write_run(tmp_path / "cm", "r", {"m": [_run_file("m", 0, s, uar=0.5, cm=[[5, 5], [5, 5]]) for s in range(2)]})
    exact = json.loads((tmp_path / "ids" / "results.json").read_text())["rows"][0]["subject_bootstrap"]["subject_accuracy"]
    conservative = json.loads((tmp_path / "cm" / "results.json").read_text())["rows"][0]["subject_bootstrap"]["subject_accuracy"]
    assert exact["linking"] == "subject ids" and (exact["ci_low"], exact["ci_high"]) == (0.5, 0.5)
    assert conservative["linking"] == "confusion, comonotone" and conservative["estimate"] == 0.5
    assert conservative["ci_high"] - conservative["ci_low"] > 0.3
    md = (tmp_path / "cm" / "results.md").read_text()
    assert "50.00 ± 0.00 [" in md and "conservative" in md


def test_subject_interval_over_folds_is_the_row_mean(tmp_path):
    cms = [[[4, 1], [2, 3]], [[5, 0], [1, 4]], [[2, 3], [3, 2]]]
    runs = [_run_file("m", f, 0, uar=0.6, cm=cms[f]) for f in range(3)]
    results = _write_run(tmp_path, "r", {"m": runs})
    back = json.loads((tmp_path / "results.json").read_text())
    iv = back["rows"][0]["subject_bootstrap"]["subject_accuracy"]
    assert iv["linking"] == "single run per fold" and iv["n_subjects"] == 30 and iv["n_folds"] == 3
    assert iv["estimate"] == pytest.approx(results["rows"][0]["metrics"]["subject_accuracy"]["mean"])
    assert iv["ci_low"] < iv["estimate"] < iv["ci_high"]


def test_paired_subject_bootstrap_needs_subject_ids(tmp_path):
    ids = [f"s{i}" for i in range(10)]
    true = [0] * 5 + [1] * 5

    def rows(with_ids):
        out = {}
        for label, pred in (("target_only", [0, 0, 1, 1, 0, 1, 0, 0, 1, 1]), ("align:mmd", true)):
            acc = float(np.mean(np.equal(true, pred)))
            out[label] = [_run_file(label, f, s, uar=(_ua if label == "target_only" else _better)(f, s),
                                    subject_accuracy=acc, cm=[[5, 0], [0, 5]] if pred == true else [[3, 2], [2, 3]],
                                    subjects=_subjects(ids, true, pred) if with_ids else None)
                          for f in range(FOLDS) for s in range(SEEDS)]
        return out

    c = compare(_write_run(tmp_path / "a", "r", rows(True), write=False), tmp_path / "a", "target_only")
    b = c["rows"]["align:mmd"]["subject_accuracy_bootstrap"]
    assert b["estimate"] == pytest.approx(0.4) and 0 < b["ci_low"] <= b["ci_high"]
    assert c["rows"]["align:mmd"]["subject_accuracy"]["mean_diff"] == pytest.approx(0.4)
    c = compare(_write_run(tmp_path / "b", "r", rows(False), write=False), tmp_path / "b", "target_only")
    assert "test_subjects" in c["rows"]["align:mmd"]["subject_accuracy_bootstrap"]["reason"]


def test_long_csv_one_line_per_run_and_metric(tmp_path):
    rows = {"target_only": _table(("target_only", _ua)), "align:mmd": _table(("align:mmd", _better))}
    results = _write_run(tmp_path, "casia2modma", rows)
    path = tmp_path / "results.csv"
    metrics = list(results["rows"][0]["metrics"])
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None:
        df = pd.read_csv(path)
        assert tuple(df.columns) == CSV_COLUMNS
        assert len(df) == 2 * FOLDS * SEEDS * len(metrics)
        assert not df.duplicated(["method", "fold", "seed", "metric"]).any()
        means = df.groupby(["method", "metric"])["value"].mean()
        for row in results["rows"]:
            for m, s in row["metrics"].items():
                assert means[row["method"], m] == pytest.approx(s["mean"])
        one = df[(df.method == "align:mmd") & (df.fold == 3) & (df.seed == 1) & (df.metric == "uar")]
        assert one["value"].item() == pytest.approx(_better(3, 1)) and one["recipe"].item() == "casia2modma"
    else:  # pragma: no cover - pandas is in the lock today
        with path.open() as f:
            lines = list(csv.DictReader(f))
        assert len(lines) == 2 * FOLDS * SEEDS * len(metrics)
        assert len({(r["method"], r["fold"], r["seed"], r["metric"]) for r in lines}) == len(lines)
    with (tmp_path / "results_summary.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 2 * len(metrics)


def test_merged_runs_find_their_files_and_baseline(tmp_path):
    _write_run(tmp_path / "a", "casia2modma", {"target_only": _table(("target_only", _ua)),
                                               "align:mmd": _table(("align:mmd", _better))})
    _write_run(tmp_path / "b", "casia2modma", {"joint": _table(("joint", _ua))})
    merged = merge_results([tmp_path / "a", tmp_path / "b" / "results.json"])
    assert find_baseline(merged, "target_only") == 0  # its own run's label, unique in the table
    stats = add_statistics(merged, baseline="target_only")
    c = stats["comparison"]
    assert c["baseline"] == "casia2modma/target_only"
    assert c["rows"]["casia2modma/align:mmd"]["mark"] == "*" and c["rows"]["casia2modma/joint"]["mark"] == ""
    assert all("subject_bootstrap" in r for r in stats["rows"])
    paths = write_results(tmp_path / "merged", stats)  # the comparison's baseline is kept
    assert json.loads(paths["json"].read_text())["comparison"]["baseline"] == "casia2modma/target_only"
    df_lines = paths["csv"].read_text().splitlines()
    assert len(df_lines) == 1 + 3 * FOLDS * SEEDS * 4
    # two runs that each hold a target_only: the short name is ambiguous
    twice = merge_results([tmp_path / "a", tmp_path / "a"])
    with pytest.raises(DomadaptError, match="ambiguous"):
        find_baseline(twice, "target_only")


def test_learning_curve_points_are_kept_apart(tmp_path):
    rows = {"target_only": _table(("target_only", _ua)), "align:mmd": _table(("align:mmd", _better))}
    results = _write_run(tmp_path, "r", rows, write=False)
    for label in rows:  # a curve point's files beside the final point's: not mixed in
        (tmp_path / "runs" / label.replace(":", "-") / "fold0-n4-seed0.json").write_text(
            json.dumps(_run_file(label, 0, 0, uar=0.1)))
    c = compare(results, tmp_path, "target_only")
    assert c["rows"]["align:mmd"]["n_pairs"] == FOLDS * SEEDS
    at4 = compare(results, tmp_path, "target_only", point=4)
    assert "needs at least 2 paired" in at4["rows"]["align:mmd"]["reason"]


def test_learning_curve_table_per_point_compares_at_that_point(tmp_path):
    rows = {"target_only": _table(("target_only", _ua)), "align:mmd": _table(("align:mmd", _better))}
    results = _write_run(tmp_path, "r", rows, write=False)
    for f in range(FOLDS):  # at 4 labelled subjects align:mmd is *worse*, by 5 points
        for s in range(SEEDS):
            for label, uar in (("target_only", _ua(f, s)), ("align:mmd", _ua(f, s) - 0.05)):
                (tmp_path / "runs" / label.replace(":", "-") / f"fold{f}-n4-seed{s}.json").write_text(
                    json.dumps({**_run_file(label, f, s, uar=uar), "n_train_subjects": 4}))
    summary = {"n_train_subjects": 4.0, "uar": summarize_runs([0.5, 0.6]), "subject_accuracy": summarize_runs([0.5, 0.6])}
    results["curve"] = {"points": ["4", "all"],
                        "rows": [{"method": label, "points": {"4": summary, "all": summary}} for label in rows]}
    paths = write_results(tmp_path, results, baseline="target_only")
    saved = json.loads(paths["json"].read_text())["curve"]["comparisons"]
    assert saved["4"]["rows"]["align:mmd"]["uar"]["mean_diff"] == pytest.approx(-0.05)
    assert saved["all"]["rows"]["align:mmd"]["uar"]["mean_diff"] > 0.09
    md = paths["md"].read_text()
    at4 = md.split("### 4 labelled subject(s)")[1].split("###")[0]
    assert "| align:mmd | 4 | 55.00 ± 7.07 | 55.00 ± 7.07 | -5.00 [" in at4
    assert "| target_only | 4 | 55.00 ± 7.07 | 55.00 ± 7.07 | (baseline) |" in at4
