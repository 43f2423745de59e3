"""The teacher-cache schema: dataset names, storage encodings and the version, in one place.

Layout of a cache file (documented for users in docs/cache-format.md):

    /                       attrs: format, schema_version, teacher, model, weights_sha256, random_weights,
                                   embedding_dim, settings (JSON), storage (JSON), tool_version, created,
                                   command_line, complete
    /proteins/key           (N,)  S64     SHA-256 of the sequence (data.keys.sequence_key)
    /proteins/sequence      (N,)  str     the sequence itself (so a cache can be checked and listed)
    /proteins/length        (N,)  int32
    /proteins/tiled         (N,)  uint8   1 when the embedding was computed in windows
    /proteins/embedding     (N, D) float32 mean-pooled final-layer embedding
    /proteins/residue_offset (N,) int64   row of the first residue in residue_embedding, -1 if absent
    /proteins/residue_embedding (M, D) float16  optional per-residue embeddings, rows concatenated
    /pairs/key_a, key_b     (P,)  S64     canonical order: key_a <= key_b
    /pairs/len_a, len_b     (P,)  int32
    /pairs/offset           (P,)  int64   first cell of the pair's maps in the flat map datasets
    /pairs/tiled            (P,)  uint8   1 when the maps were stitched from windows
    /pairs/contact          (C,)  storage dtype, flat row-major (len_a, len_b) maps, chunked + compressed
    /pairs/attention        (C,)  same layout as contact

Maps hold probabilities in [0, 1]. A file counts as a cache only once `complete` is set; writers build it under
a temporary name and rename it into place.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

FORMAT_NAME = "protein-loftr-teacher-cache"
SCHEMA_VERSION = 1
MAP_NAMES = ("contact", "attention")
TEACHER_KINDS = ("esm2", "synthetic", "structure")
KEY_DTYPE = "S64"

# Attributes that define what a cache's content means; caches can be merged or extended only when these agree.
FINGERPRINT_ATTRS = ("format", "schema_version", "teacher", "model", "weights_sha256", "settings")


@dataclass(frozen=True)
class StorageConfig:
    """How maps are stored. float16 keeps ~3 significant digits at any magnitude; uint8 is linear in [0, 1]."""

    dtype: str = "float16"  # float16 | uint8 | float32
    compression: str | None = "gzip"  # gzip | lzf | None
    compression_level: int = 4
    shuffle: bool = True
    chunk_cells: int = 16384  # docs/cache-format.md: same size as 65536, ~30% less CPU per random pair read

    def __post_init__(self) -> None:
        if self.dtype not in ("float16", "uint8", "float32"):
            raise ValueError(f"unknown map storage dtype {self.dtype!r} (float16, uint8 or float32)")
        if self.compression not in ("gzip", "lzf", None):
            raise ValueError(f"unknown compression {self.compression!r} (gzip, lzf or none)")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "StorageConfig":
        return cls(**json.loads(text))

    def dataset_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"chunks": (self.chunk_cells,), "maxshape": (None,), "shuffle": self.shuffle}
        if self.compression == "gzip":
            options.update(compression="gzip", compression_opts=self.compression_level)
        elif self.compression == "lzf":
            options.update(compression="lzf")
        return options

    def encode(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float32)
        if self.dtype == "uint8":
            return np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
        return values.astype(self.dtype)

    def decode(self, stored: np.ndarray) -> np.ndarray:
        if self.dtype == "uint8":
            return stored.astype(np.float32) / np.float32(255.0)
        return stored.astype(np.float32)

    @property
    def max_abs_error(self) -> float:
        """Worst-case absolute error of one stored value in [0, 1]."""
        return {"float32": 6e-8, "float16": 2.5e-4, "uint8": 0.5 / 255.0}[self.dtype]


def fingerprint(attrs: dict[str, Any]) -> str:
    """Short hash of the attributes that define a cache's content (not its size or creation time)."""
    payload = {name: _plain(attrs.get(name)) for name in FINGERPRINT_ATTRS}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
