"""Configuration records of the student: the one place for default hyper-parameters.

`ModelConfig` says how to build a `StudentModel`; `TrainConfig` holds the inputs, every training choice and the
values derived from the data at the start of a run (positive weight, map bias, teacher embedding size, cache
fingerprint), written back into it so that the saved config says exactly what ran.
Both are saved as plain dicts (`to_dict`) beside every artefact and rebuilt with `from_dict`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from data.alphabet import N_STANDARD, VOCAB_SIZE
from data.device import check_device
from data.errors import UserError

HEADS = ("features", "map", "both")
# What the features head reads of each protein (StudentModel.pool): "+"-joined parts of max, mean, attention (a
# learnt softmax weighting of the residues), length and composition (the fractions of the 20 standard residues, what
# the composition baselines read).
POOLS = ("max", "max+mean", "max+mean+length", "max+length", "mean", "mean+length", "mean+length+composition",
         "mean+attention+length")
# How the features head combines the two pooled proteins (StudentModel.head), every term symmetric in A and B:
# sum, elementwise product, and the absolute difference |a - b| (how unalike the two are, per feature).
PAIR_TERMS = ("sum+product", "sum+product+difference")
MAP_LOSSES = ("mse", "kl", "bce", "rank", "marginal")
MAP_PAIRS = ("all", "positives")
MAP_TARGETS = ("contact", "attention")
MAP_NORMS = ("mass", "mean")
CE_NORMS = ("labelled", "batch")  # student.losses.total_loss: what a batch's CE over its labelled pairs is divided by
SPLITS = ("auto", "column", "random", "protein")


@dataclass
class ModelConfig:
    vocab_size: int = VOCAB_SIZE
    # The defaults of the backbone, pooling and crop are the "kernel 5" row of the recipe search on yeast's valid
    # part (docs/evaluation.md, "The training recipe"): wider and deeper students overfitted there.
    embed_dim: int = 32
    channels: tuple[int, ...] = (32,)  # output channels of each conv layer; the last is the feature size D
    kernel_sizes: tuple[int, ...] = (5,)  # odd, one per conv layer
    head: str = "both"  # features | map | both
    # max: which residue patterns occur; mean: how often; attention: a softmax-weighted mean whose weights the
    # model learns (which residues matter); length: the log of the protein's length; composition: the residue
    # fractions themselves, so that the features head holds the pair-composition baseline exactly.
    # Checkpoints written before this field read as "max" (`from_dict`).
    pool: str = "mean+length"
    # Standardise the pooled features (batch norm, one set of statistics for A and B) before the features head: a
    # mean over hundreds of residues varies little between proteins, and the head learns slowly from inputs that
    # barely move (what StandardScaler does for the composition baselines). Configs saved before the field: off.
    pool_norm: bool = True
    pair_terms: str = "sum+product"
    hidden: int = 64  # hidden units of the classifier MLPs
    dropout: float = 0.1
    map_topk: int = 16  # cells averaged by the map head's top-k statistic
    semantic_dim: int = 0  # teacher embedding size for the semantic projection (0: no projection)
    map_bias_init: float = 0.0  # initial bias of the map logits (log-odds of the mean teacher value)
    bn_momentum: float = 0.1

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        self.kernel_sizes = tuple(int(k) for k in self.kernel_sizes)
        if self.head not in HEADS:
            raise UserError(f"unknown head {self.head!r} (one of {', '.join(HEADS)})")
        if self.pool not in POOLS:
            raise UserError(f"unknown pool {self.pool!r} (one of {', '.join(POOLS)})")
        if self.pair_terms not in PAIR_TERMS:
            raise UserError(f"unknown pair terms {self.pair_terms!r} (one of {', '.join(PAIR_TERMS)})")
        if len(self.channels) != len(self.kernel_sizes) or not self.channels:
            raise UserError(f"need one kernel size per conv layer (channels {self.channels}, "
                            f"kernel sizes {self.kernel_sizes})")
        if any(k % 2 == 0 or k < 1 for k in self.kernel_sizes):
            raise UserError(f"kernel sizes must be odd and positive (got {self.kernel_sizes}) so that a "
                            "residue's output stays centred on it")

    @property
    def feature_dim(self) -> int:
        return self.channels[-1]

    @property
    def pooled_dim(self) -> int:
        """Size of one protein's pooled features (StudentModel.pool)."""
        parts = self.pool_parts
        per_feature = ("max" in parts) + ("mean" in parts) + ("attention" in parts)
        return (self.feature_dim * per_feature + ("length" in parts)
                + N_STANDARD * ("composition" in parts))

    @property
    def pool_parts(self) -> tuple[str, ...]:
        return tuple(self.pool.split("+"))

    @property
    def pair_term_parts(self) -> tuple[str, ...]:
        return tuple(self.pair_terms.split("+"))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["channels"], out["kernel_sizes"] = list(self.channels), list(self.kernel_sizes)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        values = {"pool": "max", "pool_norm": False, **values}  # what a config saved before these fields ran
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass
class TrainConfig:
    # inputs and outputs
    pairs: str = ""
    fasta: str = ""
    cache: str | None = None  # teacher cache; without one, training uses labels only (alpha_map = beta_sem = 0)
    # pairs table whose pairs train only the map and semantic terms (labels, if any, are not read); see
    # student.trainer.unlabelled_part for which are left out
    unlabelled_pairs: str | None = None
    out: str = ""
    # loss
    map_loss: str = "marginal"  # marginal | bce | rank | mse | kl (student.losses); default: docs/results.md section 2
    map_target: str = "contact"  # contact | attention
    map_norm: str = "mass"  # mass: map loss summed over cells / teacher's map mass; mean: average over cells
    alpha_map: float = 1.0
    beta_sem: float = 0.1
    map_pairs: str = "all"  # all: every pair with a target; positives: only pairs labelled 1 (student.losses)
    map_confidence: bool = False  # weight each pair's map term by the teacher map's peak
    map_rank_k: int = 16  # teacher cells the `rank` map loss asks to rank first
    map_top_target: int = 16  # k > 0: each teacher map becomes its k highest cells (1) and 0 elsewhere; 0: off
    # with unlabelled pairs in a batch, CE over its labelled pairs is divided by the batch size (batch: each label
    # weighs per step what it weighs in a batch without unlabelled pairs) or by their number (labelled); without
    # unlabelled pairs the two are the same loss. "batch" won on the hard planted set (docs/results.md, section 2)
    ce_norm: str = "batch"
    # optimisation
    epochs: int = 6
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup: float = 0.05  # fraction of all optimiser steps spent in linear warm-up (then cosine decay to 0)
    clip_norm: float = 1.0
    balance_classes: bool = True  # weight positives by negatives / positives of the training part (pos_weight)
    max_len: int = 256  # training crops longer proteins to a random window of this length; evaluation never crops
    patience: int = 2  # epochs without a better validation AUPR before stopping
    min_epochs: int = 0  # no early stop before this many epochs (a map term can need them; docs/results.md)
    # curriculum: the first N epochs train the teacher terms (map, semantic) alone; CE, the best epoch and early
    # stopping start after them
    map_first_epochs: int = 0
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N (data.device); AMP (bf16) on cuda
    workers: int = 0  # DataLoader worker processes
    preload: bool | None = None  # targets held in RAM: None = when they fit in `preload_max_cells`
    preload_max_cells: int = 50_000_000
    # splits
    split: str = "auto"  # auto (the pairs file's split column, else protein) | column | random | protein
    valid_frac: float = 0.1
    test_frac: float = 0.1
    n_train: int | None = None  # seeded stratified subsample of the training part (learning curves)
    # run control
    resume: bool = False
    overwrite: bool = False
    model: ModelConfig = field(default_factory=ModelConfig)
    # derived at the start of a run (written back so the saved config says what ran)
    pos_weight: float | None = None  # negatives / positives of the training part (1 without balance_classes)
    map_mean_target: float | None = None  # mean teacher value over the training maps (bias init, mass floor)
    map_norm_note: str = ""
    teacher_fingerprint: str | None = None
    teacher_random_weights: bool | None = None

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = ModelConfig.from_dict(self.model)
        self.check_training_settings()
        if self.n_train is not None and self.n_train < 2:
            raise UserError("n-train must be at least 2")

    def check_training_settings(self) -> None:
        """The checks of every setting but the inputs and `n_train` (shared with the ablation's config)."""
        for name, value, allowed in (("map_loss", self.map_loss, MAP_LOSSES),
                                     ("map_target", self.map_target, MAP_TARGETS),
                                     ("map_norm", self.map_norm, MAP_NORMS), ("split", self.split, SPLITS),
                                     ("map_pairs", self.map_pairs, MAP_PAIRS), ("ce_norm", self.ce_norm, CE_NORMS)):
            if value not in allowed:
                raise UserError(f"unknown {name.replace('_', '-')} {value!r} (one of {', '.join(allowed)})")
        check_device(self.device)
        if self.epochs < 1 or self.batch_size < 1:
            raise UserError("epochs and batch size must be at least 1")
        if self.max_len < 8:
            raise UserError(f"max-len {self.max_len} is too short (at least 8)")
        if self.map_rank_k < 1:
            raise UserError(f"map-rank-k must be at least 1 (got {self.map_rank_k})")
        if self.min_epochs < 0:
            raise UserError(f"min-epochs must not be negative (got {self.min_epochs})")
        if not 0 <= self.map_first_epochs < self.epochs:
            raise UserError(f"map-first-epochs must be at least 0 and below --epochs {self.epochs} (got "
                            f"{self.map_first_epochs}): the classifier needs epochs of its own")
        if self.map_top_target < 0:
            raise UserError(f"map-top-target must be 0 (off) or a number of cells (got {self.map_top_target})")
        if self.alpha_map < 0 or self.beta_sem < 0:
            raise UserError("alpha-map and beta-sem must not be negative")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["model"] = self.model.to_dict()
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# Settings that may differ between a killed run and its resumption without changing the result.
RESUME_FREE_KEYS = ("resume", "overwrite", "workers", "device", "out", "pairs", "fasta", "cache", "preload",
                    "preload_max_cells")


@dataclass
class EvaluateConfig:
    checkpoint: str = ""
    pairs: str = ""
    fasta: str = ""
    cache: str | None = None  # teacher cache: adds map agreement (Pearson r, top-L/5 overlap)
    split: str | None = None  # train | valid | test | all; None: test with a split column, else all pairs
    baselines: bool = False
    batch_size: int = 64
    device: str = "auto"
    json: str | None = None  # also write the result as JSON here
    overwrite: bool = False  # replace an existing --json

    def __post_init__(self) -> None:
        check_device(self.device)


@dataclass
class PredictConfig:
    checkpoint: str = ""
    pairs: str = ""
    fasta: str = ""
    out: str = ""  # predictions TSV
    maps: str | None = None  # HDF5 of interaction maps
    plot: str | None = None  # folder of heatmap PNGs
    plot_max: int = 20  # heatmaps of at most this many pairs (the first ones of the pairs file)
    cache: str | None = None  # teacher cache: plots show the teacher's map beside the student's
    batch_size: int = 64
    device: str = "auto"
    overwrite: bool = False  # replace an existing --out / --maps, write into a non-empty --plot folder

    def __post_init__(self) -> None:
        check_device(self.device)
