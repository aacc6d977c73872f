"""How hard are the synthetic stand-in corpora? A simple subject-independent baseline.

Generates (or reuses from the cache) the synthetic corpora, reads them with the real
loaders, and classifies per-utterance mean+std of librosa MFCC-39 at 16 kHz (MODMA is
resampled from 44.1 kHz) with a standardised logistic regression:

* MODMA (HC vs MDD): StratifiedGroupKFold(5) grouped by subject, utterance accuracy and
  subject-level accuracy by majority vote, averaged over a few fold shuffles.
  Target band: subject 0.65-0.85, utterance 0.6-0.8.
* CASIA (6 emotions): leave-one-speaker-out. Target band: 0.5-0.85.
* IEMOCAP (4 classes, hap+exc merged): leave-one-session-out (for information).
* casia -> casia_target (the closed-set unsupervised DA testbed; 6 emotions, 8 other
  speakers through MODMA's channel): *source-only* (fit on all of CASIA, tested on all of
  the target) against *target-only* (leave-one-target-speaker-out, the oracle), plus
  source-only with each domain standardised on its own statistics (the simplest
  unsupervised adaptation). Target band: target-only - source-only >= 0.15 UA.

Usage::

    python benchmarks/synthetic_difficulty.py [--seed 0] [--cache-dir DIR] [--corpora casia modma]
    python benchmarks/synthetic_difficulty.py --corpora casia casia_target   # the DA pair

Generation time is printed for corpora that were not cached yet (use a fresh
``--cache-dir`` to time all three).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import librosa
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from domadapt.audio import read_audio  # noqa: E402
from domadapt.corpora import load_corpus  # noqa: E402
from domadapt.corpora.synthetic import CORPUS_KINDS, LOADERS, synthetic_root  # noqa: E402

FEATURE_SR = 16_000


def mfcc_stats(path: Path) -> np.ndarray:
    """Mean and std over frames of librosa's 39 MFCCs at 16 kHz: a 78-vector."""
    y, sr = read_audio(path)
    if sr != FEATURE_SR:
        y = librosa.resample(y, orig_sr=sr, target_sr=FEATURE_SR)
    m = librosa.feature.mfcc(y=y, sr=FEATURE_SR, n_mfcc=39)
    return np.concatenate([m.mean(axis=1), m.std(axis=1)])


def features(corpus) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    t = time.perf_counter()
    x = np.stack([mfcc_stats(u.path) for u in corpus.utterances])
    y = np.array([u.label for u in corpus.utterances])
    g = np.array([u.subject for u in corpus.utterances])
    return x, y, g, time.perf_counter() - t


def classifier():
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def modma_scores(x, y, g, shuffles: int = 3) -> dict[str, float]:
    utt, subj, subj_ua = [], [], []
    for rs in range(shuffles):
        pred = np.empty_like(y)
        for tr, te in StratifiedGroupKFold(5, shuffle=True, random_state=rs).split(x, y, g):
            pred[te] = classifier().fit(x[tr], y[tr]).predict(x[te])
        utt.append(np.mean(pred == y))
        subjects = np.unique(g)
        truth = np.array([y[g == s][0] for s in subjects])
        votes = []
        for s in subjects:
            labels, counts = np.unique(pred[g == s], return_counts=True)
            votes.append(labels[np.argmax(counts)])
        votes = np.array(votes)
        subj.append(np.mean(votes == truth))
        subj_ua.append(balanced_accuracy(truth, votes))
    return {"utterance_acc": float(np.mean(utt)), "subject_acc": float(np.mean(subj)),
            "subject_acc_min": float(np.min(subj)), "subject_acc_max": float(np.max(subj)),
            "subject_ua": float(np.mean(subj_ua))}


def leave_one_group_out(x, y, g) -> dict[str, float]:
    pred = np.empty_like(y)
    per_fold = []
    for tr, te in LeaveOneGroupOut().split(x, y, g):
        pred[te] = classifier().fit(x[tr], y[tr]).predict(x[te])
        per_fold.append(np.mean(pred[te] == y[te]))
    return {"acc": float(np.mean(pred == y)), "ua": balanced_accuracy(y, pred),
            "fold_min": float(np.min(per_fold)), "fold_max": float(np.max(per_fold))}


def da_pair_scores(source, target) -> dict[str, float]:
    """Source-only vs target-only UA on the target (features, labels, subjects per side)."""
    xs, ys, _ = source
    xt, yt, gt = target
    source_only = classifier().fit(xs, ys).predict(xt)

    def own_stats(x: np.ndarray) -> np.ndarray:
        return (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-12)

    per_domain = classifier().fit(own_stats(xs), ys).predict(own_stats(xt))
    oracle = leave_one_group_out(xt, yt, gt)
    return {"source_only_ua": balanced_accuracy(yt, source_only),
            "source_only_per_domain_std_ua": balanced_accuracy(yt, per_domain),
            "target_only_ua": oracle["ua"], "target_only_fold_min": oracle["fold_min"],
            "target_only_fold_max": oracle["fold_max"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--corpora", nargs="+", default=list(CORPUS_KINDS), choices=CORPUS_KINDS)
    args = ap.parse_args()

    total_gen = 0.0
    sides = {}
    for kind in args.corpora:
        t = time.perf_counter()
        root = synthetic_root(kind, seed=args.seed, cache_dir=args.cache_dir)
        dt = time.perf_counter() - t
        total_gen += dt
        corpus = load_corpus(LOADERS[kind], root)
        x, y, g, t_feat = features(corpus)
        sides[kind] = (x, y, g)
        hours = sum(librosa.get_duration(path=u.path) for u in corpus.utterances) / 3600
        print(f"[{kind}] root={root} ready in {dt:.1f} s; {len(y)} utterances, "
              f"{len(np.unique(g))} subjects, {hours * 60:.1f} min audio; features {t_feat:.1f} s")
        if kind == "modma":
            s = modma_scores(x, y, g)
            print(f"[modma] HC vs MDD, StratifiedGroupKFold(5) by subject, 3 shuffles: "
                  f"utterance acc {s['utterance_acc']:.3f}, subject acc (majority vote) "
                  f"{s['subject_acc']:.3f} "
                  f"(range {s['subject_acc_min']:.3f}-{s['subject_acc_max']:.3f}), "
                  f"subject UA {s['subject_ua']:.3f}")
        else:
            by_session = kind == "iemocap"
            s = leave_one_group_out(x, y, np.array([v[0] for v in g]) if by_session else g)
            what = f"{len(np.unique(y))} classes, leave-one-{'session' if by_session else 'speaker'}-out"
            print(f"[{kind}] {what}: acc {s['acc']:.3f}, UA {s['ua']:.3f} "
                  f"(folds {s['fold_min']:.3f}-{s['fold_max']:.3f})")
    if "casia" in sides and "casia_target" in sides:
        s = da_pair_scores(sides["casia"], sides["casia_target"])
        print(f"[casia -> casia_target] UA on the target: source-only {s['source_only_ua']:.3f}, "
              f"source-only with per-domain standardisation "
              f"{s['source_only_per_domain_std_ua']:.3f}, target-only (leave-one-speaker-out) "
              f"{s['target_only_ua']:.3f} (folds {s['target_only_fold_min']:.3f}-"
              f"{s['target_only_fold_max']:.3f}); "
              f"gap {s['target_only_ua'] - s['source_only_ua']:.3f}")
    print(f"generation (or cache lookup) total: {total_gen:.1f} s")


if __name__ == "__main__":
    main()
