"""Did alignment happen? The domain gap between two feature sets, and whether a loss acts.

Two figures of the same question — how far apart are the source and target features? —
computed on *held-out* segments (validation/test rows, never the rows a model was trained
on, where a model can separate anything it memorised):

* :func:`proxy_a_distance` — the proxy A-distance of Ben-David et al. (2007, "Analysis of
  representations for domain adaptation"; used as a gap figure by Ganin et al. 2016,
  "Domain-adversarial training of neural networks", sec. 5.1.4): ``2 (1 - 2 eps)`` with
  ``eps`` the cross-validated error of a linear domain classifier. 0 = indistinguishable,
  2 = perfectly separable. Folds are grouped by subject when subjects are given, so the
  classifier cannot win by recognising speakers that only one domain has.
* :func:`standardized_mmd` — squared MMD with a Gaussian kernel (Gretton et al. 2012, "A
  kernel two-sample test") after standardising the pooled features, so that the figure
  does not depend on the scale of the features (TIM's features have std ~0.002 at init).

:func:`domain_gap` returns both in one dict; :class:`HeldOut`, :func:`measure_gap` and
:func:`gap_probe` measure it on a training run's held-out rows (before and after training,
and per epoch on a fixed probe batch). :func:`gradient_norm_ratio` tells whether an
alignment loss is felt at all: the norm of its gradient at the shared layers relative to
the task loss's gradient (a ratio ~1e-6 is a loss that does nothing).

Example::

    gap = domain_gap(f_source, f_target, groups_s=subjects_s, groups_t=subjects_t)
    gap["a_distance"], gap["mmd"]   # e.g. 1.62, 0.21
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from domadapt.data import DomainData, FoldData
from domadapt.engine.replicas import Replicas
from domadapt.errors import DomadaptError

#: Rows per domain that :func:`domain_gap` keeps (a deterministic subsample): the logistic
#: regression's cross-validation and the O(N^2) kernel stay well under a second on a CPU.
MAX_ROWS = 1000


def _as_matrix(f: Any, name: str) -> np.ndarray:
    """``f`` (numpy or torch, ``(N, D)`` or ``(N, ...)``) as a float64 ``(N, D)`` array."""
    if isinstance(f, torch.Tensor):
        f = f.detach().to("cpu", torch.float64).numpy()
    x = np.asarray(f, dtype=np.float64)
    if x.ndim < 2:
        raise DomadaptError(f"{name}: expected features of shape (N, D), got shape {x.shape}")
    x = x.reshape(len(x), -1)
    if len(x) < 2:
        raise DomadaptError(f"{name}: need at least 2 rows, got {len(x)}")
    if not np.all(np.isfinite(x)):
        raise DomadaptError(f"{name}: features hold NaN or inf")
    return x


def _as_groups(g: Any, n: int, name: str) -> np.ndarray:
    if isinstance(g, torch.Tensor):
        g = g.cpu().numpy()
    groups = np.asarray(list(g) if not isinstance(g, np.ndarray) else g)
    if groups.shape != (n,):
        raise DomadaptError(
            f"{name}: expected {n} subject ids (one per row), got shape {groups.shape}")
    return groups


def _pooled_standardised(x_s: np.ndarray, x_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets standardised with the pooled mean and std per feature (constant features -> 0)."""
    pooled = np.concatenate([x_s, x_t])
    mean, std = pooled.mean(axis=0), pooled.std(axis=0)
    # A feature constant over both domains carries no gap; 1 keeps it at 0 instead of NaN.
    std = np.where(std > 1e-12 * (np.abs(mean) + 1.0), std, 1.0)
    return (x_s - mean) / std, (x_t - mean) / std


# --------------------------------------------------------------------------- A-distance


def proxy_a_distance(
    f_s: Any,
    f_t: Any,
    *,
    groups_s: Sequence | np.ndarray | None = None,
    groups_t: Sequence | np.ndarray | None = None,
    folds: int = 5,
    seed: int = 0,
) -> float:
    """Proxy A-distance ``2 (1 - 2 eps)`` between source and target features.

    ``eps`` is the *balanced* cross-validated error (the mean of the error on source rows
    and the error on target rows, from out-of-fold predictions) of a linear domain
    classifier: ``StandardScaler`` + ``LogisticRegression(class_weight="balanced")`` in a
    scikit-learn ``Pipeline``, so the scaler is fitted on the training folds only and
    unequal domain sizes bias neither the classifier nor ``eps``.

    With ``groups_s``/``groups_t`` (subject ids per row) the folds are
    ``StratifiedGroupKFold`` on the domain label grouped by subject, with source and target
    ids made distinct (a "01" in both domains are two people): every subject is entirely
    in one test fold, so a classifier that only recognises speakers scores at chance.
    Without groups the folds are ``StratifiedKFold`` over rows (then a speaker seen in
    training is recognised in the test fold: an upper-biased figure).

    The result is clipped to ``[0, 2]``: ``eps`` above 0.5 (a classifier worse than chance,
    which only happens through the noise of cross-validation when the domains are
    indistinguishable) is evidence of no separability, not of "negative distance"; 2 is
    the natural maximum (``eps`` = 0).

    Args:
        f_s: source features, ``(N_s, D)`` numpy array or tensor.
        f_t: target features, ``(N_t, D)``.
        groups_s: subject id of each source row (``N_s``), or None.
        groups_t: subject id of each target row (``N_t``); give both or neither.
        folds: number of cross-validation folds (lowered to the number of subjects of the
            smaller domain when grouped, so that each training fold has both domains).
        seed: shuffling seed of the folds.

    Returns:
        The proxy A-distance, a float in ``[0, 2]``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_s, x_t = _as_matrix(f_s, "f_s"), _as_matrix(f_t, "f_t")
    if x_s.shape[1] != x_t.shape[1]:
        raise DomadaptError(f"f_s has {x_s.shape[1]} features, f_t {x_t.shape[1]}")
    if (groups_s is None) != (groups_t is None):
        raise DomadaptError(
            "give subject groups for both domains (groups_s and groups_t) or neither")
    x = np.concatenate([x_s, x_t])
    domain = np.r_[np.zeros(len(x_s), dtype=int), np.ones(len(x_t), dtype=int)]
    if groups_s is not None:
        g_s = _as_groups(groups_s, len(x_s), "groups_s")
        g_t = _as_groups(groups_t, len(x_t), "groups_t")
        # Integer codes per domain, target codes offset past the source's: always distinct.
        codes_s = np.unique(g_s.astype(str), return_inverse=True)[1]
        codes_t = np.unique(g_t.astype(str), return_inverse=True)[1]
        groups = np.r_[codes_s, codes_t + codes_s.max() + 1]
        smaller = min(codes_s.max() + 1, codes_t.max() + 1)
        if smaller < 2:
            raise DomadaptError(
                "proxy_a_distance: grouped cross-validation needs at least 2 subjects per domain "
                f"(got {codes_s.max() + 1} source, {codes_t.max() + 1} target)"
            )
        k = min(folds, int(smaller))
        splits = StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(x, domain, groups)
    else:
        k = min(folds, len(x_s), len(x_t))
        if k < 2:
            raise DomadaptError("proxy_a_distance: need at least 2 rows per domain")
        splits = StratifiedKFold(k, shuffle=True, random_state=seed).split(x, domain)

    predicted = np.empty_like(domain)
    for train, test in splits:
        if len(np.unique(domain[train])) < 2:
            raise DomadaptError(
                "proxy_a_distance: a training fold holds one domain only; use fewer folds"
            )
        clf = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000),
        )
        predicted[test] = clf.fit(x[train], domain[train]).predict(x[test])
    wrong = predicted != domain
    eps = 0.5 * (wrong[domain == 0].mean() + wrong[domain == 1].mean())
    return float(np.clip(2.0 * (1.0 - 2.0 * eps), 0.0, 2.0))


# --------------------------------------------------------------------------- MMD


def standardized_mmd(f_s: Any, f_t: Any) -> float:
    """Unbiased squared MMD with a Gaussian kernel, on pooled-standardised features.

    Both sets are standardised with the mean and std (per feature) of the pooled sample,
    then ``k(x, y) = exp(-||x - y||^2 / h)`` with ``h`` the median squared distance between
    distinct pooled rows (the median heuristic). The estimate is the *unbiased* U-statistic
    (Gretton et al. 2012, eq. 3): its expectation is 0 for identical distributions whatever
    the sample sizes, so figures from sets of different sizes compare; for that reason it
    can be slightly negative (sampling noise) and is not clipped. Scaling both sets by any
    factor leaves it unchanged.

    Args:
        f_s: source features ``(N_s, D)``, ``N_s >= 2``.
        f_t: target features ``(N_t, D)``, ``N_t >= 2``.

    Returns:
        MMD^2 (a float; ~0 for the same distribution, at most 2).
    """
    x_s, x_t = _as_matrix(f_s, "f_s"), _as_matrix(f_t, "f_t")
    if x_s.shape[1] != x_t.shape[1]:
        raise DomadaptError(f"f_s has {x_s.shape[1]} features, f_t {x_t.shape[1]}")
    x_s, x_t = _pooled_standardised(x_s, x_t)
    pooled = np.concatenate([x_s, x_t])
    sq = np.sum(pooled**2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * pooled @ pooled.T, 0.0)
    n_s, n = len(x_s), len(pooled)
    off_diagonal = d2[~np.eye(n, dtype=bool)]
    h = float(np.median(off_diagonal))
    if h <= 0.0:  # (more than) half the pairs coincide: fall back to the mean distance
        h = float(off_diagonal.mean()) or 1.0
    k = np.exp(-d2 / h)
    k_ss, k_tt, k_st = k[:n_s, :n_s], k[n_s:, n_s:], k[:n_s, n_s:]
    n_t = n - n_s
    term_s = (k_ss.sum() - np.trace(k_ss)) / (n_s * (n_s - 1))
    term_t = (k_tt.sum() - np.trace(k_tt)) / (n_t * (n_t - 1))
    return float(term_s + term_t - 2.0 * k_st.mean())


# --------------------------------------------------------------------------- both


def _subsample(n: int, max_rows: int | None, rng: np.random.Generator) -> np.ndarray:
    if max_rows is None or n <= max_rows:
        return np.arange(n)
    return np.sort(rng.choice(n, size=max_rows, replace=False))


def domain_gap(
    f_s: Any,
    f_t: Any,
    *,
    groups_s: Sequence | np.ndarray | None = None,
    groups_t: Sequence | np.ndarray | None = None,
    seed: int = 0,
    max_rows: int | None = MAX_ROWS,
) -> dict[str, float | int]:
    """The domain gap between held-out source and target features, as a plain dict.

    Each domain is first subsampled to at most ``max_rows`` rows (the same rows for the
    same ``seed``; None keeps all), then :func:`proxy_a_distance` (grouped by subject when
    groups are given) and :func:`standardized_mmd` are computed on the same rows.

    Args:
        f_s: source features ``(N_s, D)`` (numpy or torch), from held-out segments.
        f_t: target features ``(N_t, D)``.
        groups_s: subject id per source row, or None (then the A-distance folds are not
            grouped and a speaker-recognising classifier inflates it).
        groups_t: subject id per target row, or None.
        seed: seed of the subsample and of the folds.
        max_rows: rows kept per domain.

    Returns:
        ``{"a_distance": float in [0, 2], "mmd": float (unbiased MMD^2), "n_source": rows
        of the source used, "n_target": rows of the target used}``.
    """
    x_s, x_t = _as_matrix(f_s, "f_s"), _as_matrix(f_t, "f_t")
    rng = np.random.default_rng(seed)
    keep_s, keep_t = _subsample(len(x_s), max_rows, rng), _subsample(len(x_t), max_rows, rng)
    g_s = g_t = None
    if groups_s is not None:
        g_s = _as_groups(groups_s, len(x_s), "groups_s")[keep_s]
    if groups_t is not None:
        g_t = _as_groups(groups_t, len(x_t), "groups_t")[keep_t]
    x_s, x_t = x_s[keep_s], x_t[keep_t]
    return {
        "a_distance": proxy_a_distance(x_s, x_t, groups_s=g_s, groups_t=g_t, seed=seed),
        "mmd": standardized_mmd(x_s, x_t),
        "n_source": int(len(x_s)),
        "n_target": int(len(x_t)),
    }


# --------------------------------------------------------------------------- gradients


def _grad_norm(loss: torch.Tensor, params: list[torch.Tensor]) -> float:
    if not loss.requires_grad:  # a constant (e.g. a loss switched off): no gradient at all
        return 0.0
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    total = sum(float(g.detach().double().pow(2).sum()) for g in grads if g is not None)
    return total**0.5


def gradient_norm_ratio(
    task_loss: torch.Tensor,
    align_loss: torch.Tensor,
    params: Iterable[torch.Tensor],
) -> float:
    """``||d align / d theta|| / ||d task / d theta||`` over the shared-layer ``params``.

    Norms are the global L2 norms over all the given parameters (as in gradient clipping).
    Pass the *weighted* alignment term (``lambda * align``) to see what the optimiser
    feels. The graphs are kept (``retain_graph=True``), so the caller can still call
    ``backward()``; no ``.grad`` is touched. A parameter that a loss does not reach counts
    as a zero gradient. Returns ``inf`` when the task gradient is zero and the alignment
    gradient is not, and ``nan`` when both are zero.

    Args:
        task_loss: scalar task loss.
        align_loss: scalar alignment loss (weighted as in training).
        params: the shared parameters (e.g. the general extractor's), requiring grad.
    """
    params = [p for p in params if p.requires_grad]
    if not params:
        raise DomadaptError("gradient_norm_ratio: no parameter that requires grad")
    task = _grad_norm(task_loss, params)
    align = _grad_norm(align_loss, params)
    if task == 0.0:
        return float("nan") if align == 0.0 else float("inf")
    return align / task


# --------------------------------------------------------------------------- of a training run

GAP_POINTS = ("general", "specific")  # the features a method aligns
PROBE_ROWS = 128  # rows per domain of the fixed per-epoch probe batch


@dataclass
class HeldOut:
    """Held-out segments of both domains (never training rows): the source hold-out and the
    target's validation + test subjects, with subject groups kept distinct per domain."""

    sources: list[DomainData]
    target: torch.Tensor
    groups_s: np.ndarray
    groups_t: np.ndarray

    @staticmethod
    def why_not(data: FoldData) -> str | None:
        """Why the domain gap cannot be measured on ``data``, or None: it needs a source and
        two held-out subjects per domain (its domain classifier is cross-validated by subject)."""
        if not data.source_val:
            return "no source corpus"
        n_t = len(np.unique(np.concatenate([data.target_val.groups, data.target_test.groups])))
        n_s = sum(len(np.unique(d.groups)) for d in data.source_val)
        if n_t < 2 or n_s < 2:
            return f"held-out subjects: {n_s} source, {n_t} target (the subject-grouped domain classifier needs 2 each)"
        return None

    @classmethod
    def of(cls, data: FoldData) -> "HeldOut":
        groups_s = np.concatenate([d.groups + 100_000 * j for j, d in enumerate(data.source_val)])
        return cls(
            sources=list(data.source_val),
            target=torch.cat([data.target_val.x, data.target_test.x]),
            groups_s=groups_s,
            groups_t=np.concatenate([data.target_val.groups, data.target_test.groups]),
        )

    def features(self, replicas: Replicas, *, rows: int | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Every replica's features at each point of ``GAP_POINTS``, from one forward pass:
        point -> (source ``[K, N, D]``, target ``[K, M, D]``)."""
        replicas.eval_mode()
        method = replicas.method
        widths: dict[str, int] = {}

        def joined(feats: dict[str, torch.Tensor]) -> torch.Tensor:
            widths.update({point: feats[point].shape[-1] for point in GAP_POINTS})
            return torch.cat([feats[point] for point in GAP_POINTS], dim=-1)

        f_s = torch.cat(
            [replicas.outputs(lambda x, t=d.task: joined(method.source_features(x, t)), d.x[:rows]) for d in self.sources],
            dim=1,
        )
        f_t = replicas.outputs(lambda x: joined(method.target_features(x)), self.target[:rows])
        sizes = [widths[point] for point in GAP_POINTS]
        return dict(zip(GAP_POINTS, zip(f_s.split(sizes, dim=-1), f_t.split(sizes, dim=-1))))


def measure_gap(held: HeldOut, features: dict[str, tuple[torch.Tensor, torch.Tensor]], seed: int) -> list[dict[str, dict[str, float]]]:
    """Per replica and alignment point: the proxy A-distance (subject-grouped) and the
    standardised MMD between the held-out source and target ``features`` (``held.features``)."""
    k = features[GAP_POINTS[0]][0].shape[0]
    gaps: list[dict[str, dict[str, float]]] = [{} for _ in range(k)]
    for point in GAP_POINTS:
        f_s, f_t = features[point]
        for i in range(k):
            gap = domain_gap(f_s[i].numpy(), f_t[i].numpy(), groups_s=held.groups_s, groups_t=held.groups_t, seed=seed)
            gaps[i][point] = {"a_distance": gap["a_distance"], "mmd": gap["mmd"]}
    return gaps


def gap_probe(held: HeldOut) -> Callable[[Replicas], list[dict[str, float]]]:
    """The per-epoch probe: standardised MMD of the general features on a fixed small batch."""

    def probe(replicas: Replicas) -> list[dict[str, float]]:
        f_s, f_t = held.features(replicas, rows=PROBE_ROWS)["general"]
        return [{"gap/mmd_general": standardized_mmd(f_s[i].numpy(), f_t[i].numpy())} for i in range(replicas.k)]

    return probe


__all__ = [
    "GAP_POINTS",
    "HeldOut",
    "MAX_ROWS",
    "domain_gap",
    "gap_probe",
    "gradient_norm_ratio",
    "measure_gap",
    "proxy_a_distance",
    "standardized_mmd",
]
