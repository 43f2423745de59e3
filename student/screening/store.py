"""Per-protein student features, computed once and held in memory or spilled to a memory-mapped file.

A store holds the features (L, D) of every protein of a `ProteinSet` end to end in one float32 array
(sum of L, D), the pooled features (n, P) of the features head (`StudentModel.pool`), and optionally the window-averaged coarse
features of the coarse pass. `encode_proteins` fills it from length-sorted batches under a token budget.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from data.alphabet import PAD_INDEX, encode_batch
from student.model import StudentModel
from student.screening.score import coarsen


class FeatureStore:
    """Variable-length (L, D) feature matrices of n proteins in one flat array, in memory or memory-mapped."""

    def __init__(self, lengths: np.ndarray, dim: int, spill_path: str | Path | None = None):
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.dim = dim
        shape = (max(int(self.offsets[-1]), 1), dim)
        self.spilled = spill_path is not None
        if spill_path is None:
            self.data = np.zeros(shape, dtype=np.float32)
        else:
            self.data = np.memmap(spill_path, dtype=np.float32, mode="w+", shape=shape)

    @staticmethod
    def nbytes_for(lengths: np.ndarray, dim: int) -> int:
        return int(np.sum(lengths)) * dim * 4

    def put(self, index: int, feat: np.ndarray) -> None:
        self.data[self.offsets[index]:self.offsets[index + 1]] = feat

    def get(self, index: int) -> np.ndarray:
        return np.asarray(self.data[self.offsets[index]:self.offsets[index + 1]])

    def gather(self, indices: np.ndarray | list[int], extra: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded features (n, Lmax, D + extra) and mask (n, Lmax) of the proteins `indices`; the `extra`
        trailing columns are zero (room for the scorer's calibration columns, filled in place)."""
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[indices]
        longest = int(lengths.max()) if len(indices) else 0
        out = np.zeros((len(indices), longest, self.dim + extra), dtype=np.float32)
        for row, index in enumerate(indices.tolist()):
            out[row, : lengths[row], : self.dim] = self.data[self.offsets[index]:self.offsets[index + 1]]
        mask = np.arange(longest)[None, :] < lengths[:, None]
        return torch.from_numpy(out), torch.from_numpy(mask)


class ProteinFeatures:
    """Everything the scorer needs of one protein set: full features, pooled features, coarse features."""

    def __init__(self, lengths: np.ndarray, dim: int, coarse_factor: int | None, spill_dir: Path | None,
                 name: str = "a", coarse_pool: str = "max", pooled_dim: int | None = None):
        self.full = FeatureStore(lengths, dim, spill_dir / f"features_{name}.f32" if spill_dir else None)
        self.pooled = np.zeros((len(lengths), pooled_dim or dim), dtype=np.float32)
        self.coarse_factor = coarse_factor
        self.coarse_pool = coarse_pool
        self.coarse = None
        if coarse_factor:
            coarse_lengths = -(-np.asarray(lengths, dtype=np.int64) // coarse_factor)
            self.coarse = FeatureStore(coarse_lengths, dim,
                                       spill_dir / f"coarse_{name}.f32" if spill_dir else None)
        self.done = np.zeros(len(lengths), dtype=bool)

    @staticmethod
    def nbytes_for(lengths: np.ndarray, dim: int, coarse_factor: int | None, pooled_dim: int | None = None) -> int:
        total = FeatureStore.nbytes_for(lengths, dim) + len(lengths) * (pooled_dim or dim) * 4
        if coarse_factor:
            total += FeatureStore.nbytes_for(-(-np.asarray(lengths) // coarse_factor), dim)
        return total

    def pooled_tensor(self, indices: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.pooled[np.asarray(indices, dtype=np.int64)])


@torch.no_grad()
def encode_proteins(model: StudentModel, sequences: list[str], indices: np.ndarray, features: ProteinFeatures,
                    device: torch.device | str = "cpu", token_budget: int = 16384,
                    progress: Callable[[int], None] | None = None) -> None:
    """Encode the proteins `indices` (not yet done) in length-sorted batches of at most `token_budget` padded
    tokens, and store their features, pooled features and coarse features. `progress(n)` after each batch."""
    todo = [int(i) for i in np.asarray(indices) if not features.done[i]]
    todo.sort(key=lambda i: len(sequences[i]))
    start = 0
    while start < len(todo):
        stop = start + 1
        while stop < len(todo) and (stop + 1 - start) * len(sequences[todo[stop]]) <= token_budget:
            stop += 1
        batch = todo[start:stop]
        tokens = torch.from_numpy(encode_batch([sequences[i] for i in batch])).to(device)
        mask = tokens != PAD_INDEX
        feat = model.encode(tokens, mask).float()  # (B, L, D)
        pooled = model.pool(feat, mask, tokens=tokens).cpu().numpy()  # (B, pooled_dim)
        feat = feat.cpu().numpy()
        for row, index in enumerate(batch):
            own = feat[row, : len(sequences[index])]
            features.full.put(index, own)
            features.pooled[index] = pooled[row]
            if features.coarse is not None:
                features.coarse.put(index, coarsen(own, features.coarse_factor, features.coarse_pool))
            features.done[index] = True
        if progress is not None:
            progress(len(batch))
        start = stop
