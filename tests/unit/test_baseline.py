"""LinearBaseline: recovers separable data, picks C by validation UA, probabilities."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from domadapt.methods.baseline import LinearBaseline

MODELS = ("logreg", "linear_svm")


def _separable(seed: int, n: int, k: int = 3, d: int = 6):
    """k classes at well separated centres in d dims."""
    r = np.random.default_rng(seed)
    y = np.arange(n) % k
    centres = 4.0 * np.eye(k, d)
    return centres[y] + 0.3 * r.standard_normal((n, d)), y


def _collinear(seed: int, n: int = 60, n_val: int = 200):
    """Two nearly collinear features x0 = s, x1 = s + e. The signal s separates the classes
    imperfectly; in training rows the tiny difference e separates them *perfectly*, in
    validation rows e is noise. A weakly regularised model rides on x1 - x0 (huge,
    opposite weights) and fails on validation; a strongly regularised one weights both
    alike and generalises: validation must punish overfitting."""
    r = np.random.default_rng(seed)
    y = np.arange(n) % 2
    s = (2 * y - 1) + r.standard_normal(n)
    e = 0.4 * (2 * y - 1) + 0.02 * r.standard_normal(n)
    yv = np.arange(n_val) % 2
    sv = (2 * yv - 1) + r.standard_normal(n_val)
    ev = 0.8 * r.standard_normal(n_val)
    return np.c_[s, s + e], y, np.c_[sv, sv + ev], yv


@pytest.mark.parametrize("model", MODELS)
def test_recovers_a_linearly_separable_problem(model):
    x, y = _separable(0, 90)
    xv, yv = _separable(1, 30)
    xt, yt = _separable(2, 60)
    base = LinearBaseline(model=model).fit(x, y, xv, yv)
    assert balanced_accuracy_score(yt, base.predict(xt)) == 1.0
    assert base.selection["criterion"] == "validation UA"
    assert set(base.selection["ua_by_c"]) == {0.001, 0.01, 0.1, 1.0, 10.0}
    # Every C separates these: all tie at UA 1.0, and a tie goes to the smallest C.
    assert all(v == 1.0 for v in base.selection["ua_by_c"].values())
    assert base.chosen_c == 0.001 == base.selection["chosen_c"]


@pytest.mark.parametrize("model", MODELS)
def test_probabilities_have_k_columns_and_sum_to_one(model):
    x, y = _separable(0, 90)
    xv, yv = _separable(1, 30)
    base = LinearBaseline(model=model).fit(x, y, xv, yv)
    p = base.predict_proba(xv)
    assert p.shape == (30, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-9)
    assert (p >= 0).all()
    # predict is the argmax of the probabilities, and agrees with the fitted sklearn model.
    assert (base.predict(xv) == p.argmax(axis=1)).all()
    assert (base.predict(xv) == base.pipeline.predict(xv)).all()
    # Binary: still two columns (the SVM's single decision score becomes a softmax pair).
    b2 = LinearBaseline(model=model).fit(x[y < 2], y[y < 2], xv[yv < 2], yv[yv < 2])
    p2 = b2.predict_proba(xv)
    assert p2.shape == (30, 2)
    np.testing.assert_allclose(p2.sum(axis=1), 1.0, rtol=1e-9)
    assert (b2.predict(xv) == b2.pipeline.predict(xv)).all()


def test_n_classes_keeps_absent_classes_as_zero_columns():
    x, y = _separable(0, 90)
    keep = y != 1  # class 1 absent from training
    base = LinearBaseline(n_classes=4).fit(x[keep], y[keep], x[keep], y[keep])
    p = base.predict_proba(x)
    assert p.shape == (90, 4)
    assert (p[:, [1, 3]] == 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert base.classes_.tolist() == [0, 2]


@pytest.mark.parametrize("model", MODELS)
def test_chooses_a_small_c_when_validation_punishes_overfitting(model):
    x, y, xv, yv = _collinear(1)
    base = LinearBaseline(model=model).fit(x, y, xv, yv)
    ua = base.selection["ua_by_c"]
    assert base.chosen_c <= 0.01
    assert ua[base.chosen_c] == max(ua.values())
    assert ua[10.0] < ua[base.chosen_c] - 0.1
    # ... although the large C fits the *training* rows better (it overfits).
    big = LinearBaseline(model=model, c_grid=(10.0,)).fit(x, y, xv, yv)
    small = LinearBaseline(model=model, c_grid=(base.chosen_c,)).fit(x, y, xv, yv)
    assert balanced_accuracy_score(y, big.predict(x)) > balanced_accuracy_score(y, small.predict(x))


def test_validation_decides_not_training_fit():
    """Same training rows, validation rows that reward a weakly regularised fit: a large C
    is chosen (so the choice above comes from the validation rows, not a fixed preference)."""
    x, y, _, _ = _collinear(1)
    base = LinearBaseline(model="linear_svm").fit(x, y, x, y)
    assert base.chosen_c >= 1.0


def test_picks_by_ua_not_accuracy_on_an_imbalanced_validation_set():
    """Unweighted logistic regression on 90/10 classes. At C=0.001 the weight is shrunk to
    ~0 and the (unpenalised) intercept predicts the majority class everywhere: validation
    accuracy 0.9 (also at C=0.01). Larger Cs find the minority class and, on these
    validation rows, also misclassify 20 majority rows lying next to it: accuracy 0.8,
    UA 0.89. UA must choose them; accuracy would choose 0.001."""
    r = np.random.default_rng(0)
    y = (np.arange(100) % 10 == 0).astype(int)  # 90 zeros, 10 ones
    x = np.where(y == 1, 1.0, -1.0)[:, None] + 0.1 * r.standard_normal((100, 1))
    xv = np.r_[np.full(70, -1.0), np.full(20, 0.9), np.full(10, 1.0)][:, None]
    yv = np.r_[np.zeros(90, int), np.ones(10, int)]
    base = LinearBaseline(model="logreg", class_weight=None).fit(x, y, xv, yv)
    ua = base.selection["ua_by_c"]
    assert ua[0.001] == ua[0.01] == 0.5
    assert base.chosen_c == 0.1  # the smallest C of the tied best
    assert ua[base.chosen_c] == pytest.approx((70 / 90 + 1) / 2)
    acc = {c: accuracy_score(yv, LinearBaseline(model="logreg", class_weight=None, c_grid=(c,))
                             .fit(x, y, xv, yv).predict(xv)) for c in (0.001, base.chosen_c)}
    assert acc[0.001] == 0.9 > acc[base.chosen_c]  # accuracy would have chosen 0.001


def test_one_subject_per_class_and_no_validation_uses_the_default_c_unranked():
    # leave-one-session-out on a 2-session corpus: each class has one training subject, so
    # neither a validation set nor a grouped cross-validation can rank C
    x, y, _, _ = _collinear(1)
    g = y.copy()  # every row of a class from one subject
    base = LinearBaseline(model="logreg").fit(x, y, groups=g)
    assert base.chosen_c == 1.0 and base.selection["ua_by_c"] == {}
    assert base.selection["criterion"] == (
        "default C = 1 (no validation rows, and a class has a single training subject: no grouped cross-validation)"
    )
    assert base.predict(x).shape == y.shape


@pytest.mark.parametrize("groups", [None, "subjects"])
def test_single_class_validation_falls_back_to_training_cv(groups):
    x, y, _, _ = _collinear(1)
    g = np.arange(len(y)) // 4 if groups else None  # 15 subjects of 4 rows (2 per class)
    yv = np.zeros(10, int)
    base = LinearBaseline(model="linear_svm").fit(x, y, x[:10], yv, groups=g)
    sel = base.selection
    assert "cross-validated" in sel["criterion"] and "single class" in sel["criterion"]
    assert ("subject-grouped" in sel["criterion"]) == (groups is not None)
    assert sel["cv_splits"] == 5
    # Within the training rows e separates the classes: CV rewards the large C.
    assert base.chosen_c == max(sel["ua_by_c"], key=lambda c: (sel["ua_by_c"][c], -c))
    no_val = LinearBaseline(model="linear_svm").fit(x, y, groups=g)
    assert "no validation rows" in no_val.selection["criterion"]
    assert no_val.selection["ua_by_c"] == sel["ua_by_c"]


def test_grouped_cv_keeps_subjects_on_one_side(monkeypatch):
    import domadapt.methods.baseline as bl

    seen = []
    real = bl.StratifiedGroupKFold.split

    def spy(self, x, y, groups):
        for tr, va in real(self, x, y, groups):
            seen.append(set(groups[tr]) & set(groups[va]))
            yield tr, va

    monkeypatch.setattr(bl.StratifiedGroupKFold, "split", spy)
    x, y, _, _ = _collinear(1)
    LinearBaseline().fit(x, y, groups=np.arange(len(y)) // 4)
    assert seen and all(not overlap for overlap in seen)


def test_extra_rows_join_training_only():
    x, y = _separable(0, 90)
    xv, yv = _separable(1, 30)
    # Training rows lack class 2; the extra (source) rows bring it.
    base = LinearBaseline().fit(x[y < 2], y[y < 2], xv, yv, x_extra=x[y == 2], y_extra=y[y == 2])
    assert base.classes_.tolist() == [0, 1, 2]
    assert base.predict_proba(xv).shape == (30, 3)
    assert balanced_accuracy_score(yv, base.predict(xv)) == 1.0
    assert base.selection["n_train"] == 60 and base.selection["n_extra"] == 30
    assert base.selection["n_val"] == 30
    # The scaler saw the training + extra rows, never the validation rows.
    np.testing.assert_allclose(base.pipeline.named_steps["scale"].mean_, x.mean(axis=0))


def test_bad_inputs_raise_clear_errors():
    x, y = _separable(0, 30)
    with pytest.raises(ValueError, match="baseline model = 'svm': expected one of logreg, linear_svm"):
        LinearBaseline(model="svm")
    with pytest.raises(ValueError, match=r"c_grid = \(0.1, 0.0\): needs at least one C, every C > 0"):
        LinearBaseline(c_grid=(0.1, 0.0))
    with pytest.raises(ValueError, match="needs at least one C"):
        LinearBaseline(c_grid=())
    with pytest.raises(ValueError, match="single class"):
        LinearBaseline().fit(x, np.zeros(30, int), x, y)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LinearBaseline().fit(bad, y, x, y)
    with pytest.raises(ValueError, match="fit"):
        LinearBaseline().predict_proba(x)


def test_c_grid_is_tried_smallest_first_whatever_its_order():
    # ties in validation UA go to the first C tried: the grid must be sorted, as floats
    assert LinearBaseline(c_grid=[10, 0.1, 1]).c_grid == (0.1, 1.0, 10.0)


def test_the_baseline_row_options_are_declared_once_and_refused_before_data_is_read():
    from domadapt.features.functionals import KINDS
    from domadapt.methods.baseline import FEATURE_KINDS, BaselineOptions
    from domadapt.registries import METHODS

    assert FEATURE_KINDS == KINDS
    assert METHODS.option_specs("baseline")["features"].choices == KINDS
    with pytest.raises(ValueError, match="method 'baseline' option features = 'gemaps': expected one of egemaps"):
        METHODS.check("baseline", {"features": "gemaps"})
    with pytest.raises(ValueError, match="baseline option model = 'svm': expected one of logreg, linear_svm"):
        BaselineOptions(model="svm")
