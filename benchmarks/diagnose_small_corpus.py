"""Why TIM-Net ``target_only`` fails on a small target corpus: validation protocols side by side.

Issue #12 found TIM-Net ``target_only`` below chance on a MODMA-sized corpus (~300 utterances,
24 subjects) where a linear model on MFCC mean+std reaches ~0.7. This script reruns the key
comparison on the recipe's own folds, features and model, training the same TIM three ways:

``recipe``      today's protocol: ``train.val_fraction`` (20 %) of the training subjects carved
                out, the epoch with the best validation UA kept (``domadapt.engine.loop``).
``recipe_last`` the same carve-out, but the last epoch kept: what the selection itself costs.
``all_last``    no carve-out: every training subject trains, ``train.epochs`` fixed, the last
                epoch kept (``train.val_fraction = 0``).

and, on the same folds, the classical baseline (``LinearBaseline`` on utterance MFCC mean+std;
C by validation UA on the same 20 % subjects, and by grouped cross-validation on all training
subjects). Per run it also measures the train UA, the validation UA of the kept epoch, the
Pearson correlation over epochs between validation UA and test UA (is the validation set
informative at all?), and a speaker probe: a logistic regression that names the training
subject of held-out utterances from the trained general features (chance = 1 / subjects).

Metrics are the recipe's (``evaluate_predictions``): window UA (``uar``), subject accuracy by
majority vote; plus utterance UA from the mean window probability. Mean ± sample std over
folds x seeds. Ends with ``small_corpus_all_last_over_recipe_ua ratio=...`` (higher is better).

Usage::

    python benchmarks/diagnose_small_corpus.py --source-root /work/realistic/casia \\
        --target-root /work/realistic/modma --seeds 3 --threads 1
    python benchmarks/diagnose_small_corpus.py --set train.epochs=20 \\
        --set 'model.backbone_options={filters=16, levels=4}'          # synthetic data
    python benchmarks/diagnose_small_corpus.py --protocols all_last --no-baseline --quick
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from domadapt.recipe_loader import build_config, load_recipe, parse_value  # noqa: E402
from domadapt.engine import build_replicas, fit  # noqa: E402
from domadapt.engine import loop as engine_loop  # noqa: E402
from domadapt.evaluate import evaluate_predictions  # noqa: E402
from domadapt.run import (  # noqa: E402
    build_fold,
    extract_domains,
    load_corpora,
    make_method,
    split_target,
)
from domadapt.splits import carve_validation  # noqa: E402

PROTOCOLS = ("recipe", "recipe_last", "all_last")


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    classes = np.unique(y)
    return float(np.mean([(pred[y == c] == c).mean() for c in classes]))


@contextlib.contextmanager
def per_epoch_test_scores(test_x: torch.Tensor, test_y: np.ndarray, curve: list[float]) -> Iterator[None]:
    """Record the test UA after every epoch (a diagnostic: selection still reads validation only)."""
    original = engine_loop.validate

    def validate(replicas, stage, **kw):
        val = original(replicas, stage, **kw)
        probs = replicas.predict(replicas.method.target_logits, test_x)[0].numpy()
        curve.append(balanced_accuracy(test_y, probs.argmax(1)))
        return val

    engine_loop.validate = validate
    try:
        yield
    finally:
        engine_loop.validate = original


@contextlib.contextmanager
def keep_last_epoch() -> Iterator[None]:
    """Every epoch counts as an improvement, so each replica ends on its last epoch while the
    validation subjects stay carved out (``recipe_last``: what the selection alone costs)."""
    original = engine_loop.keep_best

    def keep_every(replicas, state, val):
        # a strictly increasing score: the current epoch always replaces the kept one
        keep_every.n += 1
        return original(replicas, state, [{**v, "score": float(keep_every.n)} for v in val])

    keep_every.n = 0
    engine_loop.keep_best = keep_every
    try:
        yield
    finally:
        engine_loop.keep_best = original


def speaker_probe(features: np.ndarray, subjects: np.ndarray, utterances: np.ndarray, seed: int = 0) -> float:
    """Accuracy of naming the subject of held-out windows from ``features`` [N, D] with a
    logistic regression fitted on the windows of a random half of the utterances (no
    utterance on both sides); chance is 1 / number of subjects."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    keys = np.unique(utterances)
    half = set(np.random.default_rng(seed).permutation(keys)[: len(keys) // 2].tolist())
    a = np.array([u in half for u in utterances])
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(features[a], subjects[a])
    return float((clf.predict(features[~a]) == subjects[~a]).mean())


def fold_data(domains, fold, cfg, protocol: str):
    """The fold's tensors and the target training rows; ``all_last`` carves no validation
    subjects (``val_fraction = 0``: every training subject trains, the last epoch is kept)."""
    fraction = 0.0 if protocol == "all_last" else cfg.train.val_fraction
    data = build_fold(domains, fold, val_fraction=fraction, seed=cfg.eval.seed, device=torch.device("cpu"))
    if protocol == "all_last":
        return data, np.asarray(fold.train)
    seg = domains.target_segments
    fit_idx, _ = carve_validation(fold.train, seg.y.numpy(), seg.subject.numpy(), fraction=fraction, seed=cfg.eval.seed)
    return data, fit_idx


def run_deep(cfg, domains, folds, protocol: str, seeds: list[int], *, probe: bool, say) -> list[dict[str, float]]:
    spec = next(m for m in cfg.methods if m.label == "target_only")
    seg = domains.target_segments
    rows = []
    for fold in folds:
        data, fit_idx = fold_data(domains, fold, cfg, protocol)
        test = data.target_test
        test_utt = seg.utterance.numpy()[fold.test]
        for seed in seeds:
            curve: list[float] = []
            start = time.perf_counter()
            replicas = build_replicas(lambda: make_method(cfg, domains, spec), [seed], data, torch.device("cpu"), vmap=False)
            last = keep_last_epoch() if protocol == "recipe_last" else contextlib.nullcontext()
            with per_epoch_test_scores(test.x, test.y.numpy(), curve), last:
                history = fit(replicas, cfg.train)[0]
            seconds = time.perf_counter() - start
            method = replicas.export(0)
            probs = replicas.predict(method.target_logits, test.x)[0].numpy()
            y = test.y.numpy()
            m = evaluate_predictions(probs, y, test.groups, num_classes=test.num_classes)
            keys = np.unique(test_utt)
            utt_y = np.array([y[test_utt == k][0] for k in keys])
            utt_p = np.array([probs[test_utt == k].mean(0).argmax() for k in keys])
            train_probs = replicas.predict(method.target_logits, data.target_train.x)[0].numpy()
            val_uar = history.get("target/val/uar", [])
            epochs = len(history["target/train/loss"])
            kept = int(np.argmax(val_uar)) if protocol == "recipe" else epochs - 1
            row = {
                "fold": float(fold.index),
                "seed": float(seed),
                "uar": m["uar"],
                "utterance_uar": balanced_accuracy(utt_y, utt_p),
                "subject_accuracy": m["subject_accuracy"],
                "subject_accuracy_meanprob": m["subject_accuracy_meanprob"],
                "train_uar": balanced_accuracy(data.target_train.y.numpy(), train_probs.argmax(1)),
                "val_uar_kept": float(val_uar[kept]) if protocol != "all_last" else float("nan"),
                "kept_epoch": float(kept + 1),
                "val_test_corr": _corr(val_uar, curve) if protocol != "all_last" else float("nan"),
                "train_loss_last": float(history["target/train/loss"][-1]),
                "seconds": seconds,
            }
            if probe:
                with torch.no_grad():
                    feats = method.model.general(data.target_train.x).numpy()
                row["speaker_probe"] = speaker_probe(feats, data.target_train.groups, seg.utterance.numpy()[fit_idx])
                row["speaker_chance"] = 1.0 / len(np.unique(data.target_train.groups))
            rows.append(row)
            say(
                f"  {protocol:<11} fold {fold.index} seed {seed}: UA {row['uar']:.3f} utt-UA {row['utterance_uar']:.3f} "
                f"subj-acc {row['subject_accuracy']:.3f} train-UA {row['train_uar']:.3f} epoch {kept + 1} "
                f"({seconds:.0f} s)"
            )
    return rows


def _corr(a: list[float], b: list[float]) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def run_baseline(cfg, domains, folds, *, kind: str) -> dict[str, list[dict[str, float]]]:
    """LinearBaseline on utterance functionals: C by the 20 % validation subjects, and by
    grouped cross-validation on all training subjects."""
    from domadapt.features.functionals import utterance_functionals
    from domadapt.methods.baseline import LinearBaseline

    seg = domains.target_segments
    y_seg, g_seg, u_seg = seg.y.numpy(), seg.subject.numpy(), seg.utterance.numpy()
    feats = utterance_functionals(domains.target, kind, cfg=cfg.features)
    x = feats.x[feats.rows(seg.utterance_keys)]
    n_utt = len(seg.utterance_keys)
    first = np.array([np.flatnonzero(u_seg == k)[0] for k in range(n_utt)])
    y, g = y_seg[first], g_seg[first]
    out: dict[str, list[dict[str, float]]] = {"val20": [], "all_cv": []}
    for fold in folds:
        train_u, test_u = np.unique(u_seg[fold.train]), np.unique(u_seg[fold.test])
        for mode in out:
            if mode == "val20":
                fit_idx, val_idx = carve_validation(
                    fold.train, y_seg, g_seg, fraction=cfg.train.val_fraction, seed=cfg.eval.seed
                )
                fu, vu = np.unique(u_seg[fit_idx]), np.unique(u_seg[val_idx])
                model = LinearBaseline(n_classes=len(seg.classes), seed=cfg.eval.seed).fit(x[fu], y[fu], x[vu], y[vu])
            else:
                model = LinearBaseline(n_classes=len(seg.classes), seed=cfg.eval.seed).fit(
                    x[train_u], y[train_u], groups=g[train_u]
                )
            probs = model.predict_proba(x[test_u])
            m = evaluate_predictions(probs, y[test_u], g[test_u], num_classes=len(seg.classes))
            out[mode].append({"utterance_uar": m["uar"], "subject_accuracy": m["subject_accuracy"]})
    return out


def summary(rows: list[dict[str, float]], key: str) -> str:
    values = np.array([r[key] for r in rows if key in r], dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return "–"
    return f"{values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.3f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="casia2modma")
    p.add_argument("--source-root", action="append", default=[], type=Path)
    p.add_argument("--target-root", type=Path)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--folds", type=int)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--protocols", default=",".join(PROTOCOLS), help=f"comma-separated subset of {', '.join(PROTOCOLS)}")
    p.add_argument("--baseline", default="mfcc_stats", help="functionals of the linear baseline (mfcc_stats, egemaps)")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--no-probe", action="store_true", help="skip the speaker probe")
    p.add_argument("--quick", action="store_true", help="the recipe's [quick] sizes, 1 seed")
    p.add_argument("--cache-dir", type=Path)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", type=Path, help="write every run's figures (per protocol, fold x seed order) here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = {k.strip(): parse_value(v.strip()) for k, v in (s.split("=", 1) for s in args.overrides)}
    if args.folds is not None:
        overrides["eval.folds"] = args.folds
    cfg = build_config(load_recipe(args.recipe), overrides=overrides, quick=args.quick)
    seeds = [cfg.eval.seed + i for i in range(1 if args.quick else args.seeds)]
    protocols = [s.strip() for s in args.protocols.split(",") if s.strip()]
    unknown = sorted(set(protocols) - set(PROTOCOLS))
    if unknown:
        p.error(f"unknown protocol(s) {unknown}; known: {', '.join(PROTOCOLS)}")
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))

    sources, target = load_corpora(cfg, source_roots=args.source_root, target_root=args.target_root, cache_dir=args.cache_dir)
    domains = extract_domains(cfg, sources, target, device=torch.device("cpu"), cache_dir=args.cache_dir)
    seg = domains.target_segments
    folds = split_target(cfg, domains)
    n_utt = np.bincount(seg.utterance.numpy())
    print(
        f"{'SYNTHETIC' if domains.synthetic else 'real'} target {target.name} at {target.root}: "
        f"{len(n_utt)} utterances, {len(seg.subjects)} subjects, {len(seg)} windows "
        f"({n_utt.mean():.1f} per utterance); {len(folds)} folds x {len(seeds)} seeds; "
        f"epochs {cfg.train.epochs}, batch {cfg.train.batch_size}, lr {cfg.train.lr}, "
        f"backbone {cfg.model.backbone} {cfg.model.backbone_options or ''}"
    )
    results: dict[str, list[dict[str, float]]] = {}
    for protocol in protocols:
        start = time.perf_counter()
        results[protocol] = run_deep(cfg, domains, folds, protocol, seeds, probe=not args.no_probe, say=say)
        say(f"  {protocol}: {time.perf_counter() - start:.0f} s")
    baseline = {} if args.no_baseline else run_baseline(cfg, domains, folds, kind=args.baseline)

    cols = [
        ("window UA", "uar"),
        ("utterance UA", "utterance_uar"),
        ("subject acc.", "subject_accuracy"),
        ("train UA", "train_uar"),
        ("val UA (kept)", "val_uar_kept"),
        ("kept epoch", "kept_epoch"),
        ("corr(val, test)", "val_test_corr"),
        ("speaker probe", "speaker_probe"),
        ("s / run", "seconds"),
    ]
    print()
    print("| row | " + " | ".join(c for c, _ in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for protocol, rows in results.items():
        print(f"| TIM target_only, {protocol} | " + " | ".join(summary(rows, k) for _, k in cols) + " |")
    for mode, rows in baseline.items():
        cells = [summary(rows, k) if k in ("utterance_uar", "subject_accuracy") else "–" for _, k in cols]
        print(f"| linear {args.baseline}, C by {mode} | " + " | ".join(cells) + " |")
    if results and not args.no_probe:
        chance = np.mean([r["speaker_chance"] for rows in results.values() for r in rows])
        print(f"\nspeaker probe chance: {chance:.3f} (1 / training subjects)")
    if args.json is not None:
        import json

        args.json.write_text(json.dumps({"config": cfg.to_dict(), "deep": results, "baseline": baseline}, indent=1, default=str))
    if "recipe" in results and "all_last" in results:
        ratio = np.mean([r["uar"] for r in results["all_last"]]) / np.mean([r["uar"] for r in results["recipe"]])
        print(f"small_corpus_all_last_over_recipe_ua ratio={ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
