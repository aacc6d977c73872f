import inspect

import pytest
from fake_trees import make_casia_tree, make_modma_tree

from domadapt.corpora import CORPORA, corpus_options, list_corpora, load_corpus
from domadapt.corpora.base import Corpus
from domadapt.errors import DomadaptError


def test_registry_names():
    assert list_corpora() == ["arrays", "arrays_target", "casia", "casia_target", "casia_target_powered", "daic_woz", "emodb", "emovo", "folder", "iemocap", "modma", "ravdess", "savee"]
    assert set(CORPORA) == set(list_corpora())


def test_every_loader_is_documented_keyword_only_and_rejects_missing_roots(tmp_path):
    for name, loader in CORPORA.items():
        params = list(inspect.signature(loader).parameters.values())
        assert params[0].name == "root"
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:]), name
        assert loader.__doc__ and "<root>" in loader.__doc__, name
        # a Corpus, or its feature-vector kind (domadapt.corpora.arrays)
        assert inspect.signature(loader).return_annotation in (Corpus, "Corpus", "VectorCorpus"), name
        with pytest.raises(DomadaptError, match="does not exist"):
            loader(tmp_path / "nowhere")


def test_load_corpus(tmp_path):
    c = load_corpus("casia", make_casia_tree(tmp_path, per_folder=1))
    assert len(c.utterances) == 24


def test_unknown_name_lists_known():
    with pytest.raises(DomadaptError, match="'crema_d'.*casia, casia_target, casia_target_powered, daic_woz, emodb, emovo, folder, iemocap, modma, ravdess, savee"):
        load_corpus("crema_d", "/tmp")


def test_unknown_option_lists_known(tmp_path):
    assert corpus_options("modma") == ["tasks"]
    assert corpus_options("daic_woz") == ["splits", "min_turn_seconds"]
    root = make_modma_tree(tmp_path)
    with pytest.raises(DomadaptError, match="unknown option.*task\\b.*valid options: tasks"):
        load_corpus("modma", root, task="reading")
    assert len(load_corpus("modma", root, tasks=["reading"]).utterances) == 3


def test_synthetic_marker_sets_flag(tmp_path):
    from domadapt.corpora import SYNTHETIC_MARKER
    from domadapt.corpora.synthetic import MARKER_NAME

    assert SYNTHETIC_MARKER == MARKER_NAME
    root = make_casia_tree(tmp_path, per_folder=1)
    assert load_corpus("casia", root).synthetic is False
    (root / SYNTHETIC_MARKER).write_text("{}")
    assert load_corpus("casia", root).synthetic is True
