"""A model leaves the run: --final, eval.save_models, domadapt predict on them, export, and a
resume over a damaged checkpoint, on tiny corpora in the real layouts."""

import csv
import json
import logging
import statistics

import numpy as np
import pytest
import torch

from domadapt import recipe as recipe_cli
from domadapt.cli import main as cli_main
from domadapt.corpora import load_corpus
from domadapt.features.frontend import extract_windows
from domadapt.engine.replicas import predict_proba
from domadapt.inference import load_model

pytestmark = pytest.mark.slow  # training runs, end to end

TINY = ["--quick", "--quiet", "--set", "train.epochs=3", "--set", "train.pretrain_epochs=2", "--set", "train.batch_size=16",
        "--set", "model.backbone_options={filters=8, levels=2}"]  # a tiny TIM-Net: what leaves the run is the same


def _roots(trees):
    return ["--source-root", str(trees["casia"]), "--target-root", str(trees["modma"])]


@pytest.fixture(scope="module")
def cv_run(tiny_trees, tmp_path_factory):
    """A 2-fold run of align:mmd that keeps each fold's model; its 2 seeds train as one vmapped model."""
    out = tmp_path_factory.mktemp("cv") / "run"
    args = ["casia2modma", *TINY, "--folds", "2", "--seeds", "2", "--methods", "align:mmd", "--set", "eval.save_models=true",
            "--out", str(out)]
    assert recipe_cli.main(args + _roots(tiny_trees)) == 0
    return out


@pytest.fixture(scope="module")
def final_model(tiny_trees, tmp_path_factory):
    out = tmp_path_factory.mktemp("final") / "M"
    args = ["casia2modma", *TINY, "--final", "--method", "align:mmd", "--out", str(out)]
    assert recipe_cli.main(args + _roots(tiny_trees)) == 0
    return out


def _rows(path):
    return list(csv.DictReader(path.open()))


@pytest.mark.parametrize("fold,seed", [(0, 0), (1, 0), (1, 1)])
def test_a_fold_model_predicts_exactly_what_the_run_scored_on_its_test_files(cv_run, fold, seed, tmp_path):
    (model,) = (cv_run / "models").glob(f"*/fold{fold}-seed{seed}")
    scored = _rows(model / "scored.csv")
    run = json.loads(next((cv_run / "runs").glob(f"*/fold{fold}-seed{seed}.json")).read_text())
    assert run["trained"].startswith("vmapped")  # replica `seed` exported from the stacked model
    assert sorted({r["subject"] for r in scored}) == sorted(run["test_subjects"]["ids"])  # the fold's test subjects
    assert sum(int(r["n_windows"]) for r in scored) == run["n_test"]  # every test window, once
    manifest = tmp_path / "test-files.csv"
    manifest.write_text("".join(f"{r['path']},{r['subject']}\n" for r in scored))
    preds = tmp_path / "preds.csv"
    assert cli_main(["-q", "predict", str(model), str(manifest), "--out", str(preds), "--device", "cpu"]) == 0
    predicted = _rows(preds)
    assert [r["path"] for r in predicted] == [r["path"] for r in scored]
    assert [r["n_windows"] for r in predicted] == [r["n_windows"] for r in scored]  # the same windows
    for column in ("p_HC", "p_MDD"):
        diff = max(abs(float(a[column]) - float(b[column])) for a, b in zip(predicted, scored))
        assert diff <= 1e-6, (column, diff)
    # and the subjects aggregate to the run's own subject-level predictions (majority vote)
    subjects = {r["subject"]: r["class"] for r in _rows(preds.with_suffix(".subjects.csv"))}
    classes = json.loads((model / "model.json").read_text())["classes"]
    ts = run["test_subjects"]
    assert subjects == {s: classes[p] for s, p in zip(ts["ids"], ts["pred"])}


def test_the_final_model_trains_on_every_subject_and_says_no_test_fold_exists(final_model, tiny_trees):
    info = json.loads((final_model / "model.json").read_text())
    modma = load_corpus("modma", tiny_trees["modma"])
    assert info["training"]["target"]["labelled_subjects"] == len(modma.subjects())
    assert info["training"]["target"]["validation_subjects"] == 0
    assert info["training"]["epochs"] == {"train.epochs": 3, "train.pretrain_epochs": 2}
    assert info["training"]["budget"].startswith("fixed")
    assert info["training"]["test"].startswith("none")
    assert info["method"]["label"] == "align:mmd" and info["classes"] == ["HC", "MDD"]
    assert info["backbone"]["name"] == "tim" and info["features"]["segment_seconds"] == 3.0
    assert str(tiny_trees["modma"]) not in json.dumps(info["training"])  # counts, no paths


def test_predict_on_a_folder_with_the_final_model(final_model, tiny_trees, tmp_path, capsys):
    out = tmp_path / "p.csv"
    assert cli_main(["-q", "predict", str(final_model), str(tiny_trees["modma"]), "--out", str(out)]) == 0
    rows = _rows(out)
    err = capsys.readouterr().err
    n_files = sum(1 for p in tiny_trees["modma"].rglob("*.wav"))
    assert f"{len(rows)} of {n_files} files predicted" in err
    assert len(rows) >= n_files - 10 and all(int(r["n_windows"]) >= 1 for r in rows)


def test_final_with_from_takes_the_median_best_epoch_of_the_cv_run(cv_run, tiny_trees, tmp_path):
    out = tmp_path / "M"
    args = ["casia2modma", *TINY, "--final", "--method", "align:mmd", "--from", str(cv_run), "--out", str(out)]
    assert recipe_cli.main(args + _roots(tiny_trees)) == 0
    info = json.loads((out / "model.json").read_text())
    best = {"train.epochs": [], "train.pretrain_epochs": []}
    for file in (cv_run / "runs").glob("*/fold*-seed*.json"):
        for key, scores in json.loads(file.read_text())["history"].items():
            if key.endswith("/val/score"):
                knob = "train.pretrain_epochs" if key.startswith("pretrain/") else "train.epochs"
                best[knob].append(int(np.nanargmax(scores)) + 1)
    want = {k: int(round(statistics.median(v))) for k, v in best.items() if v}
    assert want and info["training"]["epochs"] == {"train.epochs": 3, "train.pretrain_epochs": 2, **want}
    assert str(cv_run) in info["training"]["budget"]


def test_exported_networks_give_the_eager_probabilities(final_model, tiny_trees, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    model = load_model(final_model, device="cpu")
    corpus = load_corpus("modma", tiny_trees["modma"])
    segs, _ = extract_windows(corpus, model.features, device="cpu")  # real inputs: the corpus' own windows
    x = segs.x[:37]
    # an exported network computes in float32, whatever precision the folder predicts in
    eager = predict_proba(model.method.target_logits, model.window_inputs(x)).numpy()
    assert cli_main(["export", str(final_model), "--format", "torchscript", "--out", str(tmp_path / "m.pt")]) == 0
    scripted = torch.jit.load(str(tmp_path / "m.pt"))
    with torch.no_grad():
        assert np.abs(scripted(x).numpy() - eager).max() <= 1e-5
    assert cli_main(["export", str(final_model), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"features": x.numpy()})  # 37 windows: the batch dimension is dynamic
    assert got.shape == eager.shape and np.abs(got - eager).max() <= 1e-5


def test_resume_over_a_truncated_checkpoint_retrains_that_unit(tiny_trees, tmp_path, caplog):
    out = tmp_path / "run"
    # --jobs 1: the resumed unit trains in this process, where caplog hears its warning
    args = ["casia2modma", *TINY, "--folds", "2", "--methods", "target_only", "--jobs", "1", "--out", str(out), *_roots(tiny_trees)]
    assert recipe_cli.main(args) == 0
    result = out / "runs" / "target_only" / "fold1-seed0.json"
    before = json.loads(result.read_text())
    result.unlink()  # fold 1 as if killed mid-training, its checkpoint cut short
    checkpoint = out / "checkpoints" / "target_only" / "fold1-seed0.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state": torch.zeros(1000)}, checkpoint)
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="domadapt"):
        assert recipe_cli.main(args + ["--resume"]) == 0
    warned = [r.getMessage() for r in caplog.records if "unreadable checkpoint" in r.getMessage()]
    assert len(warned) == 1 and str(checkpoint) in warned[0] and "trains again from its start" in warned[0]
    after = json.loads(result.read_text())
    assert after["metrics"] == before["metrics"] and after["history"] == before["history"]  # as a fresh unit
    assert not checkpoint.exists()


def test_final_arguments_are_one_line_errors(tmp_path, capsys):
    out = str(tmp_path / "M")
    assert recipe_cli.main(["casia2modma", "--final", "--out", out]) == 2
    assert "--final and --method go together" in capsys.readouterr().err
    assert recipe_cli.main(["casia2modma", "--final", "--method", "align:mmd", "--curve", "--out", out]) == 2
    assert "--curve belong to cross-validated runs" in capsys.readouterr().err
    assert recipe_cli.main(["casia2modma", "--final", "--method", "nope", "--out", out]) == 2
    assert "--methods nope: not in recipe casia2modma" in capsys.readouterr().err
