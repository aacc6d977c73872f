"""Where the units of an experiment run: in this process (``local``) or as Ray tasks (``ray``).

An executor maps one function over a list of items and yields ``(index, result)`` as the
results come in; the experiment hands it its one per-unit function
(:func:`domadapt.run.unit.execute_unit`), so both executors run the same unit code::

    with build_executor("ray", cpus_per_run=1) as executor:
        for i, result in executor.map(fn, shared, items):
            ...

``shared`` (the run context: configuration and segment tensors) goes to every call; Ray
puts it into its object store once. Ray is imported only when the ``ray`` executor starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from domadapt.errors import DomadaptError
from domadapt.registries import EXECUTORS
from domadapt.plugins import import_modules
from domadapt.registry import check_fields, option


class Executor:
    """In-process base: ``map`` runs the calls one after another, in order."""

    #: whether results come from other processes (then the driver writes what they return)
    remote = False

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Release what the executor started (nothing, in process)."""

    def device(self, driver: torch.device) -> torch.device:
        """The device the units use, given the driver's."""
        return driver

    def map(self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        for i, item in enumerate(items):
            yield i, fn(shared, item)


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """Every unit in this process, one after another (the default)."""


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    """Every unit a Ray task: a local Ray instance (``address=None``) or a cluster (``auto``,
    ``HOST:PORT``); a task whose worker dies is retried and resumes from its checkpoint.

    Options:
        address: None starts a local instance; ``auto`` or ``HOST:PORT`` joins one that
            ``ray start`` runs.
        cpus_per_run: CPUs reserved per unit (also its torch threads unless ``threads``).
        gpus_per_run: GPU share per unit (0.25 packs four units on one GPU); None = 1 when
            the experiment runs on CUDA, else 0.
        max_retries: how often Ray restarts a unit whose worker process died.
        imports: the ``--import`` modules, imported in every worker before its unit runs
            (they register what the configuration names).
        threads: torch threads per unit (default ``cpus_per_run``, at least 1).
    """

    remote = True

    @dataclass(frozen=True)
    class Options:
        address: str | None = None
        cpus_per_run: float = option(1.0, gt=0.0)
        gpus_per_run: float | None = option(None, min=0.0)
        max_retries: int = option(3, min=0)
        imports: tuple[str, ...] = ()
        threads: int | None = option(None, min=1)

        def __post_init__(self) -> None:
            check_fields(self, where="executor option")
            gpus = self.gpus_per_run
            if gpus is not None and gpus > 1 and gpus != int(gpus):
                raise DomadaptError(
                    f"executor option gpus_per_run = {gpus}: expected a share in [0, 1] or a whole number of GPUs"
                )

    def __init__(self, *, options: Options | None = None) -> None:
        o = options if options is not None else self.Options()
        self.address = o.address
        self.cpus_per_run = o.cpus_per_run
        self.gpus_per_run = o.gpus_per_run
        self.max_retries = o.max_retries
        self.imports = o.imports
        self.threads = o.threads or max(1, int(o.cpus_per_run))
        self._started = False

    def device(self, driver: torch.device) -> torch.device:
        if driver.type == "cuda":
            if self.gpus_per_run is None:
                self.gpus_per_run = 1.0
            if self.gpus_per_run <= 0:
                raise DomadaptError("--device cuda with --executor ray needs --gpus-per-run > 0 (0.25: four runs per GPU)")
            return torch.device("cuda")  # Ray hands each task its GPU as the only visible one
        if self.gpus_per_run is None:
            self.gpus_per_run = 0.0
        return driver

    def _ray(self):
        import ray

        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=True)
            self._started = True
        return ray

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def map(self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        ray = self._ray()
        task = ray.remote(_call).options(
            num_cpus=self.cpus_per_run,
            num_gpus=self.gpus_per_run or 0,
            max_retries=self.max_retries,  # a dead worker only; an exception of the unit is final
        )
        shared_ref = ray.put(shared)
        pending = {task.remote(fn, shared_ref, item, self.imports, self.threads): i for i, item in enumerate(items)}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(ready[0])
            yield i, ray.get(ready[0])


def _call(fn: Callable[[Any, Any], Any], shared: Any, item: Any, imports: tuple[str, ...], threads: int) -> Any:
    """One Ray task: the user's modules, the thread count, then the call."""
    import_modules(imports)
    torch.set_num_threads(threads)
    return fn(shared, item)


def build_executor(name: str, **options: Any) -> Executor:
    """``local`` or ``ray`` (see :class:`RayExecutor` for its options)."""
    return EXECUTORS.build(name, **options)
