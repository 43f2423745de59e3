"""Windows for inputs longer than the teacher's context, and stitching of the windows' outputs (numpy only).

A pair whose `BOS + A + linker + B + EOS` exceeds `max_tokens` is cut into overlapping windows of A and of B; every
(A window, B window) combination runs as its own input, and each cell of the A x B map is the mean over the
windows that contain it. A single chain longer than the context is cut the same way; a residue's embedding is the
mean over its windows.
"""
from __future__ import annotations

import numpy as np

Window = tuple[int, int]  # [start, stop) residue indices


def chain_windows(length: int, size: int, overlap: int) -> list[Window]:
    """Windows of `size` residues covering [0, length); neighbours share `overlap` residues (at most size // 2)."""
    if size < 1:
        raise ValueError(f"window size must be >= 1, got {size}")
    if length <= size:
        return [(0, length)]
    overlap = min(max(overlap, 0), size // 2)
    step = size - overlap
    starts = list(range(0, length - size, step)) + [length - size]
    return [(start, start + size) for start in starts]


def pair_window_sizes(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Residues of A and B per window so that wa + wb <= budget; a chain that fits in half the budget stays whole."""
    if budget < 2:
        raise ValueError(f"a residue budget of {budget} cannot hold one residue of each chain")
    if len_a + len_b <= budget:
        return len_a, len_b
    half = budget // 2
    if len_a <= half:
        return len_a, budget - len_a
    if len_b <= half:
        return budget - len_b, len_b
    return half, budget - half


def plan_pair(len_a: int, len_b: int, max_tokens: int, linker_length: int, overlap: int) -> list[tuple[Window, Window]]:
    """(A window, B window) inputs for one pair; a single ((0, La), (0, Lb)) when the pair fits the context."""
    budget = max_tokens - 2 - linker_length  # BOS and EOS
    size_a, size_b = pair_window_sizes(len_a, len_b, budget)
    return [(wa, wb) for wa in chain_windows(len_a, size_a, overlap) for wb in chain_windows(len_b, size_b, overlap)]


def plan_chain(length: int, max_tokens: int, overlap: int) -> list[Window]:
    return chain_windows(length, max_tokens - 2, overlap)


class MapStitcher:
    """Accumulates window maps of one pair and returns their cell-wise mean."""

    def __init__(self, len_a: int, len_b: int, names: tuple[str, ...] = ("contact", "attention")):
        self.shape = (len_a, len_b)
        self.sums = {name: np.zeros(self.shape, np.float64) for name in names}
        self.counts = np.zeros(self.shape, np.int32)

    def add(self, window_a: Window, window_b: Window, **maps: np.ndarray) -> None:
        rows, cols = slice(*window_a), slice(*window_b)
        for name, values in maps.items():
            self.sums[name][rows, cols] += values
        self.counts[rows, cols] += 1

    def result(self) -> dict[str, np.ndarray]:
        if (self.counts == 0).any():
            raise ValueError(f"windows leave {(self.counts == 0).sum()} cells of a {self.shape} map uncovered")
        return {name: (total / self.counts).astype(np.float32) for name, total in self.sums.items()}


class RowStitcher:
    """Accumulates per-residue rows (e.g. embeddings (w, D)) of one chain's windows; returns their mean."""

    def __init__(self, length: int, dim: int):
        self.sums = np.zeros((length, dim), np.float64)
        self.counts = np.zeros(length, np.int32)

    def add(self, window: Window, rows: np.ndarray) -> None:
        self.sums[slice(*window)] += rows
        self.counts[slice(*window)] += 1

    def result(self) -> np.ndarray:
        if (self.counts == 0).any():
            raise ValueError(f"windows leave {(self.counts == 0).sum()} residues uncovered")
        return (self.sums / self.counts[:, None]).astype(np.float32)
