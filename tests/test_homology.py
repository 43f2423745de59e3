"""MMseqs2 homology groups and homology splits on small generated families of mutated sequences."""
from __future__ import annotations

import numpy as np
import pytest

from data.errors import UserError
from data.homology import HomologyConfig, cluster_sequences, cross_hits
from data.keys import sequence_key
from data.pairs import Pair
from data.splits import SplitConfig, assign_splits, make_split
from tests.helpers import STANDARD, random_sequence


def mutate(rng: np.random.Generator, sequence: str, rate: float) -> str:
    letters = list(sequence)
    for i in np.flatnonzero(rng.random(len(letters)) < rate):
        letters[i] = STANDARD[rng.integers(20)]
    return "".join(letters)


def families(rng: np.random.Generator, n_families: int = 8, members: int = 4, length: int = 120) -> list[list[str]]:
    """Members of a family share ~80% identity (20% of sites redrawn); families are unrelated random sequences."""
    roots = [random_sequence(rng, length) for _ in range(n_families)]
    return [[mutate(rng, root, 0.2) for _ in range(members)] for root in roots]


def test_groups_follow_families(rng):
    fams = families(rng)
    groups = cluster_sequences([s for fam in fams for s in fam])
    for fam in fams:
        assert len({groups[sequence_key(s)] for s in fam}) == 1
    assert len(set(groups.values())) == len(fams)


def test_homology_split_leaves_no_close_homolog_in_training(rng):
    fams = families(rng, n_families=10, members=4)
    sequences = [s for fam in fams for s in fam]
    pairs = []
    for i in range(len(sequences)):  # pairs within a family, so that homology groups can keep them
        for j in range(i + 1, len(sequences)):
            if i // 4 == j // 4 or rng.random() < 0.02:
                pairs.append(Pair(f"p{i}", f"p{j}", sequences[i], sequences[j], int(i // 4 == j // 4)))
    config = SplitConfig(by="homology", test_frac=0.2, valid_frac=0.1, seed=3)
    result = make_split(pairs, config)
    train = {s for p in result.pairs if p.split == "train" for s in (p.seq_a, p.seq_b)}
    test = {s for p in result.pairs if p.split == "test" for s in (p.seq_a, p.seq_b)}
    assert train and test
    homology = HomologyConfig(min_seq_id=config.min_seq_id, coverage=config.coverage)
    assert cross_hits(sorted(test), sorted(train), homology) == []
    assert result.stats["homology_groups"] == 10

    # The check can fail: a split by sequence content puts family members on both sides.
    by_protein = assign_splits(pairs, by="protein", test_frac=0.3, valid_frac=0.1, seed=3)
    train_p = {s for p in by_protein.pairs if p.split == "train" for s in (p.seq_a, p.seq_b)}
    test_p = {s for p in by_protein.pairs if p.split == "test" for s in (p.seq_a, p.seq_b)}
    assert cross_hits(sorted(test_p), sorted(train_p), homology)


def test_failing_binary_is_a_user_error(tmp_path, monkeypatch, rng):
    fake = tmp_path / "mmseqs"
    fake.write_text("#!/bin/sh\necho 'simulated failure' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("MMSEQS2_PATH", str(fake))
    with pytest.raises(UserError, match="exit code 3"):
        cluster_sequences([random_sequence(rng, 50), random_sequence(rng, 60)])
    monkeypatch.setenv("MMSEQS2_PATH", str(tmp_path / "absent"))
    with pytest.raises(UserError, match="MMseqs2 binary"):
        cluster_sequences([random_sequence(rng, 50)])
