"""The Ray executor gives the local executor's results, files and table, and a unit whose
worker is killed mid-training is retried and ends with the same numbers."""

import json
import os
import signal
import threading
import time

import pytest

from domadapt import recipe as recipe_cli

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # a Ray instance and whole recipes

# 3 epochs, a checkpoint after each, so a kill can land between two of them
ARGS = [
    "casia2modma", "--quick", "--quiet", "--threads", "1", "--methods", "target_only,align:mmd",
    "--set", "train.epochs=3", "--set", "train.batch_size=16", "--set", "train.checkpoint_every=0",
]


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_run(tiny_trees, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out"
    assert recipe_cli.main([*ARGS, *_roots(tiny_trees), "--out", str(out)]) == 0
    return out


def _roots(trees):
    return ["--source-root", str(trees["casia"]), "--target-root", str(trees["modma"])]


def _per_run(out):
    """Each (method, fold, seed) run's test metrics and training history."""
    return {
        str(p.relative_to(out)): {k: json.loads(p.read_text())[k] for k in ("metrics", "history")}
        for p in sorted((out / "runs").rglob("*.json"))
    }


def _cmdline(process):
    try:
        return process.cmdline()
    except Exception:  # gone, or a zombie, since it was listed
        return []


def _files(out):
    """The run folder's files, without tensorboard's (named by host, pid and time)."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and "tensorboard" not in p.parts)


def test_ray_executor_gives_the_local_results_files_and_table(ray_instance, local_run, tiny_trees, tmp_path):
    out = tmp_path / "ray"
    assert recipe_cli.main([*ARGS, *_roots(tiny_trees), "--out", str(out), "--executor", "ray"]) == 0
    local, remote = (json.loads((d / "results.json").read_text()) for d in (local_run, out))
    assert [r["metrics"] for r in remote["rows"]] == [r["metrics"] for r in local["rows"]]
    assert _per_run(out) == _per_run(local_run)
    assert _files(out) == _files(local_run)
    table = lambda d: (d / "results.md").read_text().replace(str(d), "OUT")  # noqa: E731
    assert table(out) == table(local_run)


def test_a_worker_killed_mid_unit_is_retried_and_the_numbers_are_unchanged(ray_instance, local_run, tiny_trees, tmp_path):
    psutil = pytest.importorskip("psutil")  # vendored by ray
    out = tmp_path / "ray-killed"
    # two CPUs per unit on a 2-CPU instance: one unit at a time, so the running task is the one to kill
    args = [*ARGS, *_roots(tiny_trees), "--out", str(out), "--executor", "ray", "--cpus-per-run", "2", "--methods", "target_only"]
    codes = []
    driver = threading.Thread(target=lambda: codes.append(recipe_cli.main(args)))
    driver.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and driver.is_alive() and time.monotonic() < deadline:
        checkpoints = list((out / "checkpoints").rglob("*.pt"))
        if checkpoints:  # a unit has finished an epoch and is training the next
            # this test's own Ray workers only (the instance is a child of this process)
            ours = psutil.Process(os.getpid()).children(recursive=True)
            running = [p for p in ours if "ray::_call" in " ".join(_cmdline(p))]
            if running:
                killed = running[0].pid
                os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    driver.join(timeout=300)
    assert killed is not None, "no running unit was found to kill"
    assert codes == [0]
    local = {k: v for k, v in _per_run(local_run).items() if k.startswith("runs/target_only/")}
    assert local and _per_run(out) == local
    assert not list((out / "checkpoints").rglob("*.pt")), "a finished unit leaves no checkpoint"
