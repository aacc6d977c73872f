"""The GPU paths: an eager replica (bf16 autocast), vmapped replicas and the front-end on CUDA.

Skipped where no CUDA device is present (the development machine has none); they run as
they are on a GPU machine.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from tiny import spec, tiny_fold, tiny_model, tiny_train

from domadapt.data import DomainData, FoldData
from domadapt.engine import build_replicas, fit
from domadapt.methods import build_method

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
CUDA = torch.device("cuda")
SEEDS = [0, 1, 2]


def _train(fold, method_spec, cfg, seeds, device):
    """Test probabilities [K, N, C] of ``seeds`` trained on ``device`` (dropout 0)."""
    replicas = build_replicas(lambda: build_method(method_spec, cfg, tiny_model(fold, dropout=0.0)), seeds, fold, device)
    fit(replicas, cfg)
    return replicas.predict(replicas.method.target_logits, fold.target_test.x)


def _to(fold: FoldData, device: torch.device) -> FoldData:
    def move(d: DomainData) -> DomainData:
        return dataclasses.replace(d, x=d.x.to(device), y=d.y.to(device))

    return fold.map(move)


@pytest.mark.parametrize("name, options", [("target_only", {}), ("align", {"loss": "dann"}), ("multitrain_ae", {})])
@pytest.mark.parametrize("amp", [True, False])
def test_eager_replica_on_cuda_matches_cpu_without_amp(name, options, amp):
    cpu_fold = tiny_fold()
    cfg = tiny_train(epochs=2, amp=amp)
    out = {}
    for device, fold in ((torch.device("cpu"), cpu_fold), (CUDA, _to(cpu_fold, CUDA))):
        out[device.type] = _train(fold, spec(name, **options), cfg, [0], device)
    assert torch.isfinite(out["cuda"]).all()
    if not amp:  # bf16 autocast changes the numbers; in float32 CPU and GPU agree closely
        assert (out["cuda"] - out["cpu"]).abs().max().item() < 1e-3


def test_vmapped_replicas_on_cuda_equal_eager_cuda_runs():
    fold = _to(tiny_fold(), CUDA)
    cfg = tiny_train(epochs=2, amp=False)
    vmapped = _train(fold, spec("align", loss="mmd"), cfg, SEEDS, CUDA)
    for i, seed in enumerate(SEEDS):
        eager = _train(fold, spec("align", loss="mmd"), cfg, [seed], CUDA)
        assert (vmapped[i] - eager[0]).abs().max().item() < 1e-3


def test_frontend_on_cuda_matches_cpu(tmp_path):
    import numpy as np
    import soundfile as sf

    from domadapt.corpora.base import Corpus, Utterance
    from domadapt.features import FeatureConfig, extract_segments

    rng = np.random.default_rng(0)
    utts = []
    for i, sr in enumerate([16000, 22050, 44100]):
        path = tmp_path / f"{i}.wav"
        sf.write(str(path), (0.1 * rng.standard_normal(int(4.2 * sr))).astype(np.float32), sr)
        utts.append(Utterance(path=path, label="a", subject=f"s{i}", domain="d"))
    corpus = Corpus(name="t", root=tmp_path, classes=("a",), utterances=utts)
    cfg = FeatureConfig()
    cpu = extract_segments(corpus, cfg, device="cpu", cache_dir=False)
    gpu = extract_segments(corpus, cfg, device="cuda", cache_dir=False)
    assert gpu.x.shape == cpu.x.shape
    assert (gpu.x - cpu.x).abs().max().item() < 5e-3
