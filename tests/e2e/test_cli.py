import json

from domadapt.cli import main
from domadapt.corpora.synthetic import write_casia
from domadapt.report import write_results


def test_data_summary_json(tmp_path, capsys):
    root = write_casia(tmp_path / "CASIA database", files_per_class=2)
    (root / "wangzhe" / "sad" / "999.wav").write_bytes(b"not audio")  # one unreadable file
    assert main(["data", "summary", "casia", str(root), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["corpus"] == "casia"
    assert summary["utterances"] == 4 * 6 * 2  # the unreadable file is a skip, not an utterance
    assert summary["subjects"] == 4
    assert summary["classes"]["sad"] == 4 * 2
    assert summary["sample_rates"] == {"16000": 48}
    assert [s["path"] for s in summary["skipped"]] == [str(root / "wangzhe" / "sad" / "999.wav")]


def test_data_summary_bad_root_is_one_line(tmp_path, capsys):
    assert main(["data", "summary", "modma", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(tmp_path / "nope") in err and "\n" not in err


def _results(method, data):
    summary = {"mean": 0.5, "std": 0.0, "runs": [0.5]}
    return {
        "recipe": "r",
        "data": data,
        "title": "t",
        "subject_overlap": False,
        "config": {},
        "git": None,
        "skipped": [],
        "rows": [{"method": method, "backbone": "tim", "metrics": {k: summary for k in ("accuracy", "uar", "macro_f1", "subject_accuracy")}}],
    }


def test_report_merges_run_dirs(tmp_path, capsys):
    write_results(tmp_path / "a", _results("target_only", "synthetic"))
    write_results(tmp_path / "b", _results("align:mmd", "synthetic"))
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "target_only" in out and "align:mmd" in out and "SYNTHETIC" in out
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_list_names_every_registry(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for needle in ("casia", "at_delta_tim", "sinkhorn", "multitrain_ae", "casia2modma"):
        assert needle in out
    assert "executors: local, ray" in out and "extractors: (none registered)" in out
    assert "validators: im, snd" in out


def test_list_one_kind_shows_docs_and_options(capsys):
    assert main(["list", "schedules"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("constant: ") and out[1] == "    value = 1.0  (a number)"
    assert "dann: λ(p) = value" in out[2] and out[3] == "    gamma = 10.0  (a number > 0)"
    assert main(["list", "splitters"]) == 0
    assert "subject_kfold: K folds of whole subjects" in capsys.readouterr().out


def test_import_before_the_command_reaches_the_recipe_too(capsys):
    assert main(["--import", "no_such_user_module", "recipe", "casia2modma", "--quick"]) == 2
    assert "error: import 'no_such_user_module': no module named 'no_such_user_module'" in capsys.readouterr().err
    assert main(["recipe", "casia2modma", "--import=no_such_user_module"]) == 2
    assert "no module named 'no_such_user_module'" in capsys.readouterr().err


def _runs(root, label, uar_of, folds=4, seeds=2):
    """A run folder's per-run files for one row (the keys report.py reads) and its summary row."""
    from domadapt.evaluate import summarize_runs

    folder = root / "runs" / label.replace(":", "-")
    folder.mkdir(parents=True)
    runs = []
    for f in range(folds):
        for s in range(seeds):
            m = {k: uar_of(f, s) for k in ("accuracy", "uar", "macro_f1")}
            m.update(subject_accuracy=0.7, subject_confusion=[[4, 1], [2, 3]], num_subjects=10)
            run = {"method": label, "fold": f, "seed": s, "metrics": m, "n_train": 300, "n_val": 60, "n_test": 90}
            (folder / f"fold{f}-seed{s}.json").write_text(json.dumps(run))
            runs.append(run)
    metrics = {k: summarize_runs(r["metrics"][k] for r in runs) for k in ("accuracy", "uar", "macro_f1", "subject_accuracy")}
    return {"method": label, "backbone": "tim", "metrics": metrics}


def test_report_baseline_recomputes_from_per_run_files(tmp_path, capsys):
    base = lambda f, s: 0.5 + 0.02 * ((f + 3 * s) % 4)  # noqa: E731
    a = _results("target_only", "synthetic")
    a["rows"] = [_runs(tmp_path / "a", "target_only", base),
                 _runs(tmp_path / "a", "align:mmd", lambda f, s: base(f, s) + 0.1 + 0.01 * (f % 2))]
    b = _results("joint", "synthetic")
    b["rows"] = [_runs(tmp_path / "b", "joint", base)]
    write_results(tmp_path / "a", a)
    write_results(tmp_path / "b", b)
    out = tmp_path / "merged"
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--baseline", "target_only", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Δ UA vs r/target_only [95% CI]" in text
    line = next(x for x in text.splitlines() if x.startswith("r/align:mmd"))
    assert "+10.50 [" in line and line.rstrip().split()[-9] == "*"  # the mark, before the 8 per-run values
    back = json.loads((out / "results.json").read_text())
    rows = back["comparison"]["rows"]
    assert rows["r/align:mmd"]["mark"] == "*" and rows["r/joint"]["uar"]["mean_diff"] == 0
    assert back["comparison"]["sizes"]["unit"] == "segments"  # no subject counts stored in these runs
    assert "subject_bootstrap" in back["rows"][0]
    assert (out / "results.csv").read_text().count("\n") == 1 + 3 * 8 * 4
    assert "Δ UA vs r/target_only [95% CI]" in (out / "results.md").read_text()


def test_report_baseline_name_errors_are_one_line(tmp_path, capsys):
    write_results(tmp_path / "a", _results("target_only", "synthetic"))
    assert main(["report", str(tmp_path / "a"), "--baseline", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: baseline 'nope' is not a row; rows: r/target_only")
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "a"), "--baseline", "target_only"]) == 2
    assert "ambiguous" in capsys.readouterr().err


def test_recipe_baseline_is_checked_before_any_data(capsys):
    assert main(["recipe", "casia2modma", "--quick", "--methods", "target_only", "--baseline", "ddg"]) == 2
    assert "error: --baseline ddg: not a method of this run (target_only)" in capsys.readouterr().err
