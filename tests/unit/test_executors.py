"""The executor registry, the local executor's worker processes and the Ray executor's
option checks (no Ray instance needed)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from domadapt import executors
from domadapt.errors import DomadaptError
from domadapt.executors import LocalExecutor, LongestFirst, RayExecutor, affordable_jobs, build_executor


def test_local_maps_in_order_in_this_process_and_an_unknown_executor_lists_the_known_ones():
    assert list(build_executor("local").map(lambda shared, item: shared + item, 10, [1, 2, 3])) == [(0, 11), (1, 12), (2, 13)]
    with pytest.raises(DomadaptError, match=r"unknown executor 'dask'; known executors: local, ray"):
        build_executor("dask")


def test_ray_options_are_checked_before_ray_starts():
    with pytest.raises(DomadaptError, match=r"^executor 'ray' option cpus_per_run = 0: expected a number > 0$"):
        build_executor("ray", cpus_per_run=0)
    with pytest.raises(DomadaptError, match=r"^executor 'ray': executor option gpus_per_run = 1.5: expected a share"):
        build_executor("ray", gpus_per_run=1.5)
    with pytest.raises(DomadaptError, match=r"--device cuda with --executor ray needs --gpus-per-run > 0"):
        build_executor("ray", gpus_per_run=0).device(torch.device("cuda"))
    executor = build_executor("ray", cpus_per_run=2)
    assert executor.device(torch.device("cpu")) == torch.device("cpu") and executor.gpus_per_run == 0
    assert executor.threads == 2  # torch threads follow the reserved CPUs
    assert RayExecutor().device(torch.device("cuda:1")) == torch.device("cuda")


def _add(shared, item):
    return shared + item, os.getpid(), torch.get_num_threads(), os.environ.get("OMP_WAIT_POLICY")


def test_two_jobs_map_every_item_in_workers_with_one_passive_thread_each():
    out = dict(build_executor("local", jobs=2).map(_add, 10, [1, 2, 3, 4]))
    assert {i: r[0] for i, r in out.items()} == {0: 11, 1: 12, 2: 13, 3: 14}
    assert os.getpid() not in {r[1] for r in out.values()}
    assert {(r[2], r[3]) for r in out.values()} == {(1, "PASSIVE")}


def test_longest_first_starts_an_untimed_kind_first_in_order_then_the_longest_timed():
    queue = LongestFirst(["a", "b", "c", "a", "b", "c", "a"])
    assert [queue.pop(), queue.pop()] == [0, 1]  # nothing timed yet: in order
    queue.took(0, 5.0)
    queue.took(1, 20.0)
    assert queue.pop() == 2  # kind c is not timed yet
    queue.took(2, 1.0)
    assert [queue.pop() for _ in range(len(queue))] == [4, 3, 6, 5]  # b (20 s), a, a (5 s), c (1 s)
    out = dict(build_executor("local", jobs=2).map(_add, 10, [1, 2, 3, 4, 5], kinds=["x", "y", "x", "y", "x"]))
    assert {i: r[0] for i, r in out.items()} == {0: 11, 1: 12, 2: 13, 3: 14, 4: 15}


def _sleep_or_fail(folder, item):
    if item == "sleep":
        (folder / "sleeper.pid").write_text(str(os.getpid()))
        time.sleep(600)
    while not (folder / "sleeper.pid").exists():
        time.sleep(0.05)
    raise DomadaptError("unit 2 failed")


def test_a_unit_error_in_a_worker_reaches_the_driver_and_stops_the_other_workers(tmp_path):
    with pytest.raises(DomadaptError, match="unit 2 failed"):
        list(build_executor("local", jobs=2).map(_sleep_or_fail, tmp_path, ["sleep", "fail"]))
    with pytest.raises(ProcessLookupError):  # stopped and reaped, not left to sleep its ten minutes
        os.kill(int((tmp_path / "sleeper.pid").read_text()), 0)


def _sleep_long(folder, item):
    (folder / f"worker{item}.pid").write_text(str(os.getpid()))
    time.sleep(600)


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie left unreaped by the container's init is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_workers_end_when_their_driver_is_killed(tmp_path):
    driver = subprocess.Popen(
        [sys.executable, "-c",
         "import pathlib, sys; from domadapt.executors import build_executor; from tests.unit.test_executors import _sleep_long; "
         "list(build_executor('local', jobs=2).map(_sleep_long, pathlib.Path(sys.argv[1]), [0, 1]))", str(tmp_path)],
        cwd=Path(__file__).resolve().parents[2],
    )
    files = [tmp_path / "worker0.pid", tmp_path / "worker1.pid"]
    deadline = time.monotonic() + 120
    while not all(f.exists() and f.read_text() for f in files):
        assert time.monotonic() < deadline and driver.poll() is None, "the workers never started"
        time.sleep(0.1)
    workers = [int(f.read_text()) for f in files]
    driver.send_signal(signal.SIGTERM)  # what kill and pkill send: the driver dies without cleaning up
    driver.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in workers if _running(pid)]
    for pid in left:  # not left asleep for ten minutes by a failing run of this test
        os.kill(pid, signal.SIGKILL)
    assert not left, "a worker outlived its driver"


def test_default_jobs_are_the_cores_the_memory_affords(monkeypatch):
    monkeypatch.setattr(executors, "usable_cores", lambda: 8)
    monkeypatch.setattr(executors, "available_memory", lambda: None)
    assert affordable_jobs(10**9) == 8
    monkeypatch.setattr(executors, "available_memory", lambda: 10 * 2**30)
    assert affordable_jobs(2**30) == 2  # each worker: 1 GiB + 3 copies of a 1 GiB context
    monkeypatch.setattr(executors, "available_memory", lambda: 2**29)
    assert affordable_jobs(0) == 1  # never fewer than one
    with pytest.raises(DomadaptError, match=r"executor 'local' option jobs = 0: expected an int >= 1"):
        build_executor("local", jobs=0)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert build_executor("local", jobs=None).device(cuda) == cuda and build_executor("local", jobs=None).parallel
    on_gpu = build_executor("local", jobs=None)
    on_gpu.device(cuda)
    assert not on_gpu.parallel  # one unit at a time on a GPU unless --jobs says otherwise
    on_cpu = build_executor("local", jobs=None)
    on_cpu.device(cpu)
    assert on_cpu.parallel
