import collections
import json
import re

import pytest
from fake_trees import SAVEE_SPEAKERS, make_savee_tree, write_wav

from domadapt.cli import main
from domadapt.corpora import CORPORA, load_corpus
from domadapt.corpora.savee import CLASSES, load_savee, parse_name
from domadapt.errors import DomadaptError


def test_release_layout_exact_counts(tmp_path):
    c = load_savee(make_savee_tree(tmp_path))
    assert c.name == "savee"
    # TIM-Net's SAVEE_CLASS_LABELS, in its order
    assert c.classes == CLASSES == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert len(c.utterances) == 40
    assert c.subjects() == list(SAVEE_SPEAKERS)
    assert collections.Counter(u.subject for u in c.utterances) == {s: 10 for s in SAVEE_SPEAKERS}
    assert c.label_counts() == {"angry": 8, "disgust": 4, "fear": 4, "happy": 4,
                                "neutral": 12, "sad": 4, "surprise": 4}
    assert {u.domain for u in c.utterances} == {"savee"}


def test_prefixes_map_to_emotions_and_meta(tmp_path):
    c = load_savee(make_savee_tree(tmp_path))
    by_key = {(u.subject, u.path.stem): u for u in c.utterances}
    expected = {"a01": "angry", "d01": "disgust", "f01": "fear", "h01": "happy",
                "n01": "neutral", "sa01": "sad", "su01": "surprise"}
    for stem, label in expected.items():
        assert by_key[("JK", stem)].label == label
    assert dict(by_key[("KL", "sa01")].meta) == {"emotion": "sa", "sentence": "01", "gender": "male"}


def test_unknown_codes_are_listed_skips(tmp_path):
    c = load_savee(make_savee_tree(tmp_path))
    reasons = {"/".join(s.path.rsplit("/", 2)[-2:]): s.reason for s in c.skipped}
    assert set(reasons) == {"DC/x01.wav", "JE/a1.wav", "AB/a01.wav"}
    assert "emotion prefix 'x'" in reasons["DC/x01.wav"]
    assert "file name is not" in reasons["JE/a1.wav"]
    assert "unknown speaker folder 'AB'" in reasons["AB/a01.wav"]
    # Info.txt and ._a01.wav are ignored, not listed


def test_root_may_be_the_audiodata_folder(tmp_path):
    root = make_savee_tree(tmp_path)
    assert len(load_savee(root / "AudioData").utterances) == 40


def test_parse_name():
    assert parse_name("su15") == {"emotion": "su", "sentence": "15"}
    assert "prefix 'sad'" in parse_name("sad01")


def test_empty_root_is_one_line_error_naming_path_and_layout(tmp_path):
    empty = tmp_path / "empty"
    write_wav(empty / "loose.wav")
    write_wav(empty / "misc" / "a01.wav")  # not a speaker-shaped folder
    with pytest.raises(DomadaptError, match=re.escape(str(empty)) + r".*AudioData/DC/a01\.wav") as e:
        load_savee(empty)
    assert "\n" not in str(e.value)


def test_missing_root_and_empty_class(tmp_path):
    with pytest.raises(DomadaptError, match="does not exist"):
        load_savee(tmp_path / "nowhere")
    root = make_savee_tree(tmp_path)
    for p in root.glob("AudioData/*/f01.wav"):
        p.unlink()
    with pytest.raises(DomadaptError, match=r"fear \(empty class"):
        load_savee(root)


def test_registered_and_summary(tmp_path, capsys):
    assert "savee" in CORPORA and CORPORA.options("savee") == {}
    assert CORPORA.doc("savee").startswith("SAVEE (British English")
    root = make_savee_tree(tmp_path)
    assert len(load_corpus("savee", root).utterances) == 40
    assert main(["data", "summary", "savee", str(root), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["corpus"] == "savee" and d["utterances"] == 40 and d["subjects"] == 4
    assert list(d["classes"]) == list(CLASSES)
    assert d["sample_rates"] == {"44100": 40}
    assert len(d["skipped"]) == 3
