"""Agreement between a predicted residue map and a reference map (teacher map or true contacts).

All functions take 2-D arrays of the same shape (La, Lb) and an optional boolean `valid` mask of cells to score
(e.g. residues aligned to a structure); masked cells are ignored. Shared by `evaluate`, `evaluate-maps` and the
benchmarks.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score

from data.contact_ranking import _cells, default_k, top_k_precision

__all__ = ["default_k", "top_k_precision", "top_k_overlap", "map_aupr", "map_pearson", "interface_recall",
           "contact_density"]


def top_k_overlap(pred: np.ndarray, reference: np.ndarray, k: int, valid: np.ndarray | None = None) -> float:
    """Precision of pred's top-k cells among reference's top-k cells (for soft reference maps, e.g. a teacher).

    Reference cells tied with its k-th largest value all count as its top-k, so a binary teacher map (many cells
    tied at 1) is not cut at an arbitrary cell order.
    """
    scores, ref = _cells(pred, reference, valid)
    if scores.size == 0:
        return float("nan")
    k = min(k, scores.size)
    kth_value = np.partition(ref, ref.size - k)[ref.size - k]
    ref_top = ref >= kth_value
    top = np.argsort(-scores, kind="stable")[:k]
    return float(ref_top[top].mean())


def map_aupr(pred: np.ndarray, true_contacts: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Average precision over cells (NaN when the reference has no contact among the scored cells)."""
    scores, truth = _cells(pred, true_contacts, valid)
    truth = truth > 0.5
    if not truth.any():
        return float("nan")
    return float(average_precision_score(truth, scores))


def map_pearson(pred: np.ndarray, reference: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Pearson r over cells (NaN when either map is constant)."""
    scores, ref = _cells(pred, reference, valid)
    if scores.size < 2 or scores.std() == 0 or ref.std() == 0:
        return float("nan")
    return float(np.corrcoef(scores, ref)[0, 1])


def interface_recall(pred: np.ndarray, true_contacts: np.ndarray, k: int,
                     valid: np.ndarray | None = None) -> float:
    """Fraction of true interface residues (rows and columns with any contact) that appear in pred's top-k cells."""
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(true_contacts) > 0.5
    scores = pred.copy()
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        truth = truth & valid
        scores[~valid] = -np.inf
    true_rows, true_cols = truth.any(axis=1), truth.any(axis=0)
    n_true = int(true_rows.sum() + true_cols.sum())
    if n_true == 0:
        return float("nan")
    flat = np.argsort(-scores.ravel(), kind="stable")[:k]
    rows, cols = np.unravel_index(flat, scores.shape)
    hit_rows = np.zeros_like(true_rows)
    hit_cols = np.zeros_like(true_cols)
    hit_rows[rows] = True
    hit_cols[cols] = True
    return float(((hit_rows & true_rows).sum() + (hit_cols & true_cols).sum()) / n_true)


def contact_density(true_contacts: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Fraction of scored cells that are contacts: the chance level of top-k precision."""
    _, truth = _cells(true_contacts, true_contacts, valid)
    return float((truth > 0.5).mean()) if truth.size else float("nan")
