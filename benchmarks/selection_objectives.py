"""How close does each unsupervised model-selection objective come to the oracle's pick?

    python benchmarks/selection_objectives.py [--quick] [--seeds N] [--epochs E] [--losses dann,mmd]
                                              [--device auto|cpu|cuda] [--out DIR]

On rotated two-moons (``recipes/moons.toml``: the arrays corpus, the ``mlp`` backbone, no
target label read in training) ``domadapt sweep`` tries every setting of a grid of the
alignment weight (``train.align_weight``) x the learning rate (``train.lr``) for each
unsupervised alignment row (``align:dann``, ``align:mmd``), with one target validation
subject of the five each fold trains on held out (``train.val_fraction = 0.2``: the oracle's
labels, and the rows' epoch selection by information maximisation on its inputs). Every
trial records every objective (:mod:`domadapt.selection`); each objective's pick is then
run on the test folds (``--test-every-pick``), and so is the recipe's default setting.
Repeated for ``--seeds`` values of ``eval.seed`` (the validation subject, the initialisation
and the batch order change; the moons do not).

Printed per row: each objective's pick's target test accuracy (mean +- sample std over the
seeds), its difference from the oracle pick's (mean, and the seeds' min and max), how often
it picked the oracle's setting, and the settings it picked. ``--quick``: 2 seeds, 30
epochs, a 2 x 2 grid. The full run: 3 seeds, 100 epochs, a 4 x 3 grid. The last line,
``selection_best_label_free_regret_lower_is_better ratio=R``, is the smallest mean accuracy
lost to the oracle pick by a label-free objective, averaged over the rows (for run_all.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, uninstalled

from domadapt.selection import ORACLE, objective_names  # noqa: E402

NAME = "selection_best_label_free_regret_lower_is_better"  # the ratio line run_all.py reads
RECIPE = ROOT / "recipes" / "moons.toml"
GRID = {"train.align_weight": [0.1, 0.3, 1.0, 3.0], "train.lr": [1e-3, 3e-3, 1e-2]}
QUICK_GRID = {"train.align_weight": [0.1, 1.0], "train.lr": [1e-3, 1e-2]}
DEFAULT = "default"  # the recipe's own setting (align_weight: the loss's default_weight, 1; lr 1e-2)


def sweep_one(loss: str, seed: int, *, grid: dict, epochs: int, out: Path, device) -> dict[str, dict]:
    """One grid sweep of ``align:LOSS`` at ``eval.seed = seed``: per objective (and the
    default setting) the test accuracy of its pick and the pick's setting."""
    from domadapt.executors import LocalExecutor
    from domadapt.registries import LOSSES
    from domadapt.recipe_loader import load_recipe
    from domadapt.run import extract_domains, load_corpora, run_experiment
    from domadapt.sweep import Param, SweepSetup, run_sweep

    tree = load_recipe(str(RECIPE))
    overrides = {"train.val_fraction": 0.2, "train.epochs": epochs, "eval.seeds": 1, "eval.seed": seed}
    space = [Param(key, choices=tuple(values)) for key, values in grid.items()]
    setup = SweepSetup(
        tree=tree, space=space, trials=int(np.prod([len(v) for v in grid.values()])), out=out, method=f"align:{loss}",
        overrides=overrides, objective=ORACLE, sampler="grid", test_every_pick=True,
    )
    cfg = setup.config({})
    sources, target = load_corpora(cfg, source_roots=[], target_root=None)
    domains = extract_domains(cfg, sources, target, device=device)
    quiet = lambda *a, **k: None  # noqa: E731
    summary = run_sweep(setup, domains, device=device, executor=LocalExecutor(), say=quiet)
    picked = {
        name: {"accuracy": pick["test"]["accuracy"], "uar": pick["test"]["uar"], "params": pick["params"], "trial": pick["trial"]}
        for name, pick in summary["picks"].items() if pick is not None
    }
    default = run_experiment(cfg, domains, out_dir=out / DEFAULT, device=device, say=quiet)
    (row,) = default["rows"]
    weight = cfg.train.align_weight if cfg.train.align_weight is not None else LOSSES.get(loss).default_weight
    picked[DEFAULT] = {
        "accuracy": row["metrics"]["accuracy"]["mean"], "uar": row["metrics"]["uar"]["mean"],
        "params": {"train.align_weight": weight, "train.lr": cfg.train.lr},
    }
    return picked


def table(loss: str, by_seed: list[dict[str, dict]]) -> list[str]:
    """The markdown table of one row over the seeds."""
    oracle = np.array([s[ORACLE]["accuracy"] for s in by_seed])
    lines = [
        f"**align:{loss}** ({len(by_seed)} seeds; target test accuracy of each objective's pick)",
        "",
        "| objective | test accuracy | − oracle pick: mean [seeds' min, max] | 95 % paired t-interval | oracle's setting | settings picked (align_weight, lr) |",
        "|---|---|---|---|---|---|",
    ]
    for name in [*objective_names(), DEFAULT]:
        if not all(name in s for s in by_seed):
            lines.append(f"| {name} | not available | | | | |")
            continue
        acc = np.array([s[name]["accuracy"] for s in by_seed])
        diff = acc - oracle
        same = sum(s[name]["params"] == s[ORACLE]["params"] for s in by_seed)
        settings = "; ".join(", ".join(f"{s[name]['params'][k]:g}" for k in GRID) for s in by_seed)
        label = f"{name} (ORACLE: target labels)" if name == ORACLE else name
        lines.append(
            f"| {label} | {acc.mean():.3f} ± {acc.std(ddof=1) if len(acc) > 1 else 0:.3f} | "
            f"{diff.mean():+.3f} [{diff.min():+.3f}, {diff.max():+.3f}] | {paired_interval(diff)} | {same}/{len(by_seed)} | {settings} |"
        )
    return lines


def paired_interval(diff: np.ndarray) -> str:
    """The 95 % t-interval of the mean of the per-seed differences."""
    from scipy import stats

    if len(diff) < 2 or not diff.any():
        return "–"
    half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
    return f"[{diff.mean() - half:+.3f}, {diff.mean() + half:+.3f}]"


def measure(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, 30 epochs, a 2 x 2 grid")
    parser.add_argument("--seeds", type=int, help="eval.seed values 0..N-1 (default 3; --quick 2)")
    parser.add_argument("--epochs", type=int, help="training epochs (default 100; --quick 30)")
    parser.add_argument("--losses", default="dann,mmd", help="comma-separated alignment losses")
    parser.add_argument("--device", default="cpu", help="auto | cpu | cuda")
    parser.add_argument("--out", type=Path, help="keep the sweeps here (default: a temporary folder)")
    parser.add_argument("--table", type=Path, metavar="JSON", help="only print the tables of a saved OUT/selection_objectives.json")
    args = parser.parse_args(argv)
    if args.table:
        for loss, by_seed in json.loads(args.table.read_text()).items():
            print("\n".join(["", *table(loss, by_seed), ""]))
        return float("nan")

    import torch

    from domadapt.device import resolve_device

    torch.set_num_threads(1)
    device = resolve_device(args.device)
    seeds = args.seeds or (2 if args.quick else 3)
    epochs = args.epochs or (30 if args.quick else 100)
    grid = QUICK_GRID if args.quick else GRID
    losses = [x.strip() for x in args.losses.split(",") if x.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        results, regrets = {}, []
        for loss in losses:
            by_seed = []
            for seed in range(seeds):
                started = time.perf_counter()
                by_seed.append(sweep_one(loss, seed, grid=grid, epochs=epochs, out=out / loss / f"seed-{seed}", device=device))
                print(f"align:{loss} seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)
            results[loss] = by_seed
            print("\n".join(["", *table(loss, by_seed), ""]), flush=True)
            oracle = np.mean([s[ORACLE]["accuracy"] for s in by_seed])
            free = [n for n in objective_names() if n != ORACLE and all(n in s for s in by_seed)]
            regrets.append(min(oracle - np.mean([s[n]["accuracy"] for s in by_seed]) for n in free))
        if args.out:
            (args.out / "selection_objectives.json").write_text(json.dumps(results, indent=2, default=str))
    ratio = float(np.mean(regrets))
    print(f"grid {grid}, {epochs} epochs, seeds 0..{seeds - 1}, device {device}")
    print(f"{NAME} ratio={ratio:.4f}")
    return ratio


def run(quick: bool, device: str) -> float:
    """For run_all.py: the quick or the full measurement; returns the printed ratio."""
    return measure(["--device", device] + (["--quick"] if quick else []))


def main() -> int:
    measure()
    return 0


if __name__ == "__main__":
    sys.exit(main())
