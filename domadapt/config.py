"""Experiment configuration: frozen dataclasses that hold the defaults, each field's type and
allowed values declared with :func:`domadapt.registry.option`. This module imports no torch.

A recipe TOML file overrides these defaults, ``--set section.key=value`` overrides the
recipe: reading, merging (``extends``) and checking a recipe is
:mod:`domadapt.recipe_loader` (``load_recipe``, ``build_config``); the recipe format is
described there and in ``docs/configuration.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from domadapt.errors import DomadaptError
from domadapt.features.config import FeatureConfig
from domadapt.registries import METHODS
from domadapt.registry import option


@dataclass(frozen=True)
class DataConfig:
    source: tuple[str, ...] = ("casia",)  # registered corpus names; several = multi-source
    target: str = "modma"
    # Loader options per corpus name, e.g. {"modma": {"tasks": ["interview"]}}.
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Per corpus name, its classes renamed onto shared classes, the unmapped dropped (closed-set
    # cross-corpus emotion), e.g. {"emodb": {"angry": "angry", "happy": "happy"}}: see
    # domadapt.corpora.labels.
    label_map: dict[str, dict[str, str]] = field(default_factory=dict)
    # Keep at most this many utterances per subject (None = all); --quick uses it to stay small.
    max_utterances_per_subject: int | None = option(None, min=1)
    # Keep at most this many source utterances per class (None = all).
    max_source_per_class: int | None = option(None, min=1)


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "tim"  # any name of domadapt.models.list_backbones()
    backbone_options: dict[str, Any] = field(default_factory=dict)
    specific_dim: int = option(64, min=1)  # width of each task's specific extractor (Linear+ReLU+Dropout)
    dropout: float = option(0.2, min=0.0, lt=1.0)  # of the specific extractors; the lab's value (docs/lineage.md)
    # A BatchNorm1d after the general extractor: a normalised bottleneck every task and every
    # alignment loss reads (TIM's fused features start at a tiny scale, where a scale-free
    # alignment loss's gradient dwarfs the task's: benchmarks/align_gradient_ratio.py and its
    # section of benchmarks/RESULTS.md).
    general_norm: Literal["none", "batchnorm"] = "batchnorm"
    # "mlp": each task's specific extractor (Linear+ReLU+Dropout, specific_dim wide) before its
    # head (the general/specific split of docs/lineage.md); "none": the head reads the general
    # features directly (the official TIM-Net: one Dense(K) on the fused 39-d vector).
    specific: Literal["mlp", "none"] = "mlp"
    # "torch": PyTorch's default initialisation; "keras": Glorot-uniform weights and zero
    # biases in every conv and linear layer (Keras' defaults, which the official TIM-Net used).
    init: Literal["torch", "keras"] = "torch"
    # Every BatchNorm's running-average momentum and eps, in PyTorch's terms (new = (1 - m) *
    # old + m * batch). PyTorch's defaults; Keras' momentum 0.99, eps 1e-3 are 0.01, 1e-3 here.
    batchnorm_momentum: float = option(0.1, gt=0.0, max=1.0)
    batchnorm_eps: float = option(1e-5, gt=0.0)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = option(20, min=1)  # per training stage
    pretrain_epochs: int = option(10, min=1)  # source pre-training stage of pretrain_*/ddg/multitrain_ae
    # >= 2: BatchNorm cannot normalise a batch of one
    batch_size: int = option(64, min=2)
    lr: float = option(4e-4, gt=0.0)  # the lab's typical lr (docs/lineage.md)
    # AdamW-scale (Loshchilov & Hutter, ICLR 2019); the lab's 0.2-0.5 were Adam "regularisation"
    weight_decay: float = option(1e-4, min=0.0)
    optimizer: str = option("adam", choices=("adam", "adamw"))
    # Adam's (beta1, beta2): PyTorch's defaults; the official TIM-Net trained with (0.93, 0.98).
    betas: tuple[float, ...] = (0.9, 0.999)
    # Cross-entropy label smoothing of every supervised task term (the official TIM-Net: 0.1,
    # the same (1 - e) * one_hot + e / K targets as its smooth_labels).
    label_smoothing: float = option(0.0, min=0.0, lt=1.0)
    scheduler: str = option("step", choices=("step", "cosine", "none"))
    step_size: int = option(20, min=1)  # StepLR; the lab's range 20-30 (docs/lineage.md)
    gamma: float = option(0.3, gt=0.0, max=1.0)  # StepLR; the lab's range 0.3-0.4; > 1 would grow the lr
    grad_clip: float = option(5.0, min=0.0)  # max grad norm; 0 disables
    # bf16 autocast for training and evaluation where the device computes bf16 in hardware
    # (CUDA; x86 CPUs with AVX512-BF16 or AMX): domadapt.device.autocast. Elsewhere float32.
    amp: bool = True
    # a source-only stage (pre-training) that starts from the same state, random state, data
    # and settings as one trained earlier in the run is loaded, not trained again
    # (domadapt/engine/shared_stages.py); the run's numbers are the same either way
    share_source_stages: bool = True
    # share of the training subjects held out for model selection (carve_validation needs
    # at least one subject on each side). 0: none held out - every training subject trains
    # and each stage keeps its last epoch; for target corpora of a few dozen subjects, where
    # a handful of validation subjects rank epochs no better than chance
    # (benchmarks/diagnose_small_corpus.py, benchmarks/RESULTS.md)
    val_fraction: float = option(0.2, min=0.0, lt=1.0)
    # lambda of the alignment term and its warm-up lambda(p) (a name of list_schedules());
    # unset = each loss family's own (AlignmentLoss.default_weight / default_schedule)
    align_weight: float | None = option(None, min=0.0)
    align_schedule: str | None = None
    # model selection of the stages that read no target label: a name of VALIDATORS
    # (domadapt.validators: "im" information maximisation, "snd" soft neighbourhood density,
    # Saito et al. 2021, or a user's own), checked by domadapt.recipe_loader.check_config
    unsupervised_selection: str = "im"
    # With eval.seeds > 1, train a fold's seeds as one vmapped model where the method allows
    # (domadapt.engine); false = one run per seed. Equal results at dropout 0.
    vmap_seeds: bool = True
    # torch.compile the general extractor (the bulk of a step) in place; never required. Pays
    # back its one-off compile (per process) only on long runs: benchmarks/bench_compile.py
    # and its section of benchmarks/RESULTS.md. Not applied to vmapped seeds.
    compile: bool = False
    # Seconds between a unit's checkpoints: an epoch's end writes one only once this long has
    # passed since the unit started or last wrote one; 0 = after every epoch. A killed run
    # resumes each unit from its last checkpoint, so it trains again at most this long per
    # running unit; a unit shorter than this writes none (a checkpoint saves every state
    # tensor, the optimiser's and the best epoch's: a cost each epoch for a seconds-long unit).
    checkpoint_every: float = option(60.0, min=0.0)
    # SpecAugment-style masking of labelled training batches on the device (domadapt.augment):
    # widest frequency mask (feature channels), widest time mask (frames), masks of each kind
    # per example; 0 widths = off
    spec_augment_freq: int = option(0, min=0)
    spec_augment_time: int = option(0, min=0)
    spec_augment_masks: int = option(1, min=1)

    def __post_init__(self) -> None:
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise DomadaptError(f"train.betas = {list(self.betas)!r}: expected two numbers in [0, 1)")


@dataclass(frozen=True)
class EvalConfig:
    splitter: str = "subject_kfold"  # a name of domadapt.splits.list_splitters()
    folds: int = option(5, min=2)  # a k-fold needs a train and a test side
    seeds: int = option(1, min=1)
    seed: int = option(0, min=0)  # first seed; runs use seed, seed+1, ... (numpy wants >= 0)
    allow_subject_overlap: bool = False  # leakage guard; True only to rerun the lab's random splits (docs/lineage.md)
    # A learning curve: train with this many labelled target subjects per fold (each an int or
    # "all"; the same stratified, nested subsets for every method and seed). () = all only.
    target_subjects: tuple[int | str, ...] = ()
    # Paired comparisons (Δ, 95% CI, p, Holm) of every row against the row of this label;
    # None = none. A recipe that drops that row gets a table saying there is no such row.
    baseline: str | None = None
    # Write each (method, fold, seed) model as a model folder under OUT/models/ (with what
    # the run scored on the fold's test files): domadapt.run.trained_models
    save_models: bool = False


#: ``[[methods]]`` keys every method accepts: the row's label and a per-row backbone
ROW_KEYS = ("label", "backbone", "backbone_options")


@dataclass(frozen=True)
class MethodSpec:
    """One row of the comparison: a method name plus its options (from ``[[methods]]``).

    Besides the method's own options a row may set ``label`` (its name in tables),
    ``backbone`` and ``backbone_options`` (a per-row backbone, as the ablation recipe does).
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The row's method name in results: ``label`` if given, else what the method class
        says for these options (``align:mmd``, ``baseline:egemaps``), else the name."""
        if "label" in self.options:
            return str(self.options["label"])
        label = getattr(METHODS.get(self.name), "label", None) if self.name in METHODS else None
        return label(self.name, self.method_options) if callable(label) else self.name

    @property
    def method_options(self) -> dict[str, Any]:
        """The options meant for the method itself (the row keys removed)."""
        return {k: v for k, v in self.options.items() if k not in ROW_KEYS}

    def backbone(self, model: "ModelConfig") -> tuple[str, dict[str, Any]]:
        """This row's backbone name and options: the row's own, else ``[model]``'s."""
        extra = dict(self.options.get("backbone_options", {}))
        if "backbone" in self.options:
            return str(self.options["backbone"]), extra
        return model.backbone, {**model.backbone_options, **extra}

    def backbone_label(self, model: "ModelConfig") -> str:
        """``tim`` or ``tim[residual=add]``: what the results' ``backbone`` column shows."""
        name, opts = self.backbone(model)
        own = {k: v for k, v in opts.items() if k in self.options.get("backbone_options", {})}
        return name + (f"[{','.join(f'{k}={v}' for k, v in sorted(own.items()))}]" if own else "")

    def key(self, model: "ModelConfig") -> str:
        """A file-system-safe name unique per row (runs/, checkpoints/, plots/)."""
        own_backbone = "backbone" in self.options or "backbone_options" in self.options
        text = f"{self.label}@{self.backbone_label(model)}" if own_backbone else self.label
        return "".join(c if c.isalnum() or c in "._-@=" else "-" for c in text)


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = "experiment"
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    methods: tuple[MethodSpec, ...] = (MethodSpec("target_only"),)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
