"""Feature-vector domains: precomputed vectors (eGeMAPS functionals, embeddings, toy problems)
as a corpus, so every method runs on them through the same engine, splits and reports.

The file ``<root>/arrays.npz`` (option ``file``; a ``.csv`` is read as a table) holds one
row per example:

``.npz`` keys
    ``X`` ``[N, D]`` float features; ``y`` ``[N]`` labels (strings or integers); ``subject``
    ``[N]`` the group a subject-independent split keeps together (a speaker; for toy data any
    block of rows); ``domain`` ``[N]`` the domain name of each row. Optional: ``split``
    ``[N]`` ``train`` / ``dev`` / ``test`` per row, the same for every row of a subject
    (``eval.splitter = "official"`` then uses it); ``classes`` ``[K]`` the label order
    (default: the sorted labels found in the file).
``.csv`` columns
    ``y``, ``subject``, ``domain`` and optionally ``split``; every other column is a feature,
    in file order.

One file may hold several domains: the corpus ``arrays`` reads the rows of domain
``source`` and ``arrays_target`` those of ``target`` (option ``domain`` picks another), so a
recipe names ``source = ["arrays"]``, ``target = "arrays_target"`` and both roots may be the
same folder. Each row becomes a segment of one frame: ``SegmentSet.x`` is ``[N, D, 1]``
(:func:`domadapt.features.frontend.vector_segments`), read by the ``mlp`` backbone. With no root, the synthetic
stand-in is the rotated two-moons problem of Ganin et al. (2016) (:func:`domadapt.corpora.synthetic.vectors.write_rotated_moons`).
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from domadapt.corpora.base import Corpus, Utterance
from domadapt.errors import DomadaptError
from domadapt.registries import CORPORA

REQUIRED_KEYS = ("X", "y", "subject", "domain")
SPLIT_ROLES = ("train", "dev", "test")
DEFAULT_FILE = "arrays.npz"


@dataclass
class VectorCorpus(Corpus):
    """A corpus of feature vectors: each utterance is one row of ``vectors``.

    ``vectors`` ``[R, D]`` float32 holds every row of the file (filtering a corpus drops
    utterances, never rows), and each utterance's ``meta["row"]`` is its row.
    """

    vectors: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        body = [row for row in reader if row]
    if any(len(row) != len(header) for row in body):
        raise DomadaptError(f"{path}: every row must have the header's {len(header)} columns")
    cells = np.array(body, dtype=str).reshape(len(body), len(header))
    meta = {"y", "subject", "domain", "split"}
    columns = {c: cells[:, i] for i, c in enumerate(header) if c in meta}
    features = [i for i, c in enumerate(header) if c not in meta]
    if features:
        try:
            columns["X"] = cells[:, features].astype(np.float32)
        except ValueError:
            raise DomadaptError(f"{path}: a feature column holds a non-number") from None
    return columns


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The checked columns of an arrays file (see the module doc); a bad file raises
    DomadaptError naming the file and what is wrong."""
    if not path.is_file():
        raise DomadaptError(f"{path}: no such file (expected {', '.join(REQUIRED_KEYS)} in a .npz or .csv)")
    try:
        data = _read_csv(path) if path.suffix.lower() == ".csv" else _read_npz(path)
    except DomadaptError:
        raise
    except Exception as e:  # a truncated or foreign file: one line, not a traceback
        raise DomadaptError(f"{path}: not a readable arrays file ({type(e).__name__}: {e})") from None
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        what = "column" if path.suffix.lower() == ".csv" else "key"
        raise DomadaptError(f"{path}: missing {what}(s) {', '.join(missing)} (expected {', '.join(REQUIRED_KEYS)})")
    x = np.asarray(data["X"])
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
        raise DomadaptError(f"{path}: X must be a numeric [N, D] array, got {x.dtype} of shape {x.shape}")
    n = len(x)
    for key in ("y", "subject", "domain", "split"):
        if key in data and np.shape(data[key]) != (n,):
            raise DomadaptError(f"{path}: {key} must have shape ({n},) like X's rows, got {np.shape(data[key])}")
    if not np.isfinite(x).all():
        raise DomadaptError(f"{path}: X holds NaN or infinite values")
    data["X"] = x.astype(np.float32)
    return data


@CORPORA.register("arrays")
def load_arrays(root: str | Path, *, file: str = DEFAULT_FILE, domain: str = "source") -> VectorCorpus:
    """The rows of domain ``domain`` in ``<root>/<file>`` (layout: the module doc)."""
    root = Path(root)
    if not root.is_dir():
        raise DomadaptError(f"arrays root {root} does not exist (expected a folder holding {file})")
    path = root / file
    data = read_arrays(path)
    domains = np.asarray(data["domain"]).astype(str)
    rows = np.flatnonzero(domains == domain)
    if rows.size == 0:
        raise DomadaptError(f"{path}: no rows of domain {domain!r} (found: {', '.join(sorted(set(domains)))})")
    labels = np.asarray(data["y"]).astype(str)
    subjects = np.asarray(data["subject"]).astype(str)
    classes = tuple(np.asarray(data["classes"]).astype(str)) if "classes" in data else tuple(sorted(set(labels)))
    unknown = sorted(set(labels[rows]) - set(classes))
    if unknown:
        raise DomadaptError(f"{path}: label(s) {', '.join(unknown[:5])} are not in classes ({', '.join(classes)})")
    official = _official_split(path, data, rows, subjects) if "split" in data else None
    utterances = [
        Utterance(path=Path(f"{path}#{i}"), label=labels[i], subject=subjects[i], domain=domain, meta={"row": str(i)})
        for i in rows.tolist()
    ]
    return VectorCorpus(
        name=_corpus_name(domain), root=root, classes=classes, utterances=utterances,
        official_split=official, vectors=data["X"],
    )


def _corpus_name(domain: str) -> str:
    """``arrays`` for the source rows, ``arrays_target`` for the target's, else ``arrays_<domain>``."""
    return {"source": "arrays", "target": "arrays_target"}.get(domain, f"arrays_{domain}")


@CORPORA.register("arrays_target")
def load_arrays_target(root: str | Path, *, file: str = DEFAULT_FILE, domain: str = "target") -> VectorCorpus:
    """:func:`load_arrays` reading the target rows of ``<root>/<file>``: the target side of an
    arrays recipe."""
    return load_arrays(root, file=file, domain=domain)


def _official_split(path: Path, data: dict, rows: np.ndarray, subjects: np.ndarray) -> dict[str, str]:
    roles = np.asarray(data["split"]).astype(str)
    bad = sorted(set(roles[rows]) - set(SPLIT_ROLES))
    if bad:
        raise DomadaptError(f"{path}: split value(s) {', '.join(bad)}; expected one of {', '.join(SPLIT_ROLES)}")
    assignment: dict[str, str] = {}
    for subject, role in zip(subjects[rows].tolist(), roles[rows].tolist()):
        if assignment.setdefault(subject, role) != role:
            raise DomadaptError(f"{path}: subject {subject!r} has rows in both {assignment[subject]!r} and {role!r}")
    return assignment


# --------------------------------------------------------------------------- rotated moons


MOONS_ANGLE_DEG = 35.0  # Ganin et al. (2016), section 5.1: the target is the source rotated by 35 degrees
MOONS_POINTS = 300  # per domain, as Ganin et al.'s toy experiment
MOONS_NOISE = 0.1


def rotate(x: np.ndarray, degrees: float) -> np.ndarray:
    """Points ``[N, 2]`` rotated counter-clockwise about the origin."""
    a = np.deg2rad(degrees)
    return x @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]], dtype=x.dtype)


def rotated_moons(
    *, seed: int, n: int = MOONS_POINTS, angle: float = MOONS_ANGLE_DEG, subjects: int = 10, test: int = 0
) -> dict[str, np.ndarray]:
    """Two-moons source rows and the same distribution rotated by ``angle`` as target rows
    (``make_moons(n, noise=0.1)`` each), as the columns of an arrays file.

    Rows are grouped into ``subjects`` blocks per domain (groups for a subject k-fold). With
    ``test > 0`` the target gets ``test`` more rows, and a ``split`` column marks the target's
    first ``n`` rows ``train`` and the fresh draw ``test`` (source rows ``train``).
    """
    from sklearn.datasets import make_moons

    xs, ys = make_moons(n, noise=MOONS_NOISE, random_state=seed)
    xt, yt = make_moons(n + test, noise=MOONS_NOISE, random_state=seed + 10_000)
    xt = rotate(xt, angle)
    order = np.random.default_rng(seed).permutation(n)

    def groups(prefix: str, count: int) -> np.ndarray:
        return np.array([f"{prefix}{i % subjects:02d}" for i in range(count)])

    columns = {
        "X": np.concatenate([xs, xt]).astype(np.float32),
        "y": np.concatenate([ys, yt]).astype(np.int64),
        "subject": np.concatenate([groups("s", n)[order], groups("t", n), groups("test", test)]),
        "domain": np.array(["source"] * n + ["target"] * (n + test)),
    }
    if test:
        columns["split"] = np.array(["train"] * (2 * n) + ["test"] * test)
    return columns


def write_arrays(path: Path, columns: dict[str, np.ndarray]) -> Path:
    """Save ``columns`` as an arrays ``.npz`` (read back with :func:`read_arrays`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **columns)
    return path
