"""Many seeds in one pass: K independent models of one fold trained at once with ``torch.func``.

On one accelerator a small TIM model leaves the device mostly idle; running the K seeds of a
fold as one vectorised model (``vmap`` over stacked parameters, ``functional_call`` through
the method's own stage closures) turns K small launches per layer into one wide one.

Each of the K models gets exactly what a sequential ``Trainer.fit(model, method, data,
seed=s)`` gives it:

- its own initialisation: ``torch.manual_seed(s)`` then ``build_model(s)`` (as
  :func:`domadapt.experiment.run_one` does), and the method's own parameters (a loss with
  parameters) built after ``torch.manual_seed(s)`` like ``Trainer.fit``;
- its own batch order: a ``torch.Generator().manual_seed(s)`` per seed drives the Trainer's
  own batch drawing (``Trainer.batches`` on a fold of row *indices*), and one gather per step
  builds the ``[K, B, C, T]`` batch;
- the same optimiser, scheduler, loss weight ``λ(p)``, gradient clipping (the global norm is
  taken *per model*) and model selection on the validation score, per model: each model ends
  each stage with its own best-epoch weights (BatchNorm running statistics included: they are
  stacked buffers that ``vmap`` updates per model).

``torch.optim.Adam``/``AdamW`` run directly on the stacked ``[K, ...]`` tensors: their update
is elementwise, so one optimiser over stacked tensors is K optimisers (a test checks it). The
scheduler's learning rate is the same for every model, so one scheduler serves all K.

Randomness: with every dropout at 0 (``model.dropout = 0`` and the backbone's ``dropout = 0``)
the K results equal K sequential runs up to float rounding (grouped convolutions sum in a
different order). With dropout on, ``vmap`` draws each model's masks from a different random
stream than a sequential run would (``randomness="different"``): the results are then equal
in distribution only, not number for number.

What cannot be vmapped (see :func:`vmap_supported`): ``multitrain_ae`` (per-model feature banks
rebuilt at epoch start from a frozen copy, and its own generator). DANN can: its gradient
reversal is plain tensor arithmetic (:class:`domadapt.align.dann.GradientReversal`), so the
discriminator's parameters are stacked per seed like the model's. geomloss's Sinkhorn and
energy losses cannot be vmapped (a data-dependent ε-schedule read with ``.item()``; an
old-style ``autograd.Function``), but they own no parameters, so they run once per model
inside the vmapped step (a loop over K for that loss only).

Like the Trainer, a run writes an atomic checkpoint every epoch (all K models at once) and
continues from it with ``resume``; tensorboard rows go to one writer per seed.

Example::

    >>> results = fit_seeds(cfg, lambda s: build_model(cfg, domains, spec), spec, data,
    ...                     seeds=[0, 1, 2, 3, 4], device=device)
    >>> results[0].probs_test.shape
    torch.Size([N, 2])
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from domadapt.align import AlignmentLoss, build_loss
from domadapt.config import MethodSpec, TrainConfig
from domadapt.data import DomainData, FoldData
from domadapt.errors import DomadaptError
from domadapt.methods import build_method
from domadapt.methods.base import Method, SourceBatch, Stage, StepBatch
from domadapt.models.transfer import TransferModel
from domadapt.train import (
    CHECKPOINT_VERSION,
    NonFiniteLossError,
    Trainer,
    atomic_save,
    count_batches,
    global_rng_state,
    load_optimizer_state,
    score_probs,
    set_global_rng_state,
)

log = logging.getLogger("domadapt")

__all__ = ["SeedResult", "clip_grad_norm_per_model_", "fit_seeds", "vmap_supported"]

#: methods whose training cannot be expressed as K stacked models, and why
UNSUPPORTED_METHODS: dict[str, str] = {
    "multitrain_ae": (
        "multitrain_ae rebuilds per-model feature banks at every epoch start from a deep-copied "
        "frozen extractor and draws bank rows from its own generator: state outside the "
        "model's parameters that cannot be stacked"
    ),
}

_PREDICT_BATCH = 512  # as domadapt.train.predict_proba


@dataclass
class SeedResult:
    """One model of a vmapped run, as a sequential ``Trainer.fit(..., seed=seed)`` returns it.

    ``history``: the Trainer's per-epoch history (same keys); ``probs_test``: target-test
    softmax probabilities ``[N, K]`` (float32, CPU) of the final (best-epoch) model;
    ``state_dict``: that model's weights and buffers (CPU), for ``TransferModel.load_state_dict``.
    """

    seed: int
    history: dict[str, list[float]]
    probs_test: Tensor
    state_dict: dict[str, Tensor]


# ---------------------------------------------------------------------------- support


def _probe_loss(loss: nn.Module, num_classes: int) -> str | None:
    """None when ``loss.forward_with_stats`` runs under ``vmap``, else the error's text."""
    dim = int(getattr(loss, "feature_dim", 8))  # a loss with parameters is built for a width
    g = torch.Generator().manual_seed(0)
    f = torch.randn(2, 6, dim, generator=g)
    y = torch.arange(6).remainder(num_classes).expand(2, 6)
    logits = torch.randn(2, 6, num_classes, generator=g)
    if isinstance(loss, AlignmentLoss):
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


def _spec_losses(spec: MethodSpec) -> list[tuple[str, nn.Module]]:
    """The alignment losses a method spec will build (probe-sized)."""
    opts = spec.method_options
    if spec.name == "align":
        name = str(opts.get("loss", "mmd"))
        loss = build_loss(name, feature_dim=8, num_classes=2, **dict(opts.get("loss_options", {})))
        return [(name, loss)]
    if spec.name == "ddg":
        out = [("mmd", build_loss("mmd", feature_dim=8, **dict(opts.get("loss_options", {}))))]
        if opts.get("dann", False):
            out.append(("dann", build_loss("dann", feature_dim=8)))
        return out
    return []


def vmap_supported(spec: MethodSpec) -> tuple[bool, str]:
    """Whether :func:`fit_seeds` can train ``spec``'s method for K seeds in one pass.

    Returns ``(ok, reason)``: ``reason`` says why not, or (when ok) how the method runs,
    e.g. that a geomloss loss is evaluated once per model inside the vmapped step.
    """
    from domadapt.methods import METHODS

    if spec.name not in METHODS:
        raise DomadaptError(f"unknown method {spec.name!r}; known: {', '.join(sorted(METHODS))}")
    if spec.name in UNSUPPORTED_METHODS:
        return False, UNSUPPORTED_METHODS[spec.name]
    notes = []
    for name, loss in _spec_losses(spec):
        err = _probe_loss(loss, num_classes=2)
        if err is None:
            continue
        if any(True for _ in loss.parameters()):
            return False, (
                f"alignment loss {name!r} owns parameters and cannot run under torch.func.vmap "
                f"({err}); its parameters would have to be stacked per seed, so it needs "
                "vmappable code (no autograd.Function, no .item())"
            )
        notes.append(f"loss {name!r} is not vmappable ({err}); it runs once per model inside the step")
    return True, "; ".join(notes) or "vmapped"


# ---------------------------------------------------------------------------- pieces


class _PerModelLoss(torch.autograd.Function):
    """Runs a parameter-free loss once per model when called under ``vmap``.

    Its ``vmap`` rule receives the stacked tensors and loops over the K models with plain,
    differentiable calls; autograd records those, so no backward of its own is needed.
    Outside ``vmap`` it is never used (see :func:`_loop_over_models`).
    """

    @staticmethod
    def forward(fn, names, keys, *tensors):  # pragma: no cover - only the vmap rule runs
        raise RuntimeError("_PerModelLoss is only called under vmap")

    @staticmethod
    def setup_context(ctx, inputs, output):  # pragma: no cover
        pass

    @staticmethod
    def vmap(info, in_dims, fn, names, keys, *tensors):
        outs = []
        for k in range(info.batch_size):
            args = [t if d is None else t.select(d, k) for t, d in zip(tensors, in_dims[3:])]
            kw = {n: a for n, a in zip(names, args[2:]) if a is not None}
            value, stats = fn(args[0], args[1], **kw)
            if not keys:
                keys.extend(stats)
            outs.append((value, *(stats[key] for key in keys)))
        stacked = tuple(torch.stack(col) for col in zip(*outs))
        return stacked, (0,) * len(stacked)


def _loop_over_models(loss: AlignmentLoss) -> Callable[..., tuple[Tensor, dict[str, Tensor]]]:
    """A drop-in ``forward_with_stats`` for ``loss`` that runs it per model under ``vmap``."""
    original = loss.forward_with_stats
    names = ("y_s", "y_t", "logits_s", "logits_t")

    def forward_with_stats(f_s, f_t, **context):
        keys: list[str] = []
        out = _PerModelLoss.apply(original, names, keys, f_s, f_t, *(context.get(n) for n in names))
        return out[0], dict(zip(keys, out[1:]))

    return forward_with_stats


class _Pair(nn.Module):
    """Model and method under one root, so that one ``functional_call`` swaps both's tensors
    while the method's stage closures (which hold ``model`` and ``method``) run unchanged."""

    def __init__(self, model: TransferModel, method: Method) -> None:
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)


class _Owned:
    """What ``Trainer.build_optimizer`` reads from a method: its (stacked) parameters."""

    def __init__(self, params: list[Tensor]) -> None:
        self._params = params

    def parameters(self) -> Iterable[Tensor]:
        return iter(self._params)


def _index_fold(data: FoldData) -> FoldData:
    """``data`` with every domain's rows replaced by their indices, so the Trainer's own
    batch drawing yields index tensors (``take`` of an ``arange`` is the index itself)."""

    def idx(d: DomainData) -> DomainData:
        r = torch.arange(len(d), device=d.x.device)
        return DomainData(d.task, r, r, d.groups, d.num_classes)

    return data.map(idx)


def clip_grad_norm_per_model_(params: Iterable[Tensor], max_norm: float) -> Tensor:
    """``torch.nn.utils.clip_grad_norm_`` for each of K stacked models at once.

    ``params``: stacked tensors ``[K, ...]`` (their ``.grad`` is clipped in place); the global
    L2 norm is taken per model over all its gradients, exactly like a per-model
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


def _expand(mask: Tensor, like: Tensor) -> Tensor:
    return mask.view(-1, *([1] * (like.dim() - 1)))


# ---------------------------------------------------------------------------- the run


class _SeedEnsemble:
    """K models stacked: parameters as leaf tensors ``[K, ...]``, buffers stacked too."""

    def __init__(
        self,
        cfg: TrainConfig,
        build_model: Callable[[int], TransferModel],
        spec: MethodSpec,
        data: FoldData,
        seeds: list[int],
        device: torch.device,
    ) -> None:
        self.cfg, self.data, self.seeds, self.device = cfg, data, seeds, device
        self.k = len(seeds)
        self._gens = [torch.Generator().manual_seed(s) for s in seeds]  # per-seed batch order
        self.helper = Trainer(cfg, device=device)  # its batch drawing, optimiser and scheduler
        models, methods, stage_lists = [], [], []
        for s in seeds:
            torch.manual_seed(s)  # as run_one: the model's initialisation comes from the seed
            model = build_model(s).to(device)
            method = build_method(spec, cfg)
            torch.manual_seed(s)  # as Trainer.fit: parameters a method builds come from the seed
            stage_lists.append(method.stages(model, data))
            method.to(device)
            models.append(model)
            methods.append(method)
        self.model, self.method, self.stages = models[0], methods[0], stage_lists[0]
        for stage in self.stages:
            if stage.on_epoch_start is not None:
                raise DomadaptError(
                    f"method {spec.name!r} stage {stage.name!r} has an epoch-start hook (state outside "
                    "the parameters); it cannot be vmapped: train it with the Trainer"
                )
        if self.method.extra_state():
            raise DomadaptError(f"method {spec.name!r} keeps extra state; it cannot be vmapped")
        for loss in (m for m in self.method.modules() if isinstance(m, AlignmentLoss)):
            if _probe_loss(loss, num_classes=max(2, data.target_train.num_classes)) is not None:
                if any(True for _ in loss.parameters()):
                    raise DomadaptError(vmap_supported(spec)[1])
                # only the base method's losses run; this instance was built here for this run
                loss.forward_with_stats = _loop_over_models(loss)
        self.pair = _Pair(self.model, self.method)

        model_ids = {id(p) for p in self.model.parameters()}
        self.params: dict[str, Tensor] = {}  # "model.x" / "method.y" -> leaf [K, ...]
        self.leaf_of: dict[int, Tensor] = {}  # id(base parameter) -> its stacked leaf
        self.method_leaves: list[Tensor] = []
        for prefix, mods in (("model", models), ("method", methods)):
            named = [dict(m.named_parameters()) for m in mods]
            for name, base in named[0].items():
                if prefix == "method" and id(base) in model_ids:
                    continue
                leaf = torch.stack([n[name].detach() for n in named]).requires_grad_(base.requires_grad)
                self.params[f"{prefix}.{name}"] = leaf
                self.leaf_of[id(base)] = leaf
                if prefix == "method":
                    self.method_leaves.append(leaf)
        # Model buffers (BatchNorm statistics) are per model; a method's buffers (DANN's GRL
        # coefficient, set from the progress every step) are shared and stay live.
        named = [dict(m.named_buffers()) for m in models]
        self.buffers = {f"model.{n}": torch.stack([b[n] for b in named]) for n in named[0]}

    # -- calls ------------------------------------------------------------------------
    def _state(self) -> dict[str, Tensor]:
        return {**self.params, **self.buffers}

    def _vmapped(self, fn: Callable[..., Any], in_dims: tuple) -> Callable[..., Any]:
        def call(state, *args):
            return functional_call(self.pair, state, (fn, *args), strict=False)

        return vmap(call, in_dims=(0, *in_dims), randomness="different")

    @torch.no_grad()
    def _predict_proba(self, predict: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        """Softmax probabilities ``[K, N, C]`` (float32, CPU) of the K models over ``x``."""
        call = self._vmapped(predict, (None,))
        state = {k: v.detach() for k, v in self._state().items()}
        out = [
            torch.softmax(call(state, x[i : i + _PREDICT_BATCH]).float(), dim=-1)
            for i in range(0, len(x), _PREDICT_BATCH)
        ]
        return torch.cat(out, dim=1).cpu()

    def _score(self, stage: Stage) -> list[dict[str, float]]:
        """Trainer._score for each model."""
        self.model.eval()
        self.method.eval()
        return [score_probs(stage, p) for p in self._predict_proba(stage.predict, stage.monitor.x)]

    # -- checkpoint -------------------------------------------------------------------
    def _save(self, path: Path, **fields: Any) -> None:
        rng = {**global_rng_state(), "batches": [g.get_state() for g in self._gens]}
        state = {k: v.detach() for k, v in self._state().items()}
        atomic_save({"version": CHECKPOINT_VERSION, "seeds": self.seeds, "state": state, "rng": rng, **fields}, path)

    def _load(self, path: Path) -> dict[str, Any]:
        saved = torch.load(path, map_location=self.device, weights_only=False)
        if saved.get("version") != CHECKPOINT_VERSION or "seeds" not in saved:
            raise DomadaptError(f"{path}: not a vmapped-seeds checkpoint of version {CHECKPOINT_VERSION}")
        if list(saved["seeds"]) != self.seeds:
            raise DomadaptError(f"{path}: checkpoint of seeds {saved['seeds']}, this run trains seeds {self.seeds}")
        with torch.no_grad():
            for k, v in self._state().items():
                v.copy_(saved["state"][k])
        set_global_rng_state(saved["rng"])
        for g, g_state in zip(self._gens, saved["rng"]["batches"]):
            g.set_state(g_state)
        return saved

    # -- training ---------------------------------------------------------------------
    def fit(
        self,
        *,
        checkpoint: Path | None = None,
        resume: bool = False,
        writers: list[Any] | None = None,
        progress: bool = False,
    ) -> list[SeedResult]:
        """Train the K models; per epoch an atomic checkpoint (all K models, optimiser,
        scheduler, best states, histories, every random state) so ``resume`` continues a
        killed run exactly, and one tensorboard row per seed in ``writers[i]``."""
        histories: list[dict[str, list[float]]] = [{} for _ in self.seeds]
        index_data = _index_fold(self.data)
        start_stage, start_epoch, saved = 0, 0, None
        if resume and checkpoint is not None and checkpoint.exists():
            saved = self._load(checkpoint)
            histories = saved["histories"]
            start_stage, start_epoch = saved["stage"], saved["epoch"]
            log.info("resumed %s at stage %d epoch %d", checkpoint, start_stage, start_epoch)
        for s_idx in range(start_stage, len(self.stages)):
            stage = self.stages[s_idx]
            for module in stage.frozen:
                module.requires_grad_(False)
            for base_p in list(self.model.parameters()) + list(self.method.parameters()):
                if id(base_p) in self.leaf_of:
                    self.leaf_of[id(base_p)].requires_grad_(base_p.requires_grad)
            groups = [([self.leaf_of[id(p)] for p in ps], mult) for ps, mult in stage.param_groups]
            opt = self.helper.build_optimizer(
                dataclasses.replace(stage, param_groups=groups), _Owned(self.method_leaves)
            )
            trained = {id(p) for g in opt.param_groups for p in g["params"]}
            for leaf in self.params.values():  # no gradient for what this stage does not train
                leaf.requires_grad_(id(leaf) in trained)
            sched = self.helper.build_scheduler(opt, stage.epochs)
            best_score = torch.full((self.k,), -math.inf, dtype=torch.float64)
            best: dict[str, Tensor] | None = None
            first_epoch = 0
            if saved is not None and s_idx == start_stage:
                load_optimizer_state(saved, opt, sched)
                best_score, best = saved["best_score"], saved["best"]
                first_epoch = start_epoch
            for epoch in range(first_epoch, stage.epochs):
                terms = self._train_epoch(stage, index_data, self._gens, epoch, opt, progress)
                val = self._score(stage)
                score = torch.tensor([v["score"] for v in val], dtype=torch.float64)
                improved = score > best_score  # NaN never improves, as in the Trainer
                if bool(improved.any()):
                    best_score = torch.where(improved, score, best_score)
                    dev_mask = improved.to(self.device)
                    current = {k: v.detach() for k, v in self._state().items()}
                    if best is None:
                        best = {k: v.clone() for k, v in current.items()}
                    else:
                        best = {k: torch.where(_expand(dev_mask, v), v, best[k]) for k, v in current.items()}
                for i, hist in enumerate(histories):
                    row = {
                        **{f"train/{k}": v[i] for k, v in terms.items()},
                        **{f"val/{k}": v for k, v in val[i].items()},
                    }
                    for key, value in row.items():
                        hist.setdefault(f"{stage.name}/{key}", []).append(value)
                        if writers is not None and writers[i] is not None:
                            writers[i].add_scalar(f"{stage.name}/{key}", value, epoch)
                if sched is not None:
                    sched.step()
                if checkpoint is not None:
                    # epoch == stage.epochs on resume: the loop is done, only the best restore is left
                    self._save(
                        checkpoint,
                        stage=s_idx,
                        epoch=epoch + 1,
                        optimizer=opt.state_dict(),
                        scheduler=sched.state_dict() if sched is not None else None,
                        best_score=best_score,
                        best=best,
                        histories=histories,
                    )
            if best is not None:  # each model back to its own best epoch (never-improved: last)
                ever = torch.isfinite(best_score).to(self.device)
                with torch.no_grad():
                    for k, v in self._state().items():
                        v.copy_(torch.where(_expand(ever, v), best[k], v))
            for module in stage.frozen:
                module.requires_grad_(True)
            saved = None
        self.model.eval()
        self.method.eval()
        probs = self._predict_proba(lambda x: self.method.target_logits(self.model, x), self.data.target_test.x)
        results = []
        for i, seed in enumerate(self.seeds):
            state = {
                k[len("model.") :]: v[i].detach().cpu().clone()
                for k, v in self._state().items()
                if k.startswith("model.")
            }
            results.append(SeedResult(seed=seed, history=histories[i], probs_test=probs[i], state_dict=state))
        return results

    def _train_epoch(
        self,
        stage: Stage,
        index_data: FoldData,
        gens: list[torch.Generator],
        epoch: int,
        opt: torch.optim.Optimizer,
        progress: bool = False,
    ) -> dict[str, list[float]]:
        """Trainer._train_epoch for K models: same batches per seed, same loss, per-model clip."""
        self.model.train()
        self.method.train()
        for module in stage.frozen:
            module.eval()
        data, cfg, k = self.data, self.cfg, self.k
        n_batches = count_batches(stage, data, cfg.batch_size)
        use_amp = cfg.amp and self.device.type == "cuda"
        align_losses = [m for m in self.method.modules() if isinstance(m, AlignmentLoss)]
        step = self._vmapped(self._step_fn(stage), (0, None))
        trained = [p for g in opt.param_groups for p in g["params"]]
        draws = [self.helper.batches(stage, index_data, g) for g in gens]  # per-seed batch order
        batches: Iterable[tuple[StepBatch, ...]] = zip(*draws)
        if progress:
            from tqdm.auto import tqdm

            desc = f"{stage.name} {epoch + 1}/{stage.epochs} x{k} seeds"
            batches = tqdm(batches, total=n_batches, desc=desc, leave=False)
        sums: dict[str, Tensor] = {}
        count = 0
        for b, per_seed in enumerate(batches):
            p = (epoch * n_batches + b) / max(1, stage.epochs * n_batches)
            for loss_module in align_losses:
                loss_module.set_progress(p)
            tensors = self._gather(per_seed)
            amp = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else contextlib.nullcontext()
            with amp:
                out = step(self._state(), tensors, p)
            lam = cfg.align_weight * (stage.align_schedule or self.helper.lam)(p)
            loss = out["task"] if "align" not in out else out["task"] + lam * out["align"]
            finite = torch.isfinite(loss)
            if not bool(finite.all()):
                i = int((~finite).nonzero()[0])
                bad = "task" if not torch.isfinite(out["task"][i]) else "align"
                raise NonFiniteLossError(
                    f"non-finite loss in stage {stage.name!r}, epoch {epoch + 1}, batch {b + 1} "
                    f"(seed {self.seeds[i]}): {bad} term = {float(out[bad][i])}"
                )
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()  # the models are independent: d(sum)/d(model k) = d(loss k)
            if cfg.grad_clip > 0:
                clip_grad_norm_per_model_(trained, cfg.grad_clip)
            opt.step()
            values: dict[str, Any] = {"loss": loss.detach(), "task": out["task"].detach()}
            if "align" in out:
                values.update(align=out["align"].detach(), lam=torch.full((k,), lam))
            values.update(out["stats"])
            for key, v in values.items():
                v = v.detach().float().reshape(-1).expand(k) if torch.is_tensor(v) else torch.full((k,), float(v))
                sums[key] = sums.get(key, 0.0) + v
            count += 1
        return {key: [float(x) / max(1, count) for x in v.cpu()] for key, v in sums.items()}

    def _gather(self, per_seed: tuple[StepBatch, ...]) -> dict[str, Any]:
        """One ``[K, B, ...]`` batch from the K seeds' index batches (one gather per domain)."""
        first = per_seed[0]

        def rows(domain: DomainData, idx: list[Tensor]) -> tuple[Tensor, Tensor]:
            i = torch.stack(idx)  # [K, B]
            x = domain.x.index_select(0, i.reshape(-1)).view(*i.shape, *domain.x.shape[1:])
            return x, domain.y.index_select(0, i.reshape(-1)).view(i.shape)

        tensors: dict[str, Any] = {"xs": [], "ys": []}
        if first.x_t is not None:
            tensors["x_t"], tensors["y_t"] = rows(self.data.target_train, [b.x_t for b in per_seed])
        for j, source in enumerate(self.data.sources):
            if j < len(first.sources):
                x, y = rows(source, [b.sources[j].x for b in per_seed])
                tensors["xs"].append(x)
                tensors["ys"].append(y)
        self._source_tasks = [sb.task for sb in first.sources]
        return tensors

    def _step_fn(self, stage: Stage) -> Callable[[dict[str, Any], float], dict[str, Any]]:
        """One model's step as a function of its batch: the stage's own closure, unchanged."""

        def run(tensors: dict[str, Any], p: float) -> dict[str, Any]:
            batch = StepBatch(
                x_t=tensors.get("x_t"),
                y_t=tensors.get("y_t"),
                sources=[
                    SourceBatch(task=t, x=x, y=y) for t, x, y in zip(self._source_tasks, tensors["xs"], tensors["ys"])
                ],
            )
            out = stage.step(batch, p)
            result: dict[str, Any] = {"task": out.task, "stats": {k: torch.as_tensor(v) for k, v in out.stats.items()}}
            if out.align is not None:
                result["align"] = out.align
            return result

        return run


def fit_seeds(
    cfg: TrainConfig,
    build_model: Callable[[int], TransferModel],
    spec: MethodSpec,
    data: FoldData,
    seeds: list[int],
    *,
    device: torch.device | str,
    checkpoint: Path | None = None,
    resume: bool = False,
    writers: list[Any] | None = None,
    progress: bool = False,
) -> list[SeedResult]:
    """Train one model per seed on fold ``data`` in one vectorised pass; one result per seed.

    Args:
        cfg: optimisation settings, as for the Trainer.
        build_model: ``seed -> TransferModel``; called after ``torch.manual_seed(seed)``.
        spec: the method (see :func:`vmap_supported` for the ones that can run here).
        data: the fold, already on ``device``.
        seeds: the K seeds (each model gets ``Trainer.fit(..., seed=s)``'s batches and init).
        device: where the models train.
        checkpoint: file for the per-epoch checkpoint of all K models (temp file + rename);
            with ``resume`` an existing one is loaded and training continues exactly.
        writers: one tensorboard ``SummaryWriter`` (or None) per seed.
        progress: a tqdm bar per epoch.

    Raises:
        DomadaptError: the method cannot be vmapped (the message says why), or no seeds.
    """
    if not seeds:
        raise DomadaptError("fit_seeds: no seeds given")
    ok, why = vmap_supported(spec)
    if not ok:
        raise DomadaptError(f"method {spec.name!r} cannot train its seeds in one vmapped pass: {why}")
    device = torch.device(device)
    if cfg.compile:
        log.warning("train.compile is not applied to vmapped seeds: they train uncompiled")
    with warnings.catch_warnings():
        # pytorch-adapt's MMD calls fill_diagonal_, which vmap runs per model (correct, and
        # cheap at K models) with a performance warning on every call.
        warnings.filterwarnings(
            "ignore", message="There is a performance drop because we have not yet implemented the batching rule"
        )
        if writers is not None and len(writers) != len(seeds):
            raise DomadaptError(f"fit_seeds: {len(writers)} writers for {len(seeds)} seeds")
        ensemble = _SeedEnsemble(cfg, build_model, spec, data, list(seeds), device)
        return ensemble.fit(checkpoint=checkpoint, resume=resume, writers=writers, progress=progress)
