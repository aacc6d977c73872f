"""One checkpoint format for one replica and for K vmapped replicas.

Written atomically (temp file + rename) at the end of an epoch (every epoch, or once
``Run.checkpoint_every`` seconds have passed); it holds everything an
exact resume needs: the replicas' stacked state, the optimiser and scheduler of the current
stage, the per-replica best scores and best states, the histories, the method's extra state
(eager only) and every random state (torch's global one and each replica's batch generator).
"""

from __future__ import annotations

import io
import logging
import pickle
from pathlib import Path
from typing import Any

import torch

from domadapt.errors import DomadaptError
from domadapt.files import atomic_write

log = logging.getLogger("domadapt")

#: version 2: one format for K >= 1 replicas (version 1 had one per trainer)
CHECKPOINT_VERSION = 2


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` written atomically (:func:`domadapt.files.atomic_write`): a kill never leaves half a file."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write(path, buf.getvalue())


def global_rng_state() -> dict[str, Any]:
    """torch's global random state (and CUDA's, where present)."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_global_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`global_rng_state` saved."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def random_states(generators: list[torch.Generator]) -> dict[str, Any]:
    """Every random state a training run draws from: the global ones and each replica's
    batch generator (``"batches"``)."""
    return {**global_rng_state(), "batches": [g.get_state() for g in generators]}


def set_random_states(state: dict[str, Any], generators: list[torch.Generator]) -> None:
    """Restore what :func:`random_states` saved."""
    set_global_rng_state(state)
    for g, batches in zip(generators, state["batches"]):
        g.set_state(batches)


def save_checkpoint(path: Path, *, seeds: list[int], generators: list[torch.Generator], **fields: Any) -> None:
    """Write one checkpoint: ``fields`` plus the version, the seeds and every random state."""
    atomic_save({"version": CHECKPOINT_VERSION, "seeds": list(seeds), "rng": random_states(generators), **fields}, path)


def load_checkpoint(
    path: Path, *, seeds: list[int], generators: list[torch.Generator], device: torch.device
) -> dict[str, Any] | None:
    """Read ``path`` for the run of ``seeds`` and restore the random states it holds; None
    (with a warning naming the file) when it cannot be read: a file cut short by a killed
    machine, or one holding more than tensors and plain values. Nothing in it is executed
    (``weights_only=True``: tensors, numbers, strings, lists and dicts only).

    Raises DomadaptError naming the file when it is of another version or other seeds.
    """
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("%s: unreadable checkpoint (%s); this unit trains again from its start", path, reason)
        return None
    if not isinstance(saved, dict) or saved.get("version") != CHECKPOINT_VERSION:
        version = saved.get("version") if isinstance(saved, dict) else None
        raise DomadaptError(f"{path}: checkpoint version {version}, expected {CHECKPOINT_VERSION}; delete it or use a new --out")
    if list(saved["seeds"]) != list(seeds):
        raise DomadaptError(f"{path}: checkpoint of seeds {saved['seeds']}, this run trains seeds {list(seeds)}")
    set_random_states(saved["rng"], generators)
    return saved
