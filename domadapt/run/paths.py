"""Where a run's files go: :class:`RunPaths` names every file of a unit once, and the few
run-wide writers (config.json's fingerprint, the git hash, JSON written atomically)."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domadapt.config import ExperimentConfig
from domadapt.files import atomic_write

log = logging.getLogger("domadapt")


@dataclass(frozen=True)
class RunPaths:
    """The files of one unit (a row on a fold at a learning-curve point, for its seeds) in
    ``out_dir``; :mod:`domadapt.report.runs` reads the result files back by these names.

    ``search``: a sweep's search unit, whose results go under ``validation/`` (scored on
    validation only) instead of ``runs/``.
    """

    out_dir: Path
    key: str  # the row's file-system-safe name (MethodSpec.key)
    fold: int
    seeds: tuple[int, ...]
    point: int | str = "all"
    search: bool = False

    @property
    def _stem(self) -> str:
        return f"fold{self.fold}" + ("" if self.point == "all" else f"-n{self.point}")

    def result(self, seed: int) -> Path:
        """Seed ``seed``'s result JSON."""
        return self.out_dir / ("validation" if self.search else "runs") / self.key / f"{self._stem}-seed{seed}.json"

    @property
    def checkpoint(self) -> Path:
        """The unit's one checkpoint (all its seeds: a vmapped unit trains them together)."""
        first, last = self.seeds[0], self.seeds[-1]
        return self.out_dir / "checkpoints" / self.key / f"{self._stem}-seed{first}{'' if first == last else f'-{last}'}.pt"

    def tensorboard(self, seed: int) -> Path:
        """Seed ``seed``'s tensorboard folder."""
        return self.out_dir / "tensorboard" / self.key / f"{self._stem}-seed{seed}"

    @property
    def features_picture(self) -> Path:
        """The row's held-out feature space before and after training (one per row)."""
        return self.out_dir / "plots" / f"{self.key}-features.png"


def write_json(path: Path, obj: Any) -> None:
    """``obj`` as indented JSON (anything else as its ``str``), written atomically."""
    atomic_write(path, json.dumps(obj, indent=2, default=str))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def tensorboard_writer(folder: Path) -> Any:
    """A tensorboard ``SummaryWriter`` on ``folder``, or None where tensorboard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when a run logs
    except ImportError:  # tensorboard is a dependency, but a run must not die for a log
        log.warning("tensorboard is not importable: no event files written")
        return None
    return SummaryWriter(str(folder))


def git_hash() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def config_fingerprint(cfg: ExperimentConfig) -> str:
    text = json.dumps(cfg.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
