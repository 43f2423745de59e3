"""Config records of the evaluation commands (`ablate`, `evaluate-maps`): their defaults live here only. No torch or
scikit-learn at import, so the command line reads them cheaply."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from data.device import check_device
from data.errors import UserError
from data.structure import DEFAULT_CUTOFF
from student.config import HEADS, ModelConfig, TrainConfig
from teacher_cache.schema import MAP_NAMES

LOSS_SETTINGS = ("ce", "ce+sem", "ce+map", "ce+map+sem")
# Settings in ablate.json that change what every run means: a results.csv is only extended under the same ones.
# (map_pairs, map_confidence, map_rank_k and map_top_target are per row: ablate.KEY_COLUMNS.)
SHARED_SETTING_NAMES = ("pairs", "fasta", "cache", "unlabelled_pairs", "map_target", "epochs", "batch_size", "lr",
                        "patience", "min_epochs", "max_len", "ce_norm", "map_first_epochs", "model")
# (map_first_epochs is the map-first curriculum of the runs with a teacher term; CE-only runs train without it)


@dataclass
class AblateConfig(TrainConfig):
    """A `TrainConfig` (the settings every run of the grid shares, with train's defaults) plus the grid's axes.

    `n_train` is the grid's training-set sizes (each run trains with one of them as its own `n_train`); the head
    of `model` and the seed are set per run from `heads` and `seeds`.
    """
    heads: tuple[str, ...] = HEADS
    losses: tuple[str, ...] = LOSS_SETTINGS
    n_train: tuple[int, ...] = (250, 500, 1000, 2000)  # type: ignore[assignment]
    seeds: tuple[int, ...] = (0, 1, 2)
    threads: int | None = None  # torch.set_num_threads for the whole ablation (None: leave torch's default)

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = ModelConfig.from_dict(self.model)
        self.heads, self.losses = tuple(self.heads), tuple(self.losses)
        self.n_train, self.seeds = tuple(int(n) for n in self.n_train), tuple(int(s) for s in self.seeds)
        self.check_training_settings()
        for name, values, allowed in (("head", self.heads, HEADS), ("losses", self.losses, LOSS_SETTINGS)):
            unknown = [v for v in values if v not in allowed]
            if unknown or not values:
                raise UserError(f"unknown or missing {name} {', '.join(unknown)} (choose from {', '.join(allowed)})")
        if not self.n_train or any(n < 2 for n in self.n_train) or not self.seeds:
            raise UserError("need at least one training-set size (each >= 2) and one seed")
        if self.alpha_map <= 0 and any("map" in loss for loss in self.losses):
            raise UserError("a grid with a map loss term needs alpha-map > 0")
        if self.beta_sem <= 0 and any("sem" in loss for loss in self.losses):
            raise UserError("a grid with a semantic loss term needs beta-sem > 0")
        if self.map_first_epochs and self.losses == ("ce",):
            raise UserError("map-first-epochs is a curriculum of the teacher terms: a grid of CE only has none")

    def shared_settings(self) -> dict[str, Any]:
        values = asdict(self)
        values["model"] = self.model.to_dict()
        return {name: values[name] for name in SHARED_SETTING_NAMES}


@dataclass
class EvaluateMapsConfig:
    structures: str = ""  # manifest: id_a id_b structure_a structure_b [chains_a chains_b]
    cache: str | None = None  # a teacher cache to score ...
    checkpoint: str | None = None  # ... or a trained student
    fasta: str | None = None  # sequences the maps are indexed by; None: the structures' own sequences
    map_name: str = "contact"  # which cache map to score (contact | attention)
    plot: str | None = None  # folder for one PNG per complex
    out: str | None = None  # per-complex TSV
    cutoff: float = DEFAULT_CUTOFF
    top_n: int = 10
    min_identity: float = 0.5
    device: str = "auto"  # auto | cpu | cuda | cuda:N (data.device)
    batch_size: int = 16
    overwrite: bool = False  # replace an existing --out, write into a non-empty --plot folder

    def __post_init__(self) -> None:
        check_device(self.device)
        if bool(self.cache) == bool(self.checkpoint):
            raise UserError("give exactly one of --cache (score a teacher cache) or --checkpoint (score a student)")
        if self.map_name not in MAP_NAMES:
            raise UserError(f"unknown map {self.map_name!r} (one of {', '.join(MAP_NAMES)})")
        if self.cutoff <= 0 or self.top_n < 1:
            raise UserError("cutoff must be positive and top-n at least 1")
