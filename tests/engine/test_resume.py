"""A run killed mid-way and resumed ends with the same numbers as one that was never
interrupted (CPU, deterministic): after every checkpoint, for one eager replica and for K
vmapped ones, and for a real SIGKILL."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny import spec, tiny_fold, tiny_train, train

import domadapt.engine.checkpoint as checkpoint_module
from domadapt.engine import Run
from domadapt.errors import DomadaptError

WORKER = Path(__file__).with_name("resume_worker.py")


def _run(checkpoint: Path, method: str, mode: str, *, kill_at: str | None = None) -> dict | None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), str(checkpoint), method, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    last = None
    for line in proc.stdout:
        if kill_at is not None and line.strip() == kill_at:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return None
        last = line
    proc.wait(timeout=120)
    assert proc.returncode == 0, proc.stderr.read()
    return json.loads(last)


@pytest.mark.parametrize(
    "method,kill_at",
    [
        ("pretrain_finetune", "epoch target 3"),  # inside the second stage
        ("pretrain_finetune", "epoch pretrain 2"),  # inside the first stage
        ("multitrain_ae", "epoch adapt 3"),  # between two feature-bank refreshes
    ],
)
def test_sigkill_then_resume_gives_the_uninterrupted_result(tmp_path, method, kill_at):
    reference = _run(tmp_path / "ref.pt", method, "fresh")
    ckpt = tmp_path / "killed.pt"
    assert _run(ckpt, method, "fresh", kill_at=kill_at) is None
    assert ckpt.exists(), "a checkpoint was written before the kill"
    resumed = _run(ckpt, method, "resume")
    assert resumed["history"] == reference["history"]
    assert resumed["probs"] == reference["probs"]


class _Killed(Exception):
    pass


@pytest.mark.parametrize("seeds", [[7], [0, 1, 2]], ids=["eager", "vmapped"])
@pytest.mark.parametrize("kill_after_save", [1, 2, 3, 4, 5])  # stage 1: saves 1-2, stage 2: saves 3-5
def test_resume_after_any_checkpoint_gives_the_uninterrupted_result(tmp_path, monkeypatch, seeds, kill_after_save):
    fold = tiny_fold()
    cfg = tiny_train(epochs=3, pretrain_epochs=2)
    s = spec("pretrain_finetune")
    # dropout on: the random state must be restored too
    plain_h, plain_p, _ = train(fold, s, cfg, seeds, dropout=0.3)

    checkpoint = tmp_path / "unit.pt"
    saves = []
    real_save = checkpoint_module.atomic_save

    def save_then_die(obj, path):
        real_save(obj, path)
        saves.append(path)
        if len(saves) == kill_after_save:
            raise _Killed

    monkeypatch.setattr(checkpoint_module, "atomic_save", save_then_die)
    with pytest.raises(_Killed):
        train(fold, s, cfg, seeds, dropout=0.3, run=Run(checkpoint=checkpoint))
    monkeypatch.setattr(checkpoint_module, "atomic_save", real_save)
    resumed_h, resumed_p, _ = train(fold, s, cfg, seeds, dropout=0.3, run=Run(checkpoint=checkpoint, resume=True))
    assert resumed_h == plain_h
    assert torch.equal(resumed_p, plain_p)


def test_resume_refuses_a_checkpoint_of_other_seeds(tmp_path):
    fold = tiny_fold()
    cfg = tiny_train(epochs=1)
    checkpoint = tmp_path / "c.pt"
    train(fold, spec("target_only"), cfg, [0, 1], run=Run(checkpoint=checkpoint))
    with pytest.raises(DomadaptError, match=r"c\.pt: checkpoint of seeds \[0, 1\], this run trains seeds \[0, 2\]"):
        train(fold, spec("target_only"), cfg, [0, 2], run=Run(checkpoint=checkpoint, resume=True))


def test_checkpoints_are_written_once_checkpoint_every_seconds_have_passed(tmp_path, monkeypatch):
    """0: after every epoch; otherwise at the first epoch end that long after the fit's
    start or last save (here a clock that advances 10 s per read: every other epoch at 15 s)."""
    import types

    import domadapt.engine.loop as loop

    saves: list[tuple[int, int]] = []
    real_save = loop.save_checkpoint
    monkeypatch.setattr(loop, "save_checkpoint", lambda path, **kw: (saves.append((kw["stage"], kw["epoch"])), real_save(path, **kw)))
    fold, cfg = tiny_fold(), tiny_train(epochs=4, pretrain_epochs=2)
    train(fold, spec("pretrain_finetune"), cfg, [0], run=Run(checkpoint=tmp_path / "every.pt"))
    assert saves == [(0, 1), (0, 2), (1, 1), (1, 2), (1, 3), (1, 4)]
    saves.clear()
    clock = iter(range(0, 10_000, 10))
    monkeypatch.setattr(loop, "time", types.SimpleNamespace(monotonic=lambda: float(next(clock))))
    train(fold, spec("pretrain_finetune"), cfg, [0], run=Run(checkpoint=tmp_path / "timed.pt", checkpoint_every=15))
    assert saves == [(0, 2), (1, 2), (1, 4)]


class _TouchOnUnpickle:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_is_read_without_running_code_and_a_damaged_one_means_start_over(tmp_path, caplog):
    """weights_only: a checkpoint whose pickle would run code is refused (never run) like a
    truncated one; either way the unit trains from its start, as a fresh run does."""
    fold = tiny_fold()
    cfg = tiny_train(epochs=2, pretrain_epochs=1)
    s = spec("pretrain_finetune")
    fresh_h, fresh_p, _ = train(fold, s, cfg, [3])
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"version": checkpoint_module.CHECKPOINT_VERSION, "seeds": [3], "rng": _TouchOnUnpickle(marker)}, evil)
    cut = tmp_path / "cut.pt"
    train(fold, s, cfg, [3], run=Run(checkpoint=cut))  # a real checkpoint (left after its last epoch) ...
    cut.write_bytes(cut.read_bytes()[:100])  # ... cut short, as by a killed machine
    for damaged in (evil, cut):
        with caplog.at_level("WARNING", logger="domadapt"):
            h, p, _ = train(fold, s, cfg, [3], run=Run(checkpoint=damaged, resume=True))
        assert h == fresh_h and torch.equal(p, fresh_p)
        assert any(str(damaged) in r.getMessage() and "unreadable checkpoint" in r.getMessage() for r in caplog.records)
        caplog.clear()
    assert not marker.exists()
