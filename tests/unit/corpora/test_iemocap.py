import re

import pytest
from fake_trees import make_iemocap_tree

from domadapt.corpora.iemocap import load_iemocap, parse_emo_evaluation, speaker_of
from domadapt.errors import DomadaptError


def test_four_classes_exact_counts(tmp_path):
    c = load_iemocap(make_iemocap_tree(tmp_path))
    assert c.name == "iemocap"
    assert c.classes == ("neu", "hap", "ang", "sad")
    assert len(c.utterances) == 8
    assert c.label_counts() == {"neu": 1, "hap": 4, "ang": 1, "sad": 2}
    assert c.subjects() == ["1F", "1M", "2F", "2M"]
    assert {u.domain for u in c.utterances} == {"iemocap"}


def test_speaker_is_gender_of_last_field_not_of_session_name(tmp_path):
    c = load_iemocap(make_iemocap_tree(tmp_path))
    by_name = {u.path.stem: u for u in c.utterances}
    assert by_name["Ses01F_impro01_M000"].subject == "1M"
    assert by_name["Ses02M_impro02_F000"].subject == "2F"
    assert speaker_of("Ses01F_impro01_M000", 1) == "1M"
    assert speaker_of("Ses05M_script02_2_F013", 5) == "5F"


def test_exc_merged_into_hap_and_drops(tmp_path):
    c = load_iemocap(make_iemocap_tree(tmp_path))
    by_name = {u.path.stem: u for u in c.utterances}
    assert by_name["Ses01F_impro01_F001"].label == "hap"
    assert by_name["Ses01F_impro01_F001"].meta["emotion"] == "exc"
    for dropped in ("Ses01F_impro01_M001", "Ses01F_impro01_M002", "Ses01F_script01_1_M000"):
        assert dropped not in by_name  # fru, xxx, sur


def test_meta_session_dialog(tmp_path):
    c = load_iemocap(make_iemocap_tree(tmp_path))
    u = next(u for u in c.utterances if u.path.stem == "Ses01F_script01_1_F000")
    assert u.meta["session"] == "1"
    assert u.meta["dialog"] == "Ses01F_script01_1"
    assert u.meta["kind"] == "script"
    assert u.path.parts[-4:] == ("sentences", "wav", "Ses01F_script01_1", "Ses01F_script01_1_F000.wav")


def test_six_classes(tmp_path):
    c = load_iemocap(make_iemocap_tree(tmp_path), classes="6")
    assert c.classes == ("neu", "hap", "ang", "sad", "exc", "fru")
    assert len(c.utterances) == 9
    assert c.label_counts() == {"neu": 1, "hap": 2, "ang": 1, "sad": 2, "exc": 2, "fru": 1}


def test_missing_wav_is_a_logged_skip_and_appledouble_ignored(tmp_path):
    c = load_iemocap(make_iemocap_tree(tmp_path))
    assert len(c.skipped) == 1
    assert c.skipped[0].path.endswith("Ses01F_script01_1/Ses01F_script01_1_M001.wav")
    assert "missing" in c.skipped[0].reason
    assert not any(u.path.name.startswith("._") for u in c.utterances)


def test_evaluator_lines_and_header_ignored(tmp_path):
    root = make_iemocap_tree(tmp_path)
    rows = parse_emo_evaluation(root / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt")
    assert [r[0] for r in rows] == [
        "Ses01F_impro01_F000", "Ses01F_impro01_F001", "Ses01F_impro01_M000",
        "Ses01F_impro01_M001", "Ses01F_impro01_M002", "Ses01F_impro01_F002"]
    assert rows[0] == ("Ses01F_impro01_F000", "neu", 1.0, 3.1234)


def test_sessions_option(tmp_path):
    root = make_iemocap_tree(tmp_path)
    c = load_iemocap(root, sessions=[2])
    assert len(c.utterances) == 3 and c.subjects() == ["2F", "2M"]
    with pytest.raises(DomadaptError, match="session.*3"):
        load_iemocap(root, sessions=[3])


def test_bad_inputs_name_the_path(tmp_path):
    with pytest.raises(DomadaptError, match=r"nowhere.*Session\{1\.\.5\}/sentences/wav"):
        load_iemocap(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DomadaptError, match=r"empty.*no Session<n> folders"):
        load_iemocap(tmp_path / "empty")
    (tmp_path / "half" / "Session1" / "sentences").mkdir(parents=True)
    with pytest.raises(DomadaptError, match=re.escape(str(tmp_path / "half" / "Session1" / "dialog"))):
        load_iemocap(tmp_path / "half")
    with pytest.raises(DomadaptError, match="known: 4, 6"):
        load_iemocap(make_iemocap_tree(tmp_path), classes="5")
