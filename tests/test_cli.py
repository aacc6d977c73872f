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
    assert summary["utterances"] == 4 * 6 * 2 + 1
    assert summary["subjects"] == 4
    assert summary["classes"]["sad"] == 4 * 2 + 1
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


def test_list_one_kind_shows_docs_and_options(capsys):
    assert main(["list", "schedules"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("constant: ") and out[1] == "    value=1.0"
    assert "dann: λ(p) = value" in out[2] and out[3] == "    gamma=10.0, value=1.0"
    assert main(["list", "splitters"]) == 0
    assert "subject_kfold: K folds of whole subjects" in capsys.readouterr().out


def test_import_before_the_command_reaches_the_recipe_too(capsys):
    assert main(["--import", "no_such_user_module", "recipe", "casia2modma", "--quick"]) == 2
    assert "error: import 'no_such_user_module': no module named 'no_such_user_module'" in capsys.readouterr().err
    assert main(["recipe", "casia2modma", "--import=no_such_user_module"]) == 2
    assert "no module named 'no_such_user_module'" in capsys.readouterr().err
