"""`ScreenConfig`: every option of `screen` in one typed record (saved in the run's summary). No torch here."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from data.device import check_device
from data.errors import UserError
from student.screening.plan import parse_shard

COARSE_POOLS = ("max", "mean")  # how a coarse window's features are pooled (student.screening.score.coarsen)
# the coarse pass's matrix products (student.screening.score); auto: bfloat16 where the device multiplies it fast
COARSE_PRECISIONS = ("auto", "float32", "bfloat16")


@dataclass
class ScreenConfig:
    checkpoint: str = ""
    fasta: str = ""
    fasta_b: str | None = None  # bipartite mode: pairs fasta x fasta_b
    out: str = "hits.tsv"
    top: int | None = 10000  # keep the best K rows (None: no limit, with min_prob)
    min_prob: float | None = None  # keep rows with probability >= P
    maps: str | None = None  # HDF5 of the top maps
    maps_top: int = 100
    no_self: bool = False  # skip a protein paired with itself (under one id)
    device: str = "auto"  # auto | cpu | cuda | cuda:N (data.device)
    memory_gb: float = 4.0
    exact: bool = False  # score every pair exactly (no coarse pass)
    coarse_factor: int = 6  # residues per coarse window (docs/screening.md: recall and speed of 4 and 6)
    coarse_pool: str = "max"  # max | mean: how a window's features are pooled
    coarse_precision: str = "auto"  # auto | float32 | bfloat16: of the coarse pass only (reported logits are exact)
    rescore_fraction: float = 0.01  # share of pairs the coarse threshold sends to exact scoring
    exact_below: int = 200_000  # screens with at most this many pairs are always exact
    block_cells: int = 2 ** 24  # map cells of one block product (memory per block ~ 12 bytes per cell)
    shard: str | None = None  # "i/N", 0-based (as precompute --shard)
    overwrite: bool = False
    checkpoint_every_s: float = 30.0
    threads: int | None = None  # torch CPU threads (None: torch's default)
    # derived (written back so the summary says what ran)
    mode: str = ""
    coarse_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.top is not None and self.top < 1:
            raise UserError(f"--top must be at least 1 (got {self.top})")
        if self.min_prob is not None and not 0.0 <= self.min_prob <= 1.0:
            raise UserError(f"--min-prob must be in [0, 1] (got {self.min_prob})")
        if self.top is None and self.min_prob is None:
            raise UserError("give --top K, --min-prob P, or both")
        if self.coarse_factor < 2:
            raise UserError(f"coarse factor must be at least 2 (got {self.coarse_factor})")
        if self.coarse_pool not in COARSE_POOLS:
            raise UserError(f"coarse pool {self.coarse_pool!r} is not one of {', '.join(COARSE_POOLS)}")
        if self.coarse_precision not in COARSE_PRECISIONS:
            raise UserError(f"coarse precision {self.coarse_precision!r} is not one of {', '.join(COARSE_PRECISIONS)}")
        if not 0.0 < self.rescore_fraction <= 1.0:
            raise UserError(f"rescore fraction must be in (0, 1] (got {self.rescore_fraction})")
        if self.memory_gb <= 0:
            raise UserError(f"--memory-gb must be positive (got {self.memory_gb})")
        if self.maps_top < 1:
            raise UserError(f"--maps-top must be at least 1 (got {self.maps_top})")
        parse_shard(self.shard)
        check_device(self.device)

    def to_dict(self) -> dict:
        return asdict(self)
