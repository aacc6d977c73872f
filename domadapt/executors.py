"""Where the units of an experiment run: in this process (``local``) or as Ray tasks (``ray``).

An executor maps one function over a list of items and yields ``(index, result)`` as the
results come in; the experiment hands it its one per-unit function
(:func:`domadapt.run.unit.execute_unit`), so every executor runs the same unit code::

    with build_executor("local", jobs=2) as executor:
        for i, result in executor.map(fn, shared, items):
            ...

``shared`` (the run context: configuration and segment tensors) goes to every call; Ray
puts it into its object store once. Ray is imported only when the ``ray`` executor starts.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from domadapt.errors import DomadaptError
from domadapt.registries import BACKBONES, CORPORA, EXECUTORS, LEARNERS, LOSSES, METHODS, SCHEDULES, SPLITTERS, VALIDATORS
from domadapt.plugins import import_modules
from domadapt.registry import check_fields, option

#: a worker's memory besides the run context: the interpreter, torch and a unit training.
#: With CONTEXT_COPIES (the context, the fold's tensors built from it, their standardised
#: copies) an estimate, checked against one worker's resident size (benchmarks/RESULTS.md,
#: "Parallel units and contention")
WORKER_BASE_BYTES = 1 << 30
CONTEXT_COPIES = 3



class Executor:
    """In-process base: ``map`` runs the calls one after another, in order."""

    #: whether results come from other processes (then the driver writes what they return)
    remote = False
    #: whether several units run at once (their per-epoch progress lines would interleave)
    parallel = False
    #: how many items the running map has under way at once (set once it has started)
    concurrency = 1

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Release what the executor started (nothing, in process)."""

    def device(self, driver: torch.device) -> torch.device:
        """The device the units use, given the driver's."""
        return driver

    def preparation_jobs(self) -> int | None:
        """Worker processes for the data preparation before the units (synthetic corpora,
        utterance functionals; :func:`preparation_executor`): 1, this process."""
        return 1

    def map(
        self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any], *, kinds: Sequence[Hashable] | None = None
    ) -> Iterator[tuple[int, Any]]:
        """``(index, fn(shared, item))`` for every item, as the results come in.

        ``kinds`` (one per item) says which items take about as long (a unit's row): an
        executor running several at once may use it to start the longest first
        (:class:`LocalExecutor` does). In this process the items run in order."""
        for i, item in enumerate(items):
            yield i, fn(shared, item)


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """The units on this machine: ``jobs`` worker processes at a time, each with ``threads``
    torch threads; ``jobs=1`` runs them in this process, one after another.

    Small models scale poorly over intra-op threads, so by default every core runs its own
    unit with one thread (docs/performance.md). A unit's numbers come from its seeds and its
    thread count (the order of a sum split over threads), never from the process that
    trains it: with the same ``threads`` every ``jobs`` gives the same results. The workers
    start the items of the longest kind first (:class:`LongestFirst`) and fork from a fork
    server that has imported domadapt once (:func:`worker_context`).

    Options:
        jobs: worker processes; None = one per usable core, fewer when the memory available
            does not hold that many copies of the run (:func:`affordable_jobs`), 1 on CUDA
            (several units on one GPU: ``--executor ray --gpus-per-run 0.25``). The default,
            1, keeps the library's units in the caller's process, where what it registered
            is known; the command line's ``--jobs`` defaults to None.
        threads: torch threads per unit; None = 1 in a worker, and in this process (``jobs=1``)
            the threads torch has.
        imports: the ``--import`` modules, imported in every worker before its first unit
            (they register what the configuration names).
    """

    @dataclass(frozen=True)
    class Options:
        jobs: int | None = option(1, min=1)
        threads: int | None = option(None, min=1)
        imports: tuple[str, ...] = ()

        def __post_init__(self) -> None:
            check_fields(self, where="executor option")

    def __init__(self, *, options: Options | None = None, start_method: str = "forkserver") -> None:
        o = options if options is not None else self.Options()
        self.jobs = o.jobs
        self.threads = o.threads
        self.imports = o.imports
        self.start_method = start_method  # how the workers start (worker_context)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    @property
    def parallel(self) -> bool:  # type: ignore[override]
        return self.jobs != 1

    def preparation_jobs(self) -> int | None:
        """As many as run units: the preparation uses the cores the units will."""
        return self.jobs

    def device(self, driver: torch.device) -> torch.device:
        if driver.type == "cuda" and self.jobs is None:
            self.jobs = 1
        return driver

    def map(
        self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any], *, kinds: Sequence[Hashable] | None = None
    ) -> Iterator[tuple[int, Any]]:
        payload = pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL) if self.jobs != 1 else b""
        jobs = min(self.jobs or affordable_jobs(len(payload)), len(items))
        self.concurrency = max(1, jobs)
        if jobs <= 1:
            before = torch.get_num_threads()
            torch.set_num_threads(self.threads or before)
            try:
                yield from super().map(fn, shared, items)
            finally:
                torch.set_num_threads(before)  # the caller's own work (feature extraction) keeps its threads
            return
        self._pool = pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs, mp_context=worker_context(self.start_method),
            initializer=_start_worker, initargs=(payload, self.imports, self.threads or 1),
        )
        queue = LongestFirst(kinds if kinds is not None else range(len(items)))
        running: dict[concurrent.futures.Future, tuple[int, float]] = {}

        def start() -> None:
            i = queue.pop()
            running[pool.submit(_call_in_worker, fn, items[i])] = i, time.monotonic()

        try:
            with _ctrl_c_ignored():  # inherited by a spawned worker from its start (see _start_worker)
                for _ in range(jobs):  # a worker each, started by its first item; later items reuse them
                    start()
            while running:
                done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    i, began = running.pop(future)
                    queue.took(i, time.monotonic() - began)
                    if queue:  # the freed worker goes on before the caller handles the result
                        start()
                    yield i, future.result()
        finally:
            self.close()  # a unit's error, Ctrl-C or the last result: no worker outlives the map

    def close(self) -> None:
        """Stop the workers at once: a unit cut short resumes from its last checkpoint."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # the pool's processes, taken before shutdown forgets them: the pool itself can only
        # wait for a running unit to end (terminate_workers() comes with Python 3.14)
        processes = list((pool._processes or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join()


class LongestFirst:
    """The order :class:`LocalExecutor` starts items in, when several run at once: an item
    of a kind not timed yet first, in the given order (its time is learnt), then one of the
    kind that took longest. Units of one row take about as long, fold after fold; started
    longest first, the run ends on short units instead of one long unit alone on the last
    busy core (the classic longest-processing-time rule; benchmarks/RESULTS.md, "Longest
    units first")."""

    def __init__(self, kinds: Sequence[Hashable]) -> None:
        self.kinds = list(kinds)
        self.pending = list(range(len(self.kinds)))
        self.seconds: dict[Hashable, float] = {}

    def __len__(self) -> int:
        return len(self.pending)

    def pop(self) -> int:
        """The next item to start."""
        i = min(self.pending, key=lambda i: (self.kinds[i] in self.seconds, -self.seconds.get(self.kinds[i], 0.0), i))
        self.pending.remove(i)
        return i

    def took(self, i: int, seconds: float) -> None:
        """Item ``i`` took ``seconds``: its kind's time from now on."""
        self.seconds[self.kinds[i]] = seconds


#: what a worker needs, imported once by the fork server the workers start from: the data
#: preparation's steps and a unit (the registries' built-ins, which a unit's configuration names)
WORKER_MODULES = [
    "domadapt.corpora.synthetic.layouts", "domadapt.features.functionals", "domadapt.run.unit",
    *(registry.builtins for registry in (CORPORA, BACKBONES, LOSSES, SCHEDULES, METHODS, LEARNERS, SPLITTERS, VALIDATORS)),
]


def worker_context(start_method: str = "forkserver") -> multiprocessing.context.BaseContext:
    """The multiprocessing context workers start in: ``forkserver`` where there is one (not
    on Windows: there ``spawn``). The fork server is a fresh interpreter that imports
    :data:`WORKER_MODULES` once and never starts OpenMP threads, so forking it is safe (see
    :func:`_start_worker`) and a worker starts at once, where ``spawn`` imports torch and
    domadapt again in every new worker (seconds each)."""
    if start_method != "forkserver" or "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_MODULES)  # only before the server starts: the first caller's list
    return context


def start_worker_server() -> None:
    """Start the fork server now, so that it imports :data:`WORKER_MODULES` on an idle core
    while this process loads its configuration and data (a no-op where there is none, and
    when it runs already)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        worker_context()
        from multiprocessing import forkserver

        forkserver.ensure_running()


def preparation_executor(jobs: int | None) -> LocalExecutor:
    """The executor of one step of the data preparation before the units (writing a
    synthetic corpus, utterance functionals): ``jobs`` worker processes (None: one per core
    as memory allows; 1: this process), one torch thread each.

    Its workers fork from the fork server (:func:`worker_context`), so the preparation's
    several short steps do not import torch again in new workers each time.
    """
    return LocalExecutor(options=LocalExecutor.Options(jobs=jobs, threads=1))


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as ``taskset`` or a container
    sets it), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes the system can give without swapping (Linux ``MemAvailable``; free pages
    elsewhere, or None). Read here because the standard library has no call for it."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def affordable_jobs(context_bytes: int) -> int:
    """One worker per usable core, as many as the available memory holds (at least one)."""
    cores = usable_cores()
    memory = available_memory()
    if memory is None:
        return cores
    per_worker = WORKER_BASE_BYTES + CONTEXT_COPIES * context_bytes
    return max(1, min(cores, memory // per_worker))


@contextlib.contextmanager
def _ctrl_c_ignored() -> Iterator[None]:
    """SIGINT ignored meanwhile (see :func:`_start_worker`); only the main thread may set it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


#: the run context a worker received once, for all its calls
_SHARED: Any = None


def _start_worker(payload: bytes, imports: tuple[str, ...], threads: int) -> None:
    """A worker: forked from the fork server or, without one, a fresh interpreter (never a
    fork of the driver: forking a process whose torch has started its OpenMP threads copies
    a runtime that may hold a lock no thread will release). It ignores Ctrl-C: the driver
    alone handles it and stops the workers, so a terminal's Ctrl-C, which reaches every
    process of the group, prints no traceback per worker. A driver killed outright
    (SIGKILL, or ``kill``'s SIGTERM, which it does not handle) cannot stop them: each worker
    watches its parent (the fork server, which ends with the driver) and ends itself when
    it is gone (:func:`_exit_with_parent`)."""
    global _SHARED
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _release_fork_server()
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="domadapt-parent-watch", daemon=True).start()
    import_modules(imports)
    torch.set_num_threads(threads)
    _SHARED = pickle.loads(payload)


def _release_fork_server() -> None:
    """Close this worker's copy of the write end of the fork server's "alive" pipe. Every
    process the server forks gets one, and the server ends only once all are closed: held
    by a worker, it would keep the server, the parent the worker watches, alive after the
    driver died. (Nothing else in a worker uses it; a spawned worker has none.)"""
    try:
        from multiprocessing import forkserver
    except ImportError:  # no fork server on this platform
        return
    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if isinstance(fd, int):
        os.close(fd)
        server._forkserver_alive_fd = None


def _exit_with_parent(parent: int, every: float = 0.5) -> None:
    """End this worker once ``parent`` has ended (this process is then handed to another
    parent); polled, because only Linux can ask the kernel for a signal instead."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def _call_in_worker(fn: Callable[[Any, Any], Any], item: Any) -> Any:
    return fn(_SHARED, item)


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
    parallel = True

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

    def map(
        self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any], *, kinds: Sequence[Hashable] | None = None
    ) -> Iterator[tuple[int, Any]]:
        ray = self._ray()  # every item is submitted at once: Ray's scheduler orders them, kinds unused
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
