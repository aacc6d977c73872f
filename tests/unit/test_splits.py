import re

import numpy as np
import pytest

from domadapt.errors import DomadaptError
from domadapt.splits import (
    Fold,
    LeakageError,
    LeaveOneGroupOutSplit,
    OfficialSplit,
    SubjectGroupedKFold,
    UtteranceKFold,
    build_splitter,
    carve_validation,
    check_no_leakage,
    list_splitters,
    subject_labels,
)


def depression_like(n_pos=8, n_neg=12, seed=0):
    """One label per subject, a varying number of segments per subject (like MODMA)."""
    rng = np.random.default_rng(seed)
    y, groups = [], []
    for s in range(n_pos + n_neg):
        n = int(rng.integers(3, 9))
        y += [int(s < n_pos)] * n
        groups += [s] * n
    return np.array(y), np.array(groups)


def emotion_like(n_speakers=4, n_classes=6, per=5):
    """Every speaker has every label (like CASIA)."""
    groups = np.repeat(np.arange(n_speakers), n_classes * per)
    y = np.tile(np.repeat(np.arange(n_classes), per), n_speakers)
    return y, groups


def assert_partition(folds, n):
    tests = np.concatenate([f.test for f in folds])
    assert np.array_equal(np.sort(tests), np.arange(n))  # every segment tested once
    for f in folds:
        assert np.intersect1d(f.train, f.test).size == 0
        assert f.train.size + f.test.size == n


def test_guard_names_overlapping_subjects():
    groups = np.array([10, 10, 11, 12, 12, 13])
    check_no_leakage(groups, [0, 1, 2], [3, 4, 5])
    with pytest.raises(LeakageError, match=r"1 subject.*12"):
        check_no_leakage(groups, [0, 3], [4, 5])
    check_no_leakage(groups, [0, 3], [4, 5], allow_overlap=True)
    # a segment on both sides is never allowed
    with pytest.raises(LeakageError, match="segment"):
        check_no_leakage(groups, [0, 1], [1, 2], allow_overlap=True)


def test_guard_truncates_long_lists():
    groups = np.repeat(np.arange(20), 2)
    with pytest.raises(LeakageError, match=r"20 subject.*\(20 in all\)"):
        check_no_leakage(groups, np.arange(0, 40, 2), np.arange(1, 40, 2), what="validation")


def test_leakage_error_is_domadapt_error():
    assert issubclass(LeakageError, DomadaptError)


def test_subject_labels_majority_and_strict():
    y = np.array([1, 1, 0, 0, 0, 1, 0, 1])
    g = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    assert subject_labels(y, g) == {0: 1, 1: 0, 2: 0, 3: 0}  # ties -> smaller class
    with pytest.raises(DomadaptError, match="2 subject"):
        subject_labels(y, g, strict=True)
    assert subject_labels(y[:4], g[:4], strict=True) == {0: 1, 1: 0}


def test_subject_kfold_is_subject_disjoint_and_stratified():
    y, g = depression_like()
    folds = list(SubjectGroupedKFold(options=SubjectGroupedKFold.Options(n_splits=4, seed=1)).split(y, g))
    assert len(folds) == 4 and all(isinstance(f, Fold) for f in folds)
    assert_partition(folds, len(y))
    for f in folds:
        assert np.intersect1d(g[f.train], g[f.test]).size == 0
        assert not f.subject_overlap
        labels = subject_labels(y[f.test], g[f.test])
        # 8 positive and 12 negative subjects over 4 folds: 2 and 3 per fold
        assert sorted(labels.values()).count(1) == 2
        assert sorted(labels.values()).count(0) == 3


def test_subject_kfold_seed_changes_and_repeats():
    y, g = depression_like()
    a = [f.test for f in SubjectGroupedKFold(options=SubjectGroupedKFold.Options(n_splits=4, seed=0)).split(y, g)]
    b = [f.test for f in SubjectGroupedKFold(options=SubjectGroupedKFold.Options(n_splits=4, seed=0)).split(y, g)]
    c = [f.test for f in SubjectGroupedKFold(options=SubjectGroupedKFold.Options(n_splits=4, seed=5)).split(y, g)]
    assert all(np.array_equal(x, z) for x, z in zip(a, b))
    assert not all(np.array_equal(x, z) for x, z in zip(a, c))


def test_subject_kfold_too_few_subjects_per_class():
    y, g = depression_like(n_pos=3, n_neg=10)
    with pytest.raises(DomadaptError, match=r"class 0: 10.*class 1: 3"):
        list(SubjectGroupedKFold(options=SubjectGroupedKFold.Options(n_splits=5, seed=0)).split(y, g))


def test_subject_kfold_mixed_label_subjects():
    y, g = emotion_like(n_speakers=6)
    folds = list(SubjectGroupedKFold(options=SubjectGroupedKFold.Options(n_splits=3, seed=0)).split(y, g))
    assert_partition(folds, len(y))
    for f in folds:
        assert np.intersect1d(g[f.train], g[f.test]).size == 0


def test_leave_one_subject_out():
    y, g = emotion_like()
    folds = list(build_splitter("leave_one_subject_out").split(y, g))
    assert len(folds) == 4
    assert_partition(folds, len(y))
    for k, f in enumerate(folds):
        assert set(g[f.test]) == {k} and k not in set(g[f.train])
        assert f.held_out == f"subject {k}"


def test_leave_one_session_out_names_sessions():
    y, g = emotion_like(n_speakers=5)
    folds = list(LeaveOneGroupOutSplit(options=LeaveOneGroupOutSplit.Options(group_name="session")).split(y, g, sessions=g))
    assert [f.held_out for f in folds] == [f"session {k}" for k in range(5)]


def test_official_split_with_dev_as_validation():
    y = np.array([0, 0, 1, 1, 0, 1, 1, 0])
    g = np.array([300, 300, 301, 301, 302, 303, 304, 304])
    roles = {300: "train", 301: "train", 302: "dev", 303: "test", 304: "test"}
    (fold,) = OfficialSplit(roles).split(y, g)
    assert fold.train.tolist() == [0, 1, 2, 3]
    assert fold.val.tolist() == [4]
    assert fold.test.tolist() == [5, 6, 7]
    (dev_fold,) = OfficialSplit(roles, options=OfficialSplit.Options(test_role="dev")).split(y, g)
    assert dev_fold.test.tolist() == [4] and dev_fold.val is None


def test_official_split_errors():
    y, g = np.array([0, 1]), np.array([1, 2])
    with pytest.raises(DomadaptError, match="not in the official split"):
        list(OfficialSplit({1: "train"}).split(y, g))
    with pytest.raises(DomadaptError, match="roles"):
        OfficialSplit({1: "training"})
    with pytest.raises(DomadaptError, match="no test"):
        list(OfficialSplit({1: "train", 2: "dev"}).split(y, g))


def test_utterance_kfold_refuses_leak_unless_allowed():
    y, g = depression_like()
    with pytest.raises(LeakageError, match="allow_subject_overlap"):
        list(UtteranceKFold().split(y, g))
    with pytest.raises(LeakageError):
        list(build_splitter("utterance_kfold", n_splits=5, seed=0).split(y, g))
    folds = list(UtteranceKFold(options=UtteranceKFold.Options(allow_subject_overlap=True)).split(y, g))
    assert len(folds) == 10
    assert_partition(folds, len(y))
    assert all(f.subject_overlap for f in folds)


def test_utterance_kfold_without_real_overlap_is_clean():
    y = np.arange(20) % 2
    g = np.arange(20)  # one segment per subject: nothing to leak
    folds = list(UtteranceKFold(options=UtteranceKFold.Options(n_splits=5)).split(y, g))
    assert not any(f.subject_overlap for f in folds)


def test_carve_validation_whole_training_subjects():
    y, g = depression_like(n_pos=10, n_neg=15)
    fold = next(SubjectGroupedKFold(options=SubjectGroupedKFold.Options(n_splits=5, seed=0)).split(y, g))
    train, val = carve_validation(fold.train, y, g, fraction=0.25, seed=3)
    assert np.array_equal(np.sort(np.concatenate([train, val])), fold.train)
    assert np.intersect1d(g[train], g[val]).size == 0
    assert np.intersect1d(val, fold.test).size == 0
    val_labels = list(subject_labels(y[val], g[val]).values())
    assert val_labels.count(1) == 2 and val_labels.count(0) == 3  # 8 and 12 train subjects
    again = carve_validation(fold.train, y, g, fraction=0.25, seed=3)
    assert np.array_equal(again[1], val)


def test_carve_validation_small_and_bad():
    y, g = emotion_like(n_speakers=3)
    train, val = carve_validation(np.arange(len(y)), y, g, fraction=0.1, seed=0)
    assert len(np.unique(g[val])) == 1 and len(np.unique(g[train])) == 2
    with pytest.raises(DomadaptError, match="1 training subject"):
        carve_validation(np.flatnonzero(g == 0), y, g)
    with pytest.raises(DomadaptError, match="fraction"):
        carve_validation(np.arange(len(y)), y, g, fraction=1.0)


def test_registry_errors():
    assert set(list_splitters()) >= {"subject_kfold", "leave_one_subject_out", "official", "utterance_kfold"}
    with pytest.raises(DomadaptError, match="known splitters: .*subject_kfold"):
        build_splitter("random")
    with pytest.raises(DomadaptError, match=r"unknown option\(s\) folds"):
        build_splitter("subject_kfold", folds=3)
    assert build_splitter("subject_kfold", n_splits=3, seed=2).n_splits == 3


@pytest.mark.parametrize(
    "name, key, value, allowed",
    [
        ("subject_kfold", "n_splits", 1, "an int >= 2"),
        ("subject_kfold", "seed", -1, "an int >= 0"),
        ("utterance_kfold", "n_splits", 1, "an int >= 2"),
        ("utterance_kfold", "allow_subject_overlap", "yes", "true or false"),
        ("official", "test_role", "train", "one of test, dev"),
    ],
)
def test_splitter_options_are_refused_by_their_declaration(name, key, value, allowed):
    # the Options dataclass is the one declaration: the registry's check (recipe time) and a
    # direct construction refuse the same values with the same words
    from domadapt.registries import SPLITTERS

    with pytest.raises(DomadaptError, match=re.escape(f"splitter {name!r} option {key} = {value!r}: expected {allowed}")):
        build_splitter(name, **{key: value})
    with pytest.raises(DomadaptError, match=re.escape(f"splitter option {key} = {value!r}: expected {allowed}")):
        SPLITTERS.get(name).Options(**{key: value})


def test_leave_one_group_out_refuses_an_unknown_group():
    with pytest.raises(DomadaptError, match=r"group_name = 'speaker': expected one of subject, session"):
        LeaveOneGroupOutSplit.Options(group_name="speaker")


def test_input_shape_errors():
    with pytest.raises(DomadaptError, match="segments"):
        list(SubjectGroupedKFold().split(np.zeros(3, int), np.zeros(4, int)))


def test_official_split_reads_each_segments_role_when_built_without_an_assignment():
    y = np.array([0, 0, 1, 1, 0, 1, 1, 0])
    g = np.array([1, 1, 2, 2, 3, 3, 4, 4])
    roles = np.array(["train", "train", "train", "train", "dev", "dev", "test", "test"], dtype=object)
    splitter = OfficialSplit()
    assert splitter.uses == ("roles",)
    (fold,) = splitter.split(y, g, roles=roles)
    assert fold.train.tolist() == [0, 1, 2, 3] and fold.val.tolist() == [4, 5] and fold.test.tolist() == [6, 7]
    unnamed = roles.copy()
    unnamed[6:] = None  # subject 4 is not in the corpus's split
    with pytest.raises(DomadaptError, match="1 subject\\(s\\) are not in the official split: 4"):
        list(splitter.split(y, g, roles=unnamed))
    with pytest.raises(DomadaptError, match="needs roles"):
        list(splitter.split(y, g))
