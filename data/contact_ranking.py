"""Ranking the cells of a residue map against a binary contact map: the L/5 convention and top-k precision.

Here, in the bottom layer, because the teachers that know the truth (the planted benchmark's synthetic teacher)
measure their own quality with them, as evaluation does (`student.evaluation.map_metrics` re-exports them).
"""
from __future__ import annotations

import numpy as np


def _cells(pred: np.ndarray, ref: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    pred, ref = np.asarray(pred, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if pred.shape != ref.shape:
        raise ValueError(f"map shapes differ: {pred.shape} vs {ref.shape}")
    if valid is None:
        return pred.ravel(), ref.ravel()
    valid = np.asarray(valid, dtype=bool)
    return pred[valid], ref[valid]


def default_k(shape: tuple[int, int], divisor: int = 5) -> int:
    """The usual L/5 with L = min(La, Lb), at least 1."""
    return max(1, min(shape) // divisor)


def top_k_precision(pred: np.ndarray, true_contacts: np.ndarray, k: int, valid: np.ndarray | None = None) -> float:
    """Fraction of the k highest-scoring cells of `pred` that are contacts in the binary `true_contacts`.

    Ties are broken by cell order (stable sort), so the result is deterministic.
    """
    scores, truth = _cells(pred, true_contacts, valid)
    if scores.size == 0:
        return float("nan")
    k = min(k, scores.size)
    top = np.argsort(-scores, kind="stable")[:k]
    return float((truth[top] > 0.5).mean())
