"""The model-selection objectives of ``domadapt sweep --objective``: how good a trained model
is, judged from what unsupervised domain adaptation has (labelled source data, unlabelled
target data) or, as the oracle, from labelled target validation subjects.

Each trial of a sweep scores its kept model with every objective (so one sweep answers the
question for all of them), higher is better; the test fold is never read:

``target_val``
    UA on the fold's labelled target validation subjects (``train.val_fraction`` of the
    training subjects). In unsupervised DA these labels do not exist: this is the ORACLE,
    the pick the others are measured against. (In supervised DA, a target with labels, it
    is the honest objective.)
``source_val``
    UA on the held-out source rows (the share of each source the engine keeps out of
    training, ``SOURCE_VAL_FRACTION``), each source through its own head, averaged.
``dev``
    Deep Embedded Validation (You et al., *Towards Accurate Model Selection in Deep
    Unsupervised Domain Adaptation*, ICML 2019): the source validation loss weighted by
    the density ratio target/source of the features the target head reads, with the
    paper's control variate. Needs one label set on both sides.
every ``VALIDATORS`` entry (``snd``, ``im``, a user's own)
    The validator's score of the model's predictions on the unlabelled target training data.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from domadapt.data import FoldData
from domadapt.errors import DomadaptError
from domadapt.evaluate import segment_metrics
from domadapt.registries import VALIDATORS

#: the objective that reads target labels: the oracle of unsupervised DA
ORACLE = "target_val"
#: the objectives besides the registered validators, in words
BUILT_IN = {
    "target_val": "UA on labelled target validation subjects (the ORACLE: reads target labels)",
    "source_val": "UA on the held-out source rows",
    "dev": "Deep Embedded Validation (You et al., ICML 2019): minus the importance-weighted source validation loss",
}
#: the domain classifier's L2 penalties DEV's authors try, keeping the most accurate
#: (github.com/thuml/Deep-Embedded-Validation, dev.py)
DEV_DECAYS = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)
#: rows (source and target together, drawn at random) the domain classifier learns from:
#: nine MLP fits on every window of a speech fold would cost minutes per trial
DEV_MAX_ROWS = 2000


def objective_names() -> list[str]:
    """Every objective a sweep records: the fixed ones, then the registered validators."""
    return [*BUILT_IN, *VALIDATORS.names()]


def check_objective(name: str) -> str:
    """``name`` if it is an objective, else a one-line error listing them."""
    names = objective_names()
    if name not in names:
        raise DomadaptError(f"--objective {name!r}: expected one of {', '.join(names)}")
    return name


def describe(name: str) -> str:
    """What objective ``name`` scores, in words (the oracle named as such)."""
    if name in BUILT_IN:
        return BUILT_IN[name]
    return f"{name} of the predictions on the unlabelled target training data (no label read)"


@torch.no_grad()
def selection_scores(replicas: Any, data: FoldData, *, seed: int) -> list[dict[str, float | None]]:
    """Every objective of each replica's kept model on ``data`` (test fold unread); None
    where an objective cannot be had (no target validation subjects, no shared labels)."""
    method = replicas.method
    replicas.eval_mode()
    scores: list[dict[str, float | None]] = [{} for _ in range(replicas.k)]
    for i, ua in enumerate(_target_val_ua(replicas, data)):
        scores[i]["target_val"] = ua
    for i, ua in enumerate(_source_val_ua(replicas, data)):
        scores[i]["source_val"] = ua
    for i, dev in enumerate(_dev(replicas, data, seed=seed)):
        scores[i]["dev"] = dev
    probs = replicas.predict(method.target_logits, data.target_train.x)  # [K, N, C]; labels unread
    for name in VALIDATORS.names():
        for i, p in enumerate(probs):
            scores[i][name] = _finite(VALIDATORS.get(name)(p))
    return scores


def _target_val_ua(replicas: Any, data: FoldData) -> list[float | None]:
    val = data.target_val
    if len(val) == 0:
        return [None] * replicas.k
    predicted = replicas.predict(replicas.method.target_logits, val.x).argmax(-1)
    return [_ua(val.y, p, val.num_classes) for p in predicted]


def _source_val_ua(replicas: Any, data: FoldData) -> list[float | None]:
    per_source = []
    for d in data.source_val:
        predicted = replicas.predict(replicas.method.predictor(d.task), d.x).argmax(-1)
        per_source.append([_ua(d.y, p, d.num_classes) for p in predicted])
    return [float(np.mean(column)) for column in zip(*per_source)]


def _ua(y: torch.Tensor, predicted: torch.Tensor, num_classes: int) -> float:
    return float(segment_metrics(y.cpu().numpy(), predicted.numpy(), num_classes=num_classes)["uar"])


def _dev(replicas: Any, data: FoldData, *, seed: int) -> list[float | None]:
    """Each replica's DEV score; None without a shared label set (the target head's loss
    on source rows needs the source's labels to be the target's)."""
    if not data.shared_labels:
        return [None] * replicas.k
    method = replicas.method
    features = lambda x: method.target_features(x)["specific"]  # noqa: E731 - what the target head reads
    source = torch.cat([d.x for d in data.sources])
    source_val = torch.cat([d.x for d in data.source_val])
    y_val = torch.cat([d.y.cpu() for d in data.source_val])
    f_train = replicas.outputs(features, source).flatten(2)
    f_val = replicas.outputs(features, source_val).flatten(2)
    f_target = replicas.outputs(features, data.target_train.x).flatten(2)
    logits_val = replicas.outputs(method.target_logits, source_val)
    return [
        _finite(deep_embedded_validation(f_train[i], f_val[i], f_target[i], logits_val[i], y_val, seed=seed))
        for i in range(replicas.k)
    ]


def deep_embedded_validation(
    f_source: torch.Tensor, f_source_val: torch.Tensor, f_target: torch.Tensor, logits_source_val: torch.Tensor,
    y_source_val: torch.Tensor, *, seed: int,
) -> float:
    """Minus DEV's risk (higher is better) of a model from its features ``(N, D)`` of the
    source training, source validation and target rows and its logits ``(N_val, C)`` on the
    source validation rows with their labels ``(N_val,)``.

    The density ratio comes from the authors' own recipe (their ``dev.py``): scikit-learn
    ``MLPClassifier``s (two hidden layers of width D) told source from target on 80 % of
    the rows (at most :data:`DEV_MAX_ROWS`), the L2 penalty of :data:`DEV_DECAYS` most
    accurate on the other 20 % kept.
    pytorch-adapt's ``DeepEmbeddedValidator`` trains that classifier through
    pytorch-ignite, which domadapt does not depend on; its control-variate risk
    (``get_dev_risk``) needs no ignite and is used as it is.
    """
    from pytorch_adapt.validators.deep_embedded_validator import get_dev_risk
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    xs, xv, xt = (f.double().numpy() for f in (f_source, f_source_val, f_target))
    rows = np.concatenate([xs, xt])
    is_source = np.r_[np.ones(len(xs), dtype=np.int64), np.zeros(len(xt), dtype=np.int64)]
    if len(rows) > DEV_MAX_ROWS:
        keep = np.random.default_rng(seed).choice(len(rows), DEV_MAX_ROWS, replace=False)
        rows, is_source = rows[keep], is_source[keep]
    n_s, n_t, width = int(is_source.sum()), int((1 - is_source).sum()), xs.shape[1]
    fit_x, held_x, fit_y, held_y = train_test_split(rows, is_source, train_size=0.8, random_state=seed, stratify=is_source)
    best, best_acc = None, -1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the authors' fixed iteration budget
        for decay in DEV_DECAYS:
            classifier = MLPClassifier(hidden_layer_sizes=(width, width, 2), alpha=decay, random_state=seed)
            classifier.fit(fit_x, fit_y)
            acc = float(np.mean(classifier.predict(held_x) == held_y))
            if acc > best_acc:
                best, best_acc = classifier, acc
    p = best.predict_proba(xv)  # columns: P(target), P(source)
    # p(target|x) / p(source|x) * N_s / N_t = p_t(x) / p_s(x); the floor keeps a row the
    # classifier is certain of finite
    weight = p[:, :1] / np.maximum(p[:, 1:], 1e-12) * (n_s / n_t)
    error = torch.nn.functional.cross_entropy(logits_source_val.float(), y_source_val.long(), reduction="none")
    if not weight.any():  # no source validation row looks like the target: DEV has nothing to weight
        return math.nan
    if np.std(weight) < 1e-3 * np.mean(weight):
        # a classifier that answers (nearly) the same for every row saw no shift: the ratio
        # is 1. The control variate would divide by the weights' near-zero variance
        # (tests/unit/test_selection.py::test_dev_weights_the_source_loss_toward_the_target)
        return -float(error.mean())
    risk = get_dev_risk(torch.as_tensor(weight), error[:, None], None)
    return -float(risk)


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
