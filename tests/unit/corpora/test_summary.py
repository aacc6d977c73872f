import json
from pathlib import Path

from fake_trees import make_daic_tree, make_modma_tree, write_wav

from domadapt.corpora import load_daic_woz, load_modma
from domadapt.corpora.base import Corpus, Utterance
from domadapt.corpora.summary import format_summary, summarize


def test_summary_of_modma(tmp_path):
    d = summarize(load_modma(make_modma_tree(tmp_path)))
    assert d["corpus"] == "modma"
    assert d["utterances"] == 60 and d["subjects"] == 3
    assert d["classes"] == {"HC": 31, "MDD": 29}
    assert d["sample_rates"] == {44100: 60}
    assert d["durations"]["known"] == 60
    assert abs(d["durations"]["total"] - 60 * 882 / 44100) < 1e-3
    assert d["durations"]["min"] == d["durations"]["max"] == 0.02
    assert len(d["skipped"]) == 7 and set(d["skipped"][0]) == {"path", "reason"}
    assert d["synthetic"] is False
    json.dumps(d)  # JSON-ready


def test_durations_from_cuts_without_probing(tmp_path):
    c = load_daic_woz(make_daic_tree(tmp_path))
    d = summarize(c, probe_audio=False)
    assert d["sample_rates"] == {}
    assert d["durations"]["known"] == 8
    assert abs(d["durations"]["total"] - 4 * (2.2 + 1.5)) < 1e-6
    assert d["durations"]["min"] == 1.5 and d["durations"]["max"] == 2.2
    assert summarize(c)["sample_rates"] == {16000: 8}


def test_unreadable_file_found_while_probing_is_listed(tmp_path):
    good = write_wav(tmp_path / "g.wav", seconds=0.5, sr=8000)
    bad = tmp_path / "b.wav"
    bad.write_bytes(b"junk")
    c = Corpus(name="x", root=tmp_path, classes=("a",), synthetic=True, utterances=[
        Utterance(path=good, label="a", subject="s", domain="x"),
        Utterance(path=bad, label="a", subject="t", domain="x")])
    d = summarize(c)
    assert d["durations"] == {"total": 0.5, "mean": 0.5, "min": 0.5, "max": 0.5, "known": 1}
    assert d["skipped"] == [{"path": str(bad), "reason": d["skipped"][0]["reason"]}]
    assert "unreadable" in d["skipped"][0]["reason"]
    assert d["synthetic"] is True
    text = format_summary(d)
    assert "SYNTHETIC" in text and "b.wav" in text


def test_format_summary_text(tmp_path):
    d = summarize(load_modma(make_modma_tree(tmp_path)))
    text = format_summary(d)
    assert "corpus modma" in text
    assert "utterances   60" in text and "subjects     3" in text
    assert "HC" in text and "31" in text and "44100 Hz × 60" in text
    assert "skipped      7" in text
    # works on the JSON round trip too (rates become string keys)
    assert format_summary(json.loads(json.dumps(d))) == text
    assert "duration     unknown" in format_summary(summarize(load_modma(Path(d["root"])), probe_audio=False))


def test_unreadable_files_are_not_counted_as_utterances_or_classes(tmp_path, capsys):
    """40 readable files and 2 broken ones: 40 utterances, 20 per class, 2 skipped (not 42 and 21/21)."""
    from domadapt.cli import main

    root = tmp_path / "tree"
    for label in ("happy", "sad"):
        for i in range(20):
            write_wav(root / label / f"spk{i % 4}" / f"{label}{i}.wav")
        (root / label / "spk0" / f"{label}-broken.wav").write_bytes(b"RIFF not really")
    assert main(["data", "summary", "folder", str(root), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["utterances"] == 40
    assert d["classes"] == {"happy": 20, "sad": 20}
    assert d["subjects"] == 4
    assert sorted(Path(s["path"]).name for s in d["skipped"]) == ["happy-broken.wav", "sad-broken.wav"]
    assert d["sample_rates"] == {"16000": 40}  # JSON keys
