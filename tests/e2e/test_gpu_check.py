"""benchmarks/gpu_check.sh stays ready to fire: its dry run on the CPU passes every step at
tiny sizes and writes its figures to a temporary copy of RESULTS.md, never the real one."""

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the recipe three times at tiny sizes, from an empty cache

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["CUDA tests", "run_all", "default recipe", "seeds vmapped vs sequential",
         "ray import (packing skipped in a dry run)", "bf16 autocast on", "bf16 autocast off"]


@pytest.mark.usefixtures("embedded_corpora")  # its recipe runs take no data paths
def test_the_dry_run_passes_every_step_and_leaves_results_md_alone():
    results = ROOT / "benchmarks" / "RESULTS.md"
    before = results.read_bytes()
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--dry-run"],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert results.read_bytes() == before
    appended = proc.stdout.split("== appended to ")[1]
    assert "DRY RUN" in appended.splitlines()[2]
    lines = [line for line in appended.splitlines() if line.startswith("- ")]
    assert [line[2:].split(":")[0] for line in lines] == STEPS
    assert all(" wall " in line for line in lines)
    assert "ondevice_batches_speedup ratio=" in lines[1] and "seeds_vmapped_over_sequential_lower_is_better ratio=" in lines[3]
