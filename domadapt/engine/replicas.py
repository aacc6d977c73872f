"""K >= 1 replicas of one method on one fold, behind the small protocol the loop drives.

Two implementations:

- :class:`EagerReplica` (K = 1): the method runs as it is; ``torch.compile``, epoch-start
  hooks and a method's extra state (multitrain_ae's feature banks) work here.
- :class:`VmappedReplicas` (K > 1): the K methods' parameters are stacked into leaf tensors
  ``[K, ...]`` and one ``torch.func.functional_call`` + ``vmap`` over the base method runs the
  stage's own closures for all K at once. ``Adam``/``AdamW`` run directly on the stacked
  tensors (their update is elementwise), clipping is per replica, and each replica keeps
  its own batch generator, so with every dropout at 0 the K results equal K eager runs up to
  float rounding. With dropout on, ``vmap`` draws each replica's masks from another random
  stream than an eager run (``randomness="different"``): equal in distribution only.

The protocol :func:`domadapt.engine.loop.fit` drives is declared on :class:`Replicas`: its
abstract methods are what an implementation provides.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from domadapt.data import DomainData, FoldData
from domadapt.device import FLOAT32, precision
from domadapt.engine.batches import IndexBatch
from domadapt.engine.vmapping import (
    VmapSupport,
    clip_grad_norm_per_replica_,
    replica_state_names,
    run_losses_per_replica,
    vmap_support,
)
from domadapt.errors import DomadaptError
from domadapt.methods.base import Method, SourceBatch, Stage, StepBatch

#: rows per forward pass outside training (validation, the domain gap, prediction): on the
#: CPU a TIM-Net activation of this many windows stays in a core's cache, where one of 512
#: does not (benchmarks/profile_tim_step.py; benchmarks/RESULTS.md, "Longest units first")
PREDICT_BATCH = 192


@torch.no_grad()
def batched(fn: Callable[[Tensor], Tensor], x: Tensor, *, batch_size: int = PREDICT_BATCH) -> Tensor:
    """``fn`` over ``x`` in batches: ``[N, ...]`` float32 on the CPU."""
    return torch.cat([fn(x[i : i + batch_size]).float().cpu() for i in range(0, len(x), batch_size)])


def predict_proba(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Softmax probabilities [N, C] (float32, CPU) of logits ``fn`` over ``x``."""
    return torch.softmax(batched(fn, x), dim=-1)


@dataclass
class LossTerms:
    """One step's loss terms per replica: ``task`` [K], ``align`` [K] or None, ``stats``
    name -> [K] (all on the device, not yet read back)."""

    task: Tensor
    align: Tensor | None
    stats: dict[str, Tensor]


class Replicas(ABC):
    """K >= 1 replicas of one method on one fold: the protocol the loop drives (the abstract
    methods) and what both implementations share (the base method, seeds, batch generators,
    stages, a stage's optimiser groups and its frozen modules)."""

    def __init__(self, method: Method, seeds: list[int], data: FoldData, device: torch.device) -> None:
        self.method = method  # the instance whose stage closures run
        self.seeds = list(seeds)
        self.k = len(self.seeds)
        self.data = data
        self.device = device
        self.generators = [torch.Generator().manual_seed(s) for s in self.seeds]  # per-replica batch order
        # masking of labelled training batches (domadapt.augment.SpecAugment), set by engine.fit
        self.augment: Callable[[Tensor, list[torch.Generator]], Tensor] | None = None
        self.stages = method.stages(data)

    @abstractmethod
    def trainable(self, param: Tensor) -> Tensor:
        """The tensor the optimiser updates for the base method's ``param``."""

    @abstractmethod
    def begin_epoch(self, stage: Stage, epoch: int) -> None:
        """Before an epoch of ``stage``: its epoch-start hook (where supported), train mode."""

    @abstractmethod
    def loss_terms(self, stage: Stage, batches: list[IndexBatch], p: float) -> LossTerms:
        """One step's loss terms of every replica (``[K]`` each) on its own batch."""

    @abstractmethod
    def clip_(self, params: list[Tensor], max_norm: float) -> None:
        """Clip the gradients of ``params`` to ``max_norm``, per replica."""

    @abstractmethod
    def state(self) -> dict[str, Tensor]:
        """Every per-replica tensor with a leading K dimension (views of the live ones)."""

    @torch.no_grad()
    def load_state(self, saved: dict[str, Tensor]) -> None:
        """Copy ``saved`` (a :meth:`state` of the same replicas) into the live tensors."""
        for k, v in self.state().items():
            v.copy_(saved[k])

    @abstractmethod
    def extra_state(self) -> dict[str, Any]:
        """What a checkpoint needs beyond :meth:`state` (a method's feature banks)."""

    @abstractmethod
    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    @abstractmethod
    def export(self, i: int) -> Method:
        """Replica ``i`` as a plain method."""

    @contextlib.contextmanager
    def frozen(self, stage: Stage) -> Iterator[None]:
        """While ``stage`` runs, its frozen modules get no gradient (so no optimiser group
        holds them) and :meth:`train_mode` keeps them in eval mode; their flags come back after."""
        was_trainable = [[p.requires_grad for p in m.parameters()] for m in stage.frozen]
        for module in stage.frozen:
            module.requires_grad_(False)
        try:
            yield
        finally:
            for module, flags in zip(stage.frozen, was_trainable):
                for p, flag in zip(module.parameters(), flags):
                    p.requires_grad_(flag)

    def param_groups(self, stage: Stage, lr: float) -> list[dict[str, Any]]:
        """Optimiser groups of ``stage``: its groups at their lr multipliers, plus whatever
        the method owns beyond the model (a DANN discriminator), always trained."""
        groups, seen = [], set()
        own = (list(self.method.own_parameters()), 1.0)
        for params, mult in [*stage.param_groups, own]:
            fresh = [p for p in params if p.requires_grad and id(p) not in seen]
            seen.update(id(p) for p in fresh)
            if fresh and mult > 0:
                groups.append({"params": [self.trainable(p) for p in fresh], "lr": lr * mult})
        if not groups:
            raise DomadaptError(f"stage {stage.name!r} has no trainable parameters")
        return groups

    @abstractmethod
    def outputs(self, fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        """``fn`` (logits, features) over ``x`` for every replica: ``[K, N, ...]`` float32, CPU."""

    def predict(self, fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        """Softmax probabilities ``[K, N, C]`` of logits ``fn`` over ``x``."""
        return torch.softmax(self.outputs(fn, x), dim=-1)

    def train_mode(self, stage: Stage) -> None:
        self.method.train()
        for module in stage.frozen:
            module.eval()

    def eval_mode(self) -> None:
        self.method.eval()

    def precision(self, amp: bool) -> str:
        """What the replicas compute in under ``train.amp = amp`` (:func:`domadapt.device.precision`)."""
        return precision(self.device, amp)

    @abstractmethod
    def _rows(self, domain: DomainData, idx: list[Tensor], *, labels: bool = True) -> tuple[Tensor, Tensor | None]:
        """Rows ``idx`` of ``domain`` as ``(x, y)``; ``labels=False`` never reads ``y``."""

    def gather(self, batches: list[IndexBatch]) -> StepBatch:
        """The step's data of every replica (``[B, ...]`` for one, ``[K, B, ...]`` for K);
        a ``"test"`` draw puts the test rows in ``x_t`` and leaves ``y_t`` None."""
        first = batches[0]
        step = StepBatch()
        aug = (lambda x: self.augment(x, self.generators)) if self.augment is not None else (lambda x: x)
        if first.target is not None:
            step.x_t, step.y_t = self._rows(self.data.target_train, [b.target for b in batches])
            step.x_t = aug(step.x_t)
        if first.test is not None:  # test-time adaptation: the test rows, never their labels
            step.x_t, _ = self._rows(self.data.target_test, [b.test for b in batches], labels=False)
        for j, source in enumerate(self.data.sources[: len(first.sources)]):
            x, y = self._rows(source, [b.sources[j] for b in batches])
            step.sources.append(SourceBatch(task=source.task, x=aug(x), y=y))
        return step


class EagerReplica(Replicas):
    """One replica, run as it is (K = 1)."""

    def __init__(self, method: Method, seed: int, data: FoldData, device: torch.device, *, compile: bool = False) -> None:
        method.to(device)
        if compile and getattr(method.model.general, "_compiled_call_impl", None) is None:
            # nn.Module.compile keeps the state_dict keys: checkpoints are unchanged
            method.model.general.compile()
        super().__init__(method, [seed], data, device)
        names = replica_state_names(method)
        live = {**dict(method.named_parameters()), **dict(method.named_buffers())}
        self._state = {n: live[n] for n in [*names[0], *names[1]]}

    def trainable(self, param: Tensor) -> Tensor:
        return param

    def begin_epoch(self, stage: Stage, epoch: int) -> None:
        if stage.on_epoch_start is not None:
            stage.on_epoch_start(epoch)
        self.train_mode(stage)

    def _rows(self, domain: DomainData, idx: list[Tensor], *, labels: bool = True) -> tuple[Tensor, Tensor | None]:
        if not labels:
            return domain.x.index_select(0, idx[0]), None
        return domain.take(idx[0])

    def loss_terms(self, stage: Stage, batches: list[IndexBatch], p: float) -> LossTerms:
        out = stage.step(self.gather(batches), p)
        one = lambda t: torch.as_tensor(t).reshape(1)  # noqa: E731 - K = 1
        return LossTerms(
            task=one(out.task),
            align=None if out.align is None else one(out.align),
            stats={k: one(v).detach() for k, v in out.stats.items()},
        )

    def clip_(self, params: list[Tensor], max_norm: float) -> None:
        torch.nn.utils.clip_grad_norm_(params, max_norm)

    def outputs(self, fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        return batched(fn, x).unsqueeze(0)

    def state(self) -> dict[str, Tensor]:
        return {n: t.detach().unsqueeze(0) for n, t in self._state.items()}

    def extra_state(self) -> dict[str, Any]:
        return self.method.extra_state()

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.method.load_extra_state(state)

    def export(self, i: int = 0) -> Method:
        return self.method


class _Closure(nn.Module):
    """The base method under a root whose ``forward`` runs a closure: ``functional_call`` on
    it swaps the method's tensors while the stage's closures (which hold the method) run."""

    def __init__(self, method: Method) -> None:
        super().__init__()
        self.method = method

    def forward(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        return fn(arg)


class VmappedReplicas(Replicas):
    """K replicas stacked: parameters as leaf tensors ``[K, ...]``, per-replica buffers too.

    ``methods[i]`` is replica ``i`` as built for ``seeds[i]`` (its initialisation); the first
    one is the base whose closures run under ``functional_call``. ``support``: the method's
    :func:`~domadapt.engine.vmapping.vmap_support`, when the caller probed it already (the
    runner does once per row); else it is probed here.
    """

    def __init__(
        self, methods: list[Method], seeds: list[int], data: FoldData, device: torch.device, *,
        support: VmapSupport | None = None,
    ) -> None:
        support = support or vmap_support(methods[0])
        if not support.ok:
            raise DomadaptError(f"{type(methods[0]).__name__} cannot train its seeds in one vmapped pass: {support.why}")
        for m in methods:
            m.to(device)
        super().__init__(methods[0], seeds, data, device)
        if any(stage.on_epoch_start is not None for stage in self.stages) or self.method.extra_state():
            raise DomadaptError(f"{type(self.method).__name__} keeps state outside its parameters; it cannot be vmapped")
        run_losses_per_replica(self.method, support.per_replica)
        param_names, buffer_names = replica_state_names(self.method)
        named = [{**dict(m.named_parameters()), **dict(m.named_buffers())} for m in methods]
        base = named[0]
        self._stacked = {}  # name -> [K, ...]; parameters are leaves the optimiser updates
        for n in [*param_names, *buffer_names]:
            stacked = torch.stack([m[n].detach() for m in named])
            self._stacked[n] = stacked.requires_grad_(n in param_names and base[n].requires_grad)
        self._leaf_of = {id(base[n]): self._stacked[n] for n in param_names}
        self._closure = _Closure(self.method)

    def trainable(self, param: Tensor) -> Tensor:
        return self._leaf_of[id(param)]

    def param_groups(self, stage: Stage, lr: float) -> list[dict[str, Any]]:
        groups = super().param_groups(stage, lr)
        # A stage trains only what its optimiser holds; the other leaves get no gradient at all.
        trained = {id(p) for g in groups for p in g["params"]}
        for leaf in self._leaf_of.values():
            leaf.requires_grad_(id(leaf) in trained)
        return groups

    def begin_epoch(self, stage: Stage, epoch: int) -> None:
        self.train_mode(stage)

    def _rows(self, domain: DomainData, idx: list[Tensor], *, labels: bool = True) -> tuple[Tensor, Tensor | None]:
        i = torch.stack(idx)  # [K, B]: one gather for all replicas
        x = domain.x.index_select(0, i.reshape(-1)).view(*i.shape, *domain.x.shape[1:])
        return x, domain.y.index_select(0, i.reshape(-1)).view(i.shape) if labels else None

    def loss_terms(self, stage: Stage, batches: list[IndexBatch], p: float) -> LossTerms:
        batch = self.gather(batches)
        tasks = [sb.task for sb in batch.sources]
        # vmap maps over tensors in dicts and lists, not over dataclasses: flatten, rebuild inside
        flat = {"xs": [sb.x for sb in batch.sources], "ys": [sb.y for sb in batch.sources]}
        if batch.x_t is not None:
            flat["x_t"] = batch.x_t
        if batch.y_t is not None:
            flat["y_t"] = batch.y_t

        def one(t: dict[str, Any]) -> dict[str, Any]:
            sources = [SourceBatch(task=n, x=x, y=y) for n, x, y in zip(tasks, t["xs"], t["ys"])]
            out = stage.step(StepBatch(x_t=t.get("x_t"), y_t=t.get("y_t"), sources=sources), p)
            terms = {"task": out.task, "stats": {k: torch.as_tensor(v) for k, v in out.stats.items()}}
            if out.align is not None:
                terms["align"] = out.align
            return terms

        out = self._call(one, flat, in_dim=0)
        return LossTerms(task=out["task"], align=out.get("align"), stats={k: v.detach() for k, v in out["stats"].items()})

    def precision(self, amp: bool) -> str:
        return FLOAT32

    def _call(self, fn: Callable[[Any], Any], arg: Any, *, in_dim: int | None, state: dict | None = None) -> Any:
        """``fn(arg)`` for every replica, replica ``i``'s tensors swapped into the base method.
        Always in float32, autocast or not: torch's vmap of a BatchNorm whose weights are
        batched refuses a bf16 input beside float32 running statistics."""
        state = self._stacked if state is None else state
        prefixed = {f"method.{k}": v for k, v in state.items()}

        def call(st, a):
            return functional_call(self._closure, st, (fn, a), strict=False)

        with warnings.catch_warnings(), torch.autocast(self.device.type, enabled=False):
            # pytorch-adapt's MMD calls fill_diagonal_, which vmap runs per replica (correct,
            # and cheap at K replicas) with a performance warning on every call.
            warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet implemented")
            return vmap(call, in_dims=(0, in_dim), randomness="different")(prefixed, arg)

    def clip_(self, params: list[Tensor], max_norm: float) -> None:
        clip_grad_norm_per_replica_(params, max_norm)

    @torch.no_grad()
    def outputs(self, fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        state = {k: v.detach() for k, v in self._stacked.items()}
        out = [
            self._call(fn, x[i : i + PREDICT_BATCH], in_dim=None, state=state).float().cpu()
            for i in range(0, len(x), PREDICT_BATCH)
        ]
        return torch.cat(out, dim=1)

    def state(self) -> dict[str, Tensor]:
        return self._stacked

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def export(self, i: int) -> Method:
        """Replica ``i`` as a plain method (a copy of the base with replica ``i``'s tensors)."""
        method = copy.deepcopy(self.method)
        with torch.no_grad():
            live = {**dict(method.named_parameters()), **dict(method.named_buffers())}
            for n, t in self._stacked.items():
                live[n].copy_(t[i])
        return method
