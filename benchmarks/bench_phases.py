"""The default run's data preparation, one process against worker processes, side by side.

    python benchmarks/bench_phases.py [--jobs N] [--quick]

At the default sizes of ``casia2modma`` (``--quick``: about a quarter of them, CASIA's 4
speakers x 5 files per emotion and 12 MODMA subjects, where the workers' start weighs more),
from scratch in a temporary folder, each step under each setting in turn:

1. writing the synthetic corpora (``casia``, ``modma``): as before (one process, each WAV
   written by soundfile to its path), in one process now (each WAV encoded in memory,
   ``jobs=1``) and in ``--jobs`` worker processes (default: one per core); the sha256 of
   every file of every setting must be the same;
2. MFCC windows (``extract_segments``, one process: what the run does);
3. the eGeMAPS functionals of the target (the baseline row's), ``jobs=1`` against
   ``--jobs``; their bytes, kept utterances and skips must be the same.

Prints each step's wall seconds (and this process's CPU seconds where the work is done in
it), the speedups (before / one process / workers) and, last, ``preparation_speedup
ratio=`` over generation and functionals together. On a loaded machine only the ratios
mean anything, and where the scheduler shares the CPU between sessions first
(``/proc/sys/kernel/sched_autogroup_enabled``), workers get no more of it than one
process: the workers' gain shows only on idle cores.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

import soundfile as sf

from domadapt.corpora import load_corpus
from domadapt.corpora.synthetic import layouts
from domadapt.executors import usable_cores
from domadapt.features import extract_segments
from domadapt.features.functionals import utterance_functionals
from domadapt.recipe_loader import build_config, load_recipe

NAME = "preparation_speedup"
SIZES = {  # the writers' keywords at the default sizes, and at --quick's
    "casia": ({}, {"files_per_class": 5}),
    "modma": ({}, {"n_mdd": 6, "n_hc": 6}),
}


def tree_digest(root: Path) -> str:
    """One sha256 over every file's relative path and bytes."""
    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(root)).encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _write_to_path(path: Path, y, sr: int, subtype: str) -> None:
    """How the writers wrote a WAV before: soundfile to the path (which syncs it to disk)."""
    sf.write(path, y, sr, subtype=subtype)


def timed(fn):
    """Wall seconds of ``fn()`` and its result; the CPU seconds of this process are kept in
    CPU[-1] (the work done here: on a loaded machine a steadier figure than the wall time,
    but blind to worker processes)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    CPU.append(time.process_time() - cpu)
    return time.perf_counter() - start, out


CPU: list[float] = []


def generation(tmp: Path, quick: bool, jobs: int) -> tuple[dict[str, float], dict[str, Path]]:
    """Seconds per (corpus, setting); the roots written with ``jobs`` workers."""
    seconds, roots = {}, {}
    for kind, sizes in SIZES.items():
        kw = sizes[quick]
        writer = getattr(layouts, f"write_{kind}")
        digests = {}
        for setting in ("before", "1", "N"):
            root = tmp / setting / kind
            if setting == "before":
                now = layouts._write_wav
                layouts._write_wav = _write_to_path
                try:
                    s, _ = timed(lambda: writer(root, jobs=1, **kw))
                finally:
                    layouts._write_wav = now
            else:
                s, _ = timed(lambda: writer(root, jobs=1 if setting == "1" else jobs, **kw))
            seconds[kind, setting] = s
            seconds[kind, setting, "cpu"] = CPU[-1]
            digests[setting] = tree_digest(root)
        if len(set(digests.values())) != 1:
            raise SystemExit(f"{kind}: the settings wrote different bytes: {digests}")
        print(f"{kind}: written as before {seconds[kind, 'before']:.1f} s (CPU {seconds[kind, 'before', 'cpu']:.1f} s), "
              f"in one process {seconds[kind, '1']:.1f} s (CPU {seconds[kind, '1', 'cpu']:.1f} s), "
              f"in {jobs} workers {seconds[kind, 'N']:.1f} s; every file the same (sha256 {digests['N'][:16]})")
        roots[kind] = root
    return seconds, roots


def run(quick: bool = False, device: str = "cpu", jobs: int | None = None) -> float:
    """``device`` is run_all's argument: every step here runs on the CPU."""
    jobs = jobs or usable_cores()
    cfg = build_config(load_recipe("casia2modma"), quick=False)
    with tempfile.TemporaryDirectory(prefix="domadapt-phases-") as tmp:
        gen, roots = generation(Path(tmp), quick, jobs)
        corpora = {kind: load_corpus(kind, root) for kind, root in roots.items()}
        mfcc = {kind: timed(lambda: extract_segments(c, cfg.features, cache_dir=False))[0] for kind, c in corpora.items()}
        print("MFCC windows (one process): " + ", ".join(f"{k} {s:.1f} s" for k, s in mfcc.items()))
        modma = corpora["modma"]
        one_s, one = timed(lambda: utterance_functionals(modma, "egemaps", cfg=cfg.features, cache_dir=False, jobs=1))
        one_cpu = CPU[-1]
        many_s, many = timed(lambda: utterance_functionals(modma, "egemaps", cfg=cfg.features, cache_dir=False, jobs=jobs))
        if one.x.tobytes() != many.x.tobytes() or one.keys != many.keys or one.skipped != many.skipped:
            raise SystemExit("eGeMAPS functionals: the workers' rows differ from one process's")
        print(f"modma eGeMAPS functionals ({len(one)} utterances): one process {one_s:.1f} s (CPU {one_cpu:.1f} s), "
              f"{jobs} workers {many_s:.1f} s; the same bytes")
    before, single, parallel = (sum(s for key, s in gen.items() if key[1:] == (setting,)) for setting in ("before", "1", "N"))
    cpu_before, cpu_single = (sum(s for key, s in gen.items() if key[1:] == (setting, "cpu")) for setting in ("before", "1"))
    print(f"generation_cpu_in_memory ratio={cpu_before / cpu_single:.3f}")
    print(f"generation_speedup_in_memory ratio={before / single:.3f}")
    print(f"generation_speedup_workers ratio={single / parallel:.3f}")
    print(f"generation_speedup_total ratio={before / parallel:.3f}")
    print(f"functionals_speedup_workers ratio={one_s / many_s:.3f}")
    ratio = (before + one_s) / (parallel + many_s)
    print(f"{NAME} ratio={ratio:.3f}")
    return ratio


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a quarter of the default sizes")
    parser.add_argument("--jobs", type=int, help="worker processes (default: one per usable core)")
    a = parser.parse_args()
    run(a.quick, jobs=a.jobs)
