import collections
import re

import pytest
from fake_trees import CASIA_EMOTIONS, CASIA_SPEAKERS, make_casia_flat_tree, make_casia_tree, write_wav

from domadapt.corpora.casia import load_casia
from domadapt.errors import DomadaptError


def test_release_layout_with_space_in_root(tmp_path):
    root = make_casia_tree(tmp_path)
    assert " " in str(root)
    c = load_casia(root)
    assert c.name == "casia"
    assert c.classes == ("angry", "fear", "happy", "neutral", "sad", "surprise")
    assert len(c.utterances) == 48
    assert c.subjects() == sorted(CASIA_SPEAKERS)
    assert c.label_counts() == {e: 8 for e in CASIA_EMOTIONS}
    per_speaker = collections.Counter(u.subject for u in c.utterances)
    assert per_speaker == {s: 12 for s in CASIA_SPEAKERS}
    assert {u.domain for u in c.utterances} == {"casia"}
    assert c.skipped == []  # ._201.wav and .DS_Store are ignored, not listed
    u = next(u for u in c.utterances if u.subject == "liuchanhg" and u.label == "sad")
    assert u.path.parent.name == "sad" and u.meta["item"] in {"201", "202"}


def test_flattened_copy_auto_detected(tmp_path):
    root = make_casia_flat_tree(tmp_path)
    c = load_casia(root)
    assert len(c.utterances) == 48
    assert c.subjects() == sorted(CASIA_SPEAKERS)
    assert c.label_counts() == {e: 8 for e in CASIA_EMOTIONS}
    assert sorted(s.path.rsplit("/", 1)[-1] for s in c.skipped) == [
        "201-happy-wangzhe.wav", "readme.wav"]
    assert load_casia(root, layout="flat").label_counts() == c.label_counts()


def test_explicit_layout_matches_auto(tmp_path):
    root = make_casia_tree(tmp_path)
    assert len(load_casia(root, layout="speaker").utterances) == 48


def test_empty_emotion_folder_is_named(tmp_path):
    root = make_casia_tree(tmp_path, per_folder=1)
    (root / "wangzhe" / "fear" / "201.wav").unlink()
    with pytest.raises(DomadaptError, match=r"wangzhe/fear.*empty class 'fear'"):
        load_casia(root)


def test_emotion_missing_everywhere_is_an_empty_class(tmp_path):
    root = tmp_path / "c"
    for e in CASIA_EMOTIONS[:-1]:
        write_wav(root / "wangzhe" / e / "1.wav")
    with pytest.raises(DomadaptError, match=r"surprise.*empty class"):
        load_casia(root)


def test_unknown_emotion_folder(tmp_path):
    root = make_casia_tree(tmp_path, per_folder=1)
    write_wav(root / "wangzhe" / "disgust" / "1.wav")
    with pytest.raises(DomadaptError, match=r"wangzhe/disgust.*angry, fear"):
        load_casia(root)


def test_missing_root_names_path_and_layout(tmp_path):
    with pytest.raises(DomadaptError, match=r"nowhere.*<root>/<speaker>/<emotion>/<n>\.wav"):
        load_casia(tmp_path / "nowhere")


def test_wrong_structure_names_path(tmp_path):
    write_wav(tmp_path / "x" / "y" / "1.wav")
    with pytest.raises(DomadaptError, match=re.escape(str(tmp_path)) + ".*<speaker>/<emotion>"):
        load_casia(tmp_path)


def test_unknown_layout(tmp_path):
    root = make_casia_tree(tmp_path, per_folder=1)
    with pytest.raises(DomadaptError, match="auto, speaker, flat"):
        load_casia(root, layout="nested")
