import collections
import json
import re

import pytest
from fake_trees import EMODB_SPEAKERS, make_emodb_tree, write_wav

from domadapt.cli import main
from domadapt.corpora import CORPORA, load_corpus
from domadapt.corpora.emodb import CLASSES, load_emodb, parse_name
from domadapt.errors import DomadaptError


def test_release_layout_exact_counts(tmp_path):
    c = load_emodb(make_emodb_tree(tmp_path))
    assert c.name == "emodb"
    # TIM-Net's EMODB_CLASS_LABELS, in its order
    assert c.classes == CLASSES == ("angry", "boredom", "disgust", "fear", "happy", "neutral", "sad")
    assert len(c.utterances) == 71
    assert c.subjects() == sorted(EMODB_SPEAKERS)
    per_speaker = collections.Counter(u.subject for u in c.utterances)
    assert per_speaker == {s: (8 if s == "03" else 7) for s in EMODB_SPEAKERS}
    assert c.label_counts() == {"angry": 10, "boredom": 10, "disgust": 10, "fear": 10,
                                "happy": 11, "neutral": 10, "sad": 10}
    assert {u.domain for u in c.utterances} == {"emodb"}
    assert all(u.path.parent.name == "wav" for u in c.utterances)


def test_letters_map_to_emotions_and_meta(tmp_path):
    c = load_emodb(make_emodb_tree(tmp_path))
    by_name = {u.path.name: u for u in c.utterances}
    expected = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fear", "F": "happy",
                "T": "sad", "N": "neutral"}
    for letter, label in expected.items():
        assert by_name[f"03a01{letter}a.wav"].label == label
    u = by_name["03a01Fb.wav"]
    assert u.subject == "03" and u.label == "happy"
    assert dict(u.meta) == {"emotion": "F", "text": "a01", "version": "b",
                            "gender": "male", "age": "31"}
    assert by_name["16b10Ta.wav"].meta["gender"] == "female"
    genders = {u.subject: u.meta["gender"] for u in c.utterances}
    assert sorted(s for s, g in genders.items() if g == "male") == ["03", "10", "11", "12", "15"]


def test_unknown_codes_are_listed_skips(tmp_path):
    c = load_emodb(make_emodb_tree(tmp_path))
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in c.skipped}
    assert set(reasons) == {"03a01Xa.wav", "07a01Wa.wav", "03c01Wa.wav", "readme.wav"}
    assert "emotion letter 'X'" in reasons["03a01Xa.wav"]
    assert "speaker code '07'" in reasons["07a01Wa.wav"]
    assert "text code 'c01'" in reasons["03c01Wa.wav"]
    assert "file name is not" in reasons["readme.wav"]
    # ._03a01Fa.wav, .DS_Store, silb/ and erkennung.txt are ignored, not listed


def test_root_may_be_the_wav_folder(tmp_path):
    root = make_emodb_tree(tmp_path)
    assert len(load_emodb(root / "wav").utterances) == 71


def test_parse_name():
    assert parse_name("03a01Fa") == {"speaker": "03", "text": "a01", "emotion": "F",
                                     "version": "a"}
    assert "not" in parse_name("03a01Fa_copy")


def test_empty_root_is_one_line_error_naming_path_and_layout(tmp_path):
    empty = tmp_path / "empty"
    (empty / "wav").mkdir(parents=True)
    (empty / "notes.txt").write_text("x")
    with pytest.raises(DomadaptError, match=re.escape(str(empty)) + r".*wav/03a01Fa\.wav") as e:
        load_emodb(empty)
    assert "\n" not in str(e.value)


def test_other_corpus_is_not_emodb(tmp_path):
    write_wav(tmp_path / "c" / "201.wav")  # CASIA-like names only
    with pytest.raises(DomadaptError, match="no EMODB .wav"):
        load_emodb(tmp_path / "c")


def test_missing_root_and_empty_class(tmp_path):
    with pytest.raises(DomadaptError, match="does not exist"):
        load_emodb(tmp_path / "nowhere")
    root = make_emodb_tree(tmp_path)
    for p in (root / "wav").glob("?????Ea.wav"):
        p.unlink()
    with pytest.raises(DomadaptError, match=r"disgust \(empty class"):
        load_emodb(root)


def test_registered_and_summary(tmp_path, capsys):
    assert "emodb" in CORPORA and CORPORA.options("emodb") == {}
    assert CORPORA.doc("emodb").startswith("EMODB (Berlin")
    root = make_emodb_tree(tmp_path)
    assert len(load_corpus("emodb", root).utterances) == 71
    assert main(["data", "summary", "emodb", str(root), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["corpus"] == "emodb" and d["utterances"] == 71 and d["subjects"] == 10
    assert list(d["classes"]) == list(CLASSES) and d["classes"]["happy"] == 11
    assert d["sample_rates"] == {"16000": 71}
    assert len(d["skipped"]) == 4
    assert main(["data", "summary", "emodb", str(root)]) == 0
    assert "corpus emodb" in capsys.readouterr().out
