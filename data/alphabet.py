"""The one alphabet of the project: which residue letters are legal and how the student tokenises them.

The legal letters are fair-esm's amino-acid tokens (`esm.constants.proteinseq_toks`) without the gap and
insertion symbols '.' and '-'; `tests/test_alphabet.py` checks that they stay equal. The teacher runner
tokenises with fair-esm's own `Alphabet`; the student uses the indices below (0 is padding).
"""
from __future__ import annotations

import numpy as np

# Same order as fair-esm's proteinseq_toks["toks"][:25]: 20 standard residues, then X B U Z O.
RESIDUES = "LAGVSERTIDPKQNFYMHWCXBUZO"
N_STANDARD = 20  # RESIDUES[:N_STANDARD] are the standard amino acids: tokens 1..N_STANDARD
PAD_INDEX = 0
VOCAB_SIZE = len(RESIDUES) + 1

_LOOKUP = np.full(256, -1, dtype=np.int64)
for _i, _c in enumerate(RESIDUES):
    _LOOKUP[ord(_c)] = _i + 1


def invalid_characters(sequence: str) -> list[str]:
    """Characters of an upper-cased sequence that are not legal residues, in order of first appearance."""
    seen: list[str] = []
    for c in sequence:
        if c not in RESIDUES and c not in seen:
            seen.append(c)
    return seen


def encode(sequence: str) -> np.ndarray:
    """Residue indices (1..VOCAB_SIZE-1) of a validated, upper-case sequence, as int64 of shape (L,)."""
    codes = np.frombuffer(sequence.encode("ascii"), dtype=np.uint8)
    tokens = _LOOKUP[codes]
    if (tokens < 0).any():
        raise ValueError(f"illegal residue characters {invalid_characters(sequence)} in sequence")
    return tokens


def encode_batch(sequences: list[str], length: int | None = None) -> np.ndarray:
    """Right-padded (B, L) int64 token matrix; L is the longest sequence unless `length` is given."""
    length = max((len(s) for s in sequences), default=0) if length is None else length
    out = np.full((len(sequences), length), PAD_INDEX, dtype=np.int64)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = encode(seq[:length])
    return out
