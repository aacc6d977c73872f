"""The executor registry and the Ray executor's option checks (no Ray instance needed)."""

import pytest
import torch

from domadapt.errors import DomadaptError
from domadapt.executors import RayExecutor, build_executor


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
