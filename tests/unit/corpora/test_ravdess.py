import collections
import json
import re

import pytest
from fake_trees import RAVDESS_SPEECH_ACTORS, make_ravdess_tree, write_wav

from domadapt.cli import main
from domadapt.corpora import CORPORA, load_corpus
from domadapt.corpora.ravdess import CLASSES, load_ravdess, parse_name
from domadapt.errors import DomadaptError

SPEECH = ("angry", "calm", "disgust", "fear", "happy", "neutral", "sad", "surprise")
SONG = ("angry", "calm", "fear", "happy", "neutral", "sad")


def _names(skipped):
    return sorted("/".join(s.path.rsplit("/", 3)[-3:]) for s in skipped)


ALWAYS_SKIPPED = [
    "RAVDESS/Actor_01/01-01-05-01-01-01-01.wav",
    "RAVDESS/Actor_01/03-01-05-01-01-01-02.wav",
    "RAVDESS/Actor_01/03-01-09-01-01-01-01.wav",
    "RAVDESS/Actor_02/notes.wav",
]
DUPLICATE = "audio_speech_actors_01-24/Actor_01/03-01-05-01-01-01-01.wav"
SONG_DISGUST = "Audio_Song_Actors_01-24/Actor_02/03-02-07-01-01-01-02.wav"


def test_speech_by_default_exact_counts(tmp_path):
    c = load_ravdess(make_ravdess_tree(tmp_path))
    assert c.name == "ravdess"
    # TIM-Net's RAVDE_CLASS_LABELS, in its order
    assert c.classes == CLASSES["speech"] == SPEECH
    assert len(c.utterances) == 64
    assert c.subjects() == list(RAVDESS_SPEECH_ACTORS)
    assert collections.Counter(u.subject for u in c.utterances) == {a: 16 for a in RAVDESS_SPEECH_ACTORS}
    assert c.label_counts() == {label: 8 for label in SPEECH}
    assert {u.meta["vocal_channel"] for u in c.utterances} == {"speech"}
    assert collections.Counter(u.meta["intensity"] for u in c.utterances) == {"normal": 36, "strong": 28}
    assert {u.domain for u in c.utterances} == {"ravdess"}
    # the second copy (one level down) is listed, the first kept
    assert _names(c.skipped) == sorted(ALWAYS_SKIPPED + [DUPLICATE])
    kept = [u for u in c.utterances if u.path.name == "03-01-05-01-01-01-01.wav"]
    assert len(kept) == 1 and kept[0].path.parent.parent.name == "RAVDESS"


def test_song_and_both(tmp_path):
    root = make_ravdess_tree(tmp_path)
    song = load_ravdess(root, vocal_channel="song")
    assert song.classes == CLASSES["song"] == SONG
    assert len(song.utterances) == 22
    assert song.subjects() == ["01", "02"]
    assert song.label_counts() == {"angry": 4, "calm": 4, "fear": 4, "happy": 4,
                                   "neutral": 2, "sad": 4}
    assert {u.meta["vocal_channel"] for u in song.utterances} == {"song"}
    assert _names(song.skipped) == sorted(ALWAYS_SKIPPED + [SONG_DISGUST])
    reason = next(s.reason for s in song.skipped if s.path.endswith("03-02-07-01-01-01-02.wav"))
    assert "'disgust' is not one of the song classes" in reason

    both = load_ravdess(root, vocal_channel="both")
    assert both.classes == SPEECH
    assert len(both.utterances) == 64 + 22 + 1
    assert both.label_counts()["disgust"] == 9
    assert collections.Counter(u.meta["vocal_channel"] for u in both.utterances) == {"speech": 64, "song": 23}
    assert _names(both.skipped) == sorted(ALWAYS_SKIPPED + [DUPLICATE])


def test_codes_map_to_emotions_and_meta(tmp_path):
    c = load_ravdess(make_ravdess_tree(tmp_path))
    by_name = {u.path.name: u for u in c.utterances}
    expected = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
                "06": "fear", "07": "disgust", "08": "surprise"}
    for code, label in expected.items():
        assert by_name[f"03-01-{code}-01-01-01-03.wav"].label == label
    u = by_name["03-01-06-02-01-01-04.wav"]
    assert u.subject == "04"
    assert dict(u.meta) == {
        "emotion": "06", "vocal_channel": "speech", "intensity": "strong", "statement": "01",
        "text": "Kids are talking by the door", "repetition": "01", "gender": "female"}
    assert by_name["03-01-01-01-02-01-03.wav"].meta["text"] == "Dogs are sitting by the door"
    genders = {u.subject: u.meta["gender"] for u in c.utterances}
    assert genders == {"01": "male", "02": "female", "03": "male", "04": "female"}


def test_skip_reasons(tmp_path):
    c = load_ravdess(make_ravdess_tree(tmp_path))
    reasons = {s.path.rsplit("/", 1)[-1] + "@" + s.path.rsplit("/", 2)[-2]: s.reason for s in c.skipped}
    assert "unknown emotion code '09'" in reasons["03-01-09-01-01-01-01.wav@Actor_01"]
    assert "not the audio-only recording" in reasons["01-01-05-01-01-01-01.wav@Actor_01"]
    assert "actor 02 but it is in folder 'Actor_01'" in reasons["03-01-05-01-01-01-02.wav@Actor_01"]
    assert "7 two-digit fields" in reasons["notes.wav@Actor_02"]
    assert reasons["03-01-05-01-01-01-01.wav@Actor_01"].startswith("duplicate of ")


def test_parse_name():
    assert parse_name("03-01-06-01-02-01-12") == {
        "modality": "03", "channel": "01", "emotion": "06", "intensity": "01",
        "statement": "02", "repetition": "01", "actor": "12"}
    assert "unknown actor code '25'" in parse_name("03-01-06-01-02-01-25")
    assert "unknown intensity code '03'" in parse_name("03-01-06-03-02-01-12")
    assert "unknown channel code '03'" in parse_name("03-03-06-01-02-01-12")


def test_empty_root_is_one_line_error_naming_path_and_layout(tmp_path):
    empty = tmp_path / "empty"
    write_wav(empty / "03-01-06-01-02-01-12.wav")  # not in an Actor_NN folder
    (empty / "Actor_01").mkdir()
    with pytest.raises(DomadaptError, match=re.escape(str(empty)) + r".*Actor_12/03-01-06-01-02-01-12\.wav") as e:
        load_ravdess(empty)
    assert "\n" not in str(e.value)
    # speech only, asked for song
    write_wav(empty / "Actor_01" / "03-01-01-01-01-01-01.wav")
    with pytest.raises(DomadaptError, match="no Actor_NN folder with song"):
        load_ravdess(empty, vocal_channel="song")


def test_missing_root_empty_class_and_bad_option(tmp_path):
    with pytest.raises(DomadaptError, match="does not exist"):
        load_ravdess(tmp_path / "nowhere")
    root = make_ravdess_tree(tmp_path)
    with pytest.raises(DomadaptError, match="speech, song, both"):
        load_ravdess(root, vocal_channel="choir")
    with pytest.raises(DomadaptError, match="vocal_channel = 'choir': expected one of speech, song, both"):
        load_corpus("ravdess", root, vocal_channel="choir")
    for p in root.glob("Actor_*/03-01-02-*.wav"):
        p.unlink()
    with pytest.raises(DomadaptError, match=r"calm \(empty class"):
        load_ravdess(root)


def test_registered_and_summary(tmp_path, capsys):
    assert "ravdess" in CORPORA and CORPORA.options("ravdess") == {"vocal_channel": "speech"}
    assert CORPORA.doc("ravdess").startswith("RAVDESS audio-only")
    root = make_ravdess_tree(tmp_path)
    assert len(load_corpus("ravdess", root, vocal_channel="song").utterances) == 22
    assert main(["data", "summary", "ravdess", str(root), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["corpus"] == "ravdess" and d["utterances"] == 64 and d["subjects"] == 4
    assert list(d["classes"]) == list(SPEECH)
    assert d["sample_rates"] == {"48000": 64}
    assert len(d["skipped"]) == 5
