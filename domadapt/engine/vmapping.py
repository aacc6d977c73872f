"""What it takes to train K replicas as one ``torch.func`` model, beyond ``vmap`` itself.

- :func:`vmap_support`: whether a built method can run vmapped (its class says so; each of
  its alignment losses is probed once under ``vmap``), as a :class:`VmapSupport` the runner
  computes once per row and hands to every unit it builds;
- :func:`run_losses_per_replica`: a parameter-free loss that cannot run under ``vmap``
  (geomloss's Sinkhorn and energy: a data-dependent ε-schedule read with ``.item()``, an
  old-style ``autograd.Function``) is evaluated once per replica inside the vmapped step
  instead (:attr:`AlignmentLoss.per_replica`);
- :func:`clip_grad_norm_per_replica_`: ``clip_grad_norm_`` for each of K stacked models.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import vmap

from domadapt.align import AlignmentLoss
from domadapt.methods.base import Method


def probe_loss(loss: AlignmentLoss, num_classes: int) -> str | None:
    """None when ``loss.forward_with_stats`` runs under ``vmap``, else the error's text."""
    dim = int(getattr(loss, "feature_dim", 8))  # a loss with parameters is built for a width
    g = torch.Generator().manual_seed(0)
    f = torch.randn(2, 6, dim, generator=g)
    y = torch.arange(6).remainder(num_classes).expand(2, 6)
    logits = torch.randn(2, 6, num_classes, generator=g)
    loss.set_progress(0.5)

    def call(f_s, f_t, y_s, y_t, l_s, l_t):
        return loss.forward_with_stats(f_s, f_t, y_s=y_s, y_t=y_t, logits_s=l_s, logits_t=l_t)

    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vmap(call, randomness="different")(f, f + 1, y, y, logits, logits)
    except Exception as err:  # noqa: BLE001 - any failure means "not vmappable"; we report it
        return f"{type(err).__name__}: {str(err).splitlines()[0]}"
    return None


def _losses(method: Method) -> list[tuple[str, AlignmentLoss]]:
    return [(name, m) for name, m in method.named_modules() if isinstance(m, AlignmentLoss)]


@dataclass(frozen=True)
class VmapSupport:
    """Whether K replicas of a method can train as one vmapped model.

    ``why``: why not, or (when ``ok``) how it runs ("vmapped", or which losses run once per
    replica inside the step); ``per_replica``: the module names of the parameter-free losses
    that fail under ``vmap`` and run per replica.
    """

    ok: bool
    why: str
    per_replica: tuple[str, ...] = ()


def vmap_support(method: Method) -> VmapSupport:
    """Probe ``method`` (its class, then each alignment loss once under ``vmap``)."""
    if not type(method).vmappable:
        return VmapSupport(False, type(method).why_not_vmappable)
    notes, per_replica = [], []
    for name, loss in _losses(method):
        err = probe_loss(loss, num_classes=max(2, method.num_classes))
        if err is None:
            continue
        if any(True for _ in loss.parameters()):
            return VmapSupport(False, (
                f"alignment loss {name!r} owns parameters and cannot run under torch.func.vmap ({err}); "
                "its parameters would have to be stacked per replica, which needs vmappable code"
            ))
        notes.append(f"loss {name!r} is not vmappable ({err}); it runs once per replica inside the step")
        per_replica.append(name)
    return VmapSupport(True, "; ".join(notes) or "vmapped", tuple(per_replica))


def run_losses_per_replica(method: Method, names: Iterable[str]) -> None:
    """Make the losses ``names`` of ``method`` (:attr:`VmapSupport.per_replica`) run per
    replica: their declared :attr:`~domadapt.align.AlignmentLoss.per_replica` flag."""
    modules = dict(method.named_modules())
    for name in names:
        modules[name].per_replica = True


def clip_grad_norm_per_replica_(params: Iterable[Tensor], max_norm: float) -> Tensor:
    """``torch.nn.utils.clip_grad_norm_`` for each of K stacked models at once.

    ``params``: stacked tensors ``[K, ...]`` (their ``.grad`` is clipped in place); the global
    L2 norm is taken per replica over all its gradients, exactly like a per-model
    ``clip_grad_norm_(model.parameters(), max_norm)``. Returns the K norms before clipping.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(0)
    k = grads[0].shape[0]
    per_tensor = torch.stack([torch.linalg.vector_norm(g.reshape(k, -1), dim=1) for g in grads])
    total = torch.linalg.vector_norm(per_tensor, dim=0)  # [K]
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)  # the 1e-6 of clip_grad_norm_
    for g in grads:
        g.mul_(coef.view(k, *([1] * (g.dim() - 1))).to(g.dtype))
    return total


def replica_state_names(method: nn.Module) -> tuple[list[str], list[str]]:
    """Names of the parameters and buffers that are per replica.

    Buffers inside alignment losses (DANN's gradient-reversal coefficient) are set from the
    training progress at every step, the same for every replica: they stay shared and live.
    """
    shared = [name + "." for name, m in method.named_modules() if isinstance(m, AlignmentLoss)]
    params = [n for n, _ in method.named_parameters()]
    buffers = [n for n, _ in method.named_buffers() if not any(n.startswith(p) for p in shared)]
    return params, buffers
