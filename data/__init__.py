"""The data layer: alphabet, FASTA and pairs IO with validation, content keys, splits and subsamples, negatives,
synthetic data, structures; and the process helpers every stage shares (device names, allocator).

The bottom layer: imports nothing else of the project (torch only late, inside `device`).
"""
from data.alphabet import PAD_INDEX, RESIDUES, VOCAB_SIZE, encode, encode_batch
from data.errors import InputError, UserError
from data.fasta import read_fasta, write_fasta
from data.keys import canonical_pair, sequence_key
from data.pairs import Pair, PairTable, read_pairs, write_pairs

__all__ = [
    "PAD_INDEX", "RESIDUES", "VOCAB_SIZE", "encode", "encode_batch", "InputError", "UserError", "read_fasta",
    "write_fasta", "canonical_pair", "sequence_key", "Pair", "PairTable", "read_pairs", "write_pairs",
]
