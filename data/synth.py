"""The planted-interface benchmark: protein pairs whose interaction is decided by planted motifs with known contacts.

A controlled test of distillation: the true interface of every positive pair is known exactly, so one can ask
whether distilling a teacher's map teaches a student something labels alone do not.

How a data set is drawn (all from one seed):

1. `families` motif families; family k has two complementary motifs of `motif_len` residues, `motif_a[k]`
   (carried by A-side proteins) and `motif_b[k]` (carried by B-side proteins). Motifs are random residue
   strings, all distinct.
2. Every pair gets a fresh A protein and a fresh B protein: uniform random residues (20 standard letters), lengths
   uniform in [min_len, max_len], each with exactly one motif planted at a uniform random position.
3. A positive pair (label 1, fraction `pos_frac`) carries `motif_a[k]` and `motif_b[k]` of one family k; a
   negative pair carries `motif_a[i]` and `motif_b[j]` with i != j. Every protein carries a motif, so motif
   presence alone does not decide the label: the model has to tell which motifs meet.
4. Planted contacts of a positive pair: the full motif_len x motif_len block (rows = A's motif residues, columns =
   B's motif residues) is 1, everything else 0; a negative pair has no contact. With 8-residue motifs and the
   default 48-128 residues, contacts fill ~0.9% of a positive pair's map (the MEASURED.md prototype, with longer
   proteins, ~0.04%); the defaults are short so that the ablation grid runs on a shared 2-core CPU.
5. Splits: a `split` column (train/valid/test, stratified by label) so that every run on one data set uses the
   same parts. Proteins are random and never repeat (no sequence occurs twice), so a pair split is a protein split.

The oracle teacher cache (planted contacts as the contact map, a noisy copy as attention, embeddings from a fixed
projection of composition and motif) is written by `teacher_cache.teachers.synthetic`; this module only draws the
data and writes FASTA and pairs files.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from data.atomic import atomic_path
from data.alphabet import RESIDUES
from data.errors import UserError
from data.fasta import write_fasta
from data.pairs import SPLIT_NAMES

GENERATOR_VERSION = 1
STANDARD_RESIDUES = RESIDUES[:20]
PAIR_COLUMNS = ("id_a", "id_b", "label", "split", "family_a", "motif_start_a", "family_b", "motif_start_b")


@dataclass(frozen=True)
class SynthConfig:
    """Every parameter of the generator; saved in the cache's settings so a data set can be redrawn exactly."""

    n_pairs: int = 2500
    families: int = 4
    motif_len: int = 8
    min_len: int = 48
    max_len: int = 128
    pos_frac: float = 0.5
    valid_frac: float = 0.1
    test_frac: float = 0.1
    embedding_dim: int = 32  # size of the oracle teacher's protein embeddings
    attention_noise: float = 0.05  # scale of the background noise in the oracle attention map
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_pairs < 10:
            raise UserError(f"n-pairs must be at least 10 (got {self.n_pairs})")
        if self.families < 2:
            raise UserError(f"need at least 2 motif families so that negatives can carry mismatched motifs "
                            f"(got {self.families})")
        if self.motif_len < 1:
            raise UserError(f"motif-len must be positive (got {self.motif_len})")
        if not self.motif_len <= self.min_len <= self.max_len:
            raise UserError(f"need motif-len <= min-len <= max-len (got {self.motif_len}, {self.min_len}, "
                            f"{self.max_len})")
        if not 0.0 < self.pos_frac < 1.0:
            raise UserError(f"pos-frac must be strictly between 0 and 1 (got {self.pos_frac})")
        if self.valid_frac < 0 or self.test_frac <= 0 or self.valid_frac + self.test_frac >= 1:
            raise UserError(f"need 0 < test fraction, 0 <= valid fraction and valid + test < 1 "
                            f"(got valid {self.valid_frac}, test {self.test_frac})")
        if self.embedding_dim < 1 or self.attention_noise < 0:
            raise UserError("embedding-dim must be positive and attention-noise not negative")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SynthPair:
    id_a: str
    id_b: str
    seq_a: str
    seq_b: str
    label: int
    split: str
    family_a: int  # index of the motif family planted in A (motif_a[family_a])
    start_a: int  # 0-based position of A's motif
    family_b: int
    start_b: int


@dataclass
class SynthDataset:
    config: SynthConfig
    motifs_a: list[str]  # motifs_a[k]: the A-side motif of family k
    motifs_b: list[str]
    pairs: list[SynthPair]

    @property
    def sequences(self) -> dict[str, str]:
        """{id: sequence} of every protein, in pair order (A then B)."""
        out: dict[str, str] = {}
        for pair in self.pairs:
            out[pair.id_a], out[pair.id_b] = pair.seq_a, pair.seq_b
        return out


def planted_contacts(pair: SynthPair, motif_len: int) -> np.ndarray:
    """Binary (len(seq_a), len(seq_b)) float32 map: the motif block for a positive pair, all zeros otherwise."""
    contact = np.zeros((len(pair.seq_a), len(pair.seq_b)), dtype=np.float32)
    if pair.label == 1:
        contact[pair.start_a:pair.start_a + motif_len, pair.start_b:pair.start_b + motif_len] = 1.0
    return contact


def motif_index(family: int, side: str, families: int) -> int:
    """Index of one motif among all 2 * families motifs (A-side motifs first)."""
    return family if side == "a" else families + family


def _random_residues(rng: np.random.Generator, length: int) -> str:
    return "".join(rng.choice(list(STANDARD_RESIDUES), size=length))


def _draw_motifs(rng: np.random.Generator, config: SynthConfig) -> tuple[list[str], list[str]]:
    motifs: list[str] = []
    while len(motifs) < 2 * config.families:
        motif = _random_residues(rng, config.motif_len)
        if motif not in motifs:
            motifs.append(motif)
    return motifs[:config.families], motifs[config.families:]


def _protein(rng: np.random.Generator, config: SynthConfig, motif: str) -> tuple[str, int]:
    length = int(rng.integers(config.min_len, config.max_len + 1))
    start = int(rng.integers(0, length - config.motif_len + 1))
    background = _random_residues(rng, length - config.motif_len)
    return background[:start] + motif + background[start:], start


def _split_labels(rng: np.random.Generator, labels: np.ndarray, config: SynthConfig) -> np.ndarray:
    """train/valid/test per pair, stratified by label."""
    parts = np.empty(len(labels), dtype=object)
    for value in (0, 1):
        members = rng.permutation(np.flatnonzero(labels == value))
        n_test = int(round(config.test_frac * len(members)))
        n_valid = int(round(config.valid_frac * len(members)))
        parts[members[:n_test]] = "test"
        parts[members[n_test:n_test + n_valid]] = "valid"
        parts[members[n_test + n_valid:]] = "train"
    return parts


def generate(config: SynthConfig) -> SynthDataset:
    """Draw a planted-interface data set; the same config (seed included) always gives the same data."""
    rng = np.random.default_rng([config.seed, GENERATOR_VERSION])
    motifs_a, motifs_b = _draw_motifs(rng, config)
    n_pos = int(round(config.pos_frac * config.n_pairs))
    labels = np.zeros(config.n_pairs, dtype=np.int64)
    labels[:n_pos] = 1
    labels = rng.permutation(labels)
    splits = _split_labels(rng, labels, config)
    seen: set[str] = set(motifs_a) | set(motifs_b)  # a protein equal to a bare motif would be odd; keep them apart
    pairs: list[SynthPair] = []
    width = len(str(config.n_pairs))
    for index, label in enumerate(labels):
        family_a = int(rng.integers(config.families))
        if label == 1:
            family_b = family_a
        else:  # any other family, uniformly
            family_b = int((family_a + rng.integers(1, config.families)) % config.families)
        while True:  # redraw on the (astronomically rare) repeat of a sequence
            seq_a, start_a = _protein(rng, config, motifs_a[family_a])
            seq_b, start_b = _protein(rng, config, motifs_b[family_b])
            if seq_a not in seen and seq_b not in seen and seq_a != seq_b:
                break
        seen.update((seq_a, seq_b))
        name = f"syn{index:0{width}d}"
        pairs.append(SynthPair(f"{name}_a", f"{name}_b", seq_a, seq_b, int(label), str(splits[index]),
                               family_a, start_a, family_b, start_b))
    return SynthDataset(config, motifs_a, motifs_b, pairs)


def write_pairs_table(path: str | Path, dataset: SynthDataset) -> None:
    """Pairs TSV with header: id_a id_b label split family_a motif_start_a family_b motif_start_b (0-based)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write("\t".join(PAIR_COLUMNS) + "\n")
        for p in dataset.pairs:
            handle.write("\t".join(str(v) for v in (p.id_a, p.id_b, p.label, p.split, p.family_a, p.start_a,
                                                    p.family_b, p.start_b)) + "\n")


def write_sequences(path: str | Path, dataset: SynthDataset) -> None:
    with atomic_path(path) as tmp:
        write_fasta(tmp, dataset.sequences)


def split_counts(dataset: SynthDataset) -> dict[str, dict[str, int]]:
    """{part: {"pairs": n, "positives": n}}."""
    return {part: {"pairs": sum(p.split == part for p in dataset.pairs),
                   "positives": sum(p.split == part and p.label == 1 for p in dataset.pairs)}
            for part in SPLIT_NAMES}
