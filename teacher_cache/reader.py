"""Reading caches. Works without fair-esm (numpy + h5py only), and in DataLoader workers: each process opens
its own HDF5 handle on first use.

    from teacher_cache import TeacherCache
    with TeacherCache.open("cache.h5") as cache:
        maps = cache.pair(seq_a, seq_b)   # .contact, .attention: float32 (len(seq_a), len(seq_b))
        prot = cache.protein(seq)         # .embedding: float32 (D,)
        cache.info()
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from data.keys import canonical_pair, sequence_key
from teacher_cache.errors import CacheError, MissingEntryError
from teacher_cache.schema import FORMAT_NAME, MAP_NAMES, SCHEMA_VERSION, StorageConfig


@dataclass
class PairMaps:
    contact: np.ndarray  # float32 (La, Lb), rows = residues of the first sequence asked for
    attention: np.ndarray
    tiled: bool


@dataclass
class ProteinEntry:
    embedding: np.ndarray  # float32 (D,)
    residue_embedding: np.ndarray | None  # float32 (L, D) when stored
    tiled: bool


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


class TeacherCache:
    """Read-only view of one cache file; the index is loaded into memory, maps are read on demand."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file: h5py.File | None = None
        self._pid: int | None = None
        handle = self._handle()
        attrs = {name: _text(handle.attrs[name]) for name in handle.attrs.keys()}
        if attrs.get("format") != FORMAT_NAME:
            self.close()
            raise CacheError(f"{self.path} is an HDF5 file but not a protein-loftr teacher cache")
        if int(attrs.get("schema_version", -1)) != SCHEMA_VERSION:
            self.close()
            raise CacheError(f"{self.path} has cache schema version {attrs.get('schema_version')}, this version "
                             f"reads {SCHEMA_VERSION}; rebuild the cache with this version's `precompute`")
        if not attrs.get("complete", False):
            self.close()
            raise CacheError(f"{self.path} is an incomplete cache (its writer did not finish)")
        self.attrs = attrs
        try:
            self.settings: dict[str, Any] = json.loads(attrs.get("settings", "{}"))
            self.storage = StorageConfig.from_json(attrs["storage"])
        except (KeyError, TypeError, ValueError) as exc:
            self.close()
            raise CacheError(f"{self.path} is damaged: its 'settings' or 'storage' attribute is missing or invalid "
                             f"({type(exc).__name__}: {exc})") from None
        try:
            pairs, proteins = handle["pairs"], handle["proteins"]
            key_a = pairs["key_a"][()].astype(str)
            key_b = pairs["key_b"][()].astype(str)
            self._pair_len_a = pairs["len_a"][()]
            self._pair_len_b = pairs["len_b"][()]
            self._pair_offset = pairs["offset"][()]
            self._pair_tiled = pairs["tiled"][()].astype(bool)
            self._protein_keys = proteins["key"][()].astype(str)
            self._protein_length = proteins["length"][()]
            self._protein_tiled = proteins["tiled"][()].astype(bool)
            self._residue_offset = proteins["residue_offset"][()]
        except (KeyError, OSError) as exc:
            self.close()
            raise CacheError(f"{self.path} is damaged: cannot read its index ({exc})") from None
        self._pair_rows = {(a, b): row for row, (a, b) in enumerate(zip(key_a, key_b))}
        self._pair_keys = list(zip(key_a, key_b))
        self._protein_rows = {key: row for row, key in enumerate(self._protein_keys)}

    @classmethod
    def open(cls, path: str | Path) -> "TeacherCache":
        path = Path(path)
        if not path.exists():
            raise CacheError(f"cache file {path} does not exist")
        return cls(path)

    # -- handle management (fork-safe) --------------------------------------------------------------------
    def _handle(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            try:
                self._file = h5py.File(self.path, "r")
            except OSError as exc:
                raise CacheError(f"{self.path} is not a readable HDF5 cache (truncated or corrupted?): {exc}") from None
            self._pid = os.getpid()
        return self._file

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __enter__(self) -> "TeacherCache":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"], state["_pid"] = None, None
        return state

    # -- lookups -----------------------------------------------------------------------------------------
    def _pair_row(self, seq_a: str, seq_b: str) -> tuple[int, bool]:
        first, second, swapped = canonical_pair(sequence_key(seq_a), sequence_key(seq_b))
        row = self._pair_rows.get((first, second))
        if row is None:
            raise MissingEntryError(
                f"pair not in cache {self.path}: sequences of length {len(seq_a)} and {len(seq_b)} "
                f"(keys {sequence_key(seq_a)[:12]}…, {sequence_key(seq_b)[:12]}…)")
        return row, swapped

    def has_pair(self, seq_a: str, seq_b: str) -> bool:
        first, second, _ = canonical_pair(sequence_key(seq_a), sequence_key(seq_b))
        return (first, second) in self._pair_rows

    def has_protein(self, sequence: str) -> bool:
        return sequence_key(sequence) in self._protein_rows

    def _read_row(self, row: int, names: tuple[str, ...] = MAP_NAMES, dtype: str = "float32") -> list[np.ndarray]:
        len_a, len_b = int(self._pair_len_a[row]), int(self._pair_len_b[row])
        start = int(self._pair_offset[row])
        stop = start + len_a * len_b
        pairs = self._handle()["pairs"]
        try:
            stored = [pairs[name][start:stop] for name in names]
        except (OSError, ValueError) as exc:
            raise CacheError(f"{self.path}: cannot decode the maps of pair row {row} ({exc})") from None
        if dtype == self.storage.dtype:  # stored values are the values (float16, float32): no conversion pass
            return [values.reshape(len_a, len_b) for values in stored]
        return [self.storage.decode(values).astype(dtype, copy=False).reshape(len_a, len_b) for values in stored]

    def pair_map(self, seq_a: str, seq_b: str, name: str, dtype: str = "float32") -> np.ndarray:
        """One map ("contact" or "attention") of (seq_a, seq_b), reading only that dataset.

        dtype "float16" returns a float16-stored map as stored (exact, half the memory, no conversion pass: what
        training reads); maps stored otherwise are decoded and rounded to it.
        """
        if name not in MAP_NAMES:
            raise ValueError(f"unknown map {name!r} (one of {', '.join(MAP_NAMES)})")
        if dtype not in ("float32", "float16"):
            raise ValueError(f"dtype {dtype!r}: float32 or float16")
        row, swapped = self._pair_row(seq_a, seq_b)
        (values,) = self._read_row(row, (name,), dtype)
        return values.T.copy() if swapped else values

    def pair(self, seq_a: str, seq_b: str) -> PairMaps:
        """Maps of (seq_a, seq_b), shape (len(seq_a), len(seq_b)), whichever orientation was stored."""
        row, swapped = self._pair_row(seq_a, seq_b)
        contact, attention = self._read_row(row)
        if swapped:
            contact, attention = contact.T.copy(), attention.T.copy()
        return PairMaps(contact, attention, bool(self._pair_tiled[row]))

    def _protein_row(self, sequence: str) -> int:
        key = sequence_key(sequence)
        row = self._protein_rows.get(key)
        if row is None:
            raise MissingEntryError(f"protein not in cache {self.path}: sequence of length {len(sequence)} "
                                    f"(key {key[:12]}…)")
        return row

    def protein(self, sequence: str) -> ProteinEntry:
        return self._protein_entry(self._protein_row(sequence))

    def protein_embeddings(self, sequences: list[str]) -> np.ndarray:
        """float32 (len(sequences), D): the mean embeddings of `sequences`, in one read of their rows."""
        rows = [self._protein_row(sequence) for sequence in sequences]
        if not rows:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        unique, where = np.unique(rows, return_inverse=True)
        dataset = self._handle()["proteins"]["embedding"]
        # a contiguous slice and a gather beat h5py's point selection when rows are dense; both read each row once
        if len(unique) * 4 >= unique[-1] - unique[0] + 1:
            block = dataset[int(unique[0]):int(unique[-1]) + 1][unique - unique[0]]
        else:
            block = dataset[unique]
        return block.astype(np.float32, copy=False)[where.reshape(-1)]

    def _protein_entry(self, row: int) -> ProteinEntry:
        proteins = self._handle()["proteins"]
        embedding = proteins["embedding"][row].astype(np.float32)
        residue = None
        offset = int(self._residue_offset[row])
        if offset >= 0:
            length = int(self._protein_length[row])
            residue = proteins["residue_embedding"][offset:offset + length].astype(np.float32)
        return ProteinEntry(embedding, residue, bool(self._protein_tiled[row]))

    # -- whole-cache views -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._pair_keys)

    @property
    def n_pairs(self) -> int:
        return len(self._pair_keys)

    @property
    def n_proteins(self) -> int:
        return len(self._protein_keys)

    @property
    def embedding_dim(self) -> int:
        return int(self.attrs["embedding_dim"])

    @property
    def fingerprint(self) -> str:
        return str(self.attrs["fingerprint"])

    @property
    def teacher(self) -> str:
        return str(self.attrs.get("teacher", ""))

    @property
    def random_weights(self) -> bool:
        return bool(self.attrs.get("random_weights", False))

    def pair_keys(self) -> list[tuple[str, str]]:
        """Canonical (key_a, key_b) of every stored pair, in file order."""
        return list(self._pair_keys)

    def protein_keys(self) -> list[str]:
        return list(self._protein_keys)

    def sequences(self) -> dict[str, str]:
        """{key: sequence} of every stored protein."""
        stored = self._handle()["proteins"]["sequence"][()]
        return {key: _text(seq) for key, seq in zip(self._protein_keys, stored)}

    def info(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "schema_version": int(self.attrs["schema_version"]),
            "teacher": self.teacher,
            "model": self.attrs.get("model", ""),
            "random_weights": self.random_weights,
            "weights_sha256": self.attrs.get("weights_sha256", ""),
            "settings": self.settings,
            "storage": json.loads(self.attrs["storage"]),
            "n_pairs": self.n_pairs,
            "n_proteins": self.n_proteins,
            "n_tiled_pairs": int(self._pair_tiled.sum()),
            "n_tiled_proteins": int(self._protein_tiled.sum()),
            "map_cells": int((self._pair_len_a.astype(np.int64) * self._pair_len_b).sum()),
            "embedding_dim": self.embedding_dim,
            "file_bytes": self.path.stat().st_size,
            "fingerprint": self.fingerprint,
            "tool_version": self.attrs.get("tool_version", ""),
            "created": self.attrs.get("created", ""),
            "command_line": self.attrs.get("command_line", ""),
        }

    def meta_for_builder(self) -> dict[str, Any]:
        """The metadata a CacheBuilder needs to write a cache with this one's fingerprint."""
        meta = {name: value for name, value in self.attrs.items()
                if name not in ("format", "schema_version", "settings", "storage", "tool_version", "created",
                                "command_line", "fingerprint", "complete")}
        meta = {name: (value.item() if isinstance(value, np.generic) else value) for name, value in meta.items()}
        meta["settings"] = self.settings
        return meta

    def iter_proteins(self) -> Iterator[tuple[str, ProteinEntry]]:
        """(sequence, entry) of every stored protein, file order."""
        sequences = self.sequences()
        for row, key in enumerate(self._protein_keys):
            yield sequences[key], self._protein_entry(row)

    def iter_pairs(self) -> Iterator[tuple[str, str, PairMaps]]:
        """(key_a, key_b, maps) in stored (canonical) orientation, file order."""
        for row, (key_a, key_b) in enumerate(self._pair_keys):
            contact, attention = self._read_row(row)
            yield key_a, key_b, PairMaps(contact, attention, bool(self._pair_tiled[row]))
