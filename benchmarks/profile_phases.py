"""Where a data-preparation step of the default run spends its time: cProfile, one process.

    python benchmarks/profile_phases.py generation casia|modma [--out DIR]
    python benchmarks/profile_phases.py mfcc|egemaps casia|modma --root CORPUS_ROOT

``generation`` writes the synthetic corpus at its default size (into ``--out``, default a
temporary folder); ``mfcc`` extracts the recipe's MFCC windows and ``egemaps`` the eGeMAPS
functionals of a corpus already written (``--root``), without the cache. Prints the step's
seconds and the 15 functions with the most time of their own.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("generation", "mfcc", "egemaps"))
    parser.add_argument("corpus", choices=("casia", "modma"))
    parser.add_argument("--root", type=Path, help="the written corpus (mfcc, egemaps)")
    parser.add_argument("--out", type=Path, help="where generation writes (default: a temporary folder)")
    a = parser.parse_args()

    from domadapt.corpora import load_corpus
    from domadapt.corpora.synthetic import layouts
    from domadapt.features import extract_segments
    from domadapt.features.functionals import utterance_functionals
    from domadapt.recipe_loader import build_config, load_recipe

    cfg = build_config(load_recipe("casia2modma"))
    if a.step == "generation":
        root = (a.out or Path(tempfile.mkdtemp(prefix="domadapt-profile-"))) / a.corpus
        step = lambda: getattr(layouts, f"write_{a.corpus}")(root)  # noqa: E731
    else:
        if a.root is None:
            parser.error(f"{a.step} needs --root (a written {a.corpus} corpus)")
        corpus = load_corpus(a.corpus, a.root)
        if a.step == "mfcc":
            step = lambda: extract_segments(corpus, cfg.features, cache_dir=False)  # noqa: E731
        else:
            step = lambda: utterance_functionals(corpus, "egemaps", cfg=cfg.features, cache_dir=False)  # noqa: E731
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.runcall(step)
    print(f"{a.step} {a.corpus}: {time.perf_counter() - start:.1f} s")
    pstats.Stats(profile).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
