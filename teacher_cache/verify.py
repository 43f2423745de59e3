"""Integrity check of a cache file: schema, index consistency, and that every stored map decodes.

Reads the file with plain h5py (not `TeacherCache`, which refuses damaged files at open) so it can list every
problem it finds rather than stop at the first. Only a file that cannot be opened at all raises `CacheError`.

    report = verify_cache("cache.h5")
    report.ok, report.problems      # [] when the file is sound
    report.raise_if_problems()      # CacheError listing the problems
    report.notes                    # facts that are not problems
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

from data.alphabet import invalid_characters
from data.keys import sequence_key
from teacher_cache.errors import CacheError
from teacher_cache.schema import (FINGERPRINT_ATTRS, FORMAT_NAME, MAP_NAMES, SCHEMA_VERSION, TEACHER_KINDS,
                                  StorageConfig, fingerprint)

REQUIRED_ATTRS = ("format", "schema_version", "teacher", "model", "weights_sha256", "random_weights",
                  "embedding_dim", "settings", "storage", "tool_version", "created", "command_line", "fingerprint",
                  "complete")
PROTEIN_DATASETS = ("key", "sequence", "length", "tiled", "embedding", "residue_offset")
PAIR_INDEX_DATASETS = ("key_a", "key_b", "len_a", "len_b", "offset", "tiled")
MAX_LISTED = 10  # problems listed per kind; the rest are counted
BLOCK_CELLS = 1 << 22  # map cells decoded per read
MAX_EMBEDDING = 1e4  # |value| of a sound embedding stays far below this (ESM-2's are O(1)-O(10))

Progress = Callable[[int, int], None]  # (map cells checked, total map cells)


@dataclass
class VerifyReport:
    path: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    n_pairs: int = 0
    n_proteins: int = 0
    map_cells: int = 0
    cells_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_if_problems(self) -> None:
        if self.problems:
            listed = "\n  ".join(self.problems)
            raise CacheError(f"{self.path} failed verification with {len(self.problems)} problem(s):\n  {listed}")


class _Problems:
    """Collects problems per kind, listing the first MAX_LISTED of each and counting the rest."""

    def __init__(self) -> None:
        self._by_kind: dict[str, list[str]] = defaultdict(list)
        self._extra: dict[str, int] = defaultdict(int)
        self._order: list[str] = []

    def add(self, kind: str, message: str) -> None:
        if kind not in self._by_kind:
            self._order.append(kind)
        if len(self._by_kind[kind]) < MAX_LISTED:
            self._by_kind[kind].append(message)
        else:
            self._extra[kind] += 1

    def listed(self) -> list[str]:
        out: list[str] = []
        for kind in self._order:
            out.extend(self._by_kind[kind])
            if self._extra[kind]:
                out.append(f"... and {self._extra[kind]} more problem(s) of kind '{kind}'")
        return out

    def __bool__(self) -> bool:
        return bool(self._order)


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def verify_cache(path: str | Path, progress: Progress | None = None) -> VerifyReport:
    """Check a cache file and return every problem found (an empty list means it is sound)."""
    path = Path(path)
    if not path.exists():
        raise CacheError(f"cache file {path} does not exist")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise CacheError(f"{path} cannot be opened as HDF5 (truncated or corrupted?): {exc}") from None
    report = VerifyReport(str(path))
    problems = _Problems()
    with handle:
        storage = _check_attributes(handle, problems)
        if storage is not None:
            _Checker(handle, storage, problems, report, progress).run()
    report.problems = problems.listed()
    return report


def _check_attributes(handle: h5py.File, problems: _Problems) -> StorageConfig | None:
    """Root attributes; returns the storage config when the layout can be checked further."""
    attrs = {name: _text(handle.attrs[name]) for name in handle.attrs.keys()}
    if attrs.get("format") != FORMAT_NAME:
        problems.add("schema", f"not a protein-loftr teacher cache: attribute 'format' is {attrs.get('format')!r}, "
                               f"expected {FORMAT_NAME!r}")
        return None
    if attrs.get("schema_version") != SCHEMA_VERSION:
        problems.add("schema", f"schema version {attrs.get('schema_version')!r}, this version checks "
                               f"{SCHEMA_VERSION}; rebuild the cache with this version's `precompute`")
        return None
    for name in REQUIRED_ATTRS:
        if name not in attrs:
            problems.add("schema", f"root attribute '{name}' is missing")
    if "complete" in attrs and not attrs["complete"]:
        problems.add("schema", "the cache is marked incomplete (its writer did not finish)")
    if "teacher" in attrs and attrs["teacher"] not in TEACHER_KINDS:
        problems.add("schema", f"teacher {attrs['teacher']!r} is not one of {', '.join(TEACHER_KINDS)}")
    if "settings" in attrs:
        try:
            if not isinstance(json.loads(attrs["settings"]), dict):
                raise ValueError("not a JSON object")
        except (TypeError, ValueError) as exc:
            problems.add("schema", f"attribute 'settings' is not a JSON object ({exc})")
    if "embedding_dim" in attrs and not (isinstance(attrs["embedding_dim"], int) and attrs["embedding_dim"] > 0):
        problems.add("schema", f"attribute 'embedding_dim' is {attrs['embedding_dim']!r}, expected a positive int")
    if "fingerprint" in attrs and all(name in attrs for name in FINGERPRINT_ATTRS):
        expected = fingerprint({name: handle.attrs[name] for name in handle.attrs.keys()})
        if attrs["fingerprint"] != expected:
            problems.add("schema", f"fingerprint {attrs['fingerprint']!r} does not match the attributes "
                                   f"(recomputed {expected!r}): the metadata was edited")
    try:
        return StorageConfig.from_json(attrs["storage"])
    except KeyError:
        return None
    except (TypeError, ValueError) as exc:
        problems.add("schema", f"attribute 'storage' is not a valid storage config ({exc})")
        return None


class _Checker:
    """Index and map checks once the root attributes are known to be usable."""

    def __init__(self, handle: h5py.File, storage: StorageConfig, problems: _Problems, report: VerifyReport,
                 progress: Progress | None):
        self.handle, self.storage, self.problems, self.report = handle, storage, problems, report
        self.progress = progress
        self.embedding_dim = _text(handle.attrs.get("embedding_dim", 0))
        self.context = _context(handle)

    def _check_tiled(self, kind: str, row: int, flag: int, tokens: int, what: str) -> None:
        """The stored `tiled` flag against what the lengths imply under the cache's max_tokens setting."""
        if self.context is None:
            return
        expected = tokens > self.context[0]
        if bool(flag) != expected:
            self.problems.add(f"{kind} tiled", f"{what}: tiled flag is {int(flag)} but {tokens} tokens "
                                               f"{'exceed' if expected else 'fit in'} the cache's max_tokens "
                                               f"{self.context[0]} (a flipped flag)")

    def run(self) -> None:
        proteins = self._read_group("proteins", PROTEIN_DATASETS)
        pairs = self._read_group("pairs", PAIR_INDEX_DATASETS)
        lengths_by_key = self._check_proteins(proteins) if proteins is not None else None
        if pairs is not None:
            self._check_pairs(pairs, lengths_by_key)

    def _read_group(self, group: str, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
        if group not in self.handle:
            self.problems.add("schema", f"group /{group} is missing")
            return None
        out: dict[str, np.ndarray] = {}
        for name in names:
            if name not in self.handle[group]:
                self.problems.add("schema", f"dataset /{group}/{name} is missing")
                continue
            try:
                out[name] = self.handle[group][name][()]
            except OSError as exc:
                self.problems.add("index", f"/{group}/{name} cannot be read ({exc})")
        if len(out) < len(names):
            return None
        sizes = {name: len(values) for name, values in out.items()}
        if len(set(sizes.values())) > 1:
            self.problems.add("index", f"/{group} index datasets have different lengths: {sizes}")
            return None
        return out

    # -- proteins -------------------------------------------------------------------------------------------
    def _check_proteins(self, proteins: dict[str, np.ndarray]) -> dict[str, int]:
        keys = proteins["key"].astype(str)
        sequences = [_text(s) for s in proteins["sequence"]]
        lengths = proteins["length"]
        self.report.n_proteins = len(keys)
        lengths_by_key: dict[str, int] = {}
        for row, (key, sequence, length) in enumerate(zip(keys, sequences, lengths)):
            if key in lengths_by_key:
                self.problems.add("protein key", f"protein row {row}: key {key[:12]}… appears twice")
            if not isinstance(sequence, str) or not sequence:
                self.problems.add("protein sequence", f"protein row {row}: empty or unreadable sequence")
                continue
            bad = invalid_characters(sequence)
            if bad:
                self.problems.add("protein sequence", f"protein row {row}: illegal residue characters {bad}")
            elif sequence_key(sequence) != key:
                self.problems.add("protein key", f"protein row {row}: key {key[:12]}… is not the SHA-256 of its "
                                                 f"stored sequence ({sequence_key(sequence)[:12]}…)")
            if int(length) != len(sequence):
                self.problems.add("protein length", f"protein row {row}: length {int(length)} but its sequence "
                                                    f"has {len(sequence)} residues")
            lengths_by_key.setdefault(key, int(length))
        embedding = proteins["embedding"]
        if embedding.shape != (len(keys), self.embedding_dim):
            self.problems.add("embedding", f"/proteins/embedding has shape {embedding.shape}, expected "
                                           f"({len(keys)}, {self.embedding_dim})")
        elif not np.isfinite(embedding).all():
            rows = np.flatnonzero(~np.isfinite(embedding).all(axis=1))
            self.problems.add("embedding", f"/proteins/embedding holds NaN or infinite values in rows "
                                           f"{rows[:10].tolist()}")
        elif embedding.size and np.abs(embedding).max() >= MAX_EMBEDDING:
            rows = np.flatnonzero((np.abs(embedding) >= MAX_EMBEDDING).any(axis=1))
            self.problems.add("embedding", f"/proteins/embedding holds values outside (-{MAX_EMBEDDING:g}, "
                                           f"{MAX_EMBEDDING:g}) in rows {rows[:10].tolist()}, e.g. "
                                           f"{float(embedding[rows[0]][np.abs(embedding[rows[0]]).argmax()]):.3g}")
        for row, (flag, length) in enumerate(zip(proteins["tiled"], lengths)):
            self._check_tiled("protein", row, int(flag), int(length) + 2, f"protein row {row}")
        self._check_residue_embeddings(proteins)
        return lengths_by_key

    def _check_residue_embeddings(self, proteins: dict[str, np.ndarray]) -> None:
        offsets, lengths = proteins["residue_offset"].astype(np.int64), proteins["length"].astype(np.int64)
        present = offsets >= 0
        if not present.any():
            if "residue_embedding" in self.handle["proteins"]:
                self.problems.add("residue embedding", "/proteins/residue_embedding exists but no protein points "
                                                       "into it")
            return
        if "residue_embedding" not in self.handle["proteins"]:
            self.problems.add("residue embedding", f"{int(present.sum())} protein(s) have a residue_offset but "
                                                   "/proteins/residue_embedding is missing")
            return
        dataset = self.handle["proteins"]["residue_embedding"]
        if dataset.ndim != 2 or dataset.shape[1] != self.embedding_dim:
            self.problems.add("residue embedding", f"/proteins/residue_embedding has shape {dataset.shape}, "
                                                   f"expected (rows, {self.embedding_dim})")
        for row in np.flatnonzero(present):
            start, stop = int(offsets[row]), int(offsets[row] + lengths[row])
            if stop > dataset.shape[0]:
                self.problems.add("residue embedding", f"protein row {row}: residue rows {start}..{stop} run past "
                                                       f"the {dataset.shape[0]} stored rows")
        order = np.flatnonzero(present)[np.argsort(offsets[present], kind="stable")]
        expected = np.concatenate([[0], np.cumsum(lengths[order])[:-1]])
        if not np.array_equal(offsets[order], expected) or int(lengths[order].sum()) != dataset.shape[0]:
            self.problems.add("residue embedding", "residue_offset values are not contiguous (gaps or overlaps "
                                                   "between proteins' residue rows)")
        rows_per_block = max(1, BLOCK_CELLS // max(1, dataset.shape[1] if dataset.ndim == 2 else 1))
        for start in range(0, dataset.shape[0], rows_per_block):
            stop = min(dataset.shape[0], start + rows_per_block)
            try:
                values = dataset[start:stop]
            except OSError as exc:
                self.problems.add("residue embedding", f"/proteins/residue_embedding rows {start}..{stop} cannot be "
                                                       f"decoded ({_short(exc)})")
                continue
            if not np.isfinite(values).all():
                self.problems.add("residue embedding", f"/proteins/residue_embedding rows {start}..{stop} hold NaN "
                                                       f"or infinite values")
            elif values.size and np.abs(values).max() >= MAX_EMBEDDING:
                self.problems.add("residue embedding", f"/proteins/residue_embedding rows {start}..{stop} hold "
                                                       f"values outside (-{MAX_EMBEDDING:g}, {MAX_EMBEDDING:g})")

    # -- pairs ----------------------------------------------------------------------------------------------
    def _check_pairs(self, pairs: dict[str, np.ndarray], lengths_by_key: dict[str, int] | None) -> None:
        key_a, key_b = pairs["key_a"].astype(str), pairs["key_b"].astype(str)
        len_a, len_b = pairs["len_a"].astype(np.int64), pairs["len_b"].astype(np.int64)
        offsets = pairs["offset"].astype(np.int64)
        self.report.n_pairs = len(key_a)
        seen: set[tuple[str, str]] = set()
        for row, (a, b) in enumerate(zip(key_a, key_b)):
            what = f"pair row {row} ({a[:12]}…/{b[:12]}…)"
            if (a, b) in seen:
                self.problems.add("pair key", f"{what}: appears twice")
            seen.add((a, b))
            if b < a:
                self.problems.add("pair key", f"{what}: keys are not in canonical order (key_a <= key_b)")
            if len_a[row] <= 0 or len_b[row] <= 0:
                self.problems.add("pair length", f"{what}: map shape ({len_a[row]}, {len_b[row]}) is empty")
            elif self.context is not None:
                self._check_tiled("pair", row, int(pairs["tiled"][row]),
                                  int(len_a[row] + len_b[row]) + self.context[1] + 2, what)
            if lengths_by_key is None:
                continue
            for side, key, length in (("A", a, len_a[row]), ("B", b, len_b[row])):
                if key not in lengths_by_key:
                    self.problems.add("pair protein", f"{what}: sequence {side} is not in /proteins")
                elif lengths_by_key[key] != length:
                    self.problems.add("pair length", f"{what}: len_{side.lower()} is {length} but the stored "
                                                     f"sequence has {lengths_by_key[key]} residues")
        sizes = len_a * len_b
        self.report.map_cells = int(sizes.sum())
        map_lengths = self._map_lengths()
        if map_lengths is None:
            return
        total = map_lengths[0]
        order = np.argsort(offsets, kind="stable")
        expected = np.concatenate([[0], np.cumsum(sizes[order])[:-1]]) if len(order) else np.zeros(0, np.int64)
        index_ok = True
        if not np.array_equal(offsets[order], expected):
            first = int(np.flatnonzero(offsets[order] != expected)[0])
            row = int(order[first])
            self.problems.add("pair offset", f"pair row {row}: offset {int(offsets[row])} but the maps before it end "
                                             f"at cell {int(expected[first])} (offsets must be contiguous: gap or "
                                             f"overlap)")
            index_ok = False
        if int(sizes.sum()) != total:
            self.problems.add("pair offset", f"the index covers {int(sizes.sum())} map cells but the map datasets "
                                             f"hold {total}")
            index_ok = False
        outside = np.flatnonzero((offsets < 0) | (offsets + sizes > total))
        for row in outside:
            self.problems.add("pair offset", f"pair row {row}: cells {int(offsets[row])}..{int(offsets[row] + sizes[row])} "
                                             f"lie outside the {total} stored cells")
        self._check_maps(total, offsets, sizes, index_ok)

    def _map_lengths(self) -> tuple[int, ...] | None:
        lengths = []
        for name in MAP_NAMES:
            if name not in self.handle["pairs"]:
                self.problems.add("schema", f"dataset /pairs/{name} is missing")
                return None
            dataset = self.handle["pairs"][name]
            if dataset.ndim != 1:
                self.problems.add("schema", f"/pairs/{name} has shape {dataset.shape}, expected a flat dataset")
                return None
            if dataset.dtype != np.dtype(self.storage.dtype):
                self.problems.add("schema", f"/pairs/{name} has dtype {dataset.dtype} but the storage config says "
                                            f"{self.storage.dtype}")
            lengths.append(dataset.shape[0])
        if len(set(lengths)) > 1:
            self.problems.add("schema", f"map datasets have different lengths {dict(zip(MAP_NAMES, lengths))}")
            return None
        return tuple(lengths)

    def _rows_of_cells(self, start: int, stop: int, offsets: np.ndarray, sizes: np.ndarray) -> list[int]:
        """Pair rows whose maps overlap cells [start, stop)."""
        return np.flatnonzero((offsets < stop) & (offsets + sizes > start)).tolist()

    def _check_maps(self, total: int, offsets: np.ndarray, sizes: np.ndarray, index_ok: bool) -> None:
        """Decode every cell of both map datasets: readable, finite, within [0, 1]."""
        checked = 0
        grand_total = total * len(MAP_NAMES)
        for name in MAP_NAMES:
            dataset = self.handle["pairs"][name]
            step = BLOCK_CELLS
            if dataset.chunks:  # read whole chunks, so a damaged chunk is found by the block that holds it
                step = max(dataset.chunks[0], BLOCK_CELLS // dataset.chunks[0] * dataset.chunks[0])
            for start in range(0, total, step):
                stop = min(total, start + step)
                for lo, hi, values, error in self._read_block(dataset, start, stop):
                    where = self._describe_cells(lo, hi, offsets, sizes, index_ok)
                    if error is not None:
                        self.problems.add("map decode", f"/pairs/{name} cells {lo}..{hi} ({where}) cannot be "
                                                        f"decoded: {error}")
                        continue
                    decoded = self.storage.decode(values)
                    bad = ~np.isfinite(decoded) | (decoded < 0.0) | (decoded > 1.0)
                    if bad.any():
                        cells = np.flatnonzero(bad) + lo
                        rows = sorted({r for c in cells[:50].tolist()
                                       for r in self._rows_of_cells(c, c + 1, offsets, sizes)})
                        self.problems.add("map value", f"/pairs/{name}: {int(bad.sum())} value(s) are NaN, infinite "
                                                       f"or outside [0, 1] in cells {lo}..{hi} (pair rows "
                                                       f"{rows[:10]}), e.g. {decoded[bad][:3].tolist()}")
                checked += stop - start
                self.report.cells_checked = checked
                if self.progress is not None:
                    self.progress(checked, grand_total)

    def _read_block(self, dataset: h5py.Dataset, start: int, stop: int):
        """Yield (start, stop, values, error); on a read error, retry chunk by chunk to isolate the damage."""
        try:
            yield start, stop, dataset[start:stop], None
            return
        except OSError as exc:
            if not dataset.chunks:
                yield start, stop, None, _short(exc)
                return
        chunk = dataset.chunks[0]
        for lo in range(start - start % chunk, stop, chunk):
            lo_, hi = max(lo, start), min(lo + chunk, stop)
            try:
                yield lo_, hi, dataset[lo_:hi], None
            except OSError as exc:
                yield lo_, hi, None, _short(exc)

    def _describe_cells(self, lo: int, hi: int, offsets: np.ndarray, sizes: np.ndarray, index_ok: bool) -> str:
        rows = self._rows_of_cells(lo, hi, offsets, sizes) if index_ok else []
        if not rows:
            return "no pair located"
        shown = ", ".join(str(r) for r in rows[:5]) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
        return f"pair rows {shown}"


def _context(handle: h5py.File) -> tuple[int, int] | None:
    """(max_tokens, linker length) from the cache's settings, when it records them (precompute's caches)."""
    try:
        settings = json.loads(_text(handle.attrs["settings"]))
        max_tokens, linker = settings["max_tokens"], settings["linker"]
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 3 or not isinstance(linker, str):
        return None
    return max_tokens, len(linker)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
