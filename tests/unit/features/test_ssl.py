"""The SSL front-end (kind = "ssl"): tiny randomly initialised wav2vec 2.0 / HuBERT / WavLM
checkpoints built with torchaudio's model builders, through extract_segments; the layer
numbering against torchaudio's own extract_features, the cache, the frozen encoder and the
learned LayerWeighting; the checkpoint formats and their errors; config validation."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from torch import nn

import domadapt.features.ssl as ssl
from domadapt.recipe_loader import build_config
from domadapt.corpora.base import Corpus, Utterance
from domadapt.errors import DomadaptError
from domadapt.features import (
    FeatureConfig,
    LayerWeighting,
    SSLEncoder,
    cache_path,
    extract_segments,
    load_ssl_encoder,
    needs_layer_weighting,
)

SR = 16000
FRAMES = 149  # a 3 s window through the standard CNN (strides 5*2*2*2*2*2*2 = 320, 20 ms)
WIDTH = ssl.TINY_CONFIG["encoder_embed_dim"]  # 32
LAYERS = ssl.TINY_CONFIG["encoder_num_layers"]  # 2 transformer layers; hidden states 0..2


def tiny_config(**over):
    """wav2vec2_model keyword arguments: the base layout, shrunk (HuBERT base has the same)."""
    return {**ssl.TINY_CONFIG, **over}


def save_tiny(path, builder="wav2vec2_model", seed=0, **over):
    """A ``{"builder", "config", "state_dict"}`` checkpoint of a random tiny model; returns
    the model (eval mode) for reference computations."""
    return ssl.save_random_checkpoint(path, builder=builder, seed=seed, **over)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """Tiny wav2vec 2.0, HuBERT (the same builder with its own weights) and WavLM files."""
    d = tmp_path_factory.mktemp("ckpt")
    return {
        "wav2vec2": (d / "w2v.pt", save_tiny(d / "w2v.pt", seed=0)),
        "hubert": (d / "hubert.pt", save_tiny(d / "hubert.pt", seed=1)),
        "wavlm": (d / "wavlm.pt", save_tiny(d / "wavlm.pt", builder="wavlm_model", seed=2)),
    }


MODEL_OF = {"wav2vec2": "WAV2VEC2_BASE", "hubert": "HUBERT_BASE", "wavlm": "WAVLM_BASE_PLUS"}


def cfg_for(ckpt, which="wav2vec2", **over) -> FeatureConfig:
    return FeatureConfig(kind="ssl", model=MODEL_OF[which], checkpoint=str(ckpt[which][0]), **over)


def tone(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    wave = np.sin(2 * np.pi * (120 + 40 * seed) * t) * np.clip(np.sin(2 * np.pi * 3 * t), 0, None)
    return (0.3 * wave + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two subjects, three files: 7 s (3 windows), 2 s (1 padded), 3 s (1) -> 5 windows."""
    root = tmp_path_factory.mktemp("audio")
    items = [("a1", 7.0, "mdd", "A"), ("b1", 2.0, "hc", "B"), ("a2", 3.0, "mdd", "A")]
    utts = []
    for k, (name, seconds, label, subject) in enumerate(items):
        path = root / f"{name}.wav"
        sf.write(str(path), tone(seconds, k), SR, subtype="FLOAT")
        utts.append(Utterance(path=path, label=label, subject=subject, domain="toy"))
    return Corpus(name="toy", root=root, classes=("hc", "mdd"), utterances=utts)


def first_window(corpus) -> torch.Tensor:
    return torch.from_numpy(sf.read(str(corpus.utterances[0].path), dtype="float32")[0][: 3 * SR])[None]


# ---------------------------------------------------------------------------- shapes and layers


@pytest.mark.parametrize("which", ["wav2vec2", "hubert", "wavlm"])
def test_single_layer_is_torchaudios_layer_output(ckpt, corpus, which):
    segs = extract_segments(corpus, cfg_for(ckpt, which, layer=-1), cache_dir=False)
    assert segs.x.shape == (5, WIDTH, FRAMES) and segs.x.dtype == torch.float32
    assert segs.utterance.tolist() == [0, 0, 0, 1, 2] and segs.x.is_contiguous()
    with torch.no_grad():
        ref, _ = ckpt[which][1].extract_features(first_window(corpus))  # states 1..L
    torch.testing.assert_close(segs.x[0], ref[-1][0].T, atol=1e-4, rtol=1e-4)


def test_layer_numbering_list_mean_and_weighted(ckpt, corpus):
    wave = first_window(corpus)
    enc = load_ssl_encoder(cfg_for(ckpt, layer="weighted"))
    with torch.no_grad():
        states = enc(wave)[0]  # (L, D, T), L = layers + 1
        ref, _ = ckpt["wav2vec2"][1].extract_features(wave)
    assert states.shape == (LAYERS + 1, WIDTH, FRAMES)
    for k in range(1, LAYERS + 1):
        torch.testing.assert_close(states[k], ref[k - 1][0].T, atol=1e-4, rtol=1e-4)
    for layer, expect in ((0, states[0]), (1, states[1]), (-1, states[LAYERS]), ((0, 2), states[[0, 2]].mean(0))):
        with torch.no_grad():
            got = load_ssl_encoder(cfg_for(ckpt, layer=layer))(wave)[0]
        torch.testing.assert_close(got, expect, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("which", ["wav2vec2", "hubert"])
def test_weighted_keeps_every_hidden_state(ckpt, corpus, which):
    cfg = cfg_for(ckpt, which, layer="weighted")
    segs = extract_segments(corpus, cfg, cache_dir=False)
    assert segs.x.shape == (5, LAYERS + 1, WIDTH, FRAMES)
    assert needs_layer_weighting(cfg) == LAYERS + 1 == segs.x.shape[1]
    assert needs_layer_weighting(cfg_for(ckpt, which, layer=1)) is None
    assert needs_layer_weighting(FeatureConfig()) is None
    last = extract_segments(corpus, cfg_for(ckpt, which, layer=LAYERS), cache_dir=False)
    torch.testing.assert_close(segs.x[:, LAYERS], last.x, atol=1e-5, rtol=1e-5)


def test_weighted_features_are_standardised_per_layer(ckpt, corpus):
    segs = extract_segments(corpus, cfg_for(ckpt, layer="weighted", normalize="corpus"), cache_dir=False)
    torch.testing.assert_close(segs.x.mean(dim=(0, 3)), torch.zeros(LAYERS + 1, WIDTH), atol=1e-4, rtol=0)


def test_layer_out_of_range_is_one_line(ckpt):
    with pytest.raises(DomadaptError, match=r"features.layer=3: this model has hidden states 0..2") as err:
        load_ssl_encoder(cfg_for(ckpt, layer=3))
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------- the cache


def test_second_call_reads_the_cache_keyed_by_checkpoint_bytes(ckpt, corpus, tmp_path, monkeypatch):
    cfg = cfg_for(ckpt, layer="weighted")
    first = extract_segments(corpus, cfg, cache_dir=tmp_path)

    def no_model(*args, **kwargs):
        raise AssertionError("the SSL model ran although the features are cached")

    monkeypatch.setattr(ssl, "load_ssl_encoder", no_model)
    monkeypatch.setattr(SSLEncoder, "forward", no_model)
    again = extract_segments(corpus, cfg, cache_dir=tmp_path)
    assert torch.equal(first.x, again.x) and again.x.shape == (5, LAYERS + 1, WIDTH, FRAMES)
    # the same bytes under another name: the key is the file's hash, not its path
    moved = tmp_path / "renamed.pt"
    moved.write_bytes(ckpt["wav2vec2"][0].read_bytes())
    assert torch.equal(extract_segments(corpus, cfg.replace(checkpoint=str(moved)), cache_dir=tmp_path).x, first.x)
    # other weights, another layer, another setting: other entries
    key = cache_path(corpus, cfg, tmp_path, {"checkpoint": ssl.checkpoint_digest(moved)})
    other_weights = cache_path(corpus, cfg, tmp_path, {"checkpoint": ssl.checkpoint_digest(ckpt["hubert"][0])})
    other_layer = cache_path(corpus, cfg.replace(layer=1), tmp_path, {"checkpoint": ssl.checkpoint_digest(moved)})
    assert key.is_file() and len({key, other_weights, other_layer}) == 3
    with pytest.raises(AssertionError, match="the SSL model ran"):
        extract_segments(corpus, cfg.replace(layer=1), cache_dir=tmp_path)


def test_mfcc_cache_keys_are_unchanged_by_the_new_fields(corpus):
    # entries written before model / checkpoint / layer / clip_samples / standardize existed
    # stay valid (the key as it was)
    import hashlib
    import json

    from domadapt.features.cache import FRONTEND_VERSION, _file_stamp, cache_key

    cfg = FeatureConfig()
    later = ("model", "checkpoint", "layer", "clip_samples", "standardize")
    old = {k: v for k, v in cfg.to_dict().items() if k not in later}
    h = hashlib.sha256()
    head = {"frontend_version": FRONTEND_VERSION, "config": old, "corpus": corpus.name,
            "classes": list(corpus.classes), "synthetic": corpus.synthetic,
            "loader_skipped": [[s.path, s.reason] for s in corpus.skipped]}
    h.update(json.dumps(head, sort_keys=True).encode())
    for u in corpus.utterances:
        size, mtime = _file_stamp(u.path)
        h.update(json.dumps([u.key, u.label, u.subject, u.domain, size, mtime]).encode())
        h.update(b"\n")
    assert cache_key(corpus, cfg) == h.hexdigest()


# ---------------------------------------------------------------------------- frozen + learned mix


def test_frozen_encoder_gets_no_gradient_and_layer_weights_do(ckpt, corpus):
    enc = load_ssl_encoder(cfg_for(ckpt, layer="weighted"))
    enc.train()  # frozen: stays in eval mode (no dropout in the features)
    assert not enc.training and not enc.model.training
    assert all(not p.requires_grad for p in enc.parameters())
    mix = LayerWeighting(LAYERS + 1)
    head = nn.Conv1d(WIDTH, 2, kernel_size=3)
    wave = first_window(corpus).repeat(2, 1).requires_grad_(True)
    loss = head(mix(enc(wave))).mean()
    loss.backward()
    assert all(p.grad is None for p in enc.parameters())
    assert mix.logits.grad is not None and mix.logits.grad.abs().sum() > 0
    assert wave.grad is not None  # gradients may reach the input, never the frozen weights


def test_layer_weighting_trains_on_cached_features(ckpt, corpus):
    segs = extract_segments(corpus, cfg_for(ckpt, layer="weighted"), cache_dir=False)
    torch.manual_seed(0)
    mix = LayerWeighting(segs.x.shape[1])
    head = nn.Sequential(nn.Conv1d(WIDTH, 4, 3), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 2))
    opt = torch.optim.Adam([*mix.parameters(), *head.parameters()], lr=0.1)
    before = mix.weights.clone()
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(head(mix(segs.x)), segs.y).backward()
        opt.step()
    assert not torch.allclose(mix.weights, before) and torch.isclose(mix.weights.sum(), torch.tensor(1.0))


def test_layer_weighting_numbers_shape_errors_and_vmap():
    x = torch.randn(3, 4, 5, 6)
    mix = LayerWeighting(4)
    torch.testing.assert_close(mix(x), x.mean(dim=1))  # equal weights at the start
    with torch.no_grad():
        mix.logits.copy_(torch.tensor([0.0, 1.0, 2.0, -1.0]))
    w = torch.softmax(mix.logits.detach(), 0)
    torch.testing.assert_close(mix(x), (w[None, :, None, None] * x).sum(1))
    torch.testing.assert_close(mix.weights, w)
    with pytest.raises(ValueError, match=r"\(B, 4, D, T\)"):
        mix(torch.randn(3, 5, 5, 6))
    with pytest.raises(DomadaptError, match="num_layers"):
        LayerWeighting(0)
    # the engine trains seeds as one vmapped model: stacked parameters, one call
    mixes = [LayerWeighting(4), mix]
    params, buffers = torch.func.stack_module_state(mixes)
    out = torch.vmap(lambda p, b, xx: torch.func.functional_call(mixes[0], (p, b), (xx,)), in_dims=(0, 0, None))(
        params, buffers, x
    )
    torch.testing.assert_close(out[1], mix(x))


# ---------------------------------------------------------------------------- checkpoint files


def test_missing_checkpoint_is_one_line_before_any_audio(corpus, monkeypatch, tmp_path):
    import domadapt.features.frontend as frontend

    monkeypatch.setattr(frontend, "read_audio", lambda *a, **k: pytest.fail("audio read before the check"))
    monkeypatch.chdir(tmp_path)
    cfg = FeatureConfig(kind="ssl", model="WAVLM_BASE_PLUS", checkpoint="wavlm_base_plus.pt")
    with pytest.raises(DomadaptError) as err:
        extract_segments(corpus, cfg, cache_dir=False)
    msg = str(err.value)
    assert "\n" not in msg and "no such file" in msg and "checkpoints" in msg
    assert "torchaudio.pipelines.WAVLM_BASE_PLUS.get_model().state_dict()" in msg
    assert "https://download.pytorch.org/torchaudio/models/wavlm_base_plus.pth" in msg


def test_relative_checkpoint_is_found_in_the_cache_root(ckpt, tmp_path, monkeypatch):
    monkeypatch.setenv("DOMADAPT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cache" / "checkpoints").mkdir(parents=True)
    target = tmp_path / "cache" / "checkpoints" / "tiny.pt"
    target.write_bytes(ckpt["wav2vec2"][0].read_bytes())
    cfg = FeatureConfig(kind="ssl", model="WAV2VEC2_BASE", checkpoint="tiny.pt")
    assert ssl.resolve_checkpoint(cfg) == target
    (tmp_path / "tiny.pt").write_bytes(b"")  # the working directory comes first
    assert ssl.resolve_checkpoint(cfg) == tmp_path / "tiny.pt"


@pytest.fixture
def tiny_bundle(monkeypatch):
    """WAV2VEC2_ASR_BASE_960H's bundle with the tiny architecture (and a CTC head): how a
    plain state_dict of a bundle's model is read, without a 360 MB model."""
    base = torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H
    fake = type(base)(
        _path=base._path, _params=tiny_config(aux_num_out=29), _sample_rate=16000,
        _normalize_waveform=False, _model_type="Wav2Vec2", _labels=base._labels,
    )
    monkeypatch.setattr(torchaudio.pipelines, "WAV2VEC2_ASR_BASE_960H", fake)
    return fake


def test_plain_state_dict_of_the_bundles_model(tiny_bundle, tmp_path):
    torch.manual_seed(0)
    model = torchaudio.models.wav2vec2_model(**tiny_bundle._params).eval()
    wrapped = {f"model.{k}": v for k, v in model.state_dict().items()}  # get_model()'s wrapper
    torch.save(wrapped, tmp_path / "asr.pt")
    cfg = FeatureConfig(kind="ssl", model="WAV2VEC2_ASR_BASE_960H", checkpoint=str(tmp_path / "asr.pt"), layer=1)
    wave = torch.from_numpy(tone(3.0, 0))[None]
    with torch.no_grad():
        got = load_ssl_encoder(cfg)(wave)
        ref, _ = model.extract_features(wave)
    torch.testing.assert_close(got[0], ref[0][0].T)  # the CTC head (aux.*) is ignored


def test_checkpoint_errors_are_one_line(ckpt, tmp_path):
    cases = {
        "wrong_arch.pt": (torchaudio.models.wav2vec2_model(**tiny_config(encoder_embed_dim=48)).state_dict(),
                          "does not match the WAV2VEC2_BASE architecture"),
        "builder.pt": ({"builder": "conv_tasnet_base", "config": {}, "state_dict": {}}, "builder 'conv_tasnet_base'"),
        "config.pt": ({"builder": "wav2vec2_model", "config": {"nope": 1}, "state_dict": {}},
                      "does not fit its builder"),
        "missing.pt": ({"builder": "wav2vec2_model", "config": tiny_config(), "state_dict": {}}, "missing"),
        "list.pt": ([1, 2, 3], "expected a state_dict"),
    }
    for name, (obj, expect) in cases.items():
        torch.save(obj, tmp_path / name)
        with pytest.raises(DomadaptError, match=expect) as err:
            load_ssl_encoder(FeatureConfig(kind="ssl", model="WAV2VEC2_BASE", checkpoint=str(tmp_path / name)))
        assert "\n" not in str(err.value), name
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(DomadaptError, match="not a readable torch.save file"):
        load_ssl_encoder(FeatureConfig(kind="ssl", model="WAV2VEC2_BASE", checkpoint=str(tmp_path / "junk.pt")))


def test_normalize_waveform_is_per_window(tmp_path):
    torch.manual_seed(0)
    save_tiny(tmp_path / "n.pt")
    obj = torch.load(tmp_path / "n.pt", weights_only=True)
    torch.save({**obj, "normalize_waveform": True}, tmp_path / "n.pt")
    enc = load_ssl_encoder(FeatureConfig(kind="ssl", model="WAV2VEC2_BASE", checkpoint=str(tmp_path / "n.pt")))
    assert enc.normalize_waveform
    wave = torch.from_numpy(np.stack([tone(3.0, 0), tone(3.0, 1)]))
    with torch.no_grad():
        both = enc(wave * torch.tensor([[1.0], [0.5]]))
        alone = enc(wave[1:] * 0.5)
        louder = enc(wave[1:] * 2.0)
    torch.testing.assert_close(both[1:], alone, atol=1e-5, rtol=1e-5)  # batch-mates change nothing
    torch.testing.assert_close(louder, alone, atol=2e-3, rtol=0)  # nor does the gain (up to layer_norm's eps)


# ---------------------------------------------------------------------------- config


def test_config_checks_the_new_fields():
    ok = FeatureConfig(kind="ssl", model="HUBERT_BASE", checkpoint="h.pt", layer=[3, 4])
    assert ok.layer == (3, 4)  # a list from the API becomes a tuple
    bad = [
        ({"kind": "ssl", "checkpoint": "x.pt"}, "features.model=None: kind='ssl' needs a torchaudio bundle name"),
        ({"kind": "ssl", "model": "WAV2VEC2", "checkpoint": "x.pt"}, "one of HUBERT_ASR_LARGE"),
        ({"kind": "ssl", "model": "WAV2VEC2_BASE"}, "features.checkpoint: kind='ssl' needs a local weights file"),
        ({"kind": "ssl", "model": "WAV2VEC2_BASE", "checkpoint": "x", "sample_rate": 22050}, "16000 Hz"),
        ({"kind": "ssl", "model": "WAV2VEC2_BASE", "checkpoint": "x", "backend": "librosa"}, "torchaudio only"),
        ({"layer": "all"}, "expected an int, a non-empty list of ints or 'weighted'"),
        ({"layer": []}, "non-empty list"),
        ({"layer": True}, "expected an int"),
        ({"layer": [1, "2"]}, "list of ints"),
        ({"model": ""}, "non-empty string"),
        ({"kind": "custom", "model": "no_such_extractor"}, "--import the module"),
        ({"kind": "wav2vec"}, "expected one of mfcc, logmel, ssl, custom"),
    ]
    for kwargs, expect in bad:
        with pytest.raises(DomadaptError, match=expect.replace("(", r"\(").replace(")", r"\)")):
            FeatureConfig(**kwargs)
    with pytest.raises(DomadaptError, match="ssl.*channels|model decides"):
        _ = ok.channels
    # a recipe's values: types checked first, then the meaning
    features = {"kind": "ssl", "model": "WAVLM_BASE_PLUS", "checkpoint": "w.pt", "layer": [5, 6]}
    cfg = build_config({"features": features})
    assert cfg.features.layer == (5, 6)
    for value, expect in ((3.5, "features.layer = 3.5: expected an int or a list of ints or a string"),
                          ("top", "'weighted'")):
        with pytest.raises(DomadaptError, match=expect):
            build_config({"features": {"layer": value}})


def test_ssl_recipes_resolve_and_ask_for_their_checkpoint():
    from domadapt.recipe_loader import load_recipe

    for name, source in (("casia2modma_ssl", ("casia",)), ("iemocap2modma_ssl", ("iemocap",))):
        cfg = build_config(load_recipe(name), quick=True)
        assert cfg.name == name and cfg.data.source == source and cfg.data.target == "modma"
        assert (cfg.features.kind, cfg.features.model) == ("ssl", "WAVLM_BASE_PLUS")
        with pytest.raises(DomadaptError, match="wavlm_base_plus.pt.*no such file"):
            ssl.resolve_checkpoint(cfg.features)


# ---------------------------------------------------------------------------- a recipe end to end


@pytest.fixture(scope="module")
def tiny_trees(tmp_path_factory):
    from domadapt.corpora.synthetic import MARKER_NAME, write_casia, write_modma

    base = tmp_path_factory.mktemp("trees")
    roots = {
        "casia": write_casia(base / "CASIA database", files_per_class=2),
        "modma": write_modma(base / "MODMA", n_mdd=4, n_hc=4, duration_scale=0.3),
    }
    for root in roots.values():
        (root / MARKER_NAME).unlink(missing_ok=True)  # read as real releases
    return roots


def _run_recipe(tiny_trees, ckpt, out, layer, kind="wavlm"):
    from domadapt import recipe as recipe_cli

    args = [
        "casia2modma_ssl", "--quick", "--quiet", "--device", "cpu", "--methods", "target_only",
        "--set", "train.epochs=1", "--set", "train.batch_size=16", "--set", f"features.model={MODEL_OF[kind]}",
        "--set", f"features.checkpoint={ckpt[kind][0]}", "--set", f"features.layer={layer}",
        "--source-root", str(tiny_trees["casia"]), "--target-root", str(tiny_trees["modma"]), "--out", str(out),
    ]
    assert recipe_cli.main(args) == 0
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("kind, layer", [("wav2vec2", "2"), ("hubert", "2"), ("wav2vec2", '"weighted"'), ("hubert", '"weighted"')])
def test_quick_recipe_runs_end_to_end_on_ssl_features(tiny_trees, ckpt, tmp_path, kind, layer):
    results = _run_recipe(tiny_trees, ckpt, tmp_path / "out", layer, kind)
    assert [r["method"] for r in results["rows"]] == ["target_only"]
    assert len(results["rows"][0]["metrics"]["uar"]["runs"]) == 2  # --quick: 2 folds, each trained and tested
    config = json.loads((tmp_path / "out" / "config.json").read_text())["config"]["features"]
    assert (config["kind"], config["model"], config["layer"]) == ("ssl", MODEL_OF[kind], json.loads(layer))


def test_layer_weighting_sits_first_in_the_general_extractor_and_trains():
    import torch

    from domadapt.recipe_loader import build_config
    from domadapt.run import build_model
    from domadapt.features.ssl import LayerWeighting

    segs = SimpleNamespace(x=torch.randn(6, 3, 8, 20))
    target = SimpleNamespace(classes=("a", "b"))
    domains = SimpleNamespace(target_segments=segs, target=target, sources=[], shared_labels=True)
    cfg = build_config({"methods": [{"name": "target_only"}]}, check_corpora=False)
    model = build_model(cfg, domains, cfg.methods[0])
    weighting = [m for m in model.general.modules() if isinstance(m, LayerWeighting)]
    assert len(weighting) == 1 and next(iter(weighting[0].parameters())) is next(iter(model.general.parameters()))
    out = model(segs.x, "target")
    out.logits.sum().backward()
    assert weighting[0].logits.grad is not None and weighting[0].logits.grad.abs().sum() > 0
