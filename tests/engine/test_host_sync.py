"""No per-step host-device synchronisation in the training loop: on a GPU every read of a
device value (``.item()``, ``bool(t)``, ``float(t)``, ``.tolist()``, ``.cpu()``) makes the host
wait for the queue to drain. On the CPU the reads are counted by patching them: an epoch of
many steps must read no more often than an epoch of few."""

import contextlib
import dataclasses
import math
import sys
from collections import Counter

import pytest
import torch
from tiny import CPU, spec, tiny_fold, tiny_method, tiny_model, tiny_train

from domadapt.align import LOSSES
from domadapt.engine import EagerReplica, NonFiniteLossError, build_replicas, fit
from domadapt.engine.batches import count_batches
from domadapt.engine.loop import NonFiniteWatch, alignment_weight, build_optimizer, train_epoch
from domadapt.methods import Method, build_method
from domadapt.methods.base import StepOutput

#: the Tensor methods through which the host reads a device value
READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")

#: losses whose library reads the device inside its own step (geomloss's ε-schedule)
READS_IN_THEIR_LIBRARY = {"sinkhorn"}

SPECS = [spec("target_only"), spec("joint")] + [
    pytest.param(
        spec("align", loss=name),
        id=f"align:{name}",
        marks=[pytest.mark.xfail(strict=True, reason="geomloss reads its ε-schedule with .item()")]
        if name in READS_IN_THEIR_LIBRARY else [],
    )
    for name in sorted(LOSSES.names())
]


@contextlib.contextmanager
def counted_reads():
    """Every read, by name, made outside torch's optimisers: they keep their step counters
    on the host (``capturable=False``, the default), so reading those waits for nothing."""
    counts: Counter = Counter()
    with pytest.MonkeyPatch.context() as mp:
        for name in READS:
            original = getattr(torch.Tensor, name)

            def counting(self, *args, _name=name, _original=original, **kwargs):
                if not sys._getframe(1).f_globals.get("__name__", "").startswith("torch.optim"):
                    counts[_name] += 1
                return _original(self, *args, **kwargs)

            mp.setattr(torch.Tensor, name, counting)
        yield counts


def _reads_in_one_epoch(s, batch_size: int, seeds=(0,)) -> tuple[Counter, int]:
    fold = tiny_fold(shared=True)
    cfg = tiny_train(batch_size=batch_size)
    torch.manual_seed(0)
    replicas = build_replicas(lambda: build_method(s, cfg, tiny_model(fold)), list(seeds), fold, CPU)
    stage = replicas.stages[-1]
    opt = build_optimizer(replicas, stage, cfg)
    steps = count_batches(stage, replicas.data, batch_size)
    with counted_reads() as counts:
        train_epoch(replicas, stage, cfg, opt, 0, progress=False, lam_of=alignment_weight(stage, cfg))
    return counts, steps


@pytest.mark.parametrize("s", SPECS, ids=lambda s: s.label if hasattr(s, "label") else None)
def test_an_epoch_reads_the_device_as_often_whatever_its_number_of_steps(s):
    few, few_steps = _reads_in_one_epoch(s, batch_size=20)
    many, many_steps = _reads_in_one_epoch(s, batch_size=4)
    assert many_steps >= 3 * few_steps  # else the comparison says nothing
    assert many == few, f"{s.label}: {dict(few)} reads in {few_steps} steps, {dict(many)} in {many_steps}"


def test_vmapped_seeds_read_the_device_as_often_whatever_the_number_of_steps():
    few, few_steps = _reads_in_one_epoch(spec("align", loss="mmd"), batch_size=20, seeds=(0, 1, 2))
    many, many_steps = _reads_in_one_epoch(spec("align", loss="mmd"), batch_size=4, seeds=(0, 1, 2))
    assert many_steps >= 3 * few_steps
    assert many == few, f"{dict(few)} reads in {few_steps} steps, {dict(many)} in {many_steps}"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_epoch_never_waits_for_the_device_before_its_end():
    cuda = torch.device("cuda")
    fold = tiny_fold(shared=True).map(lambda d: dataclasses.replace(d, x=d.x.to(cuda), y=d.y.to(cuda)))
    cfg = tiny_train(batch_size=4)
    torch.manual_seed(0)
    replicas = build_replicas(lambda: build_method(spec("align", loss="mmd"), cfg, tiny_model(fold)), [0, 1], fold, cuda)
    stage = replicas.stages[-1]
    opt = build_optimizer(replicas, stage, cfg)
    train_epoch(replicas, stage, cfg, opt, 0, progress=False, lam_of=alignment_weight(stage, cfg))  # warm-up: lazy optimiser state, kernels
    ended = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(NonFiniteWatch, "check", lambda self, *a: ended.append(True))  # the epoch's end, before its reads
        torch.cuda.set_sync_debug_mode("error")
        try:  # the first synchronising call raises: it must be the epoch's means, after every step
            with pytest.raises(RuntimeError, match="synchroniz"):
                train_epoch(replicas, stage, cfg, opt, 1, progress=False, lam_of=alignment_weight(stage, cfg))
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert ended == [True], "a step synchronised with the device"


class InfFromTheThirdStep(Method):
    """target_only whose task term turns infinite from its third step on."""

    def stages(self, data):
        stage = self.target_stage(data)
        steps = []

        def step(batch, p):
            steps.append(p)
            task = self.target_logits(batch.x_t).sum() * 0
            return StepOutput(task=task + (math.inf if len(steps) >= 3 else 0.0))

        stage.step = step
        return [stage]


def test_the_error_read_at_the_epochs_end_names_the_first_bad_batch():
    fold = tiny_fold()
    cfg = tiny_train(batch_size=4)
    method = InfFromTheThirdStep(tiny_method(fold, spec("target_only"), cfg).model, cfg)
    with pytest.raises(NonFiniteLossError, match=r"stage 'target', epoch 1, batch 3 \(seed 7\): task term = inf$"):
        fit(EagerReplica(method, 7, fold, CPU), cfg)
