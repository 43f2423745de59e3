"""Protein, homology and random splits through the library and the `split` command."""
from __future__ import annotations

import json

from click.testing import CliRunner

from cli import cli
from data.fasta import write_fasta
from data.keys import sequence_key
from data.pairs import Pair, read_pairs, write_pairs
from data.splits import SplitConfig, make_split
from tests.helpers import random_sequence


def aliased_pairs(rng, n_proteins: int = 40, n_pairs: int = 200) -> tuple[dict[str, str], list[Pair]]:
    """Proteins where every fifth sequence also appears under a second id ("alias_"), as in published PPI sets."""
    sequences = {f"P{i}": random_sequence(rng, int(rng.integers(30, 60))) for i in range(n_proteins)}
    for i in range(0, n_proteins, 5):
        sequences[f"alias_{i}"] = sequences[f"P{i}"]
    ids = sorted(sequences)
    pairs, seen = [], set()
    while len(pairs) < n_pairs:
        a, b = rng.choice(ids, size=2, replace=False)
        pair = Pair(str(a), str(b), sequences[a], sequences[b], int(rng.random() < 0.3))
        if pair.seq_a != pair.seq_b and pair.key not in seen:
            seen.add(pair.key)
            pairs.append(pair)
    return sequences, pairs


def test_protein_split_keeps_identical_sequences_on_one_side(rng):
    sequences, pairs = aliased_pairs(rng)
    result = make_split(pairs, SplitConfig(by="protein", test_frac=0.2, valid_frac=0.1, seed=1))
    part_of: dict[str, set[str]] = {}
    for pair in result.pairs:
        for seq in (pair.seq_a, pair.seq_b):
            part_of.setdefault(sequence_key(seq), set()).add(pair.split)
    assert all(len(parts) == 1 for parts in part_of.values())
    alias_parts = [part_of.get(sequence_key(sequences[f"P{i}"])) for i in range(0, 40, 5)]
    assert any(parts for parts in alias_parts)  # the aliased proteins are in the kept pairs
    assert result.dropped + len(result.pairs) == len(pairs)
    assert result.stats["test"]["pairs"] > 0 and result.stats["dropped_straddling"] == result.dropped


def test_random_split_keeps_every_pair(rng):
    _, pairs = aliased_pairs(rng)
    result = make_split(pairs, SplitConfig(by="random", seed=0))
    assert len(result.pairs) == len(pairs) and result.dropped == 0


def test_split_command_writes_split_column_and_stats(tmp_path, rng):
    sequences, pairs = aliased_pairs(rng)
    fasta, table = tmp_path / "seqs.fasta", tmp_path / "pairs.tsv"
    write_fasta(fasta, sequences)
    write_pairs(table, pairs)
    for by in ("protein", "homology"):
        out = tmp_path / f"split_{by}.tsv"
        run = CliRunner().invoke(cli, ["split", "--pairs", str(table), "--fasta", str(fasta), "--by", by,
                                       "--out", str(out), "--test-frac", "0.2", "--seed", "2"])
        assert run.exit_code == 0, run.output
        assert out.read_text().splitlines()[0] == "id_a\tid_b\tlabel\tsplit"
        stats = json.loads((tmp_path / f"split_{by}.tsv.stats.json").read_text())
        assert stats["config"]["by"] == by
        back = read_pairs(out, sequences)
        assert back.has_split and len(back) == stats["kept"]
        assert stats["kept"] + stats["dropped_straddling"] == len(pairs)
    assert stats["homology_groups"] == len({sequence_key(s) for s in sequences.values()})  # unrelated sequences


def test_split_command_rejects_bad_fractions(tmp_path, rng):
    sequences, pairs = aliased_pairs(rng)
    write_fasta(tmp_path / "s.fasta", sequences)
    write_pairs(tmp_path / "p.tsv", pairs)
    run = CliRunner().invoke(cli, ["split", "--pairs", str(tmp_path / "p.tsv"), "--fasta", str(tmp_path / "s.fasta"),
                                   "--out", str(tmp_path / "o.tsv"), "--test-frac", "0.7", "--valid-frac", "0.4"])
    assert run.exit_code == 2 and "fraction" in run.output
    assert not (tmp_path / "o.tsv").exists()
