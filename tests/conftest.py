import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # tests/tiny.py for every test module


# Recipes in tests train their units in this process unless a test passes --jobs: spawning
# workers (a fresh interpreter importing torch each) costs more than the tiny units they run.
# tests/e2e/test_parallel_units.py and the Ctrl-C test pass --jobs 2 themselves.
os.environ.setdefault("DOMADAPT_JOBS", "1")


def _suite_cache(tmp_path_factory) -> Path:
    """The feature and synthetic-corpus cache of this test session ($DOMADAPT_CACHE)."""
    return tmp_path_factory.getbasetemp() / "domadapt-cache"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's ~/.cache/domadapt."""
    monkeypatch.setenv("DOMADAPT_CACHE", str(_suite_cache(tmp_path_factory)))


@pytest.fixture(scope="session")
def embedded_corpora(tmp_path_factory):
    """The synthetic CASIA and MODMA that a run without data paths takes from the cache, put
    there small before any run asks (4 speakers x 3 files per emotion; 10 subjects at full
    length, so that an utterance spans several windows): at the generator's default sizes
    they take minutes to write and to extract, and what the tests that run without paths
    check (the packaged recipe, a wheel, a benchmark script) does not depend on the size.
    The default sizes are the generator's tests' (tests/unit/corpora/test_synthetic.py)."""
    from domadapt.corpora.synthetic import (
        GENERATOR_VERSION, ROOT_NAMES, is_synthetic_root, synthetic_root, write_casia, write_modma,
    )

    cache = _suite_cache(tmp_path_factory)
    base = cache / "synthetic" / f"v{GENERATOR_VERSION}-seed0"  # synthetic_root's layout
    writers = {
        "casia": lambda root: write_casia(root, files_per_class=3),
        "modma": lambda root: write_modma(root, n_mdd=5, n_hc=5),  # full-length: windows per utterance
    }
    roots = {}
    for kind, write in writers.items():
        root = base / ROOT_NAMES[kind]
        if not is_synthetic_root(root):  # an earlier test without this fixture wrote the default size
            write(root)
        assert synthetic_root(kind, cache_dir=cache) == root  # what a run without paths reads
        roots[kind] = root
    return roots


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One intra-op thread: the tests' tiny models run faster without threads, and a busy
    2-core machine does not stall them (torch's spinning worker threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_trees(tmp_path_factory):
    """Small CASIA / IEMOCAP / MODMA trees without the synthetic marker: to the loaders they
    are indistinguishable from real releases."""
    from domadapt.corpora.synthetic import (
        MARKER_NAME, write_casia, write_casia_target, write_emodb, write_iemocap, write_modma,
    )

    sys.path.insert(0, str(Path(__file__).resolve().parent / "unit" / "corpora"))
    from fake_trees import make_emovo_tree, make_ravdess_tree, make_savee_tree  # the loader tests' trees

    from domadapt.corpora.synthetic.vectors import write_rotated_moons

    base = tmp_path_factory.mktemp("trees")
    roots = {
        "casia": write_casia(base / "CASIA database", files_per_class=3),
        "iemocap": write_iemocap(base / "IEMOCAP", sessions=2, utterances_per_speaker=12, dialogs_per_session=1),
        "modma": write_modma(base / "MODMA", n_mdd=5, n_hc=5, duration_scale=0.3),
        "casia_target": write_casia_target(base / "CASIA target database", files_per_class=2, n_speakers=4),
        "emodb": write_emodb(base / "emodb", texts=2),
        "emovo": _voiced(make_emovo_tree(base)),
        "ravdess": _voiced(make_ravdess_tree(base)),
        "savee": _voiced(make_savee_tree(base)),
    }
    roots["arrays"] = roots["arrays_target"] = write_rotated_moons(base / "moons")
    # the powered target's layout with 8 speakers (the real one has 40): 2 folds leave 4
    # training speakers, enough to carve validation speakers from
    roots["casia_target_powered"] = write_casia_target(base / "CASIA target powered", files_per_class=1, n_speakers=8)
    for root in roots.values():
        (root / MARKER_NAME).unlink(missing_ok=True)
    return roots


def _voiced(root):
    """The loader tests' fake tree with every readable wav replaced by one second of a
    harmonic, vibrato'd voice-like tone at the file's own rate and format: openSMILE (the
    eGeMAPS row) finds no voice in their 50 ms sines."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    for path in sorted(root.rglob("*.wav")):
        try:
            info = sf.info(str(path))
        except RuntimeError:  # the trees' deliberately unreadable files stay as they are
            continue
        if info.frames == 0:
            continue
        sr = info.samplerate
        t = np.arange(sr) / sr
        f0 = rng.uniform(110, 240) * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))
        phase = 2 * np.pi * np.cumsum(f0) / sr
        y = sum(np.sin(k * phase) / k for k in range(1, 8)) * np.hanning(sr) * 0.2
        y = y + 0.002 * rng.standard_normal(sr)
        sf.write(str(path), y.astype(np.float32), sr, subtype=info.subtype)
    return root

