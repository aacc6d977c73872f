"""domadapt's adaptation methods against a reference implementation (SKADA) on identical arrays.

    python benchmarks/reference_da.py [--quick] [--seeds N] [--epochs E] [--device auto|cpu|cuda]
                                      [--problems moons,xor_affine,no_shift] [--out DIR]

Three problems, each a source, an unlabelled target training set and a labelled target test
set of 2-D points (the test set a fresh draw of the target distribution):

* ``moons``: rotated two-moons (Ganin et al., JMLR 2016, sec. 5.1): ``make_moons(300,
  noise=0.1)`` per domain, the target rotated by 35 degrees;
* ``xor_affine``: four Gaussian blobs labelled XOR (std 0.35 around (+-1, +-1)), the target
  scaled by 0.7 and shifted by 0.6 (the affine shift of SKADA's ``conditional_shift``,
  ``X * sigma + mean``, here sigma 0.7 and a smaller mean so that the source model is not
  at chance);
* ``no_shift``: the moons with no rotation: a control, where adaptation must not hurt.

domadapt runs each problem through its recipe runner (``recipes/moons.toml`` with the
problem's ``arrays.npz`` as ``--source-root``/``--target-root`` and the target's own
train/test ``split``): the same code path as ``python -m domadapt.recipe``. SKADA 0.6.0's
deep methods (``skada.deep``) get the same rows, the same network (2 -> 32 -> 32 -> 2, the
features after the second ReLU), Adam at the same learning rate, the same batch size per
domain and the same number of epochs; every loss at its own toolkit's defaults. Two
differences stay: domadapt holds out 10 % of the source to select source-only's epoch
(``SOURCE_VAL_FRACTION``), SKADA trains on all of it and keeps the last epoch; SKADA's
adversaries are given domadapt's architecture (its default ``DomainClassifier`` ends in a
one-output ``Softmax``, whose gradient is zero, and BatchNorm). Seeds vary initialisation
and batch order on one draw of each problem.

Printed per problem: source-only and oracle (target-only) accuracy of both toolkits, then per
method the accuracy of each and the share of the source-only -> oracle gap it closes, mean
+- sample std over the seeds. Without skada/skorch installed (``pip install
domadapt[reference]``) only the domadapt columns are filled. ``--quick``: 3 seeds, 100
epochs; the full run: 5 seeds, 300 epochs. The last line, ``reference_da_gap_left_lower_is_better
ratio=R``, is 1 - the mean gap closed by domadapt's methods on ``moons`` (for run_all.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, uninstalled

from domadapt.corpora.arrays import rotated_moons, write_arrays  # noqa: E402

NAME = "reference_da_gap_left_lower_is_better"  # the ratio line run_all.py reads
RECIPE = ROOT / "recipes" / "moons.toml"
BATCH = 32  # per domain, as the recipe
LR = 1e-2  # Adam, Ganin et al.'s toy setting (the recipe's lr)
N_POINTS = 300  # per domain and for the target test set


@dataclass(frozen=True)
class Pair:
    """A method in both toolkits: domadapt's loss name and SKADA's estimator."""

    name: str
    loss: str
    skada: str


PAIRS = [
    Pair("DANN", "dann", "DANN"),
    Pair("CDAN", "cdan", "CDAN"),
    Pair("MDD", "mdd", "MDD"),
    Pair("Deep CORAL", "coral", "DeepCoral"),
    Pair("MMD / DAN", "mmd", "DAN"),
    Pair("MCC", "mcc", "MCC"),
]


# --------------------------------------------------------------------------- problems


def xor_affine(*, seed: int, n: int = N_POINTS, scale: float = 0.7, shift: float = 0.6) -> dict[str, np.ndarray]:
    """XOR blobs as an arrays file: source, target (``scale * x + shift``) and a target test draw."""
    centres = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1])

    def draw(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        k = rng.integers(0, 4, count)
        return (centres[k] + rng.normal(0.0, 0.35, (count, 2))).astype(np.float32), labels[k]

    rng = np.random.default_rng(seed)
    xs, ys = draw(rng, n)
    xt, yt = draw(rng, 2 * n)
    return _columns(xs, ys, xt * scale + shift, yt, n_train=n)


def moons_problem(*, seed: int, angle: float) -> dict[str, np.ndarray]:
    return rotated_moons(seed=seed, n=N_POINTS, angle=angle, test=N_POINTS)


def _columns(xs, ys, xt, yt, *, n_train: int, groups: int = 10) -> dict[str, np.ndarray]:
    """Source rows, then target train rows, then target test rows, with their split."""
    n_s, n_t = len(xs), len(xt)
    subject = [f"s{i % groups:02d}" for i in range(n_s)]
    subject += [f"t{i % groups:02d}" if i < n_train else f"test{i % groups:02d}" for i in range(n_t)]
    return {
        "X": np.concatenate([xs, xt]).astype(np.float32),
        "y": np.concatenate([ys, yt]).astype(np.int64),
        "subject": np.array(subject),
        "domain": np.array(["source"] * n_s + ["target"] * n_t),
        "split": np.array(["train"] * (n_s + n_train) + ["test"] * (n_t - n_train)),
    }


PROBLEMS = {
    "moons": lambda seed: moons_problem(seed=seed, angle=35.0),
    "xor_affine": lambda seed: xor_affine(seed=seed),
    "no_shift": lambda seed: moons_problem(seed=seed, angle=0.0),
}


def sides(columns: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``source``, ``target_train`` and ``target_test`` as (X, y)."""
    is_source = columns["domain"] == "source"
    is_test = columns["split"] == "test"
    pick = {"source": is_source, "target_train": ~is_source & ~is_test, "target_test": ~is_source & is_test}
    return {k: (columns["X"][m], columns["y"][m]) for k, m in pick.items()}


# --------------------------------------------------------------------------- domadapt


def run_domadapt(folder: Path, out: Path, *, seeds: int, epochs: int, device: str) -> dict[str, list[float]]:
    """Every row of the moons recipe on ``folder/arrays.npz``: method label -> accuracy per seed."""
    from domadapt import recipe

    methods = ["source_only", "target_only (oracle)"] + [f"align:{p.loss}" for p in PAIRS]
    argv = [
        str(RECIPE), "--quiet", "--source-root", str(folder), "--target-root", str(folder), "--out", str(out),
        "--device", device, "--methods", ",".join(methods), "--cache-dir", str(out / "cache"),
        "--set", 'eval.splitter="official"', "--set", f"eval.seeds={seeds}",
        "--set", f"train.epochs={epochs}", "--set", f"train.batch_size={BATCH}", "--set", f"train.lr={LR}",
    ]
    out.mkdir(parents=True, exist_ok=True)
    with open(out.parent / "domadapt.log", "w") as log, contextlib.redirect_stdout(log):  # its own table, kept
        code = recipe.main(argv)
    if code != 0:
        raise RuntimeError(f"domadapt recipe run failed (log: {out.parent / 'domadapt.log'}): {' '.join(argv)}")
    rows = json.loads((out / "results.json").read_text())["rows"]
    return {r["method"]: list(r["metrics"]["accuracy"]["runs"]) for r in rows}


# --------------------------------------------------------------------------- SKADA


def skada_available() -> bool:
    try:
        import skada.deep  # noqa: F401
        import skorch  # noqa: F401
    except ImportError:
        return False
    return True


def _network():
    from torch import nn

    class Network(nn.Sequential):
        """domadapt's mlp backbone (2 -> 32 -> 32, ReLU) and its Linear head; module "3" gives
        the features. SKADA calls its module with ``sample_weight``."""

        def forward(self, x, sample_weight=None):
            return super().forward(x)

    return Network(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))


def _adversary(width: int, outputs: int):
    """SKADA's gradient reversal (coefficient 1) before domadapt's adversary of the same
    width: DomainDiscriminator (256, 256, 1) + sigmoid for DANN/CDAN (SKADA's losses are BCE
    on probabilities), MDD's auxiliary head (256, K) on logits."""
    import torch
    from skada.deep.modules import GradientReversalLayer
    from torch import nn

    from domadapt.align.dann import DomainDiscriminator

    class Adversary(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            if outputs == 1:
                self.net = nn.Sequential(DomainDiscriminator(width, 256), nn.Sigmoid())
            else:
                self.net = nn.Sequential(nn.Linear(width, 256), nn.ReLU(), nn.Linear(256, outputs))

        def forward(self, x: torch.Tensor, sample_weight=None) -> torch.Tensor:
            out = self.net(GradientReversalLayer.apply(x, 1.0))
            return out.squeeze(1) if outputs == 1 else out

    return Adversary()


def skada_estimator(method: str, *, epochs: int, device: str):
    import torch
    from skada import deep

    common = dict(
        optimizer=torch.optim.Adam, lr=LR, batch_size=BATCH, max_epochs=epochs, train_split=None,
        device=device, verbose=0,
    )
    feat = "3"  # the second ReLU: the 32 features domadapt aligns ("general")
    if method == "SourceOnly":
        return deep.SourceOnly(_network(), layer_name=feat, **common)
    if method == "TargetOnly":
        return deep.TargetOnly(_network(), layer_name=feat, **common)
    if method == "DANN":
        return deep.DANN(_network(), layer_name=feat, domain_classifier=_adversary(32, 1), **common)
    if method == "CDAN":
        return deep.CDAN(_network(), layer_name=feat, domain_classifier=_adversary(64, 1), **common)
    if method == "MDD":
        return deep.MDD(_network(), layer_name=feat, disc_classifier=_adversary(32, 2), **common)
    return getattr(deep, method)(_network(), layer_name=feat, **common)


def run_skada(data: dict, *, seeds: int, epochs: int, device: str) -> dict[str, list[float]]:
    """SKADA's source-only, target-only and each paired method: name -> accuracy per seed."""
    import torch

    (xs, ys), (xt, yt), (xe, ye) = data["source"], data["target_train"], data["target_test"]
    X = np.concatenate([xs, xt]).astype(np.float32)
    y_masked = np.concatenate([ys, np.full(len(yt), -1)])  # SKADA: -1 = unlabelled target
    domain = np.concatenate([np.ones(len(xs)), -2 * np.ones(len(xt))]).astype(np.int64)
    results: dict[str, list[float]] = {}
    for method in ["SourceOnly", "TargetOnly"] + [p.skada for p in PAIRS]:
        accs = []
        for seed in range(seeds):
            torch.manual_seed(seed)
            net = skada_estimator(method, epochs=epochs, device=device)
            labels = np.concatenate([ys, yt]) if method == "TargetOnly" else y_masked
            net.fit({"X": X, "sample_domain": domain}, labels)
            pred = net.predict({"X": xe.astype(np.float32), "sample_domain": -2 * np.ones(len(xe), dtype=np.int64)})
            accs.append(float((np.asarray(pred) == ye).mean()))
        results[method] = accs
    return results


# --------------------------------------------------------------------------- table


def _ms(values: list[float] | None) -> str:
    values = [v for v in values or [] if not np.isnan(v)]
    if not values:  # no column, or no gap to close (the oracle no better than source-only)
        return "–"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1) if len(values) > 1 else 0.0:.3f}"


def gap_closed(method: list[float], low: list[float], high: list[float]) -> list[float]:
    """Per seed: (method - source-only) / (oracle - source-only), paired by seed."""
    return [(m - lo) / (hi - lo) if hi > lo else float("nan") for m, lo, hi in zip(method, low, high)]


def table(problem: str, ours: dict[str, list[float]], ref: dict[str, list[float]] | None) -> tuple[str, float]:
    """The markdown table of one problem, and domadapt's mean gap closed over the methods."""
    src, orc = ours["source_only"], ours["target_only (oracle)"]
    lines = [
        f"**{problem}**: source-only domadapt {_ms(src)}" + (f", SKADA {_ms(ref['SourceOnly'])}" if ref else "")
        + f"; oracle domadapt {_ms(orc)}" + (f", SKADA {_ms(ref['TargetOnly'])}" if ref else ""),
        "",
        "| method | domadapt | SKADA | gap closed, domadapt | gap closed, SKADA |",
        "|---|---|---|---|---|",
    ]
    closed_all = []
    for pair in PAIRS:
        acc = ours[f"align:{pair.loss}"]
        closed = gap_closed(acc, src, orc)
        closed_all.append(np.nanmean(closed) if not np.isnan(closed).all() else np.nan)
        ref_acc = ref[pair.skada] if ref else None
        ref_closed = gap_closed(ref_acc, ref["SourceOnly"], ref["TargetOnly"]) if ref else None
        lines.append(f"| {pair.name} | {_ms(acc)} | {_ms(ref_acc)} | {_ms(closed)} | {_ms(ref_closed)} |")
    return "\n".join(lines), float(np.mean(closed_all))


def main(argv: list[str] | None = None) -> int:
    measure(argv)
    return 0


def measure(argv: list[str] | None = None) -> float:
    """Parse ``argv``, run, print the tables and the ratio line; returns the ratio."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3 seeds, 100 epochs (a few minutes on a 2-core CPU)")
    p.add_argument("--seeds", type=int, help="training seeds per problem (default 5; --quick 3)")
    p.add_argument("--epochs", type=int, help="epochs of every run (default 300; --quick 100)")
    p.add_argument("--problems", default=",".join(PROBLEMS), help=f"comma-separated subset of {', '.join(PROBLEMS)}")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--no-skada", action="store_true", help="domadapt's columns only")
    p.add_argument("--out", type=Path, help="keep domadapt's run folders here (default: a temporary folder)")
    args = p.parse_args(argv)
    seeds = args.seeds or (3 if args.quick else 5)
    epochs = args.epochs or (100 if args.quick else 300)
    problems = [s.strip() for s in args.problems.split(",") if s.strip()]
    unknown = sorted(set(problems) - set(PROBLEMS))
    if unknown:
        p.error(f"unknown problem(s) {', '.join(unknown)}; known: {', '.join(PROBLEMS)}")
    from domadapt.device import resolve_device

    device = resolve_device(args.device).type
    reference = not args.no_skada and skada_available()
    if not reference and not args.no_skada:
        print("reference_da: skada/skorch not installed (pip install domadapt[reference]): domadapt's columns only")
    print(f"reference_da: {seeds} seeds x {epochs} epochs, batch {BATCH} per domain, Adam lr {LR}, device {device}")
    moons_closed = float("nan")
    with tempfile.TemporaryDirectory() as tmp:
        out_root = args.out or Path(tmp)
        for problem in problems:
            start = time.time()
            columns = PROBLEMS[problem](0)
            folder = out_root / problem / "data"
            write_arrays(folder / "arrays.npz", columns)
            ours = run_domadapt(folder, out_root / problem / "domadapt", seeds=seeds, epochs=epochs, device=device)
            t_ours = time.time() - start
            ref = run_skada(sides(columns), seeds=seeds, epochs=epochs, device=device) if reference else None
            text, closed = table(problem, ours, ref)
            print(f"\n{text}\n\n({problem}: domadapt {t_ours:.0f} s, SKADA {time.time() - start - t_ours:.0f} s)")
            if problem == "moons":
                moons_closed = closed
    ratio = 1.0 - moons_closed
    print(f"\n{NAME} ratio={ratio:.3f}")
    return ratio


def run(quick: bool, device: str) -> float:
    """For run_all.py: every problem, quick or full; returns the printed ratio."""
    return measure(["--device", device] + (["--quick"] if quick else []))


if __name__ == "__main__":
    sys.exit(main())
