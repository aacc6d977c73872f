"""Every shipped recipe, smoke-tested end to end on tiny corpora in the real layouts."""

import json
import shutil
import statistics

import pytest

from domadapt import recipe as recipe_cli
from domadapt.recipe_loader import build_config, list_recipes, load_recipe, recipe_protocols
from domadapt.corpora.synthetic import MARKER_NAME


pytestmark = pytest.mark.slow  # whole recipes, end to end (kept in CI)

TINY = ["--quick", "--quiet", "--set", "train.epochs=1", "--set", "train.pretrain_epochs=1", "--set", "train.batch_size=16"]
#: A tiny TIM-Net (dotted keys: a recipe's other backbone options stay). No check here depends
#: on the network's size; the wheel, GPU-check and Ctrl-C tests train the recipe's own.
TINY_TIM = {"model.backbone_options.filters": 8, "model.backbone_options.levels": 2}


def _set_args(overrides):
    return [arg for key, value in overrides.items() for arg in ("--set", f"{key}={value}")]


TINY_TIM_ARGS = _set_args(TINY_TIM)


def _tiny_tim(name):
    """TINY_TIM for a recipe whose every row trains its TIM-Net (not the moons' MLP, not the
    ablation's rows with backbones of their own), else no override."""
    cfg = build_config(load_recipe(name))
    own_backbones = any("backbone" in m.options or "backbone_options" in m.options for m in cfg.methods)
    return TINY_TIM if cfg.model.backbone == "tim" and not own_backbones else {}


def _roots_args(name, roots):
    cfg = build_config(load_recipe(name))
    args = []
    for source in cfg.data.source:
        args += ["--source-root", str(roots[source])]
    return args + ["--target-root", str(roots[cfg.data.target])]


@pytest.mark.parametrize("name", list_recipes())
def test_every_recipe_runs_on_real_layout_trees(name, tiny_trees, tmp_path, capsys):
    out = tmp_path / "out"
    extra = []
    if build_config(load_recipe(name)).features.kind == "ssl":  # no real checkpoint here: a tiny random one
        from domadapt.features.ssl import save_random_checkpoint

        checkpoint = tmp_path / "tiny.pt"
        save_random_checkpoint(checkpoint, builder="wavlm_model")
        extra = ["--set", f'features.checkpoint="{checkpoint}"', "--set", "features.layer=2"]
    tiny_tim = _tiny_tim(name)
    extra += _set_args(tiny_tim)
    assert recipe_cli.main([name, *TINY, "--out", str(out), *_roots_args(name, tiny_trees), *extra]) == 0
    protocols = recipe_protocols(load_recipe(name))
    if protocols:  # one run per protocol in its folder, one merged table on top
        merged = json.loads((out / "results.json").read_text())
        n_methods = len(build_config(load_recipe(name), quick=True).methods)
        assert [r["method"].split("/")[0] for r in merged["rows"]] == [f"{name} [{p}]" for p in protocols for _ in range(n_methods)]
        printed = capsys.readouterr().out
        for protocol in protocols:
            _check_run(name, tiny_trees, out / recipe_cli._slug(protocol), printed, protocol=protocol, overrides=tiny_tim)
        assert "speakers on both sides" in printed.split(f"{name}: {len(protocols)} protocols")[-1]
        return
    _check_run(name, tiny_trees, out, capsys.readouterr().out, overrides=tiny_tim)


def _check_run(name, trees, out, printed, protocol=None, overrides=None):
    results = json.loads((out / "results.json").read_text())
    cfg = build_config(load_recipe(name), quick=True, protocol=protocol, overrides=overrides)
    assert results["recipe"] == cfg.name
    assert results["data"] == "real"
    assert [r["method"] for r in results["rows"]] == [m.label for m in cfg.methods]
    for spec, row in zip(cfg.methods, results["rows"]):
        # the row summarises exactly the per-run files of its runs (the "all" point of a curve)
        files = sorted((out / "runs" / spec.key(cfg.model)).glob("fold*-seed*.json"))
        per_run = [json.loads(p.read_text())["metrics"] for p in files if "-n" not in p.stem]
        for key in ("accuracy", "uar", "macro_f1", "subject_accuracy"):
            summary = row["metrics"][key]
            if not cfg.eval.splitter.startswith("leave_one_"):  # those have a fold per speaker / session
                assert len(summary["runs"]) == cfg.eval.folds * cfg.eval.seeds
            assert sorted(summary["runs"]) == pytest.approx(sorted(r[key] for r in per_run)), (spec.label, key)
            assert summary["mean"] == pytest.approx(statistics.fmean(summary["runs"]))
            assert all(0.0 <= v <= 1.0 for v in summary["runs"])
    for fname in ("results.md", "results.csv", "config.json"):
        assert (out / fname).is_file()
    if cfg.data.target != "arrays_target":  # vectors have no audio for eGeMAPS functionals
        assert any(r["method"].startswith("baseline:") for r in results["rows"])  # the classical reference row
    if cfg.eval.target_subjects:  # a learning-curve recipe: every method at every point
        curve = results["curve"]
        assert curve["points"] == [str(p) for p in cfg.eval.target_subjects]
        assert [r["method"] for r in curve["rows"]] == [m.label for m in cfg.methods]
        subjects = [curve["rows"][0]["points"][p]["n_train_subjects"] for p in curve["points"]]
        assert subjects == sorted(subjects) and subjects[0] <= int(curve["points"][0])  # the tiny trees have few subjects
        assert (out / "plots" / "learning-curve.png").is_file()
    deep = [m for m in cfg.methods if not m.label.startswith("baseline:")]
    assert len(list((out / "plots").glob("*-confusion.png"))) == len(cfg.methods)
    # what a trained network has; the feature-space picture shows source against target
    for kind in ("curves", "features") if cfg.data.source else ("curves",):
        assert len(list((out / "plots").glob(f"*-{kind}.png"))) == len(deep), kind
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))
    assert "SYNTHETIC" not in printed and name in printed


def test_casia2modma_main_methods_are_the_issue_rows():
    cfg = build_config(load_recipe("casia2modma"), quick=True)
    assert [m.label for m in cfg.methods] == [
        "baseline:egemaps", "target_only", "pretrain_freeze", "pretrain_finetune", "joint", "align:mmd",
        "align:coral", "align:dann", "align:sinkhorn", "multitrain_ae", "ddg",
    ]


def test_no_paths_means_synthetic_and_says_so(tiny_trees, tmp_path, monkeypatch, capsys):
    # The embedded default data, shrunk: synthetic_root hands out marked tiny copies.
    marked = {}
    for kind, root in tiny_trees.items():
        copy = tmp_path / "synthetic" / root.name
        shutil.copytree(root, copy, dirs_exist_ok=True)  # arrays and arrays_target share one root
        (copy / MARKER_NAME).write_text('{"kind": "%s"}\n' % kind)
        marked[kind] = copy
    monkeypatch.setattr("domadapt.run.corpora.synthetic_root", lambda kind, **kw: marked[kind])
    out = tmp_path / "out"
    args = ["casia2modma", *TINY, *TINY_TIM_ARGS, "--out", str(out), "--methods", "target_only,align:mmd"]
    assert recipe_cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC stand-in corpora" in printed.splitlines()[1]
    results = json.loads((out / "results.json").read_text())
    assert results["data"] == "synthetic"
    assert "SYNTHETIC" in (out / "results.md").read_text()
    assert [r["method"] for r in results["rows"]] == ["target_only", "align:mmd"]


@pytest.mark.parametrize("name", ["emodb2casia", "iemocap2casia", "timnet_paper_emodb"])
def test_new_emotion_recipes_run_on_the_synthetic_stand_ins(name, tiny_trees, tmp_path, monkeypatch, capsys):
    # No data paths: the embedded stand-ins (shrunk copies, marked synthetic as the generator marks them).
    marked = {}
    for kind in ("casia", "iemocap", "emodb"):
        copy = tmp_path / "synthetic" / tiny_trees[kind].name
        shutil.copytree(tiny_trees[kind], copy)
        (copy / MARKER_NAME).write_text('{"kind": "%s"}\n' % kind)
        marked[kind] = copy
    monkeypatch.setattr("domadapt.run.corpora.synthetic_root", lambda kind, **kw: marked[kind])
    out = tmp_path / "out"
    assert recipe_cli.main([name, *TINY, *TINY_TIM_ARGS, "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["data"] == "synthetic"
    printed = capsys.readouterr().out
    assert "SYNTHETIC stand-in corpora" in printed
    cfg = build_config(load_recipe(name), quick=True, protocol=(recipe_protocols(load_recipe(name)) or [None])[0])
    if cfg.data.label_map:  # closed set: one shared head on the mapped classes
        run = json.loads(next((out / "runs").rglob("*.json")).read_text())
        shared = sorted(set(next(iter(cfg.data.label_map.values())).values()))
        assert len(run["metrics"]["confusion"]) == len(shared)
        assert [r["method"] for r in results["rows"]] == [m.label for m in cfg.methods]
    else:
        assert "subjects overlap" in (out / "results.md").read_text()


def test_resume_reuses_finished_runs_and_refuses_a_changed_config(tiny_trees, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["casia2modma", *TINY, *TINY_TIM_ARGS, "--out", str(out), "--methods", "target_only", *_roots_args("casia2modma", tiny_trees)]
    assert recipe_cli.main(args) == 0
    first = json.loads((out / "results.json").read_text())
    run_file = next((out / "runs" / "target_only").glob("*.json"))
    stamp = run_file.stat().st_mtime_ns
    assert recipe_cli.main(args + ["--resume"]) == 0
    assert run_file.stat().st_mtime_ns == stamp, "a finished run is never recomputed"
    assert json.loads((out / "results.json").read_text())["rows"] == first["rows"]
    assert recipe_cli.main(args + ["--resume", "--set", "train.lr=0.5"]) == 2
    assert "different configuration" in capsys.readouterr().err


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert recipe_cli.main(["casia2modma", "--quick", "--methods", "nope", "--out", str(tmp_path)]) == 2
    assert "--methods nope: not in recipe casia2modma" in capsys.readouterr().err
    assert recipe_cli.main(["casia2modma", "--set", "train.epoch=3", "--out", str(tmp_path)]) == 2
    assert "unknown key(s) epoch" in capsys.readouterr().err
    assert recipe_cli.main(["nope"]) == 2
    assert "known recipes" in capsys.readouterr().err
    missing = tmp_path / "no-such-modma"
    assert recipe_cli.main(["casia2modma", "--quick", "--target-root", str(missing), "--out", str(tmp_path / "o")]) == 2
    assert str(missing) in capsys.readouterr().err


def test_ablation_rows_carry_their_backbone(tiny_trees, tmp_path):
    out = tmp_path / "out"
    args = ["tim_ablation", *TINY, "--out", str(out), *_roots_args("tim_ablation", tiny_trees)]
    args += ["--methods", "Vanilla+Vanilla,Vanilla+Vanilla (residual add),AT+DIFF"]
    assert recipe_cli.main(args) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [(r["method"], r["backbone"]) for r in rows] == [
        ("Vanilla+Vanilla", "tim"),
        ("AT+DIFF", "at_delta_tim"),
        ("Vanilla+Vanilla (residual add)", "tim[residual=add]"),
    ]  # recipe order, whatever the order of --methods
    # each row trained its own model: distinct run folders
    assert len(list((out / "runs").iterdir())) == 3


def test_same_seed_same_results_twice(tiny_trees, tmp_path):
    rows = []
    for run in ("a", "b"):
        out = tmp_path / run
        args = ["casia2modma", *TINY, *TINY_TIM_ARGS, "--out", str(out), "--methods", "target_only,align:dann"]
        assert recipe_cli.main(args + _roots_args("casia2modma", tiny_trees)) == 0
        rows.append(json.loads((out / "results.json").read_text())["rows"])
    assert rows[0] == rows[1]


def test_leakage_guard_refuses_segment_splits_unless_asked(tiny_trees, tmp_path, capsys):
    base = ["casia2modma", *TINY, *TINY_TIM_ARGS, "--methods", "target_only", *_roots_args("casia2modma", tiny_trees)]
    refused = base + ["--out", str(tmp_path / "a"), "--set", 'eval.splitter="utterance_kfold"']
    assert recipe_cli.main(refused) == 2
    assert "allow_subject_overlap" in capsys.readouterr().err
    allowed = base + ["--out", str(tmp_path / "b"), "--set", 'eval.splitter="utterance_kfold"',
                      "--set", "eval.allow_subject_overlap=true"]
    assert recipe_cli.main(allowed) == 0
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert results["subject_overlap"] is True
    assert "subjects overlap between train and test" in (tmp_path / "b" / "results.md").read_text()


def test_seeds_train_vmapped_where_the_method_allows_and_equal_sequential_runs(tiny_trees, tmp_path, capsys):
    no_dropout = ["--set", "model.dropout=0", "--set", "model.backbone_options={dropout=0.0}"]
    float32 = ["--set", "train.amp=false"]  # vmapped seeds are float32; so must the sequential ones be
    base = ["casia2modma", *TINY, "--seeds", "2", "--folds", "2", *no_dropout, *float32, *TINY_TIM_ARGS, *_roots_args("casia2modma", tiny_trees)]
    vm = tmp_path / "vmapped"
    args = base + ["--out", str(vm), "--methods", "target_only,align:dann,multitrain_ae"]
    assert recipe_cli.main([a for a in args if a != "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "target_only: 2 seeds in one vmapped pass" in printed
    assert "align-dann: 2 seeds in one vmapped pass" in printed
    assert "multitrain_ae: 2 seeds one after another: multitrain_ae rebuilds its feature banks" in printed
    runs = {p.name: json.loads(p.read_text()) for p in (vm / "runs" / "target_only").glob("*.json")}
    assert sorted(runs) == ["fold0-seed0.json", "fold0-seed1.json", "fold1-seed0.json", "fold1-seed1.json"]
    assert {r["trained"] for r in runs.values()} == {"vmapped (2 seeds in one pass)"}
    assert {p.name for p in (vm / "tensorboard" / "target_only").iterdir()} == {n[:-5] for n in runs}
    assert not list((vm / "checkpoints").rglob("*.pt"))  # removed once the results are written
    mt = json.loads((vm / "runs" / "multitrain_ae" / "fold0-seed1.json").read_text())
    assert mt["trained"] == "eager"

    seq = tmp_path / "sequential"
    assert recipe_cli.main(base + ["--out", str(seq), "--methods", "target_only", "--sequential-seeds"]) == 0
    for name, vmapped in runs.items():
        sequential = json.loads((seq / "runs" / "target_only" / name).read_text())
        assert sequential["trained"] == "eager"
        assert sequential["metrics"] == vmapped["metrics"]
        for key, values in sequential["history"].items():
            assert vmapped["history"][key] == pytest.approx(values, abs=1e-4), key

    # A lost result of a vmapped group: --resume retrains the group from scratch (its
    # checkpoint is gone) and rewrites only the missing seed, identical to before.
    lost = vm / "runs" / "target_only" / "fold1-seed0.json"
    before = json.loads(lost.read_text())
    kept = (vm / "runs" / "target_only" / "fold1-seed1.json").stat().st_mtime_ns
    lost.unlink()
    args = base + ["--out", str(vm), "--methods", "target_only,align:dann,multitrain_ae", "--resume"]
    assert recipe_cli.main(args) == 0
    assert json.loads(lost.read_text()) == before
    assert (vm / "runs" / "target_only" / "fold1-seed1.json").stat().st_mtime_ns == kept


def test_threads_option(tiny_trees, tmp_path, capsys):
    import torch

    threads = torch.get_num_threads()
    try:
        base = ["casia2modma", *TINY, *TINY_TIM_ARGS, "--methods", "target_only", "--folds", "2", *_roots_args("casia2modma", tiny_trees)]
        with pytest.raises(SystemExit) as exit_:  # a usage error, from the parser
            recipe_cli.main(base + ["--out", str(tmp_path / "a"), "--threads", "0"])
        assert exit_.value.code == 2
        assert "argument --threads: '0': expected a positive whole number" in capsys.readouterr().err
        wanted = 2 if threads != 2 else 1  # the suite pins 1 thread: ask for another count
        assert recipe_cli.main(base + ["--out", str(tmp_path / "b"), "--threads", str(wanted)]) == 0
        assert torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(threads)


def test_baseline_row_is_scored_on_the_deep_rows_test_windows(tiny_trees, tmp_path):
    out = tmp_path / "out"
    args = ["casia2modma", *TINY, *TINY_TIM_ARGS, "--out", str(out), *_roots_args("casia2modma", tiny_trees), "--seeds", "2"]
    assert recipe_cli.main(args + ["--methods", "baseline:egemaps,target_only"]) == 0
    for fold in (0, 1):
        base = json.loads((out / "runs" / "baseline-egemaps" / f"fold{fold}-seed0.json").read_text())
        deep = json.loads((out / "runs" / "target_only" / f"fold{fold}-seed0.json").read_text())
        assert (base["n_train"], base["n_val"], base["n_test"]) == (deep["n_train"], deep["n_val"], deep["n_test"])
        assert base["trained"] == "scikit-learn" and base["history"] == {}
        ua_by_c = base["selection"]["ua_by_c"]
        assert set(ua_by_c) == {"0.001", "0.01", "0.1", "1.0", "10.0"}
        best = max(ua_by_c.values())  # C chosen by validation UA, ties to the smaller C
        assert base["selection"]["chosen_c"] == min(float(c) for c, ua in ua_by_c.items() if ua == best)
    rows = {r["method"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert rows["baseline:egemaps"]["backbone"] == "logreg"
    assert len(rows["baseline:egemaps"]["metrics"]["uar"]["runs"]) == 4


def _hparams_sessions(tensorboard_dir):
    """Each run folder's HParams-tab row: {folder: (hparams, {metric tag: value})}."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2

    sessions = {}
    for events in sorted(tensorboard_dir.rglob("events.out.tfevents.*")):
        hparams, metrics = sessions.setdefault(events.parent.relative_to(tensorboard_dir).as_posix(), ({}, {}))
        for event in EventFileLoader(str(events)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    if data.HasField("session_start_info"):
                        for key, v in data.session_start_info.hparams.items():
                            hparams[key] = v.string_value if v.HasField("string_value") else v.number_value
                elif value.tag.startswith("hparam/"):
                    metrics[value.tag] = value.tensor.float_val[0] if value.tensor.float_val else value.simple_value
    return sessions


def test_every_run_has_a_row_in_the_hparams_tab(tiny_trees, tmp_path):
    out = tmp_path / "out"
    args = ["casia2modma", *TINY, *TINY_TIM_ARGS, "--out", str(out), "--methods", "target_only,align:mmd", "--set", "train.lr=2e-3"]
    assert recipe_cli.main(args + _roots_args("casia2modma", tiny_trees)) == 0
    sessions = _hparams_sessions(out / "tensorboard")
    runs = sorted((out / "runs").rglob("*.json"))
    assert len(runs) == 2 * 2  # two methods x two folds (--quick)
    for path in runs:
        result = json.loads(path.read_text())
        hparams, metrics = sessions[f"{path.parent.name}/{path.stem}"]
        assert (hparams["method"], hparams["fold"], hparams["seed"]) == (result["method"], result["fold"], result["seed"])
        assert hparams["lr"] == pytest.approx(2e-3) and hparams["epochs"] == 1
        assert metrics["hparam/test_uar"] == pytest.approx(result["metrics"]["uar"])
        val = max(result["history"][f"{list(result['history'])[-1].split('/')[0]}/val/uar"])
        assert metrics["hparam/val_uar"] == pytest.approx(val)
    assert sessions["align-mmd/fold0-seed0"][0]["option.loss"] == "mmd"  # the method's own options


@pytest.mark.parametrize("jobs", ["1", "2"], ids=["in-process", "two-workers"])
def test_ctrl_c_keeps_finished_runs_and_prints_the_resume_command(tiny_trees, tmp_path, jobs):
    import os
    import shlex
    import signal
    import subprocess
    import sys
    import threading
    import time
    from pathlib import Path

    out = tmp_path / "out"
    argv = ["casia2modma", "--quick", "--methods", "target_only", "--seeds", "3", "--sequential-seeds",
            "--set", "train.epochs=8", "--set", "train.batch_size=16", "--threads", "1", "--jobs", jobs,
            "--out", str(out), *_roots_args("casia2modma", tiny_trees)]
    root = Path(recipe_cli.__file__).resolve().parents[1]  # this checkout's domadapt
    # a shell's background job (CI under nohup, `cmd &`) ignores SIGINT, and a child inherits
    # that: give the run the default action back, as a terminal's Ctrl-C finds it
    proc = subprocess.Popen([sys.executable, "-m", "domadapt.recipe", *argv], cwd=root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(root), "PYTHONUNBUFFERED": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    streams: dict[str, list[str]] = {"out": [], "err": []}
    readers = [threading.Thread(target=lambda f=f, k=k: streams[k].extend(iter(f.readline, "")), daemon=True)
               for k, f in (("out", proc.stdout), ("err", proc.stderr))]
    for reader in readers:
        reader.start()
    # interrupt once the driver has said a unit finished (a worker writes its run's JSON
    # before the driver prints the line, so waiting on the file alone races with the line)
    deadline = time.monotonic() + 240
    while not any("1/6 units" in line for line in list(streams["out"])) and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    for reader in readers:
        reader.join(timeout=30)
    stdout, stderr = "".join(streams["out"]), "".join(streams["err"])
    assert proc.returncode == 130, stderr[-2000:]
    last = stderr.strip().splitlines()[-1]
    assert "Traceback" not in stderr
    finished = sorted((out / "runs").rglob("*.json"))
    assert 1 <= len(finished) < 2 * 3 and not (out / "results.json").exists()
    assert last.startswith(f"interrupted: {len(finished)} finished run")
    assert f"kept in {out}/runs" in last
    assert "units (method x fold x seeds): 1/6 units" in stdout  # the unit lines of a log (no terminal)
    command = shlex.split(last.split("; resume with: ")[1])
    assert command[:3] == ["python", "-m", "domadapt.recipe"] and command[-3:] == ["--out", str(out), "--resume"]
    stamps = {p: p.stat().st_mtime_ns for p in finished}
    assert recipe_cli.main(command[3:]) == 0  # the printed command, as it is, finishes the run
    assert json.loads((out / "results.json").read_text())["rows"][0]["metrics"]["uar"]["runs"].__len__() == 2 * 3
    assert {p: p.stat().st_mtime_ns for p in finished} == stamps  # the kept runs were not recomputed


@pytest.mark.slow  # two runs of three pre-training rows
def test_shared_source_pretraining_changes_no_number(tiny_trees, tmp_path):
    """pretrain_freeze, pretrain_finetune and ddg start every fold from the same source
    pre-training: the run trains it once and the others load it, and every run's JSON is
    the one a run that trains it in every unit writes."""
    base = ["casia2modma", *TINY, "--folds", "2", "--methods", "pretrain_freeze,pretrain_finetune,ddg", "--jobs", "1",
            *TINY_TIM_ARGS, *_roots_args("casia2modma", tiny_trees)]
    assert recipe_cli.main(base + ["--out", str(tmp_path / "shared")]) == 0
    assert recipe_cli.main(base + ["--out", str(tmp_path / "own"), "--set", "train.share_source_stages=false"]) == 0
    assert len(list((tmp_path / "shared" / "shared-stages").glob("*.pt"))) == 1  # one seed: one pre-training
    assert not (tmp_path / "own" / "shared-stages").exists()
    shared = sorted((tmp_path / "shared" / "runs").rglob("*.json"))
    assert len(shared) == 6
    for path in shared:
        mine = json.loads(path.read_text())
        theirs = json.loads((tmp_path / "own" / path.relative_to(tmp_path / "shared")).read_text())
        assert mine["metrics"] == theirs["metrics"] and mine["history"] == theirs["history"], path.name
        assert mine["domain_gap"] == theirs["domain_gap"], path.name


@pytest.mark.slow  # three runs of two rows
def test_rows_of_a_fold_share_the_gap_before_training_of_their_starting_model(tiny_trees, tmp_path):
    """target_only and joint start from the same model (same seed, same modules): the first
    unit of a fold measures the gap before training and the other loads it; DANN's
    discriminator makes another starting point. Each row's gaps are those it measures alone."""
    base = ["casia2modma", *TINY, "--folds", "2", "--jobs", "1", *TINY_TIM_ARGS, *_roots_args("casia2modma", tiny_trees)]
    both = tmp_path / "both"
    assert recipe_cli.main(base + ["--methods", "target_only,joint,align:dann", "--out", str(both)]) == 0
    assert len(list((both / "shared-gaps").glob("*.pt"))) == 2 * 2  # per fold: one shared, DANN's own
    for row in ("joint", "align-dann"):
        alone = tmp_path / row
        assert recipe_cli.main(base + ["--methods", row.replace("align-", "align:"), "--out", str(alone)]) == 0
        for fold in (0, 1):
            read = lambda d, r: json.loads((d / "runs" / r / f"fold{fold}-seed0.json").read_text())["domain_gap"]  # noqa: E731
            assert read(both, row) == read(alone, row)
            if row == "joint":
                assert read(both, "target_only")["before"] == read(both, "joint")["before"]
