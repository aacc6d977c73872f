"""``domadapt sweep``: the search never predicts a test fold, a killed sweep continues from
its SQLite study, and the end is best.toml plus one final run selected by the objective (target_val)."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from domadapt import cli
from domadapt.run import learners
from domadapt import sweep
from domadapt.recipe_loader import build_config, load_recipe
from domadapt.run import config_fingerprint

pytest.importorskip("optuna")
pytestmark = pytest.mark.slow  # whole sweeps

REPO = Path(__file__).resolve().parents[2]
SPACE = '[params."train.lr"]\nlow = 1e-4\nhigh = 1e-2\nlog = true\n'


def _args(trees, space, out, trials):
    return [
        "sweep", "casia2modma", "--quick", "--quiet", "--threads", "1", "--methods", "target_only",
        "--set", "train.epochs=2", "--space", str(space), "--trials", str(trials), "--out", str(out),
        "--source-root", str(trees["casia"]), "--target-root", str(trees["modma"]),
    ]


def _states(db):
    with sqlite3.connect(db, timeout=30) as con:
        return dict(con.execute("select number, state from trials"))


def test_the_search_never_predicts_a_test_fold_and_the_final_run_does_once(tiny_trees, tmp_path, monkeypatch):
    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    real_predict, real_final = learners.predict_test, sweep._final_run
    calls = []

    def predict_test(replicas, data):
        assert calls and calls[0] == "final", "a test fold was predicted during the search"
        calls.append("predict")
        return real_predict(replicas, data)

    def final_run(*args, **kwargs):
        calls.append("final")
        return real_final(*args, **kwargs)

    monkeypatch.setattr(learners, "predict_test", predict_test)
    monkeypatch.setattr(sweep, "_final_run", final_run)
    out = tmp_path / "sweep"
    # --jobs 1: the units in this process, where the patched functions are the ones called
    assert cli.main(_args(tiny_trees, space, out, trials=2) + ["--jobs", "1"]) == 0
    assert set(_states(out / "study.db").values()) == {"COMPLETE"} and len(_states(out / "study.db")) == 2
    assert calls == ["final", "predict", "predict"], "the final run predicts each of the 2 test folds once"
    assert not list((out / "trials").rglob("runs")), "a trial writes validation results only"
    results = json.loads((out / "final" / "results.json").read_text())
    assert results["selected_by"] == "target_val"


def test_a_killed_sweep_continues_from_its_sqlite_study(tiny_trees, tmp_path):
    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    out = tmp_path / "sweep"
    args = _args(tiny_trees, space, out, trials=4)
    process = subprocess.Popen([sys.executable, "-m", "domadapt", *args], cwd=REPO, stdout=subprocess.DEVNULL)
    try:  # kill it while trial 1 trains (its setting chosen, its folder written), trial 0 done
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            if (out / "trials" / "0001" / "config.json").exists():
                break
            time.sleep(0.05)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    before = _states(out / "study.db")
    assert before[0] == "COMPLETE" and before[1] == "RUNNING", before
    first = (out / "trials" / "0000" / "validation.json").read_text()

    assert cli.main(args) == 0  # the same command again
    after = _states(out / "study.db")
    assert after == {0: "COMPLETE", 1: "COMPLETE", 2: "COMPLETE", 3: "COMPLETE"}, "the killed trial resumed, not repeated"
    assert (out / "trials" / "0000" / "validation.json").read_text() == first
    summary = json.loads((out / "sweep.json").read_text())
    best = summary["best"]
    assert best["target_val"] == max(t["value"] for t in summary["trials"])
    results = json.loads((out / "final" / "results.json").read_text())
    assert results["selected_by"] == "target_val" and results["sweep"]["trial"] == best["trial"]
    assert (out / "final" / "results.md").is_file() and (out / "plots" / "history.png").is_file()
    # best.toml is a runnable recipe: it builds the configuration the final run used
    rebuilt = build_config(load_recipe(str(out / "best.toml")), quick=True)
    assert config_fingerprint(rebuilt) == json.loads((out / "final" / "config.json").read_text())["fingerprint"]
    assert rebuilt.train.lr == best["params"]["train.lr"]
