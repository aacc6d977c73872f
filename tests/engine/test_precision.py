"""``train.amp``: bf16 autocast where the CPU computes bf16 in hardware, float32 where it
would only emulate it, and float32 always with ``amp = false``."""

from __future__ import annotations

import pytest
import torch
from tiny import CPU, spec, tiny_fold, tiny_train, train

from domadapt import device as device_module
from domadapt.device import autocast, native_bf16, precision


@pytest.fixture
def cpu_flags(monkeypatch):
    def set_flags(*flags: str) -> None:
        monkeypatch.setattr(device_module, "cpu_flags", lambda: frozenset(flags))

    return set_flags


def linear_dtype(amp: bool) -> torch.dtype:
    with autocast(CPU, amp):
        return torch.nn.Linear(3, 2)(torch.randn(4, 3)).dtype


def test_bf16_only_on_cpus_that_compute_it(cpu_flags):
    cpu_flags("avx2", "avx512f")  # AVX-512 without its bf16 extension: emulated, so float32
    assert not native_bf16(CPU) and precision(CPU, True) == "float32"
    assert linear_dtype(True) == torch.float32
    for flag in ("avx512_bf16", "amx_bf16"):
        cpu_flags("avx512f", flag)
        assert native_bf16(CPU) and precision(CPU, True) == "bf16 autocast"
        assert linear_dtype(True) == torch.bfloat16
        assert linear_dtype(False) == torch.float32 and precision(CPU, False) == "float32"


def test_amp_reaches_training_and_evaluation_and_off_means_float32(cpu_flags, monkeypatch):
    """With bf16 the loop's forward passes (steps and validation) run under autocast and the
    numbers move; with amp off, or on a CPU without bf16, they are float32's to the bit."""
    import domadapt.engine.loop as loop

    validated_under: list[bool] = []
    validate = loop.validate

    def spy(*args, **kwargs):
        validated_under.append(torch.is_autocast_enabled("cpu"))
        return validate(*args, **kwargs)

    monkeypatch.setattr(loop, "validate", spy)
    fold = tiny_fold()
    cpu_flags("avx512f")
    (h_plain,), p_plain, _ = train(fold, spec("joint"), tiny_train(amp=True), seeds=[0])
    (h_off,), p_off, _ = train(fold, spec("joint"), tiny_train(amp=False), seeds=[0])
    assert torch.equal(p_plain, p_off) and h_plain == h_off
    assert validated_under and not any(validated_under)
    validated_under.clear()
    cpu_flags("avx512f", "avx512_bf16")
    (h_bf16,), _, _ = train(fold, spec("joint"), tiny_train(amp=True), seeds=[0])
    assert h_bf16["joint/train/loss"] != h_off["joint/train/loss"]
    assert validated_under and all(validated_under)
