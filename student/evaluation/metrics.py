"""Classification metrics of pair predictions (scikit-learn) and agreement of student maps with teacher maps."""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np
from sklearn.metrics import (accuracy_score, average_precision_score, f1_score, matthews_corrcoef,
                             precision_recall_curve, precision_score, recall_score, roc_auc_score)

from student.evaluation.map_metrics import default_k, map_pearson, top_k_overlap, top_k_precision


def _nan_to_none(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def ranking_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float | None]:
    """AUPR (average precision) and AUROC; None when only one class is present."""
    labels = np.asarray(labels).astype(int)
    probs = np.asarray(probs, dtype=np.float64)
    if len(np.unique(labels)) < 2:
        return {"aupr": None, "auroc": None}
    return {"aupr": float(average_precision_score(labels, probs)), "auroc": float(roc_auc_score(labels, probs))}


def pick_threshold(labels: np.ndarray, probs: np.ndarray) -> float:
    """The probability threshold that maximises F1 (on validation predictions); 0.5 when undefined."""
    labels = np.asarray(labels).astype(int)
    if labels.sum() == 0 or labels.sum() == len(labels):
        return 0.5
    precision, recall, thresholds = precision_recall_curve(labels, probs)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1[:-1])) if len(thresholds) else 0
    return float(thresholds[best]) if len(thresholds) else 0.5


def classification_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict:
    """AUPR, AUROC, and at `threshold`: F1, MCC, accuracy, precision, recall; plus n and the positive rate."""
    labels = np.asarray(labels).astype(int)
    probs = np.asarray(probs, dtype=np.float64)
    predicted = (probs >= threshold).astype(int)
    out: dict = ranking_metrics(labels, probs)
    out.update(
        f1=float(f1_score(labels, predicted, zero_division=0)),
        mcc=float(matthews_corrcoef(labels, predicted)) if len(labels) else None,
        accuracy=float(accuracy_score(labels, predicted)) if len(labels) else None,
        precision=float(precision_score(labels, predicted, zero_division=0)),
        recall=float(recall_score(labels, predicted, zero_division=0)),
        threshold=float(threshold), n=int(len(labels)),
        positive_rate=float(labels.mean()) if len(labels) else None)
    return out


def map_agreement(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> dict[str, float | None]:
    """Mean over pairs of Pearson r and top-L/5 overlap (L = min(La, Lb)) between student and teacher maps.

    `pairs` yields (student map probabilities, teacher map), both (La, Lb). Pairs whose teacher map is constant
    (e.g. an empty map of a negative pair: no top cells to find) are left out of both means; `map_pairs` counts
    the pairs seen, `map_pairs_scored` those scored. `map_top_l5_contacts` is the precision of the student's top-L/5
    cells among the teacher's cells >= 0.5 (pairs that have such cells): with a binary teacher (planted or structure
    contacts) many cells tie at 1 and the top-L/5 overlap depends on how ties are broken, this does not.
    """
    pearsons, overlaps, precisions = [], [], []
    n = 0
    for student, teacher in pairs:
        n += 1
        if teacher.size == 0 or float(teacher.max()) == float(teacher.min()):
            continue
        r = map_pearson(student, teacher)
        if not math.isnan(r):
            pearsons.append(r)
        k = default_k(teacher.shape)
        overlap = top_k_overlap(student, teacher, k)
        if not math.isnan(overlap):
            overlaps.append(overlap)
        if float(teacher.max()) >= 0.5:
            precisions.append(top_k_precision(student, teacher >= 0.5, k))
    return {"map_pearson": _nan_to_none(float(np.mean(pearsons))) if pearsons else None,
            "map_top_l5": _nan_to_none(float(np.mean(overlaps))) if overlaps else None, "map_pairs": n,
            "map_pairs_scored": len(overlaps),
            "map_top_l5_contacts": float(np.mean(precisions)) if precisions else None}
