"""SHOT: source-free adaptation of the feature extractor with the source hypothesis frozen."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from domadapt.align import InformationMaximizationLoss, build_schedule
from domadapt.data import TARGET_TASK, FoldData
from domadapt.errors import DomadaptError
from domadapt.methods.base import Method, Stage, StepBatch, StepOutput
from domadapt.methods.batchnorm import dropouts
from domadapt.models.transfer import TransferModel
from domadapt.registries import METHODS
from domadapt.registry import option

__all__ = ["SHOT"]

PREDICT_BATCH = 512


def _with_bias(features: torch.Tensor) -> torch.Tensor:
    """SHOT's clustering space: features with a constant 1 appended, rows L2-normalised."""
    f = torch.cat([features, torch.ones_like(features[:, :1])], dim=1)
    return f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)


@METHODS.register("shot")
class SHOT(Method):
    """Source hypothesis transfer (source-free): train a source model, save it, then adapt
    only the feature extractor (general + target specific extractor) to the unlabelled
    target with information maximisation + β · cross-entropy on clustering pseudo-labels,
    the classifier head (the source hypothesis) frozen. Liang et al., *Do We Really Need to
    Access the Source Data?* (ICML 2020). Written by hand on the engine (pytorch-adapt has no
    SHOT); reads no target label and, after the source model is saved, no source segment.
    Needs a shared label set (the source hypothesis labels the target).

    Pseudo-labels as SHOT's ``obtain_label``: at every epoch start, centroids of the whole
    target training set in the space of :func:`_with_bias` features, first weighted by the
    predicted probabilities, then refined once with the hard nearest-centroid labels (cosine
    distance), over the classes the head predicts at least once. In a step each row is
    labelled by its nearest stored centroid (SHOT labels rows with the epoch-start
    assignment; the features move little within an epoch). Without SHOT's label smoothing
    in source training.

    ``source_model``: a path. If the file exists, it is the source model: it is loaded at
    construction and only the adaptation stage runs (the source data is never needed). If
    not, the source stage trains the model and it is saved there before adaptation starts.
    """

    needs_shared_labels = True
    vmappable = False
    why_not_vmappable = "SHOT clusters the whole target training set at every epoch start (a hook vmapped replicas do not run)"

    @dataclass(frozen=True)
    class Options:
        source_model: str = ""  # path of the saved source model ("" : train it, keep it in memory)
        pseudo_label_weight: float = option(0.3, min=0.0)  # SHOT's β (cls_par)
        diversity_weight: float = option(1.0, min=0.0)  # IM's, SHOT's 1

    def __init__(self, model: TransferModel, train, options=None) -> None:
        super().__init__(model, train, options)
        o = self.options
        im_options = InformationMaximizationLoss.Options(diversity_weight=o.diversity_weight)
        self.im = InformationMaximizationLoss(options=im_options)
        width = int(model.specific_for(TARGET_TASK)[0].out_features) + 1
        # epoch-start centroids [K, H+1] and the classes that have one (1.0) : state_dict carries them
        self.register_buffer("centroids", torch.zeros(self.num_classes, width))
        self.register_buffer("has_centroid", torch.zeros(self.num_classes))
        self.source_path = Path(o.source_model) if o.source_model else None
        self.source_given = self.source_path is not None and self.source_path.exists()
        if self.source_given:
            self._load_source(self.source_path)

    def _load_source(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.model.load_state_dict(state)
        except Exception as err:  # noqa: BLE001 - any failure: say which file and why, in one line
            raise DomadaptError(
                f"SHOT: source_model {path} is not a source model of this architecture: {str(err).splitlines()[0]}"
            ) from None

    def _save_source(self) -> None:
        from domadapt.engine.checkpoint import atomic_save  # the engine imports methods: import late

        atomic_save({k: v.detach().cpu() for k, v in self.model.state_dict().items()}, self.source_path)

    @torch.no_grad()
    def cluster(self, x: torch.Tensor) -> torch.Tensor:
        """Recompute the centroids from target rows ``x`` [N, C, T]; returns their labels [N]."""
        self.eval()  # the loop puts the stage's modules back in training mode after this hook
        outs = [self.model(x[i : i + PREDICT_BATCH], TARGET_TASK) for i in range(0, len(x), PREDICT_BATCH)]
        f = _with_bias(torch.cat([o.specific for o in outs]))
        probs = torch.softmax(torch.cat([o.logits for o in outs]), dim=1)
        present = F.one_hot(probs.argmax(1), self.num_classes).sum(0) > 0
        weights = probs
        for _ in range(2):  # probability-weighted centroids, then one hard refinement
            centroids = weights.T @ f / (weights.sum(0)[:, None] + 1e-8)
            labels = self._nearest(f, centroids, present)
            weights = F.one_hot(labels, self.num_classes).to(f.dtype)
        self.centroids.copy_(centroids)
        self.has_centroid.copy_(present.to(self.has_centroid.dtype))
        return labels

    def _nearest(self, f: torch.Tensor, centroids: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Nearest centroid by cosine distance, among the ``present`` classes."""
        c = centroids / centroids.norm(dim=1, keepdim=True).clamp_min(1e-12)
        distance = 1.0 - f @ c.T
        return distance.masked_fill(~present.bool(), float("inf")).argmin(dim=1)

    def stages(self, data: FoldData) -> list[Stage]:
        o = self.options
        model = self.model
        stages = [] if self.source_given else [self.pretrain_stage(data, epochs=self.train_cfg.epochs, name="source")]
        extractor = [*model.general.parameters(), *model.specific_for(TARGET_TASK).parameters()]

        def on_epoch_start(epoch: int) -> None:
            if epoch == 0 and self.source_path is not None and not self.source_given:
                self._save_source()  # from here on no source segment is read
            self.cluster(data.target_train.x)

        def step(batch: StepBatch, p: float) -> StepOutput:
            out = model(batch.x_t, TARGET_TASK)
            with torch.no_grad():
                labels = self._nearest(_with_bias(out.specific), self.centroids, self.has_centroid)
            ce = F.cross_entropy(out.logits, labels)
            im, stats = self.im.forward_with_stats(out.specific, out.specific, logits_t=out.logits)
            return StepOutput(task=float(o.pseudo_label_weight) * ce, align=im, stats=stats)

        adapt = Stage(
            name="shot",
            epochs=self.train_cfg.epochs,
            draw="target",
            param_groups=[(extractor, 1.0)],
            step=step,
            monitor=data.target_val,
            predict=self.target_logits,
            on_epoch_start=on_epoch_start,
            frozen=[model.head_for(TARGET_TASK), *dropouts(model)],  # the source hypothesis stays
            select="im",
            align_weight=1.0,  # SHOT: IM at weight 1, from the first step
            align_schedule=build_schedule("constant"),
        )
        return [*stages, adapt]
