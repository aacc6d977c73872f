"""An epoch's last partial batch can hold 2 rows; the MMD family's median bandwidth is 0 there."""

import pytest
import torch

from domadapt.align import build_loss
from domadapt.errors import DomadaptError
from domadapt.methods.base import SourceBatch, StepBatch
from domadapt.methods.joint import feature_aligner
from domadapt.models.transfer import TaskOutput


def _outputs(rows: int, seed: int) -> TaskOutput:
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(rows, 8, generator=g, requires_grad=True)
    return TaskOutput(general=f, specific=f, logits=torch.randn(rows, 3, generator=g))


def _batch(rows_s: int, rows_t: int) -> StepBatch:
    return StepBatch(
        x_t=torch.zeros(rows_t, 1, 1), y_t=torch.zeros(rows_t, dtype=torch.long),
        sources=[SourceBatch(x=torch.zeros(rows_s, 1, 1), y=torch.arange(rows_s) % 3, task="source")],
    )


@pytest.mark.parametrize("name", ["mmd", "mmd_linear", "lmmd"])
def test_the_median_bandwidth_refuses_two_rows_in_one_line(name):
    loss = build_loss(name, feature_dim=8, num_classes=3 if name == "lmmd" else None)
    f_s, f_t = torch.randn(2, 8), torch.randn(2, 8)
    with pytest.raises(DomadaptError, match="has 2 rows; this loss needs at least 3"):
        loss(f_s, f_t, y_s=torch.tensor([0, 1]), logits_t=torch.randn(2, 3))
    fixed = build_loss(name, feature_dim=8, num_classes=3 if name == "lmmd" else None, bandwidth=1.0)
    value = fixed(f_s, f_t, y_s=torch.tensor([0, 1]), logits_t=torch.randn(2, 3))
    assert torch.isfinite(value)  # a fixed bandwidth is defined on a pair


def test_a_two_row_batch_trains_the_tasks_only_and_a_full_one_aligns():
    loss = build_loss("mmd", feature_dim=8)
    align = feature_aligner(loss, at="general", shared_labels=True, use_target_labels=False)
    small, stats = align([_outputs(2, 0)], _outputs(5, 1), _batch(2, 5))
    assert float(small.detach()) == 0.0 and stats == {}
    out_s, out_t = _outputs(6, 0), _outputs(5, 1)
    full, _ = align([out_s], out_t, _batch(6, 5))
    assert float(full) == pytest.approx(float(loss(out_s.general, out_t.general)))
    assert float(full) != 0.0
