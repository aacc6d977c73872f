import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from domadapt.errors import DomadaptError
from domadapt.evaluate import (
    evaluate_predictions,
    segment_metrics,
    subject_metrics,
    summarize_metrics,
    summarize_runs,
)


def test_segment_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 4, 200))
    m = segment_metrics(y_true, y_pred, num_classes=4)
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["uar"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert m["confusion"] == confusion_matrix(y_true, y_pred).tolist()
    assert m["n"] == 200 and len(m["per_class_recall"]) == 4


def test_segment_metrics_absent_class():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 2, 1, 0])
    m = segment_metrics(y_true, y_pred, num_classes=3)
    assert m["per_class_recall"] == [0.5, 0.5, None]
    assert m["uar"] == pytest.approx(0.5)  # mean over classes present in y_true
    assert m["confusion"] == [[1, 0, 1], [1, 1, 0], [0, 0, 0]]
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))


def test_segment_metrics_errors():
    with pytest.raises(DomadaptError, match="outside"):
        segment_metrics([0, 3], [0, 1], num_classes=3)
    with pytest.raises(DomadaptError, match="items"):
        segment_metrics([0, 1], [0], num_classes=2)


# Three subjects, hand-computed:
#  s0 (true 1): segment argmaxes 1,1,0         -> majority 1; mean prob [0.4, 0.6]     -> 1
#  s1 (true 0): argmaxes 0,1 (a tie)           -> mean prob [0.45, 0.55] breaks it -> 1
#  s2 (true 0): argmaxes 0,0,1 but 1 is strong -> majority 0; mean prob [0.4, 0.6]     -> 1
PROBS = np.array([
    [0.3, 0.7], [0.2, 0.8], [0.7, 0.3],
    [0.6, 0.4], [0.3, 0.7],
    [0.6, 0.4], [0.55, 0.45], [0.05, 0.95],
])
Y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
G = np.array([7, 7, 7, 8, 8, 9, 9, 9])


def test_subject_majority_vote_with_tie_break():
    m = subject_metrics(PROBS, Y, G, mode="majority")
    # predictions per subject [1, 1, 0] vs truth [1, 0, 0]
    assert m["num_subjects"] == 3
    assert m["subject_accuracy"] == pytest.approx(2 / 3)
    assert m["subject_confusion"] == [[1, 1], [0, 1]]
    assert m["subject_uar"] == pytest.approx(balanced_accuracy_score([1, 0, 0], [1, 1, 0]))
    assert m["subject_macro_f1"] == pytest.approx(f1_score([1, 0, 0], [1, 1, 0], average="macro"))


def test_subject_mean_prob():
    m = subject_metrics(PROBS, Y, G, mode="mean_prob")
    assert m["subject_confusion"] == [[0, 2], [0, 1]]
    assert m["subject_accuracy"] == pytest.approx(1 / 3)


def test_subject_metrics_bad_mode():
    with pytest.raises(DomadaptError, match="majority"):
        subject_metrics(PROBS, Y, G, mode="vote")


def test_evaluate_predictions_merges_everything():
    m = evaluate_predictions(PROBS, Y, G, num_classes=2)
    y_pred = PROBS.argmax(1)
    assert m["accuracy"] == pytest.approx(accuracy_score(Y, y_pred))
    assert m["subject_accuracy"] == pytest.approx(2 / 3)
    assert m["subject_accuracy_meanprob"] == pytest.approx(1 / 3)
    assert {"subject_uar_meanprob", "subject_macro_f1_meanprob", "subject_confusion_meanprob"} <= set(m)
    with pytest.raises(DomadaptError, match="shape"):
        evaluate_predictions(PROBS, Y, G, num_classes=3)


def test_summarize_runs_sample_std():
    s = summarize_runs([0.9705, 0.9719, 0.9775])
    assert s["mean"] == pytest.approx(np.mean([0.9705, 0.9719, 0.9775]))
    assert s["std"] == pytest.approx(np.std([0.9705, 0.9719, 0.9775], ddof=1))
    assert s["runs"] == [0.9705, 0.9719, 0.9775]
    assert summarize_runs([0.5]) == {"mean": 0.5, "std": 0.0, "runs": [0.5]}
    with pytest.raises(DomadaptError):
        summarize_runs([])


def test_summarize_metrics_keeps_float_metrics():
    runs = [evaluate_predictions(PROBS, Y, G, num_classes=2)] * 2
    s = summarize_metrics(runs)
    assert {"accuracy", "uar", "macro_f1", "subject_accuracy", "subject_accuracy_meanprob"} <= set(s)
    assert "confusion" not in s and "n" not in s
    assert s["subject_accuracy"]["std"] == 0.0
