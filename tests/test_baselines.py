"""Baselines: symmetric in pair order, fit on training pairs only, above chance where composition carries signal."""
from __future__ import annotations

import numpy as np
import pytest

from data.errors import UserError
from data.pairs import Pair
from student.evaluation.baselines import BASELINES, composition, evaluate_baselines, score_baselines
from tests.helpers import STANDARD

HYDROPHOBIC = "LAVIFMW"


def skewed_sequence(rng: np.random.Generator, length: int, sticky: bool) -> str:
    """Sticky proteins draw half their residues from HYDROPHOBIC; others draw uniformly."""
    letters = [rng.choice(list(HYDROPHOBIC)) if sticky and rng.random() < 0.5 else rng.choice(list(STANDARD))
               for _ in range(length)]
    return "".join(letters)


def composition_world(rng, n_proteins: int, prefix: str, n_pairs: int) -> list[Pair]:
    """Positives are sticky-sticky pairs (plus 5% label noise); negatives are the other pairs."""
    sticky = rng.random(n_proteins) < 0.4
    seqs = [skewed_sequence(rng, int(rng.integers(40, 80)), s) for s in sticky]
    pairs = []
    for _ in range(n_pairs):
        i, j = rng.choice(n_proteins, size=2, replace=False)
        label = int(sticky[i] and sticky[j])
        if rng.random() < 0.05:
            label = 1 - label
        pairs.append(Pair(f"{prefix}{i}", f"{prefix}{j}", seqs[i], seqs[j], label))
    return pairs


def test_composition_sums_to_one_and_ignores_nonstandard():
    comp = composition("LLAX")
    assert comp.shape == (20,) and comp.sum() == pytest.approx(1.0)
    assert comp[STANDARD.index("L")] == pytest.approx(2 / 3)


def test_baselines_are_symmetric_in_pair_order(rng):
    train = composition_world(rng, 60, "a", 300)
    test = composition_world(rng, 40, "b", 200) + train[:50]  # some seen proteins, so that degree is not all zero
    swapped = [Pair(p.id_b, p.id_a, p.seq_b, p.seq_a, p.label) for p in test]
    forward, backward = score_baselines(train, test), score_baselines(train, swapped)
    assert set(forward) == set(BASELINES)
    for name in BASELINES:
        np.testing.assert_allclose(forward[name], backward[name], rtol=1e-10, atol=1e-12)
    assert np.ptp(forward["degree"]) > 0


def test_composition_beats_chance_on_unseen_proteins_while_degree_cannot(rng):
    train = composition_world(rng, 80, "train", 600)
    test = composition_world(rng, 60, "test", 400)  # protein-disjoint: new ids and new sequences
    results = evaluate_baselines(train, test)
    chance = results["pair_composition"]["chance_aupr"]
    assert chance == pytest.approx(np.mean([p.label for p in test]))
    assert results["pair_composition"]["aupr"] > chance + 0.2
    assert results["pair_composition"]["auroc"] > 0.75
    assert results["protein_composition"]["auroc"] > 0.65
    assert results["degree"]["auroc"] == pytest.approx(0.5)  # no test protein was seen in training
    assert all(r["n_train"] == len(train) and r["n_test"] == len(test) for r in results.values())


def test_one_class_is_a_user_error(rng):
    train = composition_world(rng, 30, "a", 100)
    only_negative = [p for p in train if p.label == 0]
    with pytest.raises(UserError, match="one class"):
        evaluate_baselines(only_negative, train)
    with pytest.raises(UserError, match="test part"):
        evaluate_baselines(train, only_negative)
