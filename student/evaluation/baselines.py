"""Trivial baselines that any PPI figure must be shown beside (scikit-learn; fit on the training part only).

- degree: how often each protein is a positive in training, summed (and max) over the two proteins. Sequence-blind
  and pair-blind: on a random pair split it looks strong because test proteins were seen in training.
- protein_composition: sum of the two proteins' amino-acid compositions + logistic regression. No pair term: it
  scores "is this an interacting kind of protein", which random proteome negatives reward.
- pair_composition: sum and elementwise product of the two compositions + logistic regression. Symmetric; the
  product is the only pair term. The bar a sequence model must clear before it claims to recognise pairs.

Every score is symmetric in pair order. Proteins are keyed by sequence content, not id.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from data.alphabet import N_STANDARD, RESIDUES
from data.errors import UserError
from data.keys import sequence_key
from data.pairs import Pair

STANDARD = RESIDUES[:N_STANDARD]
BASELINES = ("degree", "degree_max", "protein_composition", "pair_composition")
_INDEX = np.full(256, -1, dtype=np.int64)
for _i, _c in enumerate(STANDARD):
    _INDEX[ord(_c)] = _i


def composition(sequence: str) -> np.ndarray:
    """Fractions of the 20 standard residues, shape (20,); non-standard letters are ignored."""
    codes = _INDEX[np.frombuffer(sequence.encode("ascii"), dtype=np.uint8)]
    codes = codes[codes >= 0]
    counts = np.bincount(codes, minlength=20).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


class _Compositions:
    """Memoised composition per sequence."""

    def __init__(self) -> None:
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, sequence: str) -> np.ndarray:
        value = self._cache.get(sequence)
        if value is None:
            value = self._cache[sequence] = composition(sequence)
        return value


def protein_composition_features(pairs: list[Pair], comp: _Compositions | None = None) -> np.ndarray:
    comp = comp or _Compositions()
    return np.stack([comp(p.seq_a) + comp(p.seq_b) for p in pairs])  # (N, 20)


def pair_composition_features(pairs: list[Pair], comp: _Compositions | None = None) -> np.ndarray:
    comp = comp or _Compositions()
    rows = [np.concatenate([comp(p.seq_a) + comp(p.seq_b), comp(p.seq_a) * comp(p.seq_b)]) for p in pairs]
    return np.stack(rows)  # (N, 40)


def degree_scores(train_pairs: list[Pair], test_pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray]:
    """(sum, max) over the two proteins of their number of training positives."""
    positives: Counter = Counter()
    for pair in train_pairs:
        if pair.label == 1:
            positives[sequence_key(pair.seq_a)] += 1
            positives[sequence_key(pair.seq_b)] += 1
    a = np.array([positives.get(sequence_key(p.seq_a), 0) for p in test_pairs], dtype=np.float64)
    b = np.array([positives.get(sequence_key(p.seq_b), 0) for p in test_pairs], dtype=np.float64)
    return a + b, np.maximum(a, b)


def _logistic_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, seed: int) -> np.ndarray:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
    model.fit(train_x, train_y)
    return model.predict_proba(test_x)[:, 1]


def _labels(pairs: list[Pair], part: str) -> np.ndarray:
    if any(p.label is None for p in pairs):
        raise UserError(f"baselines need labels on every {part} pair")
    labels = np.array([p.label for p in pairs], dtype=np.int64)
    if len(set(labels.tolist())) < 2:
        raise UserError(f"the {part} part holds only one class ({len(pairs)} pairs): baselines need both")
    return labels


def score_baselines(train_pairs: list[Pair], test_pairs: list[Pair], seed: int = 0) -> dict[str, np.ndarray]:
    """Each baseline's scores for the test pairs (higher = more likely to interact)."""
    train_y = _labels(train_pairs, "training")
    comp = _Compositions()
    degree_sum, degree_max = degree_scores(train_pairs, test_pairs)
    return {
        "degree": degree_sum,
        "degree_max": degree_max,
        "protein_composition": _logistic_scores(protein_composition_features(train_pairs, comp), train_y,
                                                protein_composition_features(test_pairs, comp), seed),
        "pair_composition": _logistic_scores(pair_composition_features(train_pairs, comp), train_y,
                                             pair_composition_features(test_pairs, comp), seed),
    }


def evaluate_baselines(train_pairs: list[Pair], test_pairs: list[Pair]) -> dict[str, dict]:
    """{baseline: {aupr, auroc, chance_aupr, n_train, n_test}}; chance_aupr is the test part's positive rate."""
    test_y = _labels(test_pairs, "test")
    chance = float(test_y.mean())
    results: dict[str, dict] = {}
    for name, scores in score_baselines(train_pairs, test_pairs).items():
        results[name] = {"aupr": float(average_precision_score(test_y, scores)),
                         "auroc": float(roc_auc_score(test_y, scores)),
                         "chance_aupr": chance, "n_train": len(train_pairs), "n_test": len(test_pairs)}
    return results
