import re

import numpy as np
import pytest
from fake_trees import make_daic_tree

from domadapt.audio import read_audio
from domadapt.corpora.daic_woz import load_daic_woz
from domadapt.errors import DomadaptError


def test_exact_counts_and_split_mapping(tmp_path):
    c = load_daic_woz(make_daic_tree(tmp_path))
    assert c.name == "daic_woz"
    assert c.classes == ("not_depressed", "depressed")
    assert len(c.utterances) == 8
    assert c.subjects() == ["300", "301", "302", "303"]
    assert c.label_counts() == {"not_depressed": 4, "depressed": 4}
    assert c.official_split == {"300": "train", "301": "train", "302": "dev", "303": "test"}


def test_test_split_labels_come_from_phq_binary(tmp_path):
    c = load_daic_woz(make_daic_tree(tmp_path))
    u = next(u for u in c.utterances if u.subject == "303")
    assert u.label == "depressed"
    assert dict(u.meta) | {"text": ""} == {"phq8": "12", "split": "test", "gender": "0", "text": ""}
    u = next(u for u in c.utterances if u.subject == "301")
    assert (u.label, u.meta["phq8"], u.meta["split"]) == ("depressed", "15", "train")


def test_only_participant_speech_turns_with_times(tmp_path):
    c = load_daic_woz(make_daic_tree(tmp_path))
    turns = [(u.start, u.end, u.meta["text"]) for u in c.utterances if u.subject == "300"]
    # Ellie, <sync>, <synch>, [sync], empty and the 0.5 s turn are gone; the last turn
    # is clipped to the 12.5 s recording.
    assert turns == [(4.1, 6.3, "hello there"), (11.0, 12.5, "i'm fine thanks")]
    u = c.utterances[0]
    assert u.path.name == "300_AUDIO.wav"
    wav, sr = read_audio(u.path, u.start, u.end)
    assert sr == 16000 and wav.shape == (int(round(6.3 * sr)) - int(round(4.1 * sr)),)
    assert np.isfinite(wav).all()


def test_min_turn_seconds(tmp_path):
    root = make_daic_tree(tmp_path)
    c = load_daic_woz(root, min_turn_seconds=0.4)
    assert len(c.utterances) == 12
    assert (6.5, 7.0) in {(u.start, u.end) for u in c.utterances if u.subject == "302"}
    assert len(load_daic_woz(root, min_turn_seconds=2.0).utterances) == 4


def test_skips_participant_without_folder_and_folder_without_split(tmp_path):
    root = make_daic_tree(tmp_path)
    c = load_daic_woz(root)
    reasons = {s.path.replace(str(root) + "/", ""): s.reason for s in c.skipped}
    assert set(reasons) == {"304_P", "399_P"}
    assert "dev split file but has no folder" in reasons["304_P"]
    assert "no split file" in reasons["399_P"]


def test_splits_option(tmp_path):
    root = make_daic_tree(tmp_path)
    c = load_daic_woz(root, splits=("train", "dev"))
    assert c.subjects() == ["300", "301", "302"]
    assert set(c.official_split.values()) == {"train", "dev"}
    assert {s.path.rsplit("/", 1)[-1] for s in c.skipped} == {"304_P", "399_P"}
    assert len(load_daic_woz(root, splits=["test"]).utterances) == 2
    with pytest.raises(DomadaptError, match="'val'.*train, dev, test"):
        load_daic_woz(root, splits=("val",))


def test_missing_split_file_names_it(tmp_path):
    root = make_daic_tree(tmp_path)
    (root / "full_test_split.csv").unlink()
    with pytest.raises(DomadaptError, match=re.escape(str(root / "full_test_split.csv"))):
        load_daic_woz(root)
    assert len(load_daic_woz(root, splits=("train", "dev")).utterances) == 6


def test_missing_transcript_and_bad_wav_are_skipped(tmp_path):
    root = make_daic_tree(tmp_path)
    (root / "300_P" / "300_TRANSCRIPT.csv").unlink()
    (root / "301_P" / "301_AUDIO.wav").write_bytes(b"RIFFjunk")
    c = load_daic_woz(root)
    assert c.subjects() == ["302", "303"]
    reasons = {s.path.replace(str(root) + "/", ""): s.reason for s in c.skipped}
    assert "300_TRANSCRIPT.csv" in reasons["300_P"]
    assert "unreadable" in reasons["301_P/301_AUDIO.wav"]
    assert "300" not in c.official_split


def test_bad_roots_name_the_path(tmp_path):
    with pytest.raises(DomadaptError, match=r"nowhere.*<pid>_P/<pid>_AUDIO\.wav"):
        load_daic_woz(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DomadaptError, match=re.escape(str(tmp_path / "empty"))):
        load_daic_woz(tmp_path / "empty")


def test_transcript_without_header_columns(tmp_path):
    root = make_daic_tree(tmp_path)
    (root / "300_P" / "300_TRANSCRIPT.csv").write_text("a\tb\n1\t2\n")
    c = load_daic_woz(root)
    assert "300" not in c.subjects()
    assert any(s.path.endswith("300_TRANSCRIPT.csv") and "lacks columns" in s.reason
               for s in c.skipped)
