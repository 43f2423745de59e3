"""The oracle teacher of the planted-interface benchmark (`data.synth`): a cache in the exact format of an ESM-2
cache whose maps are the planted truth.

- contact: the planted contacts (binary; `data.synth.planted_contacts`).
- attention: a noisy copy: contact * U(0.5, 1) + attention_noise * U(0, 1)^2 per cell, clipped to [0, 1].
- embedding (D = embedding_dim): a fixed seeded projection of the protein's residue composition (z-scored against
  a uniform background) plus a fixed seeded vector for the motif it carries (one per family and side), so that a
  semantic loss can teach which motif a protein carries.

The cache's metadata says teacher="synthetic", model="planted-interface-oracle", and its settings hold every
generator parameter and the seed, plus `"synthetic": true`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from data.atomic import check_outputs
from data.errors import UserError
from data.synth import (GENERATOR_VERSION, STANDARD_RESIDUES, SynthConfig, SynthDataset, generate, motif_index,
                        planted_contacts, split_counts, write_pairs_table, write_sequences)
from teacher_cache.schema import StorageConfig
from teacher_cache.writer import CacheBuilder

ORACLE_MODEL = "planted-interface-oracle"
OUTPUT_NAMES = ("seqs.fasta", "pairs.tsv", "cache.h5")


@dataclass
class SynthOutputs:
    fasta: Path
    pairs: Path
    cache: Path
    counts: dict[str, dict[str, int]]
    contact_density: float  # mean fraction of contact cells over positive pairs' maps


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


def write_oracle_cache(dataset: SynthDataset, path: str | Path, overwrite: bool = False,
                       progress: Callable[[int], None] | None = None) -> Path:
    """Write the oracle cache of `dataset` (see the module docstring); `progress(n)` after every n pairs."""
    config = dataset.config
    embed = OracleEmbedder(config)
    rng = np.random.default_rng([config.seed, GENERATOR_VERSION, 2])
    meta = dict(teacher="synthetic", model=ORACLE_MODEL, random_weights=False, embedding_dim=config.embedding_dim,
                settings={"synthetic": True, "generator": "data.synth", "generator_version": GENERATOR_VERSION,
                          **config.to_dict(), "contact": "planted motif blocks",
                          "attention": "contact * U(0.5,1) + attention_noise * U(0,1)^2",
                          "embedding": "seeded projection of composition + seeded motif vector"})
    # lzf: a third of gzip's read time; an ablation grid reads every map once per run
    storage = StorageConfig(compression="lzf")
    with CacheBuilder(path, meta, storage, overwrite=overwrite) as builder:
        for pair in dataset.pairs:
            contact = planted_contacts(pair, config.motif_len)
            builder.add_pair(pair.seq_a, pair.seq_b, contact, oracle_attention(contact, rng, config.attention_noise))
            builder.add_protein(pair.seq_a, embed(pair.seq_a, pair.family_a, "a"))
            builder.add_protein(pair.seq_b, embed(pair.seq_b, pair.family_b, "b"))
            if progress is not None:
                progress(1)
    return Path(path)


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
    write_oracle_cache(dataset, cache, overwrite=overwrite, progress=progress)
    write_sequences(fasta, dataset)
    write_pairs_table(pairs, dataset)
    positives = [p for p in dataset.pairs if p.label == 1]
    density = float(np.mean([config.motif_len ** 2 / (len(p.seq_a) * len(p.seq_b)) for p in positives]))
    return SynthOutputs(fasta, pairs, cache, split_counts(dataset), density)
