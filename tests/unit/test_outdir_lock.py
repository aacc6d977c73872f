"""One live run per output folder; a killed run leaves it free."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from domadapt import recipe as recipe_cli
from domadapt.errors import DomadaptError
from domadapt.outdir_lock import OutDirLock

REPO = Path(__file__).resolve().parents[2]


def _holder(folder):
    """Another process that holds ``folder`` until it is killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; from domadapt.outdir_lock import OutDirLock; "
         f"OutDirLock({str(folder)!r}).__enter__(); print('held', flush=True); time.sleep(120)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_driver_is_refused_and_a_killed_one_leaves_the_folder_free(tmp_path, capsys):
    holder = _holder(tmp_path)
    try:
        with pytest.raises(DomadaptError, match=rf"^{tmp_path}: a live domadapt run \(pid {holder.pid} on .+\) is writing here"):
            with OutDirLock(tmp_path):
                pass
        # the recipe command refuses before it loads any data: one line on stderr, exit code 2
        assert recipe_cli.main(["casia2modma", "--quick", "--quiet", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {tmp_path}: a live domadapt run (pid {holder.pid} ") and "\n" not in err
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with OutDirLock(tmp_path):  # the OS released the killed process's lock
        pass


def _free_for_another_process(folder) -> bool:
    code = f"from domadapt.outdir_lock import OutDirLock; OutDirLock({str(folder)!r}).__enter__()"
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True).returncode == 0


def test_the_lock_is_reentrant_in_one_process_and_released_by_the_outermost_exit(tmp_path):
    with OutDirLock(tmp_path):
        with OutDirLock(tmp_path):  # the recipe holds it, the experiment takes it again
            pass
        assert not _free_for_another_process(tmp_path), "still held after the inner exit"
    assert _free_for_another_process(tmp_path)
