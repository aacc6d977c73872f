"""Why the deep rows sit at chance on a small realistic target while eGeMAPS + logistic
regression does not: input scale (2 s windows vs whole utterances), features (MFCC vs
eGeMAPS functionals) and model (linear vs MLP vs TIM-Net), side by side on the same folds.

Every row is trained on the target alone (no source corpus), on the recipe's subject-grouped
folds, with ``train.val_fraction = 0`` semantics (all training subjects train, nothing is
selected on validation):

``egemaps_utt_lr``   eGeMAPSv02 functionals of the whole utterance, ``LinearBaseline``
                     (logistic regression, C by grouped CV on the training subjects): the
                     recipe's ``baseline:egemaps`` row.
``egemaps_utt_mlp``  the same vectors, an MLP (scikit-learn, one hidden layer of 64, L2 1e-1).
``egemaps_win_lr``   eGeMAPSv02 functionals of each window (the recipe's window length and
                     hop, cut from the 16 kHz audio), ``LinearBaseline`` on windows.
``mfcc_utt_lr``      MFCC mean + std over the whole utterance (``mfcc_stats``), ``LinearBaseline``.
``mfcc_win_lr``      MFCC mean + std over each of the recipe's windows (the exact tensors
                     TIM-Net is fed), ``LinearBaseline`` on windows.
``tim_win``          TIM-Net ``target_only`` as the recipe trains it (its windows, model,
                     epochs; last epoch kept).

Window rows are scored per window (``window UA``) and per utterance from the mean window
probability (``utterance UA``); utterance rows per utterance. Subject accuracy: majority
vote of utterance predictions. ``--curve 6,10,14`` repeats every row but ``tim_win`` (it too
with ``--curve-tim``) with only that many training subjects per fold (the stratified nested
subsets of ``with_target_subjects``).

Usage::

    python benchmarks/diagnose_input_scale.py --source-root DIR/casia --target-root DIR/modma \\
        --recipe casia2modma_small --seeds 1 --curve 6,12 --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from diagnose_small_corpus import balanced_accuracy  # noqa: E402

from domadapt.audio import read_audio  # noqa: E402
from domadapt.recipe_loader import build_config, load_recipe, parse_value  # noqa: E402
from domadapt.engine import build_replicas, fit  # noqa: E402
from domadapt.run import (  # noqa: E402
    build_fold,
    extract_domains,
    load_corpora,
    make_method,
    split_target,
    with_target_subjects,
)
from domadapt.features.functionals import utterance_functionals  # noqa: E402
from domadapt.methods.baseline import LinearBaseline  # noqa: E402

ROWS = ("egemaps_utt_lr", "egemaps_utt_mlp", "egemaps_win_lr", "mfcc_utt_lr", "mfcc_win_lr", "tim_win")


def window_egemaps(target, keys: tuple[str, ...], seconds: float, hop: float, sr: int, cache: Path | None):
    """eGeMAPS functionals of ``seconds`` windows at ``hop`` (the last one flush with the
    end; a shorter utterance is one window), per utterance key: ``(x [W, 88], utt [W])``."""
    import opensmile
    from scipy.signal import resample_poly

    if cache is not None and cache.is_file():
        z = np.load(cache)
        return z["x"], z["utt"]
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals)
    by_key = {u.key: u for u in target.utterances}
    xs, utt = [], []
    for k, key in enumerate(keys):
        u = by_key[key]
        wav, rate = read_audio(u.path, u.start, u.end)
        if rate != sr:
            g = np.gcd(rate, sr)
            wav = resample_poly(wav, sr // g, rate // g).astype(np.float32)
        n, w, h = len(wav), int(seconds * sr), int(hop * sr)
        starts = list(range(0, max(n - w, 0) + 1, h))
        if n > w and starts[-1] != n - w:
            starts.append(n - w)
        for s in starts:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                xs.append(smile.process_signal(wav[s : s + w], sr).to_numpy(np.float32).reshape(-1))
            utt.append(k)
    x, utt = np.stack(xs), np.array(utt)
    x = np.where(np.isfinite(x), x, np.nanmedian(np.where(np.isfinite(x), x, np.nan), axis=0))
    if cache is not None:
        np.savez(cache, x=x, utt=utt)
    return x, utt


def mlp(x, y, seed):
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_pipeline(StandardScaler(), MLPClassifier((64,), alpha=0.1, max_iter=500, random_state=seed)).fit(x, y)


def scores(prob_win, y_win, utt_win, subj_of_utt, y_of_utt) -> dict[str, float]:
    """Window UA (if windows), utterance UA by mean probability, subject accuracy by majority."""
    keys = np.unique(utt_win)
    p_utt = np.stack([prob_win[utt_win == k].mean(0) for k in keys]).argmax(1)
    y_utt = y_of_utt[keys]
    subj = subj_of_utt[keys]
    votes = [np.bincount(p_utt[subj == s]).argmax() == y_utt[subj == s][0] for s in np.unique(subj)]
    out = {"utterance_uar": balanced_accuracy(y_utt, p_utt), "subject_accuracy": float(np.mean(votes))}
    if len(keys) != len(utt_win):
        out["window_uar"] = balanced_accuracy(y_win, prob_win.argmax(1))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="casia2modma_small")
    p.add_argument("--source-root", action="append", default=[], type=Path)
    p.add_argument("--target-root", type=Path, help="default: the embedded synthetic corpus")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--rows", default=",".join(ROWS))
    p.add_argument("--curve", default="", help="comma-separated training-subject counts (besides all)")
    p.add_argument("--curve-tim", action="store_true", help="train tim_win at the curve's points too (slow)")
    p.add_argument("--quick", action="store_true", help="the recipe's [quick] sizes")
    p.add_argument("--cache-dir", type=Path)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    overrides = {k.strip(): parse_value(v.strip()) for k, v in (s.split("=", 1) for s in args.overrides)}
    cfg = build_config(load_recipe(args.recipe), overrides=overrides, quick=args.quick)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    if set(rows) - set(ROWS):
        p.error(f"unknown row(s) {sorted(set(rows) - set(ROWS))}; known: {', '.join(ROWS)}")
    points: list[int | str] = [int(n) for n in args.curve.split(",") if n.strip()] + ["all"]
    seeds = [cfg.eval.seed + i for i in range(args.seeds)]

    sources, target = load_corpora(cfg, source_roots=args.source_root, target_root=args.target_root, cache_dir=args.cache_dir)
    domains = extract_domains(cfg, sources, target, device=torch.device("cpu"), cache_dir=args.cache_dir)
    seg = domains.target_segments
    y_seg, u_seg = seg.y.numpy(), seg.utterance.numpy()
    n_utt = len(seg.utterance_keys)
    first = np.array([np.flatnonzero(u_seg == k)[0] for k in range(n_utt)])
    y_utt, s_utt = y_seg[first], seg.subject.numpy()[first]
    n_classes = len(seg.classes)
    folds = split_target(cfg, domains)
    print(f"target {target.root}: {n_utt} utterances, {len(seg.subjects)} subjects, {len(seg)} windows of "
          f"{cfg.features.segment_seconds} s; {len(folds)} folds x {len(seeds)} seeds; points {points}", flush=True)

    feats = {}
    if {"egemaps_utt_lr", "egemaps_utt_mlp"} & set(rows):
        f = utterance_functionals(target, "egemaps", cfg=cfg.features, cache_dir=args.cache_dir)
        feats["egemaps_utt"] = f.x[f.rows(seg.utterance_keys)].astype(np.float64)
    if "mfcc_utt_lr" in rows:
        f = utterance_functionals(target, "mfcc_stats", cfg=cfg.features, cache_dir=args.cache_dir)
        feats["mfcc_utt"] = f.x[f.rows(seg.utterance_keys)].astype(np.float64)
    if "egemaps_win_lr" in rows:
        t = time.perf_counter()
        tag = hashlib.sha1(repr((str(target.root), seg.utterance_keys, cfg.features.segment_seconds,
                                 cfg.features.segment_hop_seconds, cfg.features.sample_rate)).encode()).hexdigest()[:12]
        cache = None if args.cache_dir is None else args.cache_dir / f"egemaps-windows-{tag}.npz"
        feats["egemaps_win"] = window_egemaps(target, seg.utterance_keys, cfg.features.segment_seconds,
                                              cfg.features.segment_hop_seconds or cfg.features.segment_seconds,
                                              cfg.features.sample_rate, cache)
        print(f"eGeMAPS on {len(feats['egemaps_win'][1])} windows: {time.perf_counter() - t:.0f} s", flush=True)
    x64 = seg.x.double()
    mfcc_win = torch.cat([x64.mean(2), x64.std(2)], 1).numpy()  # [N, 2C]: what TIM sees, summarised

    spec = next(m for m in cfg.methods if m.label == "target_only")
    results: dict[str, dict[str, list[dict]]] = {}
    for fold in folds:
        data_all = build_fold(domains, fold, val_fraction=0.0, seed=cfg.eval.seed, device=torch.device("cpu"))
        for point in points:
            data = with_target_subjects(data_all, point, seed=cfg.eval.seed)
            train_subj = np.unique(data.target_train.groups)
            tr_win = np.asarray(fold.train)[np.isin(seg.subject.numpy()[fold.train], train_subj)]
            tr_utt, te_utt = np.unique(u_seg[tr_win]), np.unique(u_seg[fold.test])
            te_win = np.asarray(fold.test)
            for seed in seeds:
                for row in rows:
                    if row == "tim_win" and point != "all" and not args.curve_tim:
                        continue
                    t = time.perf_counter()
                    if row in ("egemaps_utt_lr", "mfcc_utt_lr"):
                        x = feats[row.rsplit("_", 1)[0]]
                        model = LinearBaseline(n_classes=n_classes, seed=seed).fit(x[tr_utt], y_utt[tr_utt], groups=s_utt[tr_utt])
                        m = scores(model.predict_proba(x[te_utt]), y_utt[te_utt], te_utt, s_utt, y_utt)
                    elif row == "egemaps_utt_mlp":
                        x = feats["egemaps_utt"]
                        model = mlp(x[tr_utt], y_utt[tr_utt], seed)
                        m = scores(model.predict_proba(x[te_utt]), y_utt[te_utt], te_utt, s_utt, y_utt)
                    elif row == "egemaps_win_lr":
                        xw, uw = feats["egemaps_win"]
                        a, b = np.isin(uw, tr_utt), np.isin(uw, te_utt)
                        model = LinearBaseline(n_classes=n_classes, seed=seed).fit(xw[a], y_utt[uw[a]], groups=s_utt[uw[a]])
                        m = scores(model.predict_proba(xw[b]), y_utt[uw[b]], uw[b], s_utt, y_utt)
                    elif row == "mfcc_win_lr":
                        model = LinearBaseline(n_classes=n_classes, seed=seed).fit(mfcc_win[tr_win], y_seg[tr_win], groups=seg.subject.numpy()[tr_win])
                        m = scores(model.predict_proba(mfcc_win[te_win]), y_seg[te_win], u_seg[te_win], s_utt, y_utt)
                    else:  # tim_win
                        replicas = build_replicas(lambda: make_method(cfg, domains, spec), [seed], data, torch.device("cpu"), vmap=False)
                        fit(replicas, cfg.train)
                        method = replicas.export(0)
                        probs = replicas.predict(method.target_logits, data.target_test.x)[0].numpy()
                        m = scores(probs, y_seg[te_win], u_seg[te_win], s_utt, y_utt)
                        train_probs = replicas.predict(method.target_logits, data.target_train.x)[0].numpy()
                        m["train_uar"] = balanced_accuracy(data.target_train.y.numpy(), train_probs.argmax(1))
                    m["seconds"] = time.perf_counter() - t
                    results.setdefault(str(point), {}).setdefault(row, []).append(m)
                    print(f"  fold {fold.index} n={point} seed {seed} {row:<16} "
                          + " ".join(f"{k} {v:.3f}" for k, v in m.items() if k != "seconds")
                          + f" ({m['seconds']:.0f} s)", flush=True)

    def cell(runs, key):
        v = np.array([r[key] for r in runs if key in r])
        return "–" if len(v) == 0 else f"{100 * v.mean():.1f} ± {100 * v.std(ddof=1) if len(v) > 1 else 0:.1f}"

    print("\n| training subjects | row | window UA | utterance UA | subject acc. | train UA |")
    print("|---|---|---:|---:|---:|---:|")
    for point, by_row in results.items():
        for row, runs in by_row.items():
            print(f"| {point} | {row} | {cell(runs, 'window_uar')} | {cell(runs, 'utterance_uar')} | "
                  f"{cell(runs, 'subject_accuracy')} | {cell(runs, 'train_uar')} |")
    if args.json is not None:
        args.json.write_text(json.dumps({"recipe": args.recipe, "overrides": args.overrides, "target": str(target.root),
                                         "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
