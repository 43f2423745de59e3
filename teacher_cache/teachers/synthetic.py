"""The oracle teacher of the planted-interface benchmark (`data.synth`): a cache in the exact format of an ESM-2
cache whose maps are the planted truth.

- contact: the planted contacts (binary; `data.synth.planted_contacts`).
- attention: a noisy copy: contact * U(0.5, 1) + attention_noise * U(0, 1)^2 per cell, clipped to [0, 1].
- embedding (D = embedding_dim): a fixed seeded projection of the protein's residue composition (z-scored against
  a uniform background) plus a fixed seeded vector for the motif it carries (one per family and side), so that a
  semantic loss can teach which motif a protein carries.

An imperfect teacher (issue 16; `teacher_*` fields of `SynthConfig`, all off by default) replaces the contact map
by `imperfect_contact`: per pair a block strength u ~ U(teacher_strength_min, 1); a positive's block at its motifs
(shifted by up to teacher_offset residues per axis) with a teacher_recall share of its cells marked at u; a
negative's block, at its two motifs, marked the same way at teacher_discrimination x u (0: the oracle's empty
negatives, 1: the teacher cannot tell); teacher_decoys false blocks at random places (half their cells marked), each at
teacher_decoy_strength x U(0.5, 1); plus teacher_noise x U(0, 1)^2 per cell; clipped to [0, 1]. Every pair's map
comes from its own seeded generator. The teacher's quality against the planted truth (`teacher_quality`: map
top-L/5 precision over positives, AUPR of the map maximum as a pair score) goes into the cache settings.
The attention map stays the oracle's noisy copy of the truth for every teacher: distil `contact` to test a teacher.

The cache's metadata says teacher="synthetic", model="planted-interface-oracle" (an imperfect teacher:
"planted-interface-imperfect"), and its settings hold every
generator parameter and the seed, plus `"synthetic": true`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from data.atomic import check_outputs
from data.contact_ranking import default_k, top_k_precision
from data.errors import UserError
from data.synth import (GENERATOR_VERSION, STANDARD_RESIDUES, SynthConfig, SynthDataset, SynthPair, generate,
                        motif_index, planted_contacts, split_counts, write_pairs_table, write_sequences)
from teacher_cache.schema import StorageConfig
from teacher_cache.writer import CacheBuilder

ORACLE_MODEL = "planted-interface-oracle"
IMPERFECT_MODEL = "planted-interface-imperfect"
DECOY_FILL = 0.5  # share of a decoy block's cells the teacher marks
OUTPUT_NAMES = ("seqs.fasta", "pairs.tsv", "cache.h5")


@dataclass
class SynthOutputs:
    fasta: Path
    pairs: Path
    cache: Path
    counts: dict[str, dict[str, int]]
    contact_density: float  # mean fraction of contact cells over positive pairs' maps
    quality: dict[str, float] | None = None  # the teacher's own quality (teacher_quality)


class OracleEmbedder:
    """Protein embedding = W_comp . z(composition) / sqrt(20) + W_motif[motif]; both matrices fixed by the seed."""

    def __init__(self, config: SynthConfig):
        rng = np.random.default_rng([config.seed, GENERATOR_VERSION, 1])
        self.families = config.families
        self.w_comp = rng.standard_normal((len(STANDARD_RESIDUES), config.embedding_dim)).astype(np.float32)
        self.w_motif = rng.standard_normal((2 * config.families, config.embedding_dim)).astype(np.float32)
        self._lookup = {c: i for i, c in enumerate(STANDARD_RESIDUES)}

    def __call__(self, sequence: str, family: int, side: str) -> np.ndarray:
        counts = np.zeros(len(STANDARD_RESIDUES), dtype=np.float64)
        for c in sequence:
            counts[self._lookup[c]] += 1
        p = 1.0 / len(STANDARD_RESIDUES)
        z = (counts / len(sequence) - p) / np.sqrt(p * (1 - p) / len(sequence))  # ~N(0, 1) per residue type
        comp = z.astype(np.float32) @ self.w_comp / np.sqrt(len(STANDARD_RESIDUES))
        return comp + self.w_motif[motif_index(family, side, self.families)]


def oracle_attention(contact: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    attention = contact * rng.uniform(0.5, 1.0, contact.shape) + noise * rng.random(contact.shape) ** 2
    return np.clip(attention, 0.0, 1.0).astype(np.float32)


def imperfect_contact(pair: SynthPair, config: SynthConfig, index: int) -> np.ndarray:
    """The imperfect teacher's contact map of pair number `index` (see the module docstring); float32 in [0, 1]."""
    rng = np.random.default_rng([config.seed, GENERATOR_VERSION, 4, index])
    shape = (len(pair.seq_a), len(pair.seq_b))
    m = config.motif_len
    out = np.zeros(shape, dtype=np.float32)
    strength = float(rng.uniform(config.teacher_strength_min, 1.0))
    if pair.label == 0:
        strength *= config.teacher_discrimination
    shift = rng.integers(-config.teacher_offset, config.teacher_offset + 1, size=2) if config.teacher_offset else (0, 0)
    row = int(np.clip(pair.start_a + shift[0], 0, shape[0] - m))
    col = int(np.clip(pair.start_b + shift[1], 0, shape[1] - m))
    marked = rng.random((m, m)) < config.teacher_recall
    if strength > 0:
        out[row:row + m, col:col + m] = np.where(marked, strength, 0.0)
    for _ in range(config.teacher_decoys):
        r, c = int(rng.integers(0, shape[0] - m + 1)), int(rng.integers(0, shape[1] - m + 1))
        decoy = config.teacher_decoy_strength * float(rng.uniform(0.5, 1.0))
        block = out[r:r + m, c:c + m]
        np.maximum(block, np.where(rng.random((m, m)) < DECOY_FILL, decoy, 0.0), out=block)
    if config.teacher_noise:
        out += config.teacher_noise * rng.random(shape, dtype=np.float32) ** 2
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def teacher_contact(pair: SynthPair, config: SynthConfig, index: int) -> np.ndarray:
    """The contact map the teacher of `config` writes for pair number `index`: the truth for the oracle."""
    if config.oracle_teacher:
        return planted_contacts(pair, config.motif_len)
    return imperfect_contact(pair, config, index)


class QualityMeter:
    """The teacher's own quality against the planted truth, pair by pair: mean top-L/5 precision of its map over
    positive pairs, and the AUPR / AUROC of its map maximum used as the pair's interaction score."""

    def __init__(self, motif_len: int):
        self.motif_len, self.precisions, self.scores, self.labels = motif_len, [], [], []

    def add(self, pair: SynthPair, teacher_map: np.ndarray) -> None:
        if pair.label == 1:
            truth = planted_contacts(pair, self.motif_len)
            self.precisions.append(top_k_precision(teacher_map, truth, default_k(truth.shape)))
        self.scores.append(float(teacher_map.max()))
        self.labels.append(pair.label)

    def result(self) -> dict[str, float]:
        from sklearn.metrics import average_precision_score, roc_auc_score

        labels, scores = np.array(self.labels), np.array(self.scores)
        # ties (e.g. the oracle's all-one maxima) are broken against the teacher: a small seeded jitter would
        # flatter it; sklearn scores tied groups as one threshold, which is exactly the tied ranking
        return {"teacher_p_l5": float(np.mean(self.precisions)) if self.precisions else float("nan"),
                "teacher_aupr": float(average_precision_score(labels, scores)),
                "teacher_auroc": float(roc_auc_score(labels, scores))}


def write_oracle_cache(dataset: SynthDataset, path: str | Path, overwrite: bool = False,
                       progress: Callable[[int], None] | None = None) -> tuple[Path, dict[str, float]]:
    """Write the teacher cache of `dataset` (see the module docstring); `progress(n)` after every n pairs."""
    config = dataset.config
    embed = OracleEmbedder(config)
    rng = np.random.default_rng([config.seed, GENERATOR_VERSION, 2])
    contact_text = ("planted motif blocks" if config.oracle_teacher else
                    "imperfect teacher: recall-thinned, offset blocks at U(strength_min,1); negatives' blocks at "
                    "discrimination x that; decoy blocks; noise (teacher_cache.teachers.synthetic)")
    meta = dict(teacher="synthetic", model=ORACLE_MODEL if config.oracle_teacher else IMPERFECT_MODEL,
                random_weights=False, embedding_dim=config.embedding_dim,
                settings={"synthetic": True, "generator": "data.synth", "generator_version": GENERATOR_VERSION,
                          **config.to_dict(), "contact": contact_text,
                          "attention": "contact * U(0.5,1) + attention_noise * U(0,1)^2",
                          "embedding": "seeded projection of composition + seeded motif vector"})
    # lzf: a third of gzip's read time; an ablation grid reads every map once per run
    storage = StorageConfig(compression="lzf")
    meter = QualityMeter(config.motif_len)
    with CacheBuilder(path, meta, storage, overwrite=overwrite) as builder:
        for index, pair in enumerate(dataset.pairs):
            truth = planted_contacts(pair, config.motif_len)
            contact = teacher_contact(pair, config, index)
            meter.add(pair, contact)
            # attention stays the noisy copy of the truth, drawn in the same order as the first version
            builder.add_pair(pair.seq_a, pair.seq_b, contact, oracle_attention(truth, rng, config.attention_noise))
            builder.add_protein(pair.seq_a, embed(pair.seq_a, pair.family_a, "a"))
            builder.add_protein(pair.seq_b, embed(pair.seq_b, pair.family_b, "b"))
            if progress is not None:
                progress(1)
        quality = meter.result()
        builder.meta["settings"]["teacher_quality"] = quality  # written at commit, when the context closes
    return Path(path), quality


def make_synthetic(config: SynthConfig, out_dir: str | Path, overwrite: bool = False,
                   progress: Callable[[int], None] | None = None) -> SynthOutputs:
    """Draw a planted-interface data set and write out_dir/seqs.fasta, pairs.tsv and cache.h5 (each atomically)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} exists and is not a directory")
    check_outputs({str(out_dir / name): out_dir / name for name in OUTPUT_NAMES}, None, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = generate(config)
    fasta, pairs, cache = (out_dir / name for name in OUTPUT_NAMES)
    # The cache first: it takes longest, and FASTA/pairs without their cache would look like a finished set.
    _, quality = write_oracle_cache(dataset, cache, overwrite=overwrite, progress=progress)
    write_sequences(fasta, dataset)
    write_pairs_table(pairs, dataset)
    positives = [p for p in dataset.pairs if p.label == 1]
    density = float(np.mean([config.motif_len ** 2 / (len(p.seq_a) * len(p.seq_b)) for p in positives]))
    return SynthOutputs(fasta, pairs, cache, split_counts(dataset), density, quality)
