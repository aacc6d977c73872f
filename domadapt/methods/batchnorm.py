"""Adaptation through BatchNorm: AdaBN (target statistics) and Tent (test-time entropy
minimisation over the BatchNorm affine parameters)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pytorch_adapt.layers import EntropyLoss
from torch import nn

from domadapt.data import FoldData
from domadapt.errors import DomadaptError
from domadapt.methods.base import Method, Stage, StepBatch, StepOutput
from domadapt.models.transfer import TransferModel
from domadapt.registries import METHODS
from domadapt.registry import option

__all__ = ["AdaBN", "BatchNormAdaptation", "CumulativeStatistics", "Tent", "batchnorms", "dropouts"]


def batchnorms(model: nn.Module, method: str) -> list[nn.BatchNorm1d]:
    """Every 1-D BatchNorm of ``model``, or the error saying that ``method`` needs one."""
    found = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    if not found:
        raise DomadaptError(
            f"method {method} adapts BatchNorm layers and the model has no BatchNorm1d; "
            "use a backbone with BatchNorm or model.general_norm = 'batchnorm'"
        )
    return found


def dropouts(model: nn.Module) -> list[nn.Module]:
    """The dropout layers of ``model``: held in eval mode while statistics are re-estimated,
    so that they are those of the network that predicts."""
    return [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]


class CumulativeStatistics:
    """BatchNorm running statistics as the plain average over the batches of one stage.

    The i-th batch of the stage (i from 0) runs with ``momentum = 1/(i+1)``: the first batch
    replaces the source statistics, and after n batches each running mean is the mean of the
    n batch means (the running variance the mean of the n unbiased batch variances). Written
    by hand: pytorch-adapt's AdaBN handles BatchNorm2d only, and torch's ``momentum=None``
    (the same average) reads its batch counter with ``float()``, which ``torch.func.vmap``
    cannot batch; a Python counter is the same for every replica.
    """

    def __init__(self, layers: list[nn.BatchNorm1d]) -> None:
        self.layers = layers
        self.seen = 0

    @contextmanager
    def batch(self, *, first: bool) -> Iterator[None]:
        """Run one batch's forward with the averaging momentum; ``first`` restarts the count."""
        if first:
            self.seen = 0
        before = [bn.momentum for bn in self.layers]
        for bn in self.layers:
            bn.momentum = 1.0 / (self.seen + 1)
        try:
            yield
        finally:
            for bn, momentum in zip(self.layers, before):
                bn.momentum = momentum
            self.seen += 1


class BatchNormAdaptation(Method):
    """What AdaBN and Tent share: source training, then one stage over target rows whose
    steps run with :class:`CumulativeStatistics`, the dropout layers held in eval mode, the
    mean prediction entropy as the step's term and the label-free validator for selection.
    Both need a shared label set (the source-trained head predicts the target)."""

    needs_shared_labels = True

    def __init__(self, model: TransferModel, train, options=None, *, name: str) -> None:
        super().__init__(model, train, options)
        self.layers = batchnorms(model, name)
        self.statistics = CumulativeStatistics(self.layers)
        self.entropy = EntropyLoss()

    def adaptation_stage(self, *, name: str, draw: str, param_groups: list, monitor) -> Stage:
        def step(batch: StepBatch, p: float) -> StepOutput:
            with self.statistics.batch(first=p == 0.0):
                logits = self.target_logits(batch.x_t)
            return StepOutput(task=self.entropy(logits))

        return Stage(
            name=name,
            epochs=int(self.options.passes),
            draw=draw,
            param_groups=param_groups,
            step=step,
            monitor=monitor,
            predict=self.target_logits,
            frozen=dropouts(self.model),
            select="im",
        )


@METHODS.register("adabn")
class AdaBN(BatchNormAdaptation):
    """Train on the labelled source, then re-estimate every 1-D BatchNorm's running
    statistics on the target's training data (forward passes only; no target label read,
    no parameter changed). Li et al., *Revisiting Batch Normalization For Practical Domain
    Adaptation* (ICLR-W 2017). Written by hand: pytorch-adapt's AdaBN handles BatchNorm2d
    only. Needs a shared label set (the source-trained head predicts the target)."""

    @dataclass(frozen=True)
    class Options:
        # passes over the target's training data; the statistics average over all of them
        passes: int = option(1, min=1)

    def __init__(self, model: TransferModel, train, options=None) -> None:
        super().__init__(model, train, options, name="adabn")

    def stages(self, data: FoldData) -> list[Stage]:
        source = self.pretrain_stage(data, epochs=self.train_cfg.epochs, name="source")
        # forward only (no parameter groups): the steps move BatchNorm statistics, nothing else;
        # the logged term is the mean target entropy, a diagnostic
        adapt = self.adaptation_stage(name="adabn", draw="target", param_groups=[], monitor=data.target_val)
        return [source, adapt]


@METHODS.register("tent")
class Tent(BatchNormAdaptation):
    """Test-time adaptation: train on the labelled source, then minimise the entropy of the
    predictions on the *test* batches over the BatchNorm affine parameters only. Wang et
    al., *Tent: Fully Test-Time Adaptation by Entropy Minimization* (ICLR 2021). Written by
    hand on the engine (pytorch-adapt has no Tent); reads no target label and no
    training-time target data. Needs a shared label set.

    During adaptation each test batch is normalised with its own statistics (BatchNorm in
    training mode, as in Tent); the running statistics become the average over the test
    batches (:class:`CumulativeStatistics`), so the final predictions, made after the pass
    in eval mode, use the test set's statistics and the adapted affine parameters (Tent
    predicts each batch during its own pass instead; with one pass the two differ by the
    updates made after a batch was seen). Model selection of the test-time stage is the
    label-free validator on the test predictions.
    """

    @dataclass(frozen=True)
    class Options:
        passes: int = option(1, min=1)  # Tent's online setting: one pass
        # Tent's Adam at the source training's lr (its 1e-3 with batch 128 on CIFAR)
        lr_mult: float = option(1.0, gt=0.0)

    def __init__(self, model: TransferModel, train, options=None) -> None:
        super().__init__(model, train, options, name="tent")
        self._affine = [p for bn in self.layers if bn.affine for p in (bn.weight, bn.bias)]
        if not self._affine:
            raise DomadaptError("method tent trains BatchNorm affine parameters; the model's BatchNorms have none")

    def stages(self, data: FoldData) -> list[Stage]:
        source = self.pretrain_stage(data, epochs=self.train_cfg.epochs, name="source")
        adapt = self.adaptation_stage(
            name="tent",
            draw="test",  # the test rows only, without their labels
            param_groups=[(self._affine, float(self.options.lr_mult))],
            monitor=data.target_test,  # read through predictions and the label-free score only
        )
        return [source, adapt]
