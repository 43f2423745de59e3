"""Content addresses: proteins are keyed by their sequence, pairs by the canonically ordered pair of keys.

Ids never enter a key, so one cache serves any id naming and either pair orientation.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

KEY_LENGTH = 64  # hex characters of SHA-256


def sequence_key(sequence: str) -> str:
    """SHA-256 hex digest of the (upper-case, validated) sequence."""
    return hashlib.sha256(sequence.encode("ascii")).hexdigest()


def canonical_pair(key_a: str, key_b: str) -> tuple[str, str, bool]:
    """(first, second, swapped): the stored orientation of a pair; swapped means B's key sorts first."""
    if key_b < key_a:
        return key_b, key_a, True
    return key_a, key_b, False


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes (weights, checkpoints, pairs tables), read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
