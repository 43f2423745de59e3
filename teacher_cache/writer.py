"""Writing caches: `CacheBuilder` builds a complete file under a temporary name and renames it into place, so a
cache on disk is either complete or absent. Joining caches is `teacher_cache.merge`.

Compression is the writer's main cost (a stage-one run on a GPU produces maps faster than one core can gzip them).
For gzip storage the builder therefore compresses whole chunks itself, on a thread pool (zlib releases the GIL),
and hands them to HDF5 with `write_direct_chunk`: the same bytes HDF5's shuffle and deflate filters would write
(a zlib stream of the byte-shuffled chunk), read back by any HDF5 reader. The last, partial chunk goes through
h5py as usual.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from data.errors import os_error_cause
from data.keys import canonical_pair, sequence_key
from data.version import TOOL_VERSION
from teacher_cache.errors import CacheError
from teacher_cache.schema import (FORMAT_NAME, KEY_DTYPE, MAP_NAMES, SCHEMA_VERSION, TEACHER_KINDS, StorageConfig,
                                  fingerprint)

_FLUSH_CELLS = 4_000_000  # buffered map cells per dataset before they are written out
MAX_COMPRESSION_THREADS = 8


def default_compression_threads() -> int:
    """Threads that compress map chunks: the CPUs this process may use, at most MAX_COMPRESSION_THREADS."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    return max(1, min(MAX_COMPRESSION_THREADS, available))


def gzip_chunk(values: np.ndarray, level: int, shuffle: bool) -> bytes:
    """One chunk as HDF5's filter pipeline stores it: shuffle (bytes grouped by significance), then deflate."""
    raw = np.ascontiguousarray(values)
    if shuffle and raw.itemsize > 1:
        raw = np.ascontiguousarray(raw.view(np.uint8).reshape(-1, raw.itemsize).T)  # (cells, bytes) => (bytes, cells)
    return zlib.compress(raw, level)  # reads the array's buffer: no copy to bytes


def _check_map(name: str, values: np.ndarray, shape: tuple[int, int], what: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float32)
    if values.shape != shape:
        raise ValueError(f"{what}: {name} map has shape {values.shape}, expected {shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{what}: {name} map holds NaN or infinite values")
    if values.size and (values.min() < -1e-4 or values.max() > 1 + 1e-4):
        raise ValueError(f"{what}: {name} map values must be probabilities in [0, 1] "
                         f"(found {values.min():.3g}..{values.max():.3g})")
    return np.clip(values, 0.0, 1.0)


class CacheBuilder:
    """Build a new cache file.

    meta: teacher (one of schema.TEACHER_KINDS), model, weights_sha256, random_weights, embedding_dim and
    settings (a JSON-able dict of everything that decides the maps' content). Use as a context manager: leaving
    the block normally commits (rename into place); an exception deletes the temporary file.
    """

    def __init__(self, path: str | Path, meta: dict[str, Any], storage: StorageConfig | None = None,
                 overwrite: bool = False, compression_threads: int | None = None):
        self.path = Path(path)
        self.storage = storage or StorageConfig()
        self.compression_threads = compression_threads or default_compression_threads()
        if meta.get("teacher") not in TEACHER_KINDS:
            raise ValueError(f"meta['teacher'] must be one of {TEACHER_KINDS}, got {meta.get('teacher')!r}")
        if "embedding_dim" not in meta:
            raise ValueError("meta['embedding_dim'] is required")
        if self.path.exists() and not overwrite:
            raise CacheError(f"{self.path} already exists (pass overwrite to replace it)")
        parent = self.path.parent
        if not parent.exists():
            raise CacheError(f"cannot write {self.path}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise CacheError(f"cannot write {self.path}: directory {parent} is not writable")
        self.meta = dict(meta)
        self.embedding_dim = int(meta["embedding_dim"])
        self.tmp_path = Path(f"{self.path}.partial-{os.getpid()}")
        try:
            self._file = h5py.File(self.tmp_path, "w")
        except OSError as exc:  # a read-only folder, no permission, a full disk: the user's to mend
            cause = os_error_cause(exc)
            if cause is None:
                raise
            raise CacheError(f"cannot write {self.path}: {cause[0]}") from None
        self._protein_rows: dict[str, int] = {}
        self._pair_rows: dict[tuple[str, str], int] = {}
        self._proteins: dict[str, list] = {"key": [], "sequence": [], "length": [], "tiled": [], "embedding": [],
                                           "residue_offset": []}
        self._pairs: dict[str, list] = {"key_a": [], "key_b": [], "len_a": [], "len_b": [], "offset": [],
                                        "tiled": []}
        self._map_buffers: dict[str, list[np.ndarray]] = {name: [] for name in MAP_NAMES}
        self._buffered_cells = 0
        self._cells = 0
        self._written_cells = 0  # cells of each map dataset on disk (all in whole chunks until the final flush)
        self._compressor: ThreadPoolExecutor | None = None
        self._residue_rows = 0
        self._residue_buffer: list[np.ndarray] = []
        self._init_datasets()

    # -- construction -------------------------------------------------------------------------------------
    def _init_datasets(self) -> None:
        pairs = self._file.create_group("pairs")
        options = self.storage.dataset_options()
        for name in MAP_NAMES:
            pairs.create_dataset(name, shape=(0,), dtype=np.dtype(self.storage.dtype), **options)
        self._file.create_group("proteins")
        dataset = pairs[MAP_NAMES[0]]
        # Compress chunks ourselves only where the pipeline is exactly [shuffle,] deflate (no checksum, no other filter).
        self._direct_chunks = (dataset.compression == "gzip" and not dataset.fletcher32 and dataset.scaleoffset is None
                               and dataset.chunks is not None)

    def __enter__(self) -> "CacheBuilder":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def has_pair(self, seq_a: str, seq_b: str) -> bool:
        first, second, _ = canonical_pair(sequence_key(seq_a), sequence_key(seq_b))
        return (first, second) in self._pair_rows

    def has_protein(self, sequence: str) -> bool:
        return sequence_key(sequence) in self._protein_rows

    def add_protein(self, sequence: str, embedding: np.ndarray, residue_embedding: np.ndarray | None = None,
                    tiled: bool = False) -> bool:
        """Add one protein; returns False (and stores nothing) when it is already present."""
        return self._add_protein_entry(sequence_key(sequence), sequence, embedding, residue_embedding, tiled)

    def _add_protein_entry(self, key: str, sequence: str, embedding: np.ndarray,
                           residue_embedding: np.ndarray | None, tiled: bool) -> bool:
        if key in self._protein_rows:
            return False
        embedding = np.asarray(embedding, dtype=np.float32)
        if embedding.shape != (self.embedding_dim,):
            raise ValueError(f"protein {key[:12]}: embedding shape {embedding.shape}, expected ({self.embedding_dim},)")
        if not np.isfinite(embedding).all():
            raise ValueError(f"protein {key[:12]}: embedding holds NaN or infinite values")
        offset = -1
        if residue_embedding is not None:
            residue_embedding = np.asarray(residue_embedding, dtype=np.float16)
            if residue_embedding.shape != (len(sequence), self.embedding_dim):
                raise ValueError(f"protein {key[:12]}: per-residue embedding shape {residue_embedding.shape}, "
                                 f"expected ({len(sequence)}, {self.embedding_dim})")
            offset = self._residue_rows
            self._residue_rows += len(sequence)
            self._residue_buffer.append(residue_embedding)
        self._protein_rows[key] = len(self._protein_rows)
        for name, value in (("key", key), ("sequence", sequence), ("length", len(sequence)), ("tiled", int(tiled)),
                            ("embedding", embedding), ("residue_offset", offset)):
            self._proteins[name].append(value)
        return True

    def add_pair(self, seq_a: str, seq_b: str, contact: np.ndarray, attention: np.ndarray,
                 tiled: bool = False) -> bool:
        """Add the (len(seq_a), len(seq_b)) maps of one pair; returns False when the pair is already present.

        Stored in canonical orientation (transposed when B's key sorts first), so either orientation reads back.
        """
        key_a, key_b = sequence_key(seq_a), sequence_key(seq_b)
        first, second, swapped = canonical_pair(key_a, key_b)
        if (first, second) in self._pair_rows:
            return False
        shape = (len(seq_a), len(seq_b))
        what = f"pair {key_a[:12]}/{key_b[:12]}"
        contact = _check_map("contact", contact, shape, what)
        attention = _check_map("attention", attention, shape, what)
        if swapped:
            contact, attention = contact.T, attention.T
        self._add_pair_entry(first, second, contact, attention, tiled)
        return True

    def add_canonical_pair(self, key_a: str, key_b: str, contact: np.ndarray, attention: np.ndarray,
                           tiled: bool = False) -> bool:
        """Add maps stored under content keys in canonical orientation (key_a <= key_b, rows = key_a's residues), as
        `TeacherCache.iter_pairs` yields them; returns False when the pair is already present."""
        if key_a > key_b:
            raise ValueError(f"pair {key_a[:12]}/{key_b[:12]}: keys not in canonical order")
        if (key_a, key_b) in self._pair_rows:
            return False
        shape = np.shape(contact)
        what = f"pair {key_a[:12]}/{key_b[:12]}"
        self._add_pair_entry(key_a, key_b, _check_map("contact", contact, shape, what),
                             _check_map("attention", attention, shape, what), tiled)
        return True

    def _add_pair_entry(self, key_a: str, key_b: str, contact: np.ndarray, attention: np.ndarray,
                        tiled: bool) -> None:
        """Append maps already in canonical orientation (key_a <= key_b)."""
        len_a, len_b = contact.shape
        self._pair_rows[(key_a, key_b)] = len(self._pair_rows)
        for name, value in (("key_a", key_a), ("key_b", key_b), ("len_a", len_a), ("len_b", len_b),
                            ("offset", self._cells), ("tiled", int(tiled))):
            self._pairs[name].append(value)
        for name, values in (("contact", contact), ("attention", attention)):
            self._map_buffers[name].append(self.storage.encode(np.ascontiguousarray(values).reshape(-1)))
        self._cells += len_a * len_b
        self._buffered_cells += len_a * len_b
        if self._buffered_cells >= _FLUSH_CELLS:
            self._flush_maps()

    def _flush_maps(self, final: bool = False) -> None:
        """Write the buffered cells: whole chunks only (the rest stays buffered) unless `final`."""
        if not self._buffered_cells:
            return
        if self._direct_chunks:  # cells in whole chunks, compressed by us
            chunk = self._file["pairs"][MAP_NAMES[0]].chunks[0]
            whole = self._buffered_cells // chunk * chunk
        else:  # everything through HDF5's pipeline
            whole, final = 0, True
        start = self._written_cells
        for name in MAP_NAMES:
            dataset = self._file["pairs"][name]
            block = np.concatenate(self._map_buffers[name])
            if whole:
                dataset.resize((start + whole,))
                self._write_chunks(dataset, start, block[:whole])
            rest = block[whole:]
            if final and len(rest):
                dataset.resize((start + len(block),))
                dataset[start + whole:] = rest
                rest = rest[:0]
            self._map_buffers[name] = [rest] if len(rest) else []
        written = self._buffered_cells if final else whole
        self._written_cells += written
        self._buffered_cells -= written

    def _write_chunks(self, dataset: h5py.Dataset, start: int, cells: np.ndarray) -> None:
        """Compress `cells` (whole chunks, the first at cell `start`) on the pool and write them in order."""
        chunk = dataset.chunks[0]
        level, shuffle = self.storage.compression_level, dataset.shuffle
        pieces = [cells[offset:offset + chunk] for offset in range(0, len(cells), chunk)]
        if self._compressor is None and self.compression_threads > 1:
            self._compressor = ThreadPoolExecutor(self.compression_threads, thread_name_prefix="cache-gzip")
        if self._compressor is None:
            compressed = (gzip_chunk(piece, level, shuffle) for piece in pieces)
        else:
            compressed = self._compressor.map(lambda piece: gzip_chunk(piece, level, shuffle), pieces)
        for index, data in enumerate(compressed):
            dataset.id.write_direct_chunk((start + index * chunk,), data, 0)

    # -- finishing ------------------------------------------------------------------------------------------
    def _write_index(self) -> None:
        proteins, pairs = self._file["proteins"], self._file["pairs"]
        dim = self.embedding_dim
        n_prot = len(self._proteins["key"])
        proteins.create_dataset("key", data=np.array(self._proteins["key"], dtype=KEY_DTYPE).reshape(n_prot))
        proteins.create_dataset("sequence", data=np.array(self._proteins["sequence"], dtype=object).reshape(n_prot),
                                dtype=h5py.string_dtype("ascii"))
        proteins.create_dataset("length", data=np.array(self._proteins["length"], dtype=np.int32).reshape(n_prot))
        proteins.create_dataset("tiled", data=np.array(self._proteins["tiled"], dtype=np.uint8).reshape(n_prot))
        embedding = (np.stack(self._proteins["embedding"]) if n_prot else np.zeros((0, dim), np.float32))
        proteins.create_dataset("embedding", data=embedding, chunks=(max(1, min(64, n_prot)), max(dim, 1))
                                if n_prot else None)
        proteins.create_dataset("residue_offset",
                                data=np.array(self._proteins["residue_offset"], dtype=np.int64).reshape(n_prot))
        if self._residue_buffer:
            proteins.create_dataset("residue_embedding", data=np.concatenate(self._residue_buffer),
                                    chunks=(min(1024, self._residue_rows), dim), compression="gzip",
                                    compression_opts=4, shuffle=True)
        n_pairs = len(self._pairs["key_a"])
        for name, dtype in (("key_a", KEY_DTYPE), ("key_b", KEY_DTYPE), ("len_a", np.int32), ("len_b", np.int32),
                            ("offset", np.int64), ("tiled", np.uint8)):
            pairs.create_dataset(name, data=np.array(self._pairs[name], dtype=dtype).reshape(n_pairs))

    def commit(self) -> Path:
        """Write the index and metadata, close, and atomically rename the file into place."""
        try:
            self._flush_maps(final=True)
            self._write_index()
            attrs = self._file.attrs
            meta = dict(self.meta)
            settings = meta.pop("settings", {})
            for name, value in meta.items():
                attrs[name] = json.dumps(value) if isinstance(value, (dict, list)) else value
            attrs["format"] = FORMAT_NAME
            attrs["schema_version"] = SCHEMA_VERSION
            attrs["settings"] = json.dumps(settings, sort_keys=True)
            attrs["storage"] = self.storage.to_json()
            attrs.setdefault("weights_sha256", "")
            attrs.setdefault("random_weights", False)
            attrs.setdefault("model", "")
            attrs["tool_version"] = TOOL_VERSION
            attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            attrs["command_line"] = shlex.join(sys.argv)
            attrs["fingerprint"] = fingerprint({k: attrs[k] for k in attrs.keys()})
            attrs["complete"] = True
            self._file.close()
            self._stop_compressor()
            os.replace(self.tmp_path, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        self._stop_compressor()
        try:
            self._file.close()
        except Exception:
            pass
        self.tmp_path.unlink(missing_ok=True)

    def _stop_compressor(self) -> None:
        if self._compressor is not None:
            self._compressor.shutdown(wait=True)
            self._compressor = None

    @property
    def n_pairs(self) -> int:
        return len(self._pair_rows)

    @property
    def n_proteins(self) -> int:
        return len(self._protein_rows)
