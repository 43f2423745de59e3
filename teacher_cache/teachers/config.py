"""`PrecomputeConfig`: every option of stage one (`cli.py precompute`) in one typed record, saved with the cache."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from data.alphabet import invalid_characters
from data.device import check_device
from data.errors import UserError
from data.structure import DEFAULT_CUTOFF

DEFAULT_LINKER = "G" * 25  # the ESMFold multimer trick: chains joined by a poly-glycine linker


@dataclass
class PrecomputeConfig:
    pairs: str
    fasta: str
    model: str  # fair-esm hub name (esm2_t33_650M_UR50D, ...) or a local .pt with its -contact-regression.pt
    out: str
    linker: str = DEFAULT_LINKER  # residues between A and B; "" joins them directly
    attention_layers: list[int] = field(default_factory=lambda: [-1])  # 1-based; negative counts from the end
    max_tokens: int = 1024  # context per forward pass, BOS and EOS included; longer inputs are tiled
    tile_overlap: int = 128  # residues shared by neighbouring windows (clamped to half a window)
    tokens_per_batch: int = 4096  # padded tokens per forward batch; 0: fitted to the device's free memory (auto)
    device: str = "auto"  # auto | cpu | cuda | cuda:N (data.device)
    precision: str = "auto"  # auto (fp32 on CPU, bf16 on CUDA where supported, else fp16) | fp32 | bf16 | fp16
    per_residue: bool = False  # also store (L, D) per-residue embeddings
    shard: tuple[int, int] = (0, 1)  # (i, N): this run computes block i of N of the sorted work list
    overwrite: bool = False  # replace an incompatible existing --out (a compatible one is always extended)
    checkpoint_seconds: float = 60.0  # commit a part file at least this often (0: after every batch)

    def validate(self) -> None:
        """Raise UserError for option values that cannot work, before anything is loaded or computed."""
        check_device(self.device)
        bad = invalid_characters(self.linker.upper())
        if bad:
            raise UserError(f"--linker holds characters that are not residues: {''.join(bad)!r}")
        self.linker = self.linker.upper()
        index, count = self.shard
        if count < 1 or not 0 <= index < count:
            raise UserError(f"--shard {index}/{count}: expected i/N with 0 <= i < N")
        if self.max_tokens < len(self.linker) + 4:
            raise UserError(f"--max-tokens {self.max_tokens} leaves no room for two residues around the "
                            f"{len(self.linker)}-residue linker plus BOS and EOS")
        if self.tile_overlap < 0:
            raise UserError("--tile-overlap must be >= 0")
        if self.tokens_per_batch < 0:
            raise UserError("--tokens-per-batch must be >= 1, or auto")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise UserError(f"--precision {self.precision!r}: expected auto, fp32, bf16 or fp16")
        if not self.attention_layers:
            raise UserError("--attention-layers needs at least one layer")
        if self.checkpoint_seconds < 0:
            raise UserError("--checkpoint-seconds must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["shard"] = list(self.shard)
        return values


def parse_shard(text: str) -> tuple[int, int]:
    """'i/N' -> (i, N)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise UserError(f"--shard {text!r}: expected i/N, e.g. 0/4") from None
    return index, count


def parse_layers(text: str) -> list[int]:
    """'-1' or '10,11,12' -> [int, ...]."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--attention-layers {text!r}: expected comma-separated layer numbers, e.g. -1 or 31,32,33") \
            from None


def parse_tokens_per_batch(text: str) -> int:
    """'auto' -> 0 (fit to memory), else a positive integer."""
    if text.strip().lower() == "auto":
        return 0
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"--tokens-per-batch {text!r}: expected a number of tokens or auto") from None
    if value < 1:
        raise UserError("--tokens-per-batch must be >= 1, or auto")
    return value


@dataclass
class RandomTeacherConfig:
    """`random-teacher`: a randomly initialised ESM-2 of a real architecture, in fair-esm's own file format (the
    model file and its -contact-regression.pt), so the whole pipeline runs offline. Its maps carry no signal."""
    out: str = "random_esm2"  # folder to write the two files into
    arch: str = "t6"  # esm2_t6_8M ... esm2_t33_650M sizes: t6 | t12 | t30 | t33 (teachers.esm_runner.ARCHITECTURES)
    seed: int = 0
    overwrite: bool = False


@dataclass
class StructureCacheConfig:
    structures: str = ""  # manifest: id_a id_b structure_a structure_b [chains_a chains_b]
    out: str = ""
    fasta: str | None = None  # sequences to align the structures to; None: the structures' own sequences
    fasta_out: str | None = None  # write the structures' own sequences here (only without `fasta`)
    cutoff: float = DEFAULT_CUTOFF  # angstrom, C-beta distance below which two residues are in contact
    soft_width: float = 1.0  # angstrom, width of the sigmoid in the attention map
    min_identity: float = 0.5  # minimum identity of a structure-to-sequence alignment
    negatives: str | None = None  # pairs table; its label-0 pairs are added with all-zero maps
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.fasta and self.fasta_out:
            raise UserError("give either --fasta (align structures to these sequences) or --fasta-out (write the "
                            "structures' own sequences), not both")
        if self.cutoff <= 0 or self.soft_width <= 0:
            raise UserError(f"cutoff and soft width must be positive (got {self.cutoff}, {self.soft_width})")
        if not 0 <= self.min_identity <= 1:
            raise UserError(f"min identity must be in [0, 1] (got {self.min_identity})")
