"""A run killed with SIGKILL mid-way and resumed ends with the same numbers as one that
was never interrupted (CPU, deterministic)."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

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
