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
5. Harder sets (issue 16; every knob off by default, and then the data are exactly those of the first version):
   `mutation_rate` substitutes each residue of every planted motif copy by another residue with that probability
   (per copy, so no two carriers share one exact string); `decoy_motifs` random motifs that belong to no family,
   of which every protein carries `decoys_per_protein` (they meet nothing: the truth never holds a block there);
   `background="yeast"` draws background residues from a fixed yeast-like composition instead of uniformly.
   `PRESETS["hard"]` is the documented hard setting (docs/results.md, section 2).
6. Splits: a `split` column (train/valid/test, stratified by label) so that every run on one data set uses the
   same parts. Proteins are random and never repeat (no sequence occurs twice), so a pair split is a protein split.

The `teacher_*` fields describe the teacher of `teacher_cache.teachers.synthetic` (oracle by default); they do not
change the drawn data.
The oracle teacher cache (planted contacts as the contact map, a noisy copy as attention, embeddings from a fixed
projection of composition and motif) is written by `teacher_cache.teachers.synthetic`; this module only draws the
data and writes FASTA and pairs files.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from data.atomic import atomic_path
from data.alphabet import RESIDUES
from data.errors import UserError
from data.fasta import write_fasta
from data.pairs import SPLIT_NAMES

GENERATOR_VERSION = 1
STANDARD_RESIDUES = RESIDUES[:20]
BACKGROUNDS = ("uniform", "yeast")
# Approximate amino-acid composition of the yeast proteome (percent).
YEAST_COMPOSITION = dict(A=5.5, C=1.3, D=5.8, E=6.5, F=4.4, G=5.0, H=2.2, I=6.6, K=7.3, L=9.5, M=2.1, N=6.1, P=4.4,
                         Q=3.9, R=4.4, S=9.0, T=5.9, V=5.6, W=1.0, Y=3.4)
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
    # harder data (issue 16); the defaults draw exactly the data of generator version 1
    mutation_rate: float = 0.0  # per-residue substitution rate of every planted motif copy
    decoy_motifs: int = 0  # motifs of no family (a pool shared by both sides)
    decoys_per_protein: int = 0  # decoy copies planted in every protein (needs decoy_motifs >= 1)
    background: str = "uniform"  # uniform | yeast (a fixed yeast-like residue composition)
    # the teacher (teacher_cache.teachers.synthetic); the defaults are the oracle: its contact map is the truth
    teacher_discrimination: float = 0.0  # negatives' block strength relative to positives' (0 oracle, 1 blind)
    teacher_recall: float = 1.0  # share of true contact cells the teacher marks
    teacher_strength_min: float = 1.0  # a pair's block strength is U(strength_min, 1) (1: always 1)
    teacher_decoys: int = 0  # false blocks per map (motif_len x motif_len at random places)
    teacher_decoy_strength: float = 0.5  # their strength (times U(0.5, 1) per block)
    teacher_offset: int = 0  # the marked block is shifted by up to this many residues on each axis
    teacher_noise: float = 0.0  # background noise: + teacher_noise * U(0, 1)^2 per cell

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
        if not 0.0 <= self.mutation_rate <= 1.0:
            raise UserError(f"mutation-rate must be in [0, 1] (got {self.mutation_rate})")
        if self.decoy_motifs < 0 or self.decoys_per_protein < 0 or (self.decoys_per_protein and not self.decoy_motifs):
            raise UserError("decoys-per-protein needs decoy-motifs >= 1 (and neither may be negative)")
        if (1 + self.decoys_per_protein) * self.motif_len > self.min_len:
            raise UserError(f"min-len {self.min_len} cannot hold the motif and {self.decoys_per_protein} decoy(s) "
                            f"of {self.motif_len} residues")
        if self.background not in BACKGROUNDS:
            raise UserError(f"unknown background {self.background!r} (one of {', '.join(BACKGROUNDS)})")
        for name in ("teacher_discrimination", "teacher_recall", "teacher_strength_min", "teacher_decoy_strength"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"{name.replace('_', '-')} must be in [0, 1] (got {getattr(self, name)})")
        if self.teacher_decoys < 0 or self.teacher_offset < 0 or self.teacher_noise < 0:
            raise UserError("teacher-decoys, teacher-offset and teacher-noise must not be negative")

    @property
    def hard_data(self) -> bool:
        """Whether any of the issue-16 generator knobs is on (else the first version's drawing path runs)."""
        return bool(self.mutation_rate or self.decoys_per_protein or self.background != "uniform")

    @property
    def oracle_teacher(self) -> bool:
        return (self.teacher_discrimination == 0 and self.teacher_recall == 1 and self.teacher_strength_min == 1
                and self.teacher_decoys == 0 and self.teacher_offset == 0 and self.teacher_noise == 0)

    def to_dict(self) -> dict:
        return asdict(self)


# Documented presets (`python cli.py synth --preset NAME`); options given explicitly win over a preset.
PRESETS: dict[str, dict] = {
    # the hard generator of docs/results.md section 2: 16 families, yeast-like lengths, mutated motif copies,
    # decoy motifs, yeast-like background; contacts fill ~0.05% of a positive map
    "hard": dict(families=16, min_len=200, max_len=500, mutation_rate=0.1, decoy_motifs=16, decoys_per_protein=1,
                 background="yeast"),
}
# Teacher presets (`--teacher-preset NAME`), from the oracle to a useless teacher. "esm-like" is anchored on issue
# 16's figures: ~45% of the true block, three half-strength decoys per map, negatives at half strength.
TEACHER_PRESETS: dict[str, dict] = {
    "oracle": dict(teacher_discrimination=0.0, teacher_recall=1.0, teacher_strength_min=1.0, teacher_decoys=0,
                   teacher_offset=0, teacher_noise=0.0),
    "good": dict(teacher_discrimination=0.25, teacher_recall=0.7, teacher_strength_min=0.3, teacher_decoys=1,
                 teacher_decoy_strength=0.5, teacher_offset=1, teacher_noise=0.1),
    "esm-like": dict(teacher_discrimination=0.5, teacher_recall=0.45, teacher_strength_min=0.1, teacher_decoys=3,
                     teacher_decoy_strength=0.5, teacher_offset=2, teacher_noise=0.2),
    # the esm-like teacher without its background noise (which knob breaks which loss)
    "esm-like-quiet": dict(teacher_discrimination=0.5, teacher_recall=0.45, teacher_strength_min=0.1,
                           teacher_decoys=3, teacher_decoy_strength=0.5, teacher_offset=2, teacher_noise=0.0),
    "poor": dict(teacher_discrimination=0.8, teacher_recall=0.25, teacher_strength_min=0.1, teacher_decoys=5,
                 teacher_decoy_strength=0.7, teacher_offset=3, teacher_noise=0.3),
    "useless": dict(teacher_discrimination=1.0, teacher_recall=0.0, teacher_strength_min=0.3, teacher_decoys=3,
                    teacher_decoy_strength=0.5, teacher_offset=0, teacher_noise=0.2),
}


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
    decoys: list[str] = field(default_factory=list)  # decoy motifs (no family)

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


def _mutate(rng: np.random.Generator, motif: str, rate: float) -> str:
    """A copy of `motif` with each residue replaced by another standard residue with probability `rate`."""
    if rate <= 0:
        return motif
    out = list(motif)
    for i in np.flatnonzero(rng.random(len(motif)) < rate):
        others = [c for c in STANDARD_RESIDUES if c != motif[i]]
        out[i] = others[int(rng.integers(len(others)))]
    return "".join(out)


def _background(rng: np.random.Generator, config: SynthConfig, length: int) -> str:
    if config.background == "uniform":
        return _random_residues(rng, length)
    p = np.array([YEAST_COMPOSITION[c] for c in STANDARD_RESIDUES], dtype=np.float64)
    return "".join(rng.choice(list(STANDARD_RESIDUES), size=length, p=p / p.sum()))


def _hard_protein(rng: np.random.Generator, config: SynthConfig, motif: str,
                  decoys: list[str]) -> tuple[str, int]:
    """A protein with its (mutated) motif and `decoys_per_protein` (mutated) decoy copies, none overlapping."""
    length = int(rng.integers(config.min_len, config.max_len + 1))
    pieces = [_mutate(rng, motif, config.mutation_rate)]
    pieces += [_mutate(rng, decoys[int(rng.integers(len(decoys)))], config.mutation_rate)
               for _ in range(config.decoys_per_protein)]
    background = _background(rng, config, length - len(pieces) * config.motif_len)
    order = rng.permutation(len(pieces))  # the order of the pieces along the chain
    cuts = np.sort(rng.integers(0, len(background) + 1, size=len(pieces)))  # insertion points in the background
    sequence, start, previous = "", -1, 0
    for cut, piece_index in zip(cuts, order):
        sequence += background[previous:cut]
        if piece_index == 0:
            start = len(sequence)
        sequence += pieces[piece_index]
        previous = cut
    return sequence + background[previous:], start


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
    decoys: list[str] = []
    if config.hard_data:  # drawn after everything of version 1, so the knobs' defaults leave its data unchanged
        while len(decoys) < config.decoy_motifs:
            motif = _random_residues(rng, config.motif_len)
            if motif not in seen and motif not in decoys:
                decoys.append(motif)
    pairs: list[SynthPair] = []
    width = len(str(config.n_pairs))
    for index, label in enumerate(labels):
        family_a = int(rng.integers(config.families))
        if label == 1:
            family_b = family_a
        else:  # any other family, uniformly
            family_b = int((family_a + rng.integers(1, config.families)) % config.families)
        while True:  # redraw on the (astronomically rare) repeat of a sequence
            if config.hard_data:
                seq_a, start_a = _hard_protein(rng, config, motifs_a[family_a], decoys)
                seq_b, start_b = _hard_protein(rng, config, motifs_b[family_b], decoys)
            else:
                seq_a, start_a = _protein(rng, config, motifs_a[family_a])
                seq_b, start_b = _protein(rng, config, motifs_b[family_b])
            if seq_a not in seen and seq_b not in seen and seq_a != seq_b:
                break
        seen.update((seq_a, seq_b))
        name = f"syn{index:0{width}d}"
        pairs.append(SynthPair(f"{name}_a", f"{name}_b", seq_a, seq_b, int(label), str(splits[index]),
                               family_a, start_a, family_b, start_b))
    return SynthDataset(config, motifs_a, motifs_b, pairs, decoys)


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


def planted_truth(pairs_path: str | Path) -> dict[tuple[str, str], tuple[int, int, int]] | None:
    """{(id_a, id_b): (label, motif_start_a, motif_start_b)} from a `synth` pairs table; None for any other table."""
    with open(pairs_path, encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        if not {"id_a", "id_b", "label", "motif_start_a", "motif_start_b"} <= set(header):
            return None
        col = {name: header.index(name) for name in header}
        out = {}
        for line in handle:
            v = line.rstrip("\n").split("\t")
            out[(v[col["id_a"]], v[col["id_b"]])] = (int(v[col["label"]]), int(v[col["motif_start_a"]]),
                                                     int(v[col["motif_start_b"]]))
    return out


def truth_block(shape: tuple[int, int], label: int, start_a: int, start_b: int, motif_len: int) -> np.ndarray:
    """The planted contacts of one pair from its table row (as `planted_contacts`)."""
    contact = np.zeros(shape, dtype=bool)
    if label == 1:
        contact[start_a:start_a + motif_len, start_b:start_b + motif_len] = True
    return contact
