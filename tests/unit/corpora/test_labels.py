"""Label maps: renaming onto shared classes, dropping the unmapped, and the config check."""

from __future__ import annotations

import pytest
from fake_trees import make_emodb_tree

from domadapt.recipe_loader import build_config, load_recipe
from domadapt.corpora import load_corpus
from domadapt.corpora.labels import apply_label_map, corpus_labels
from domadapt.errors import DomadaptError

SHARED = {"angry": "angry", "fear": "fear", "happy": "happy", "neutral": "neutral", "sad": "sad"}


def test_map_renames_and_drops_the_unmapped(tmp_path):
    corpus = load_corpus("emodb", make_emodb_tree(tmp_path))  # 71 utterances: 10 per class, happy 11
    mapped = apply_label_map(corpus, {"angry": "anger", "happy": "joy", "sad": "sadness"}, key="data.label_map.emodb")
    assert mapped.classes == ("anger", "joy", "sadness")  # sorted shared names
    assert len(mapped.utterances) == 10 + 11 + 10
    assert mapped.label_counts() == {"anger": 10, "joy": 11, "sadness": 10}
    assert {u.meta["original_label"] for u in mapped.utterances} == {"angry", "happy", "sad"}
    assert len(corpus.utterances) == 71  # the loaded corpus is not changed


def test_two_corpora_mapped_onto_one_set_share_the_label_order(tmp_path):
    corpus = load_corpus("emodb", make_emodb_tree(tmp_path))
    a = apply_label_map(corpus, SHARED, key="k")
    b = apply_label_map(corpus, dict(reversed(list(SHARED.items()))), key="k")
    assert a.classes == b.classes == ("angry", "fear", "happy", "neutral", "sad")


def test_unknown_label_at_load_time_names_the_key(tmp_path):
    corpus = load_corpus("emodb", make_emodb_tree(tmp_path))
    with pytest.raises(DomadaptError, match=r"^data.label_map.emodb.surprise: not a class of this corpus"):
        apply_label_map(corpus, {"surprise": "surprise"}, key="data.label_map.emodb")


def test_config_checker_refuses_unknown_labels_and_corpora_before_loading():
    tree = load_recipe("emodb2casia")
    tree["data"]["label_map"]["emodb"] = {**SHARED, "angy": "angry"}
    with pytest.raises(DomadaptError, match=r"^data.label_map.emodb.angy: not a class of this corpus \(its classes: angry, boredom"):
        build_config(tree)
    tree = load_recipe("emodb2casia")
    tree["data"]["label_map"]["iemocap"] = {"ang": "angry"}
    with pytest.raises(DomadaptError, match=r"^data.label_map.iemocap: not a corpus of this recipe"):
        build_config(tree)
    tree = load_recipe("emodb2casia")
    tree["data"]["label_map"]["casia"] = {"angry": 3}
    with pytest.raises(DomadaptError, match=r"^data.label_map.casia.angry = 3: expected the name of a shared class"):
        build_config(tree)


def test_cross_corpus_recipes_map_both_sides_onto_the_same_classes():
    for name, shared in (("emodb2casia", 5), ("iemocap2casia", 4)):
        cfg = build_config(load_recipe(name))
        maps = cfg.data.label_map
        assert set(maps) == {*cfg.data.source, cfg.data.target}
        targets = [sorted(set(m.values())) for m in maps.values()]
        assert all(t == targets[0] for t in targets) and len(targets[0]) == shared
    assert corpus_labels("iemocap") == ("neu", "hap", "ang", "sad", "exc", "fru")
    assert corpus_labels("folder") is None  # checked when loaded
