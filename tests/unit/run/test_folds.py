"""The evaluation protocols on real-layout corpora: what each fold holds out."""

from __future__ import annotations

import numpy as np
import pytest

from domadapt.recipe_loader import build_config
from domadapt.corpora import load_corpus
from domadapt.corpora.synthetic import write_casia, write_iemocap
from domadapt.run import extract_domains, split_target


def _domains(cfg, source, target):
    return extract_domains(cfg, [source], target, device="cpu", cache_dir=False)


def test_leave_one_session_out_holds_out_both_speakers_of_one_session(tmp_path):
    root = write_iemocap(tmp_path / "IEMOCAP", sessions=5, utterances_per_speaker=3, dialogs_per_session=1)
    iemocap = load_corpus("iemocap", root)
    cfg = build_config({"data": {"source": ["iemocap"], "target": "iemocap"}, "eval": {"splitter": "leave_one_session_out"}})
    domains = _domains(cfg, iemocap, iemocap)
    folds = split_target(cfg, domains)
    seg = domains.target_segments
    names = np.asarray(seg.subjects)
    held_out = [set(names[np.unique(seg.subject.numpy()[f.test])]) for f in folds]
    assert held_out == [{f"{n}F", f"{n}M"} for n in range(1, 6)]
    for f in folds:
        assert not set(seg.subject.numpy()[f.train]) & set(seg.subject.numpy()[f.test])


def test_leave_one_session_out_needs_sessions(tmp_path):
    casia = load_corpus("casia", write_casia(tmp_path / "CASIA database", files_per_class=1))
    cfg = build_config({"eval": {"splitter": "leave_one_session_out"}, "data": {"target": "casia"}})
    with pytest.raises(Exception, match="has no session for 24 utterance"):
        split_target(cfg, _domains(cfg, casia, casia))


def test_utterance_kfold_never_splits_the_windows_of_one_utterance(tmp_path):
    casia = load_corpus("casia", write_casia(tmp_path / "CASIA database", files_per_class=2))
    cfg = build_config(
        {
            "data": {"target": "casia"},
            "features": {"segment_seconds": 0.5, "segment_hop_seconds": 0.5, "min_seconds": 0.25},
            "eval": {"splitter": "utterance_kfold", "folds": 4, "allow_subject_overlap": True},
        }
    )
    domains = _domains(cfg, casia, casia)
    utterance = domains.target_segments.utterance.numpy()
    assert len(utterance) > 2 * len(np.unique(utterance))  # several windows per utterance
    folds = split_target(cfg, domains)
    assert len(folds) == 4
    covered = np.sort(np.concatenate([f.test for f in folds]))
    assert np.array_equal(covered, np.arange(len(utterance)))  # each window tested once
    for f in folds:
        assert not set(utterance[f.train]) & set(utterance[f.test])
        assert f.subject_overlap  # speakers are on both sides: the protocol says so


def test_target_subject_subsets_are_nested_stratified_and_leave_validation_and_test_alone():
    from tiny import domain, tiny_fold

    from domadapt.run import with_target_subjects

    fold = tiny_fold()
    fold.target_train = domain("target", 60, 2, seed=3, subjects=12)  # subject s has label s % 2
    kept = {}
    for n in (2, 4, 8, "all"):
        sub = with_target_subjects(fold, n, seed=7)
        kept[n] = set(np.unique(sub.target_train.groups))
        assert sub.target_val is fold.target_val and sub.target_test is fold.target_test
        labels = {int(g) % 2 for g in kept[n]}
        assert labels == {0, 1}  # both classes from 2 subjects on
    assert [len(kept[n]) for n in (2, 4, 8, "all")] == [2, 4, 8, 12]
    assert kept[2] < kept[4] < kept[8] < kept["all"]  # nested
    again = with_target_subjects(fold, 4, seed=7)
    assert set(np.unique(again.target_train.groups)) == kept[4]  # the same subsets for every method and seed


def test_val_fraction_zero_trains_on_every_training_subject(tmp_path):
    from domadapt.run import build_fold

    casia = load_corpus("casia", write_casia(tmp_path / "CASIA database", files_per_class=2))
    cfg = build_config({"data": {"target": "casia"}, "eval": {"folds": 2}, "train": {"val_fraction": 0.0}})
    domains = _domains(cfg, casia, casia)
    fold = split_target(cfg, domains)[0]
    data = build_fold(domains, fold, val_fraction=cfg.train.val_fraction, seed=0, device="cpu")
    assert len(data.target_val) == 0
    assert len(data.target_train) == len(fold.train)  # no subject carved out
    carved = build_fold(domains, fold, val_fraction=0.5, seed=0, device="cpu")
    assert len(carved.target_val) > 0 and len(carved.target_train) < len(fold.train)
    with pytest.raises(Exception, match="val_fraction"):
        build_config({"train": {"val_fraction": -0.1}})


def test_a_splitter_of_ones_own_gets_the_inputs_it_declares_through_the_one_signature(tmp_path):
    # A Splitter subclass registered like a built-in: split_target hands it y, subjects and
    # the per-segment inputs named in `uses` (here the utterances), computing no others.
    from domadapt.registries import SPLITTERS
    from domadapt.splits import Fold, Splitter

    seen = {}

    class EveryOtherUtterance(Splitter):
        uses = ("utterances",)

        def split(self, y, subjects, *, utterances=None, sessions=None, roles=None):
            seen.update(utterances=utterances, sessions=sessions, roles=roles)
            test = np.flatnonzero(utterances % 2 == 1)
            yield Fold(0, np.flatnonzero(utterances % 2 == 0), test, subject_overlap=True)

    SPLITTERS.register("every_other_utterance")(EveryOtherUtterance)
    try:
        casia = load_corpus("casia", write_casia(tmp_path / "CASIA database", files_per_class=1))
        cfg = build_config({"eval": {"splitter": "every_other_utterance"}, "data": {"target": "casia"}})
        domains = _domains(cfg, casia, casia)
        (fold,) = split_target(cfg, domains)
    finally:
        SPLITTERS.unregister("every_other_utterance")
    utterance = domains.target_segments.utterance.numpy()
    assert np.array_equal(seen["utterances"], utterance)
    assert seen["sessions"] is None and seen["roles"] is None  # CASIA has no sessions: never asked for
    assert set(utterance[fold.test] % 2) == {1}
