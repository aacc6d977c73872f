"""The sweep's selection objectives (:mod:`domadapt.selection`): every trial records every
objective, only the oracle reads target labels, the test fold is never read, DEV weights
the source loss toward the target, and a wrong name fails in one line."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from domadapt import cli, selection, sweep
from domadapt.errors import DomadaptError
from domadapt.corpora.arrays import rotated_moons, write_arrays
from domadapt.recipe_loader import load_recipe, recipes_dir
from domadapt.run import extract_domains, learners, load_corpora, unit
from domadapt.selection import ORACLE, deep_embedded_validation, objective_names
from domadapt.sweep import Param, SweepSetup, run_sweep

pytest.importorskip("optuna")
FEW_DECAYS = (1e-2, 1e-4)  # DEV's domain classifier picked from two penalties, not nine: seconds, not a minute


def test_a_wrong_objective_fails_in_one_line_naming_the_valid_ones(tmp_path, capsys):
    space = tmp_path / "space.toml"
    space.write_text('[params."train.lr"]\nchoices = [1e-3]\n')
    assert cli.main(["sweep", "moons", "--space", str(space), "--trials", "1", "--objective", "snd_typo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "snd_typo" in err
    assert all(name in err for name in ("target_val", "source_val", "dev", "im", "snd")), err


def test_a_grid_needs_choices_and_no_more_trials_than_settings(tmp_path):
    ranged = [Param("train.lr", 1e-4, 1e-2, log=True)]
    with pytest.raises(DomadaptError, match=r'--sampler grid needs choices .* \[params."train.lr"\] has low/high'):
        SweepSetup(tree={}, space=ranged, trials=1, out=tmp_path, method="x", overrides={}, sampler="grid")
    grid = [Param("train.lr", choices=(1e-3, 1e-2)), Param("train.align_weight", choices=(0.1, 1.0))]
    with pytest.raises(DomadaptError, match="--trials 5: the grid has 4 settings"):
        SweepSetup(tree={}, space=grid, trials=5, out=tmp_path, method="x", overrides={}, sampler="grid")


def _poisoned(with_target_subjects):
    """``with_target_subjects`` whose fold has every target label flipped and its test fold
    unreadable (NaN inputs, label -1): a search that read either would score otherwise."""

    def poisoned(data, n, *, seed):
        data = with_target_subjects(data, n, seed=seed)
        flip = lambda d: dataclasses.replace(d, y=(d.y + 1) % d.num_classes)  # noqa: E731
        test = data.target_test
        return dataclasses.replace(
            data, target_train=flip(data.target_train), target_val=flip(data.target_val),
            target_test=dataclasses.replace(test, x=torch.full_like(test.x, float("nan")), y=torch.full_like(test.y, -1)),
        )

    return poisoned


def _moons_sweep(root, out, objective):
    """A 2-setting grid sweep (a learning rate that barely trains, one that does) of unsupervised MMD on small rotated moons (3 epochs, 2 folds)."""
    tree = load_recipe(str(recipes_dir() / "moons.toml"))
    setup = SweepSetup(
        tree=tree, space=[Param("train.lr", choices=(1e-4, 3e-2))], trials=2, out=out, method="align:mmd",
        overrides={"train.epochs": 3, "train.val_fraction": 0.2, "eval.seeds": 1}, objective=objective, sampler="grid",
    )
    cfg = setup.config({})
    sources, target = load_corpora(cfg, source_roots=[root], target_root=root)
    domains = extract_domains(cfg, sources, target, device=torch.device("cpu"))
    return run_sweep(setup, domains, device=torch.device("cpu"), say=lambda *a, **k: None)


@pytest.mark.slow  # two sweeps of two 3-epoch trials on 2 folds
def test_only_the_oracle_reads_target_labels_and_no_trial_reads_the_test_fold(tmp_path, monkeypatch):
    root = tmp_path / "moons"
    root.mkdir()
    write_arrays(root / "arrays.npz", rotated_moons(seed=0, n=100))
    monkeypatch.setattr(selection, "DEV_DECAYS", FEW_DECAYS[:1])
    monkeypatch.setattr(sweep, "_plots", lambda study, folder: {})  # Optuna's figures: seconds of matplotlib, not checked here
    finals = []
    monkeypatch.setattr(sweep, "_final_run", lambda setup, trial, *a, **k: finals.append(trial.number) or {"uar": 0.5, "accuracy": 0.5})

    def no_test(replicas, data):
        raise AssertionError("a test fold was predicted during the search")

    monkeypatch.setattr(learners, "predict_test", no_test)
    clean = _moons_sweep(root, tmp_path / "clean", "snd")
    monkeypatch.setattr(unit, "with_target_subjects", _poisoned(unit.with_target_subjects))
    poisoned = _moons_sweep(root, tmp_path / "poisoned", "snd")

    for summary in (clean, poisoned):  # every trial records every objective, each a number here
        assert [sorted(t["objectives"]) for t in summary["trials"]] == [sorted(objective_names())] * 2
        assert all(v is not None for t in summary["trials"] for v in t["objectives"].values()), summary["trials"]
        assert summary["objective"] == "snd" and "ORACLE" in " ".join(sweep.picks_table(summary))
    label_free = [n for n in objective_names() if n != ORACLE]
    for a, b in zip(clean["trials"], poisoned["trials"]):
        assert a["params"] == b["params"]
        assert {n: a["objectives"][n] for n in label_free} == {n: b["objectives"][n] for n in label_free}
        # flipped binary labels: the oracle's UA becomes 1 - UA
        assert b["objectives"][ORACLE] == pytest.approx(1 - a["objectives"][ORACLE])
    assert {n: clean["picks"][n]["trial"] for n in label_free} == {n: poisoned["picks"][n]["trial"] for n in label_free}
    assert clean["picks"][ORACLE]["trial"] != poisoned["picks"][ORACLE]["trial"], "the oracle's pick follows the labels"
    assert finals == [clean["best"]["trial"], poisoned["best"]["trial"]], "one final run per sweep, after its search"
    recorded = json.loads((tmp_path / "clean" / "trials" / "0000" / "validation.json").read_text())
    assert recorded["objectives"] == clean["trials"][0]["objectives"]


def test_dev_weights_the_source_loss_toward_the_target(monkeypatch):
    """Source rows x ~ N(0, 1) where the model errs only for x > 1, a target around x = 1.5:
    DEV's risk (minus its score) must exceed the plain mean source loss; with the density
    ratio inverted it would fall below it. With no shift the 2-wide domain classifier
    answers a near-constant probability: the risk is the plain loss, not the control
    variate's division by a near-zero variance (a risk of 1920 before that case was handled)."""
    monkeypatch.setattr(selection, "DEV_DECAYS", FEW_DECAYS)
    rng = np.random.default_rng(0)
    source = torch.as_tensor(rng.normal(0, 1, size=(400, 2)), dtype=torch.float32)
    source_val = torch.as_tensor(rng.normal(0, 1, size=(300, 2)), dtype=torch.float32)
    target = torch.as_tensor(rng.normal(1.5, 0.5, size=(400, 2)), dtype=torch.float32)
    y = torch.zeros(300, dtype=torch.long)
    wrong = source_val[:, 0] > 1
    logits = torch.stack([torch.where(wrong, -2.0, 2.0), torch.where(wrong, 2.0, -2.0)], dim=1)
    plain = float(torch.nn.functional.cross_entropy(logits, y))
    risk = -deep_embedded_validation(source, source_val, target, logits, y, seed=0)
    assert risk > 1.5 * plain, (risk, plain)
    unshifted = torch.as_tensor(rng.normal(0, 1, size=(400, 2)), dtype=torch.float32)
    same = -deep_embedded_validation(source, source_val, unshifted, logits, y, seed=0)  # no shift: weights near 1
    assert same == pytest.approx(plain, rel=0.5), (same, plain)
