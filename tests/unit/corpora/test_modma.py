import collections
import re

import pytest
from fake_trees import make_modma_tree, write_modma_sheet, write_wav

from domadapt.corpora.modma import load_modma, read_subject_sheet, task_of
from domadapt.errors import DomadaptError


def test_exact_counts(tmp_path):
    c = load_modma(make_modma_tree(tmp_path))
    assert c.name == "modma"
    assert c.classes == ("HC", "MDD")
    assert len(c.utterances) == 60
    assert c.subjects() == ["02010002", "02010015", "02020010"]
    assert c.label_counts() == {"HC": 31, "MDD": 29}
    per_subject = collections.Counter(u.subject for u in c.utterances)
    assert per_subject == {"02010002": 29, "02020010": 27, "02010015": 4}
    assert len(c.skipped) == 7


def test_label_comes_from_sheet_not_id_prefix(tmp_path):
    c = load_modma(make_modma_tree(tmp_path))
    # 0201xxxx looks like an MDD id, but the sheet says HC
    assert {u.label for u in c.utterances if u.subject == "02010015"} == {"HC"}


def test_numeric_ids_zero_padded_and_full_width_column(tmp_path):
    root = make_modma_tree(tmp_path)
    sheet, skipped = read_subject_sheet(root / "subjects_information_audio_lanzhou_2015.xlsx")
    assert sorted(sheet) == ["02010002", "02010015", "02010030", "02020010", "02020020"]
    assert skipped == []
    label, info = sheet["02010015"]
    assert label == "HC"
    assert info["education(years)"] == "12.5"  # from the full-width "education（years）"
    assert "CTQ-SF" not in info  # empty cell
    assert info["PHQ-9"] == "3" and info["age"] == "28"
    assert all(k for k in info)  # header-less columns ignored


def test_meta_task_item_and_sheet_values(tmp_path):
    c = load_modma(make_modma_tree(tmp_path))
    u = next(u for u in c.utterances if u.subject == "02010002" and u.path.name == "19.wav")
    assert u.meta["task"] == "reading" and u.meta["item"] == "19"
    assert u.meta["PHQ-9"] == "18" and u.meta["gender"] == "M"
    tasks = collections.Counter(u.meta["task"] for u in c.utterances if u.subject == "02010002")
    assert tasks == {"interview": 18, "reading": 1, "words": 6, "picture": 4}
    assert [task_of(i) for i in (1, 18, 19, 20, 25, 26, 29, 30)] == [
        "interview", "interview", "reading", "words", "words", "picture", "picture", None]


def test_skips_are_listed_with_reasons(tmp_path):
    root = make_modma_tree(tmp_path)
    c = load_modma(root)
    reasons = {s.path.replace(str(root) + "/", ""): s.reason for s in c.skipped}
    assert set(reasons) == {
        "02020010/05.wav", "02020010/07.wav", "02020020", "02010030/01.wav", "02010030",
        "02099999", "02010002/30.wav"}
    assert "unreadable" in reasons["02020010/05.wav"]
    assert "0 frames" in reasons["02020010/07.wav"]
    assert "no folder" in reasons["02020020"]
    assert "no readable audio" in reasons["02010030"]
    assert "not in" in reasons["02099999"]
    assert not any("._01" in s.path for s in c.skipped)


def test_24bit_44k_audio_accepted(tmp_path):
    import soundfile as sf
    c = load_modma(make_modma_tree(tmp_path))
    info = sf.info(str(c.utterances[0].path))
    assert info.samplerate == 44100 and info.subtype == "PCM_24"


def test_tasks_option(tmp_path):
    root = make_modma_tree(tmp_path)
    c = load_modma(root, tasks=["reading"])
    assert len(c.utterances) == 3 and {u.meta["task"] for u in c.utterances} == {"reading"}
    assert len(load_modma(root, tasks=("words", "picture")).utterances) == 10 + 10 + 2
    with pytest.raises(DomadaptError, match="'speech'.*interview, reading, words, picture"):
        load_modma(root, tasks=["speech"])


def test_missing_sheet_names_expected_path(tmp_path):
    root = tmp_path / "m"
    write_wav(root / "02010002" / "01.wav")
    with pytest.raises(DomadaptError, match=re.escape(
            str(root / "subjects_information_audio_lanzhou_2015.xlsx"))):
        load_modma(root)


def test_missing_root_and_no_folders(tmp_path):
    with pytest.raises(DomadaptError, match=r"nowhere.*<8-digit subject>/01\.wav"):
        load_modma(tmp_path / "nowhere")
    root = tmp_path / "m"
    root.mkdir()
    write_modma_sheet(root, [[2010002, "MDD"]])
    with pytest.raises(DomadaptError, match=re.escape(str(root)) + ".*no subject folders"):
        load_modma(root)


def test_sheet_without_type_column(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    write_modma_sheet(root, [[2010002, "MDD"]], header=["subject id", "label"])
    write_wav(root / "02010002" / "01.wav")
    with pytest.raises(DomadaptError, match=r"xlsx has no column 'type'"):
        load_modma(root)
