"""Adaptation adapts: on rotated two-moons (Ganin et al. 2016) through the engine, DANN, MMD
and MDD each beat source-only by a margin that a broken loss or an alignment term that never
reaches the optimiser would miss, and DANN's discriminator ends near chance, which a gradient
reversal of the wrong sign would not leave it (docs/adaptation-evidence.md shows each fail).

The rows go the recipe's way (``recipes/moons.toml``: the arrays corpus, the ``mlp``
backbone, ``build_fold``, ``make_method``, the engine's vmapped replicas and ``fit``) with a
batch of 64 instead of 32 to halve the steps. Accuracy is on a fresh draw of the rotated
target (the arrays file's ``test`` split), averaged over the seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from domadapt.config import MethodSpec
from domadapt.recipe_loader import build_config, load_recipe
from domadapt.corpora.arrays import rotated_moons, write_arrays
from domadapt.engine import build_replicas, fit
from domadapt.run import build_fold, extract_domains, load_corpora, make_method, split_target

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "moons.toml"
SEEDS = [0, 1, 2]
# 300 epochs of 5 batches of 64 per domain: about 1,500 steps per row, the least at which
# DANN's gain stood clear of its seeds' spread (fewer steps left it within it)
SETTINGS = {
    "train.epochs": 300, "train.batch_size": 64, "eval.splitter": "official", "eval.seeds": len(SEEDS),
}

pytestmark = pytest.mark.slow  # four rows of 1,500 steps x 3 vmapped seeds: about 40 s of CPU


def unsupervised(loss: str) -> MethodSpec:
    return MethodSpec("align", {"loss": loss, "use_target_labels": False})


def train_on_moons(
    root: Path, rows: list[MethodSpec], *, settings: dict = SETTINGS, seeds: list[int] = SEEDS
) -> dict[str, dict]:
    """Per row, ``{"accuracy": the target test accuracy of each seed, "history": each seed's
    training history}``."""
    write_arrays(root / "arrays.npz", rotated_moons(seed=0, test=300))
    cfg = build_config(load_recipe(str(RECIPE)), overrides=settings)
    sources, target = load_corpora(cfg, source_roots=[root], target_root=root)
    domains = extract_domains(cfg, sources, target, device=torch.device("cpu"))
    (fold,) = split_target(cfg, domains)
    data = build_fold(domains, fold, val_fraction=0.0, seed=cfg.eval.seed, device=torch.device("cpu"), standardize_features=False)
    trained = {}
    for spec in rows:
        replicas = build_replicas(lambda: make_method(cfg, domains, spec), seeds, data, "cpu", vmap=True)
        history = fit(replicas, cfg.train)
        probs = replicas.predict(replicas.method.target_logits, data.target_test.x)  # [K, N, C]
        hits = probs.argmax(-1) == data.target_test.y
        trained[spec.label] = {"accuracy": hits.float().mean(1).tolist(), "history": history}
    return trained


SOURCE_ONLY = MethodSpec("source_only", {})
#: row -> (the row, the least gain in mean target accuracy over source-only that passes).
#: Measured here (three seeds, these settings): source-only 0.71; DANN 0.783 (seeds 0.747-0.813),
#: MMD 0.834 (0.813-0.870), MDD with grl_scale 1 0.774 (0.690-0.827). MDD at its default
#: grl_scale 0.1 (0.631) and CORAL (0.708, seeds 0.630-0.827; normalize="none" 0.614) do not
#: beat source-only on the moons at this budget, so they are not asserted here.
ROWS = {
    "dann": (unsupervised("dann"), 0.03),
    "mmd": (unsupervised("mmd"), 0.06),
    "mdd": (MethodSpec("align", {"loss": "mdd", "use_target_labels": False, "loss_options": {"grl_scale": 1.0}}), 0.03),
}


#: DANN's discriminator at the end of training (balanced accuracy over the last 30 epochs,
#: mean of the seeds): the gradient reversal keeps it near chance (measured 0.547); with the
#: reversal's sign flipped the features help it (measured 0.765), while the accuracies above
#: still pass (flipped, DANN read 0.806 and MDD 0.807): this is the check of the sign.
DANN_DISC_ACC_MAX = 0.65


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, dict]:
    result = train_on_moons(tmp_path_factory.mktemp("moons"), [SOURCE_ONLY] + [row for row, _ in ROWS.values()])
    for label, run in result.items():  # the measured figures, with -s
        print(f"{label}: accuracy per seed {[round(a, 3) for a in run['accuracy']]}")
    return result


@pytest.mark.parametrize("loss", list(ROWS))
def test_alignment_beats_source_only_on_rotated_moons(trained, loss):
    row, margin = ROWS[loss]
    source_only = float(np.mean(trained["source_only"]["accuracy"]))
    aligned = float(np.mean(trained[row.label]["accuracy"]))
    assert aligned - source_only >= margin, (
        f"{row.label} {aligned:.3f} vs source_only {source_only:.3f} (per seed {trained[row.label]['accuracy']})"
    )


def test_dann_discriminator_ends_near_chance(trained):
    histories = trained["align:dann"]["history"]
    final = float(np.mean([np.mean(h["joint/train/disc_acc"][-30:]) for h in histories]))
    print(f"align:dann: discriminator accuracy over the last 30 epochs {final:.3f}")
    assert final <= DANN_DISC_ACC_MAX, f"DANN's discriminator separates the domains ({final:.3f}): is the GRL reversed?"
