"""Negative sampling: degree balance, no known positive (by content, either orientation), determinism, CLI."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from data.errors import UserError
from data.fasta import write_fasta
from data.keys import sequence_key
from data.negatives import NegativesConfig, sample_negatives
from data.pairs import Pair, read_pairs, write_pairs
from tests.helpers import random_sequence


def hub_positives(rng, n_proteins: int = 300, n_positives: int = 300) -> tuple[dict[str, str], list[Pair]]:
    """Skewed degrees (a few hubs; sparse like real PPI sets, so that exact balance is possible), plus aliases:
    every tenth protein is also named 'alias_i' with its sequence."""
    sequences = {f"P{i}": random_sequence(rng, 20 + i % 7) for i in range(n_proteins)}
    for i in range(0, n_proteins, 10):
        sequences[f"alias_{i}"] = sequences[f"P{i}"]
    weights = 1.0 / np.arange(5, n_proteins + 5)  # Zipf-like: protein 0 is the hub
    weights /= weights.sum()
    pairs, seen = [], set()
    while len(pairs) < n_positives:
        i, j = rng.choice(n_proteins, size=2, replace=False, p=weights)
        name_a = f"alias_{i}" if i % 10 == 0 and rng.random() < 0.5 else f"P{i}"
        pair = Pair(name_a, f"P{j}", sequences[name_a], sequences[f"P{j}"], 1)
        if pair.key not in seen:
            seen.add(pair.key)
            pairs.append(pair)
    return sequences, pairs


def counts_by_protein(pairs: list[Pair], label: int) -> Counter:
    counts: Counter = Counter()
    for pair in pairs:
        if pair.label == label:
            counts[sequence_key(pair.seq_a)] += 1
            counts[sequence_key(pair.seq_b)] += 1
    return counts


@pytest.mark.parametrize("ratio", [1.0, 3.0, 2.5])
def test_degree_balanced_counts_are_proportional(rng, ratio):
    sequences, positives = hub_positives(rng)
    result = sample_negatives(positives, sequences, NegativesConfig(ratio=ratio, strategy="degree-balanced", seed=4))
    pos, neg = counts_by_protein(result.pairs, 1), counts_by_protein(result.pairs, 0)
    assert set(neg) <= set(pos)
    deviation = [abs(neg[k] - ratio * d) / (ratio * d) for k, d in pos.items()]
    # rounding ratio * degree to whole pairs is the only deviation allowed for ratio 2.5 (0.5 / (2.5 * 1) = 0.2)
    assert max(deviation) <= (0.0 if ratio == int(ratio) else 0.2 + 1e-9)
    assert result.stats["max_relative_deviation"] == pytest.approx(max(deviation), abs=1e-6)
    assert result.stats["negatives"] == sum(1 for p in result.pairs if p.label == 0)
    assert abs(result.stats["negatives"] - ratio * len(positives)) <= 1


@pytest.mark.parametrize("strategy", ["degree-balanced", "random"])
def test_no_known_positive_and_no_repeat(rng, strategy):
    sequences, positives = hub_positives(rng)
    result = sample_negatives(positives, sequences, NegativesConfig(ratio=5, strategy=strategy, seed=1))
    positive_keys = {p.key for p in positives}  # content keys: orientation- and id-independent
    negatives = [p for p in result.pairs if p.label == 0]
    assert not any(p.key in positive_keys for p in negatives)
    assert not any((p.seq_b, p.seq_a) in {(q.seq_a, q.seq_b) for q in positives} for p in negatives)
    assert len({p.key for p in negatives}) == len(negatives)
    assert not any(p.seq_a == p.seq_b for p in negatives)  # the positives hold no self-pair


def test_random_strategy_draws_from_the_whole_fasta(rng):
    sequences, positives = hub_positives(rng)
    extra = {f"X{i}": random_sequence(rng, 40) for i in range(200)}
    result = sample_negatives(positives, sequences | extra, NegativesConfig(ratio=10, strategy="random", seed=0))
    used = {p.id_a for p in result.pairs if p.label == 0} | {p.id_b for p in result.pairs if p.label == 0}
    assert any(name.startswith("X") for name in used)
    assert result.stats["max_relative_deviation"] > 0.5  # random negatives ignore degree


def test_deterministic_per_seed(rng):
    sequences, positives = hub_positives(rng)
    config = NegativesConfig(ratio=3, seed=7)
    first = sample_negatives(positives, sequences, config).pairs
    assert sample_negatives(positives, sequences, config).pairs == first
    assert sample_negatives(positives, sequences, NegativesConfig(ratio=3, seed=8)).pairs != first


def test_impossible_balance_is_reported(rng):
    # a star: every positive holds the hub, so its negatives need as many distinct partners as it cannot have
    sequences = {f"P{i}": random_sequence(rng, 30) for i in range(6)}
    positives = [Pair("P0", f"P{i}", sequences["P0"], sequences[f"P{i}"], 1) for i in range(1, 6)]
    result = sample_negatives(positives, sequences, NegativesConfig(ratio=2, seed=0))
    assert result.stats["max_relative_deviation"] > 0
    assert result.stats["stubs_beyond_partners"] + result.stats["unplaced_stubs"] > 0
    assert result.stats["proteins_off_target"] >= 1
    negatives = [p for p in result.pairs if p.label == 0]
    assert not any(p.key in {q.key for q in positives} for p in negatives)


def test_errors(rng):
    sequences, positives = hub_positives(rng)
    with pytest.raises(UserError, match="strategy"):
        sample_negatives(positives, sequences, NegativesConfig(strategy="hard"))
    with pytest.raises(UserError, match="no positive"):
        sample_negatives([Pair("P1", "P2", sequences["P1"], sequences["P2"], 0)], sequences)


def test_negatives_command(tmp_path, rng):
    sequences, positives = hub_positives(rng)
    write_fasta(tmp_path / "s.fasta", sequences)
    write_pairs(tmp_path / "pos.tsv", positives)
    out = tmp_path / "pairs.tsv"
    run = CliRunner().invoke(cli, ["negatives", "--pairs", str(tmp_path / "pos.tsv"), "--fasta",
                                   str(tmp_path / "s.fasta"), "--ratio", "4", "--out", str(out), "--seed", "3"])
    assert run.exit_code == 0, run.output
    assert "max relative deviation" in run.output
    table = read_pairs(out, sequences, require_labels=True)
    assert sum(p.label for p in table.pairs) == len(positives)
    assert len(table) == 5 * len(positives) and table.duplicates_dropped == 0
    stats = json.loads((tmp_path / "pairs.tsv.stats.json").read_text())
    assert stats["strategy"] == "degree-balanced" and stats["negatives"] == 4 * len(positives)
