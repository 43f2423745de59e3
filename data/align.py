"""Aligning the residues a structure resolved to a given sequence, so that map cell (i, j) always means residue i of
A's sequence and residue j of B's.

Identical sequences map one to one. Otherwise (residues missing from the model, point mutations, a longer or
shorter construct) a global alignment with BLOSUM62 and affine gaps decides which sequence position each structure
residue stands for; sequence positions without a structure residue are unaligned (index -1), and maps built from
the alignment mask them instead of shifting later residues into their place.

The alignment itself is gemmi's `align_string_sequences` (C++, Needleman-Wunsch with affine gaps); this module only
turns its CIGAR string into an index array.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import gemmi
import numpy as np

_CIGAR = re.compile(r"(\d+)([MID])")


@dataclass(frozen=True)
class Alignment:
    """Where each position of the target sequence sits in the structure's residue list."""

    index: np.ndarray  # int64 (len(sequence),): structure residue index, -1 where the position is unaligned
    identical: int  # aligned positions whose letters agree
    structure_length: int

    @property
    def aligned(self) -> int:
        return int((self.index >= 0).sum())

    @property
    def identity(self) -> float:
        """Fraction of aligned positions with the same letter (0.0 when nothing is aligned)."""
        return self.identical / self.aligned if self.aligned else 0.0

    @property
    def coverage(self) -> float:
        """Fraction of the sequence's positions that have a structure residue."""
        return self.aligned / len(self.index) if len(self.index) else 0.0

    @property
    def mask(self) -> np.ndarray:
        return self.index >= 0


def _residue_names(sequence: str) -> list[str]:
    # gemmi's BLOSUM62 scoring is keyed by three-letter names; anything non-standard scores as UNK.
    return [gemmi.expand_one_letter(letter, gemmi.ResidueKind.AA) or "UNK" for letter in sequence]


def align_to_sequence(structure_sequence: str, sequence: str) -> Alignment:
    """Align a structure's residue letters (query) to `sequence` (target) globally.

    Returns, for every position of `sequence`, the index of the structure residue aligned to it or -1.
    """
    if structure_sequence == sequence:
        return Alignment(np.arange(len(sequence), dtype=np.int64), len(sequence), len(structure_sequence))
    index = np.full(len(sequence), -1, dtype=np.int64)
    if not structure_sequence or not sequence:
        return Alignment(index, 0, len(structure_sequence))
    result = gemmi.align_string_sequences(_residue_names(structure_sequence), _residue_names(sequence), [],
                                          gemmi.AlignmentScoring("b"))
    query_pos = target_pos = identical = 0
    for count_text, op in _CIGAR.findall(result.cigar_str()):
        count = int(count_text)
        if op == "M":  # both advance (a match or a substitution)
            for _ in range(count):
                index[target_pos] = query_pos
                identical += structure_sequence[query_pos] == sequence[target_pos]
                query_pos += 1
                target_pos += 1
        elif op == "I":  # structure residue with no sequence position
            query_pos += count
        else:  # "D": sequence positions the structure lacks
            target_pos += count
    if query_pos != len(structure_sequence) or target_pos != len(sequence):
        raise RuntimeError(f"gemmi alignment CIGAR {result.cigar_str()} does not cover both sequences "
                           f"({query_pos}/{len(structure_sequence)}, {target_pos}/{len(sequence)})")
    return Alignment(index, identical, len(structure_sequence))


def project_map(values: np.ndarray, rows: Alignment, cols: Alignment, fill: float = 0.0) -> np.ndarray:
    """Re-index a (structure A residues, structure B residues) map onto the two sequences: (len A, len B).

    Cells whose row or column is unaligned get `fill`.
    """
    out = np.full((len(rows.index), len(cols.index)), fill, dtype=np.asarray(values).dtype)
    row_ok, col_ok = rows.mask, cols.mask
    # (n_rows_aligned, n_cols_aligned) block gathered from the structure map
    out[np.ix_(row_ok, col_ok)] = np.asarray(values)[np.ix_(rows.index[row_ok], cols.index[col_ok])]
    return out


def observed_cells(rows: Alignment, cols: Alignment) -> np.ndarray:
    """Boolean (len A, len B): True where both residues have structure coordinates."""
    return rows.mask[:, None] & cols.mask[None, :]
