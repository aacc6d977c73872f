"""The classical baseline: a standardised linear model on utterance features (scikit-learn).

The row every paper in the field reports first (openSMILE functionals + logistic regression
or a linear SVM). Feature rows come from ``domadapt.features.functionals``; the experiment
runner supplies a fold's train / validation rows and scores ``predict_proba`` with the same
subject-level aggregation and metrics as the deep rows.

Model selection: for each C of ``c_grid`` a ``Pipeline(StandardScaler, model)`` is fitted on
the training rows only (scaler included), and scored by UA (balanced accuracy) on the
validation rows; the best UA wins, ties going to the smaller C (stronger regularisation).
When there are no validation rows, or they hold a single class (UA then measures one
class's recall and cannot rank models), C is chosen by the mean UA of a cross-validation
over the training rows instead (``StratifiedGroupKFold`` when ``groups`` are given, so a
subject never sits on both sides; else ``StratifiedKFold``); when even that is impossible
(a class with a single training subject), C = 1 (scikit-learn's default) is used unranked.
``selection["criterion"]`` says which was used.

``source+target``: rows passed as ``x_extra``/``y_extra`` (e.g. the source corpus, when it
shares the target's label set — the caller decides) are appended to every training set,
never to a validation set.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from domadapt.errors import DomadaptError
from domadapt.registries import METHODS
from domadapt.features.config import FUNCTIONAL_KINDS
from domadapt.registry import check_fields, option

if TYPE_CHECKING:
    from domadapt.features.functionals import UtteranceFeatures

MODELS = ("logreg", "linear_svm")
FEATURE_KINDS = FUNCTIONAL_KINDS  # domadapt.features.functionals computes them
# Inverse regularisation strengths tried, weakest last; standardised inputs make them
# comparable across feature kinds (88 eGeMAPS vs 6373 ComParE dimensions).
DEFAULT_C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)
UNRANKED_C = 1.0  # scikit-learn's default, when no validation set or cross-validation can rank C


@dataclass(eq=False, kw_only=True)
class LinearBaseline:
    """StandardScaler + logistic regression or linear SVM, C chosen by validation UA.

    Args:
        model: ``"logreg"`` (multinomial, lbfgs) or ``"linear_svm"`` (LinearSVC, one-vs-rest).
        c_grid: the C values tried.
        class_weight: passed to the model (``"balanced"``: classes weigh equally, as UA does).
        seed: ``random_state`` of the model and of the cross-validation fallback's shuffle.
        n_classes: if given, labels are ints in ``[0, n_classes)`` and ``predict_proba``
            always has ``n_classes`` columns (zeros for a class absent from training).
        max_iter: optimiser iterations (ComParE's 6373 dimensions need more than the default).

    After ``fit``: ``chosen_c``, ``classes_`` (the training labels, sorted), ``pipeline``
    (the fitted model at ``chosen_c``) and ``selection`` (``criterion``, ``ua_by_c``,
    ``chosen_c``, ``n_train``, ``n_extra``, ``n_val``, ``cv_splits``,
    ``convergence_warnings``).

    Example::

        base = LinearBaseline(model="logreg").fit(x_tr, y_tr, x_va, y_va)
        proba = base.predict_proba(x_te)            # [N, K], rows sum to 1
    """

    model: str = option("logreg", choices=MODELS)
    c_grid: tuple[float, ...] = DEFAULT_C_GRID
    class_weight: str | dict | None = "balanced"
    seed: int = option(0, min=0)  # sklearn's random_state takes no negative seed
    n_classes: int | None = option(None, min=1)
    max_iter: int = option(5000, min=1)
    chosen_c: float | None = field(default=None, init=False)
    classes_: np.ndarray | None = field(default=None, init=False, repr=False)
    pipeline: Pipeline | None = field(default=None, init=False, repr=False)
    selection: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        check_fields(self, where="baseline")
        if not self.c_grid or any(not c > 0 for c in self.c_grid):
            raise DomadaptError(f"baseline c_grid = {self.c_grid!r}: needs at least one C, every C > 0")
        self.c_grid = tuple(sorted(float(c) for c in self.c_grid))

    # ------------------------------------------------------------------ building blocks

    def _pipeline(self, c: float) -> Pipeline:
        if self.model == "logreg":
            est = LogisticRegression(
                C=c, class_weight=self.class_weight, max_iter=self.max_iter, random_state=self.seed
            )
        else:
            est = LinearSVC(
                C=c, class_weight=self.class_weight, max_iter=self.max_iter, random_state=self.seed
            )
        return Pipeline([("scale", StandardScaler()), ("model", est)])

    def _fit_one(self, c: float, x: np.ndarray, y: np.ndarray, caught: list) -> Pipeline:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always", ConvergenceWarning)
            pipe = self._pipeline(c).fit(x, y)
        caught.extend(w for w in rec if issubclass(w.category, ConvergenceWarning))
        return pipe

    @staticmethod
    def _check(x: Any, y: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y)
        if x.ndim != 2 or y.shape != (x.shape[0],):
            raise DomadaptError(f"baseline {what}: x {x.shape} and y {y.shape} must be [N, D] and [N]")
        if not np.isfinite(x).all():
            raise DomadaptError(f"baseline {what}: x holds NaN or inf")
        return x, y

    # ------------------------------------------------------------------ fit / predict

    def fit(
        self,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        *,
        x_extra: np.ndarray | None = None,
        y_extra: np.ndarray | None = None,
        groups: np.ndarray | None = None,
    ) -> "LinearBaseline":
        """Choose C, then fit on the training rows (+ ``x_extra``) with it.

        Shapes: ``x_*`` [N, D], ``y_*`` [N]; ``groups`` [N_train] (subjects of the training
        rows; used only by the cross-validation fallback).
        """
        x_tr, y_tr = self._check(x_train, y_train, "training rows")
        if x_extra is not None or y_extra is not None:
            x_ex, y_ex = self._check(x_extra, y_extra, "extra rows")
            if x_ex.shape[1] != x_tr.shape[1]:
                raise DomadaptError(f"baseline: extra rows have {x_ex.shape[1]} features, training {x_tr.shape[1]}")
        else:
            x_ex, y_ex = x_tr[:0], y_tr[:0]
        x_fit, y_fit = np.concatenate([x_tr, x_ex]), np.concatenate([y_tr, y_ex])
        classes = np.unique(y_fit)
        if len(classes) < 2:
            raise DomadaptError(f"baseline: training rows hold a single class ({classes.tolist()})")
        if self.n_classes is not None and (classes.min() < 0 or classes.max() >= self.n_classes):
            raise DomadaptError(f"baseline: labels {classes.tolist()} outside [0, {self.n_classes})")
        has_val = x_val is not None and y_val is not None and len(y_val) > 0
        if has_val:
            x_va, y_va = self._check(x_val, y_val, "validation rows")
        caught: list = []
        ua_by_c: dict[float, float] = {}
        fitted: dict[float, Pipeline] = {}
        cv_splits = None
        if has_val and len(np.unique(y_va)) >= 2:
            criterion = "validation UA"
            for c in self.c_grid:
                fitted[c] = self._fit_one(c, x_fit, y_fit, caught)
                ua_by_c[c] = float(balanced_accuracy_score(y_va, fitted[c].predict(x_va)))
        else:
            why = "no validation rows" if not has_val else "validation rows hold a single class"
            ua_by_c, cv_splits, kind = self._cv_scores(x_tr, y_tr, x_ex, y_ex, groups, caught)
            if ua_by_c:
                criterion = f"{kind} cross-validated UA on the training rows ({why})"
            else:
                criterion = f"default C = {UNRANKED_C:g} ({why}, and {kind})"
        if ua_by_c:  # ascending grid + strict improvement: ties go to the smaller C
            best = self.c_grid[0]
            for c in self.c_grid[1:]:
                if ua_by_c[c] > ua_by_c[best] + 1e-12:
                    best = c
        else:
            best = UNRANKED_C
        self.pipeline = fitted[best] if best in fitted else self._fit_one(best, x_fit, y_fit, caught)
        self.chosen_c = best
        self.classes_ = classes
        self.selection = {
            "criterion": criterion,
            "ua_by_c": ua_by_c,
            "chosen_c": best,
            "n_train": int(len(y_tr)),
            "n_extra": int(len(y_ex)),
            "n_val": int(len(y_val)) if has_val else 0,
            "cv_splits": cv_splits,
            "convergence_warnings": len(caught),
        }
        return self

    def _cv_scores(self, x_tr, y_tr, x_ex, y_ex, groups, caught):
        """Mean UA over folds of the training rows for each C (extra rows train every fold);
        no scores (and why, as the third item) when a class has too few rows or subjects."""
        counts = np.unique(y_tr, return_counts=True)[1]
        if len(counts) < 2:
            raise DomadaptError("baseline: cannot choose C: the training rows hold a single class "
                                "and there is no two-class validation set")
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != y_tr.shape:
                raise DomadaptError(f"baseline: groups {groups.shape} must match training rows {y_tr.shape}")
            # A class's rows can be split at most as many ways as it has subjects.
            per_class = [len(np.unique(groups[y_tr == k])) for k in np.unique(y_tr)]
            n_splits = min(5, min(per_class))
            if n_splits < 2:
                return {}, None, "a class has a single training subject: no grouped cross-validation"
            splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=self.seed)
            kind = f"{n_splits}-fold subject-grouped"
        else:
            n_splits = min(5, int(counts.min()))
            if n_splits < 2:
                return {}, None, "a class has a single training row: no cross-validation"
            splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.seed)
            kind = f"{n_splits}-fold"
        splits = list(splitter.split(x_tr, y_tr, groups))
        scores: dict[float, float] = {}
        for c in self.c_grid:
            uas = []
            for tr, va in splits:
                pipe = self._fit_one(
                    c, np.concatenate([x_tr[tr], x_ex]), np.concatenate([y_tr[tr], y_ex]), caught
                )
                uas.append(balanced_accuracy_score(y_tr[va], pipe.predict(x_tr[va])))
            scores[c] = float(np.mean(uas))
        return scores, n_splits, kind

    def _require_fit(self) -> Pipeline:
        if self.pipeline is None:
            raise DomadaptError("LinearBaseline: call fit() first")
        return self.pipeline

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Scores [N, K_train] (binary: [N, 2] as ``(-s/2, s/2)``, so softmax = sigmoid(s))."""
        pipe = self._require_fit()
        if self.model == "logreg":
            # log-probabilities: softmax of them is predict_proba exactly
            return pipe.predict_log_proba(np.asarray(x, dtype=np.float64))
        s = pipe.decision_function(np.asarray(x, dtype=np.float64))
        return np.stack([-s / 2, s / 2], axis=1) if s.ndim == 1 else s

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities [N, K] (K = ``n_classes`` if given, else ``len(classes_)``);
        rows sum to 1.

        linear_svm: softmax of ``decision_function`` (not CalibratedClassifierCV), because it
        keeps argmax equal to the SVM's own prediction and needs no inner CV, which fails on
        folds with a handful of subjects per class; the values rank but are not calibrated.
        """
        pipe = self._require_fit()
        xx = np.asarray(x, dtype=np.float64)
        if self.model == "logreg":
            p = pipe.predict_proba(xx)
        else:
            s = self.decision_function(xx)
            s = s - s.max(axis=1, keepdims=True)
            e = np.exp(s)
            p = e / e.sum(axis=1, keepdims=True)
        if self.n_classes is None:
            return p
        full = np.zeros((p.shape[0], self.n_classes), dtype=p.dtype)
        full[:, self.classes_.astype(np.int64)] = p
        return full

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Labels [N]: the argmax of ``predict_proba``."""
        p = self.predict_proba(x)
        return np.argmax(p, axis=1) if self.n_classes is not None else self.classes_[np.argmax(p, axis=1)]


__all__ = ["DEFAULT_C_GRID", "MODELS", "LinearBaseline"]


# ---------------------------------------------------------------------------- the table row


@dataclass(frozen=True)
class BaselineOptions:
    features: str = option("egemaps", choices=FEATURE_KINDS)  # domadapt.features.functionals
    model: str = option("logreg", choices=MODELS)
    # source rows join the training rows (source+target): only where the label sets are shared
    use_source: bool = False

    def __post_init__(self) -> None:
        check_fields(self, where="baseline option")


@METHODS.register("baseline")
class FunctionalsBaseline:
    """Utterance functionals (openSMILE eGeMAPS / ComParE, MFCC mean+std) + a linear model.

    A row of the table like any other: the same folds, validation subjects and test rows as
    the deep rows; each test window gets its utterance's probabilities, so segment- and
    subject-level metrics are computed exactly as for them. Not a torch model: its learner
    (``trained_by = "functionals"``, :mod:`domadapt.run.learners`) calls :meth:`fit_predict`
    where a deep row's calls the training loop.
    """

    Options = BaselineOptions
    trained_by = "functionals"
    vmappable = False
    why_not_vmappable = "a scikit-learn model, fitted once per seed"

    @classmethod
    def label(cls, name: str, options: dict[str, Any]) -> str:
        kind = options.get("features", BaselineOptions.features)
        return f"baseline:{kind}" + ("+source" if options.get("use_source", False) else "")

    def __init__(self, options: BaselineOptions, *, num_classes: int, seed: int) -> None:
        self.options = options
        self.model = LinearBaseline(model=options.model, n_classes=num_classes, seed=seed)

    def fit_predict(
        self,
        target: UtteranceFeatures,
        train_keys: Sequence[str],
        val_keys: Sequence[str],
        test_keys: Sequence[str],
        *,
        sources: Sequence[UtteranceFeatures] = (),
    ) -> np.ndarray:
        """Fit on the target's training utterances (+ ``sources`` when ``use_source``), choose
        C on the validation utterances; return test probabilities ``[len(test_keys), K]``."""
        tr, va, te = (target.rows(keys) for keys in (train_keys, val_keys, test_keys))
        extra = {}
        if self.options.use_source:
            if not sources or any(s.classes != target.classes for s in sources):
                raise DomadaptError(
                    f"{self.label('baseline', vars(self.options))}: use_source needs sources with the target's classes "
                    f"{', '.join(target.classes)}"
                )
            extra = {"x_extra": np.concatenate([s.x for s in sources]), "y_extra": np.concatenate([s.y for s in sources])}
        groups = np.asarray(target.subjects)[tr]
        self.model.fit(target.x[tr], target.y[tr], target.x[va], target.y[va], groups=groups, **extra)
        return self.model.predict_proba(target.x[te])
