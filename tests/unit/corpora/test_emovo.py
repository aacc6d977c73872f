import collections
import json
import re

import pytest
from fake_trees import EMOVO_ACTORS, make_emovo_tree, write_wav

from domadapt.cli import main
from domadapt.corpora import CORPORA, load_corpus
from domadapt.corpora.emovo import CLASSES, load_emovo, parse_name
from domadapt.errors import DomadaptError


def test_release_layout_exact_counts(tmp_path):
    c = load_emovo(make_emovo_tree(tmp_path))
    assert c.name == "emovo"
    # TIM-Net's EMOVO_CLASS_LABELS, in its order
    assert c.classes == CLASSES == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert len(c.utterances) == 84
    assert c.subjects() == list(EMOVO_ACTORS)
    assert collections.Counter(u.subject for u in c.utterances) == {a: 14 for a in EMOVO_ACTORS}
    assert c.label_counts() == {label: 12 for label in CLASSES}
    assert {u.domain for u in c.utterances} == {"emovo"}


def test_codes_map_to_emotions_and_meta(tmp_path):
    c = load_emovo(make_emovo_tree(tmp_path))
    by_name = {u.path.name: u for u in c.utterances}
    expected = {"rab": "angry", "dis": "disgust", "pau": "fear", "gio": "happy",
                "neu": "neutral", "tri": "sad", "sor": "surprise"}
    for code, label in expected.items():
        assert by_name[f"{code}-m2-b1.wav"].label == label
    u = by_name["dis-f1-n5.wav"]
    assert u.subject == "f1" and u.path.parent.name == "f1"
    assert dict(u.meta) == {"emotion": "dis", "sentence": "n5", "gender": "female"}
    assert by_name["gio-m3-b1.wav"].meta["gender"] == "male"


def test_unknown_codes_are_listed_skips(tmp_path):
    c = load_emovo(make_emovo_tree(tmp_path))
    reasons = {"/".join(s.path.rsplit("/", 2)[-2:]): s.reason for s in c.skipped}
    assert set(reasons) == {"f1/xxx-f1-b1.wav", "f2/dis-f2-z9.wav", "m1/dis-f2-b1.wav",
                            "f1/dis_f1_b1.wav", "f4/dis-f4-b1.wav"}
    assert "emotion code 'xxx'" in reasons["f1/xxx-f1-b1.wav"]
    assert "sentence code 'z9'" in reasons["f2/dis-f2-z9.wav"]
    assert "actor 'f2' but it is in folder 'm1'" in reasons["m1/dis-f2-b1.wav"]
    assert "file name is not" in reasons["f1/dis_f1_b1.wav"]
    assert "actor code 'f4'" in reasons["f4/dis-f4-b1.wav"]
    # documents/ (even its .wav) and ._dis-f1-b1.wav are ignored, not listed


def test_parse_name():
    assert parse_name("neu-m1-d2", "m1") == {"emotion": "neu", "actor": "m1", "sentence": "d2"}
    assert "folder" in parse_name("neu-m1-d2", "m2")


def test_empty_root_is_one_line_error_naming_path_and_layout(tmp_path):
    empty = tmp_path / "empty"
    (empty / "documents").mkdir(parents=True)
    write_wav(empty / "documents" / "a.wav")
    with pytest.raises(DomadaptError, match=re.escape(str(empty)) + r".*<actor>-<sentence>\.wav") as e:
        load_emovo(empty)
    assert "\n" not in str(e.value)


def test_missing_root_and_empty_class(tmp_path):
    with pytest.raises(DomadaptError, match="does not exist"):
        load_emovo(tmp_path / "nowhere")
    root = make_emovo_tree(tmp_path)
    for p in root.glob("*/sor-*.wav"):
        p.unlink()
    with pytest.raises(DomadaptError, match=r"surprise \(empty class"):
        load_emovo(root)


def test_registered_and_summary(tmp_path, capsys):
    assert "emovo" in CORPORA and CORPORA.options("emovo") == {}
    assert CORPORA.doc("emovo").startswith("EMOVO (Italian")
    root = make_emovo_tree(tmp_path)
    assert len(load_corpus("emovo", root).utterances) == 84
    assert main(["data", "summary", "emovo", str(root), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["corpus"] == "emovo" and d["utterances"] == 84 and d["subjects"] == 6
    assert list(d["classes"]) == list(CLASSES)
    assert d["sample_rates"] == {"48000": 84}
    assert len(d["skipped"]) == 5
