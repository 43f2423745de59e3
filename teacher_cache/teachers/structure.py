"""A teacher cache made from experimental structures instead of ESM-2: the true inter-chain contacts.

Written with the project's `CacheBuilder` in the exact cache format (teacher="structure"), so everything that reads
a teacher cache (`TeacherCache.pair(seq_a, seq_b).contact`, training, `evaluate-maps`) takes it unchanged.

What each dataset holds in a structure cache:
- `contact`: 1 where the two residues' C-beta atoms (C-alpha for glycine or a missing C-beta) are closer than the
  cutoff, else 0. Cells whose row or column residue has no coordinates in the structure (not modelled, or not
  aligned to the given sequence) are 0 as well: the cache format has no mask, so an unobserved cell reads as
  "no contact". Most unobserved residues are disordered termini or loops, rarely interface residues.
- `attention`: a distance-derived soft map that also records which cells were observed:
  max(sigmoid((cutoff - d) / width), ATTENTION_FLOOR) on observed cells and exactly 0 on unobserved ones, so
  `observed = attention > 0` (`observed_from_attention`) and attention > 0.5 marks the contacts. The floor 1/255 is
  the smallest value every storage dtype (uint8 included) keeps non-zero.
- protein `embedding`: the residue composition (20 standard amino acids, fractions summing to 1; X and other
  letters are not counted). It is NOT an ESM embedding: with a structure cache the semantic loss would distil
  composition, so train with beta_sem = 0.
- Pairs known NOT to form a complex (label 0 rows of `negatives`, e.g. shuffled partners) may be added with
  all-zero maps: contact 0 everywhere (no contact) and attention 0 everywhere (no structure observed). The
  student's trainer reads a map for every pair of its cache, so this is how negatives enter a structure-teacher
  run; their map target says "this pair lights up nowhere".
- One sequence pair listed twice with different interfaces (DB5.5's 1OYV / BOYV) is stored once, with the union
  of the contacts (element-wise maximum of both maps): the cache is keyed by sequence, and both interfaces are
  true contacts of that pair.

All maps are built in memory before writing (tens of MB for DB5.5's 154 complexes).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import gemmi
import numpy as np

from data.atomic import atomic_path, check_outputs
from data.alphabet import RESIDUES
from data.errors import InputError
from data.fasta import read_fasta, write_fasta
from data.keys import canonical_pair, sequence_key
from data.pairs import read_pairs
from data.structure import (DEFAULT_CUTOFF, ComplexContacts, StructureLibrary, load_complex, manifest_inputs,
                            read_manifest)
from teacher_cache.schema import StorageConfig
from teacher_cache.teachers.config import StructureCacheConfig
from teacher_cache.lock import CacheLock
from teacher_cache.writer import CacheBuilder

log = logging.getLogger(__name__)

COMPOSITION_LETTERS = RESIDUES[:20]  # the 20 standard residues, in the project alphabet's order
ATTENTION_FLOOR = 1.0 / 255.0
STRUCTURE_MODEL = "structure-contacts"


@dataclass
class StructureCacheReport:
    out: str
    complexes: int
    pairs: int  # distinct sequence pairs written
    merged_duplicates: int  # complexes whose sequence pair was already present (contacts united)
    proteins: int
    negatives: int  # pairs added with all-zero maps
    contacts: int  # contact cells written, over all pairs
    observed_fraction: float  # observed cells / all cells
    fasta_out: str | None = None


def composition_embedding(sequence: str) -> np.ndarray:
    """(20,) float32 fraction of each standard residue (COMPOSITION_LETTERS order); zeros if none is standard."""
    counts = np.array([sequence.count(letter) for letter in COMPOSITION_LETTERS], dtype=np.float32)
    total = counts.sum()
    return counts / total if total else counts


def structure_maps(complex_: ComplexContacts, cutoff: float = DEFAULT_CUTOFF,
                   soft_width: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(contact, attention) float32 (La, Lb) as stored in a structure cache (see the module docstring)."""
    observed = complex_.observed
    contact = complex_.contacts(cutoff).astype(np.float32)
    with np.errstate(over="ignore"):
        soft = 1.0 / (1.0 + np.exp(-(cutoff - complex_.distance.astype(np.float64)) / soft_width))
    attention = np.where(observed, np.maximum(soft, ATTENTION_FLOOR), 0.0).astype(np.float32)
    return contact, attention


def observed_from_attention(attention: np.ndarray) -> np.ndarray:
    """Boolean mask of observed cells of a structure cache's attention map."""
    return np.asarray(attention) > 0


def structure_cache_meta(config: StructureCacheConfig) -> dict:
    return {
        "teacher": "structure",
        "model": f"{STRUCTURE_MODEL}-cb-{config.cutoff:g}A",
        "weights_sha256": "",
        "random_weights": False,
        "embedding_dim": len(COMPOSITION_LETTERS),
        "settings": {
            "source": "experimental structures (data.structure)",
            "cutoff_angstrom": config.cutoff,
            "contact_atom": "CB (CA for glycine or a missing CB)",
            "attention": f"max(sigmoid((cutoff - d) / {config.soft_width:g} A), 1/255) on observed cells, "
                         "0 on unobserved cells",
            "unobserved_contact": 0,
            "embedding": "amino-acid composition over " + COMPOSITION_LETTERS + " (not an ESM embedding)",
            "duplicate_pairs": "union of contacts",
            "negatives": "label-0 pairs of the negatives table: all-zero contact and attention",
            "min_identity": config.min_identity,
            "gemmi_version": gemmi.__version__,
        },
    }


def _write_fasta_atomic(path: str | Path, sequences: dict[str, str]) -> None:
    with atomic_path(path) as tmp:
        write_fasta(tmp, sequences)


def build_structure_cache(config: StructureCacheConfig,
                          progress: Callable[[int, int], None] | None = None) -> StructureCacheReport:
    """Read every complex of the manifest and write the structure-teacher cache (and optionally the FASTA)."""
    rows = read_manifest(config.structures)
    check_outputs({"--out": config.out, "--fasta-out": config.fasta_out},
                  {"--structures": config.structures, "--fasta": config.fasta, "--negatives": config.negatives,
                   **manifest_inputs(rows)}, config.overwrite)
    sequences = read_fasta(config.fasta) if config.fasta else None
    library = StructureLibrary()
    own_sequences: dict[str, str] = {}
    # canonical pair key -> (seq_first, seq_second, contact, attention) in canonical orientation
    maps: dict[tuple[str, str], tuple[str, str, np.ndarray, np.ndarray]] = {}
    merged = 0
    for done, row in enumerate(rows, start=1):
        complex_ = load_complex(row, sequences, config.min_identity, library)
        for name, seq in ((row.id_a, complex_.seq_a), (row.id_b, complex_.seq_b)):
            if own_sequences.setdefault(name, seq) != seq:
                raise InputError(f"id '{name}' names a different sequence here than in an earlier row "
                                 "(other chains or another file?)", row.path, row.line)
        contact, attention = structure_maps(complex_, config.cutoff, config.soft_width)
        first, second, swapped = canonical_pair(sequence_key(complex_.seq_a), sequence_key(complex_.seq_b))
        seq_first, seq_second = (complex_.seq_b, complex_.seq_a) if swapped else (complex_.seq_a, complex_.seq_b)
        if swapped:
            contact, attention = contact.T, attention.T
        if (first, second) in maps:
            merged += 1
            log.info("%s: %s/%s repeats an earlier sequence pair; storing the union of both contact maps",
                     row.where, row.id_a, row.id_b)
            _, _, old_contact, old_attention = maps[(first, second)]
            contact, attention = np.maximum(old_contact, contact), np.maximum(old_attention, attention)
        maps[(first, second)] = (seq_first, seq_second, contact, attention)
        if progress:
            progress(done, len(rows))
    n_negatives = 0
    if config.negatives:
        table = read_pairs(config.negatives, sequences if sequences is not None else own_sequences)
        for pair in table.pairs:
            if pair.label != 0:
                continue
            first, second, swapped = canonical_pair(sequence_key(pair.seq_a), sequence_key(pair.seq_b))
            if (first, second) in maps:
                raise InputError(f"negative pair {pair.id_a}/{pair.id_b} is a complex of the manifest",
                                 config.negatives, pair.line)
            seq_first, seq_second = (pair.seq_b, pair.seq_a) if swapped else (pair.seq_a, pair.seq_b)
            zeros = np.zeros((len(seq_first), len(seq_second)), dtype=np.float32)
            maps[(first, second)] = (seq_first, seq_second, zeros, zeros)
            n_negatives += 1
    contacts = observed = cells = 0
    with CacheLock(config.out), CacheBuilder(config.out, structure_cache_meta(config), StorageConfig(),
                                             overwrite=config.overwrite) as builder:
        for seq_first, seq_second, contact, attention in maps.values():
            builder.add_pair(seq_first, seq_second, contact, attention)
            for seq in (seq_first, seq_second):
                builder.add_protein(seq, composition_embedding(seq))
            contacts += int(contact.sum())
            observed += int(observed_from_attention(attention).sum())
            cells += contact.size
        n_proteins = builder.n_proteins
    if config.fasta_out:
        _write_fasta_atomic(config.fasta_out, own_sequences)
    return StructureCacheReport(str(config.out), len(rows), len(maps), merged, n_proteins, n_negatives, contacts,
                                observed / cells if cells else 0.0, config.fasta_out)
