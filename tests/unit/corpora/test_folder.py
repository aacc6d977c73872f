import collections
import re

import pytest
from fake_trees import make_folder_tree, write_wav

from domadapt.corpora.folder import load_folder, load_manifest, write_manifest
from domadapt.errors import DomadaptError


def test_default_subjects(tmp_path):
    root = make_folder_tree(tmp_path)
    c = load_folder(root)
    assert c.name == "folder" and c.classes == ("happy", "sad")
    assert len(c.utterances) == 5
    assert c.label_counts() == {"happy": 3, "sad": 2}
    subjects = {u.path.name: u.subject for u in c.utterances}
    assert subjects == {"a.wav": "spk1", "b.wav": "spk2", "c.wav": "deep",
                        "d.wav": "spk1", "e_spk3.wav": "e_spk3"}
    assert [s.path.rsplit("/", 1)[-1] for s in c.skipped] == ["loose.wav"]
    assert {u.domain for u in c.utterances} == {"folder"}


def test_parent_subject_requires_nesting(tmp_path):
    root = make_folder_tree(tmp_path)
    with pytest.raises(DomadaptError, match=r"e_spk3\.wav sits directly in its label folder"):
        load_folder(root, subject="parent")
    (root / "sad" / "e_spk3.wav").unlink()
    c = load_folder(root, subject="parent")
    assert c.subjects() == ["deep", "spk1", "spk2"]


def test_regex_subject_and_stem(tmp_path):
    root = tmp_path / "r"
    for name in ("happy/01_anna.wav", "happy/02_bob.wav", "sad/03_anna.wav", "sad/noname.wav"):
        write_wav(root / name)
    c = load_folder(root, subject=r"_(?P<subject>[a-z]+)\.wav$")
    assert collections.Counter(u.subject for u in c.utterances) == {"anna": 2, "bob": 1}
    assert [s.path.rsplit("/", 1)[-1] for s in c.skipped] == ["noname.wav"]
    assert load_folder(root, subject=r"_([a-z]+)").subjects() == ["anna", "bob"]
    assert len(load_folder(root, subject="stem").subjects()) == 4
    with pytest.raises(DomadaptError, match="regular expression"):
        load_folder(root, subject="(")


def test_name_and_extensions(tmp_path):
    root = tmp_path / "r"
    write_wav(root / "a" / "x.wav")
    write_wav(root / "b" / "y.WAV")
    c = load_folder(root, name="mine")
    assert c.name == "mine" and {u.domain for u in c.utterances} == {"mine"}
    assert c.label_counts() == {"a": 1, "b": 1}
    import soundfile as sf
    import numpy as np
    sf.write(str(root / "a" / "z.flac"), np.zeros(160, dtype="float32"), 16000)
    assert load_folder(root).label_counts() == {"a": 1, "b": 1}
    assert load_folder(root, extensions=(".wav", "flac")).label_counts() == {"a": 2, "b": 1}


def test_empty_label_folder_and_bad_root(tmp_path):
    root = make_folder_tree(tmp_path)
    (root / "angry").mkdir()
    with pytest.raises(DomadaptError, match=r"my corpus/angry.*empty class 'angry'"):
        load_folder(root)
    with pytest.raises(DomadaptError, match=r"nowhere.*<root>/<label>/\*\*/\*\.wav"):
        load_folder(tmp_path / "nowhere")


def test_manifest_round_trip_and_relative_paths(tmp_path):
    root = make_folder_tree(tmp_path)
    c = load_folder(root)
    manifest = write_manifest(c, root / "manifest.csv")
    back = load_manifest(manifest)
    assert [(u.path.resolve(), u.label, u.subject) for u in back.utterances] == [
        (u.path.resolve(), u.label, u.subject) for u in c.utterances]
    assert "happy/spk1/a.wav" in manifest.read_text()
    assert load_folder(manifest).classes == ("happy", "sad")  # a .csv root is a manifest


def test_manifest_domain_cut_and_missing_file(tmp_path):
    write_wav(tmp_path / "audio" / "a.wav", seconds=1.0)
    m = tmp_path / "list.csv"
    m.write_text("path,label,subject,domain,start,end\n"
                 "audio/a.wav,pos,s1,clinic,0.1,0.6\n"
                 "audio/a.wav,neg,s2,,,\n"
                 "audio/gone.wav,neg,s3,,,\n")
    c = load_manifest(m, name="mine")
    assert c.classes == ("neg", "pos")
    assert [(u.domain, u.start, u.end) for u in c.utterances] == [
        ("clinic", 0.1, 0.6), ("mine", None, None)]
    assert [s.path.rsplit("/", 1)[-1] for s in c.skipped] == ["gone.wav"]


def test_manifest_errors_name_the_file(tmp_path):
    m = tmp_path / "bad.csv"
    m.write_text("file,label\nx.wav,a\n")
    with pytest.raises(DomadaptError, match=re.escape(str(m)) + ".*path, subject"):
        load_manifest(m)
    with pytest.raises(DomadaptError, match=r"missing\.csv not found"):
        load_manifest(tmp_path / "missing.csv")
