"""The feature-vector stand-in: rotated two-moons as an arrays file (:mod:`domadapt.corpora.arrays`)."""

from __future__ import annotations

from pathlib import Path

from domadapt.corpora.arrays import DEFAULT_FILE, MOONS_ANGLE_DEG, MOONS_NOISE, MOONS_POINTS, rotated_moons, write_arrays
from domadapt.corpora.synthetic.layouts import _write_marker


def write_rotated_moons(root: Path, *, seed: int = 0, progress: bool = False, jobs: int | None = 1) -> Path:
    """The synthetic stand-in of ``arrays`` / ``arrays_target``: rotated two-moons in
    ``<root>/arrays.npz`` (source rows then the 35-degree-rotated target rows); one small
    array, written in this process whatever ``jobs``."""
    write_arrays(root / DEFAULT_FILE, rotated_moons(seed=seed))
    _write_marker(root, "arrays", seed, {"n": MOONS_POINTS, "angle": MOONS_ANGLE_DEG, "noise": MOONS_NOISE})
    return root
