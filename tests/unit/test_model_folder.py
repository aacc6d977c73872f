"""Model folders and predictions from them, on a small untrained model (no training here:
what is checked is that a folder round-trips, never unpickles, and that a recording goes
through the same front-end as the training data)."""

import csv
import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import domadapt
from domadapt.cli import main as cli_main
from domadapt.recipe_loader import build_config
from domadapt.device import BF16, FLOAT32, autocast
from domadapt.errors import DomadaptError
from domadapt.features.frontend import extract_windows
from domadapt.inference import expand_inputs, load_model
from domadapt.methods import build_method
from domadapt.model_folder import INFO_FILE, WEIGHTS_FILE, read_info, write_model_folder
from domadapt.models.transfer import build_transfer_model

TINY = {"filters": 8, "levels": 2}
SHAPE = (39, 94)  # the default front-end: 39 MFCC x 94 frames of a 3 s window


def _tone(seconds: float, sr: int, *, f0: float = 180.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    y = 0.2 * np.sin(2 * np.pi * f0 * t) + 0.05 * np.sin(2 * np.pi * 3.1 * f0 * t) * np.sin(2 * np.pi * 2 * t)
    y = y.astype(np.float32)
    return y if channels == 1 else np.stack([y, 0.5 * y[::-1].copy()], axis=1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """An untrained target_only model with the default front-end, written as a model folder."""
    cfg = build_config(
        {"model": {"backbone_options": TINY, "specific_dim": 8}, "methods": [{"name": "target_only"}]},
        check_corpora=False,
    )
    spec = cfg.methods[0]
    torch.manual_seed(0)
    method = build_method(spec, cfg.train, build_transfer_model(cfg.model, spec, input_shape=SHAPE, tasks={"target": 2}))
    mean = torch.linspace(-3, 3, SHAPE[0]).view(1, -1, 1)
    std = torch.linspace(0.5, 4, SHAPE[0]).view(1, -1, 1)
    path = tmp_path_factory.mktemp("model") / "m"
    write_model_folder(
        path, method.eval(), cfg=cfg, spec=spec, target="modma", classes=("HC", "MDD"), tasks={"target": 2},
        input_shape=SHAPE, mean=mean, std=std, training={"target": {"corpus": "modma"}}, precision=FLOAT32, git=None,
    )
    return path, method, mean, std


def test_a_folder_round_trips_weights_statistics_and_outputs(folder):
    path, method, mean, std = folder
    assert sorted(p.name for p in path.iterdir()) == [INFO_FILE, WEIGHTS_FILE]
    model = load_model(path, device="cpu")
    assert model.classes == ("HC", "MDD")
    saved, loaded = method.state_dict(), model.method.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k].cpu(), loaded[k]) for k in saved)
    x = torch.randn(5, *SHAPE, generator=torch.Generator().manual_seed(1))
    assert torch.equal(model.window_inputs(x), (x - mean) / std)
    with torch.no_grad():
        want = torch.softmax(method.eval().target_logits((x - mean) / std), dim=-1)
    torch.testing.assert_close(model.window_probabilities(model.window_inputs(x)), want, rtol=0, atol=1e-7)
    assert domadapt.load_model is load_model


def test_a_folder_predicts_in_the_precision_its_run_evaluated_in(folder, tmp_path):
    """A model its run evaluated under bf16 autocast predicts under it too (where the CPU has
    bf16; elsewhere both are float32), so a fold model repeats its run's test scores."""
    path, method, mean, std = folder
    info = json.loads((path / INFO_FILE).read_text())
    assert info["precision"] == FLOAT32
    bf16 = tmp_path / "bf16"
    shutil.copytree(path, bf16)
    (bf16 / INFO_FILE).write_text(json.dumps({**info, "precision": BF16}))
    x = torch.randn(5, *SHAPE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), autocast(torch.device("cpu"), True):
        want = torch.softmax(method.eval().target_logits((x - mean) / std).float(), dim=-1)
    model = load_model(bf16, device="cpu")
    torch.testing.assert_close(model.window_probabilities(model.window_inputs(x)), want, rtol=0, atol=1e-7)


class _TouchOnUnpickle:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_weights_file_that_runs_code_when_unpickled_is_never_unpickled(folder, tmp_path):
    path, *_ = folder
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / INFO_FILE).write_text((path / INFO_FILE).read_text())
    marker = tmp_path / "code-ran"
    torch.save({"weights": _TouchOnUnpickle(marker)}, evil / WEIGHTS_FILE)
    # the payload is live: unpickled the old way, it runs (in a child process)
    probe = tmp_path / "probe-ran"
    torch.save({"weights": _TouchOnUnpickle(probe)}, tmp_path / "probe.pt")
    subprocess.run(
        [sys.executable, "-c", f"import torch, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
         f"import test_model_folder; torch.load({str(tmp_path / 'probe.pt')!r}, weights_only=False)"],
        check=True,
    )
    assert probe.exists()
    with pytest.raises(DomadaptError) as err:
        load_model(evil, device="cpu")
    assert not marker.exists(), "loading a model folder executed code from its weights file"
    assert str(evil / WEIGHTS_FILE) in str(err.value) and "\n" not in str(err.value)
    # the same file as a plain pickle, not torch's zip
    (evil / WEIGHTS_FILE).write_bytes(pickle.dumps({"weights": _TouchOnUnpickle(marker)}))
    with pytest.raises(DomadaptError, match="not a safetensors weights file"):
        load_model(evil, device="cpu")
    assert not marker.exists()


def test_a_folder_of_another_format_is_a_one_line_error_naming_both_versions(folder, tmp_path):
    path, *_ = folder
    other = tmp_path / "other"
    other.mkdir()
    info = read_info(path)
    info.update(format=99, domadapt_version="9.9.9")
    import json

    (other / INFO_FILE).write_text(json.dumps(info))
    (other / WEIGHTS_FILE).write_bytes((path / WEIGHTS_FILE).read_bytes())
    with pytest.raises(DomadaptError) as err:
        load_model(other, device="cpu")
    message = str(err.value)
    assert "9.9.9" in message and f"domadapt {domadapt.__version__}" in message and "\n" not in message
    with pytest.raises(DomadaptError, match="not a model folder"):
        load_model(tmp_path, device="cpu")


def _write(path: Path, wave: np.ndarray, sr: int, subtype: str = "FLOAT") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, sr, subtype=subtype)
    return str(path)


def test_predict_reads_any_rate_and_channels_as_the_training_front_end_does(folder, tmp_path):
    path, *_ = folder
    model = load_model(path, device="cpu")
    mono16 = _write(tmp_path / "a" / "mono16k.wav", _tone(7.0, 16000), 16000)
    stereo = _tone(4.0, 44100, channels=2)
    stereo44 = _write(tmp_path / "a" / "deep" / "stereo44k.wav", stereo, 44100)
    mixed = _write(tmp_path / "mixdown.wav", stereo.mean(axis=1), 44100)
    table = model.predict_many([mono16, stereo44])
    assert [r["n_windows"] for r in table.rows] == [3, 2]  # 7 s: 0-3, 3-6, 6-7 padded; 4 s: 0-3, 3-4 padded
    assert table.skipped == []
    p_stereo = model.predict_file(stereo44)
    np.testing.assert_allclose(p_stereo, model.predict_file(mixed), rtol=0, atol=1e-6)  # channels averaged
    np.testing.assert_allclose(model.predict(stereo.T, 44100), p_stereo, rtol=0, atol=1e-7)  # [channels, S] in memory
    np.testing.assert_allclose(p_stereo.sum(), 1.0, atol=1e-6)
    # the same windows, features and standardisation as the training extraction of these files
    from domadapt.corpora.base import Corpus, Utterance

    corpus = Corpus("modma", tmp_path, ("HC",), [Utterance(Path(mono16), "HC", "s", "t"), Utterance(Path(stereo44), "HC", "s", "t")])
    segs, _ = extract_windows(corpus, model.features, device="cpu")
    probs = model.window_probabilities(model.window_inputs(segs.x)).numpy()
    np.testing.assert_allclose([table.rows[0]["p_HC"], table.rows[1]["p_HC"]], [probs[:3, 0].mean(), probs[3:, 0].mean()], atol=1e-7)
    # a folder is searched recursively
    assert expand_inputs([tmp_path / "a"])[0] == sorted([mono16, stereo44])


def test_bad_files_are_listed_skips_and_the_rest_is_predicted(folder, tmp_path, capsys):
    path, *_ = folder
    good = [_write(tmp_path / "in" / f"{n}.wav", _tone(3.5, sr, f0=150 + 20 * n), sr) for n, sr in enumerate((16000, 22050, 8000))]
    short = _write(tmp_path / "in" / "short.wav", _tone(0.2, 16000), 16000)
    empty = _write(tmp_path / "in" / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    corrupt = tmp_path / "in" / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00 definitely not audio")
    silent = _write(tmp_path / "in" / "silent.wav", np.zeros(48000, dtype=np.float32), 16000)
    manifest = tmp_path / "list.csv"
    manifest.write_text("path,subject\n" + "".join(f"{Path(p).relative_to(tmp_path)},{s}\n" for p, s in
                        zip([*good, short], ["s1", "s1", "s2", "s2"])) + "missing.wav,s3\n")
    out = tmp_path / "preds.csv"
    code = cli_main(["-q", "predict", str(path), str(manifest), str(empty), str(corrupt), str(silent), "--out", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0
    for name, why in (("short.wav", "too short"), ("empty.wav", "an empty file"), ("corrupt.wav", "unreadable"),
                      ("silent.wav", "silent"), ("missing.wav", "no such file")):
        line = next((line for line in err.splitlines() if line.startswith("skipped ") and name in line), None)
        assert line is not None and why in line, (name, err)
    assert "3 of 8 files predicted, 5 skipped" in err
    rows = list(csv.DictReader(out.open()))
    assert [Path(r["path"]).name for r in rows] == ["0.wav", "1.wav", "2.wav"]
    assert list(rows[0]) == ["path", "subject", "class", "p_HC", "p_MDD", "n_windows"]
    assert [r["subject"] for r in rows] == ["s1", "s1", "s2"]
    for r in rows:
        assert r["class"] == ("HC" if float(r["p_HC"]) > float(r["p_MDD"]) else "MDD")
    subjects = {r["subject"]: r for r in csv.DictReader(out.with_suffix(".subjects.csv").open())}
    assert sorted(subjects) == ["s1", "s2"] and subjects["s1"]["n_files"] == "2" and subjects["s2"]["n_files"] == "1"
    # a subject's probability is the mean over its windows (files weighted by their windows)
    w = np.array([int(r["n_windows"]) for r in rows[:2]])
    p = np.array([float(r["p_MDD"]) for r in rows[:2]])
    assert abs(float(subjects["s1"]["p_MDD"]) - (w * p).sum() / w.sum()) < 1e-6
    # nothing predictable: a non-zero exit, the reasons still listed
    assert cli_main(["-q", "predict", str(path), str(short), str(corrupt), "--device", "cpu"]) == 1
    assert "0 of 2 files predicted, 2 skipped" in capsys.readouterr().err
