"""The planted-interface generator (data.synth) and its oracle cache (teacher_cache.teachers.synthetic)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from data.errors import UserError
from data.fasta import read_fasta
from data.pairs import read_pairs
from data.synth import SynthConfig, generate, planted_contacts
from teacher_cache import TeacherCache
from teacher_cache.teachers.synthetic import make_synthetic

SMALL = dict(n_pairs=60, families=3, motif_len=5, min_len=20, max_len=40, seed=7)


def test_same_seed_same_data_other_seed_other_data():
    first, again = generate(SynthConfig(**SMALL)), generate(SynthConfig(**SMALL))
    other = generate(SynthConfig(**{**SMALL, "seed": 8}))
    assert first.pairs == again.pairs and first.motifs_a == again.motifs_a
    assert [p.seq_a for p in first.pairs] != [p.seq_a for p in other.pairs]


def test_labels_splits_and_no_repeated_sequence():
    dataset = generate(SynthConfig(**SMALL))
    assert sum(p.label for p in dataset.pairs) == 30
    sequences = [s for p in dataset.pairs for s in (p.seq_a, p.seq_b)]
    assert len(set(sequences)) == len(sequences) == 120
    assert all(20 <= len(s) <= 40 for s in sequences)
    parts = [p.split for p in dataset.pairs]
    assert {part: parts.count(part) for part in ("train", "valid", "test")} == {"train": 48, "valid": 6, "test": 6}
    for part in ("valid", "test"):  # stratified by label
        assert sum(p.label for p in dataset.pairs if p.split == part) == 3


def test_motif_presence_does_not_decide_the_label():
    dataset = generate(SynthConfig(**SMALL))
    for pair in dataset.pairs:
        # every protein carries exactly one motif of its side, at the recorded position
        assert pair.seq_a[pair.start_a:pair.start_a + 5] == dataset.motifs_a[pair.family_a]
        assert pair.seq_b[pair.start_b:pair.start_b + 5] == dataset.motifs_b[pair.family_b]
        assert sum(m in pair.seq_a for m in dataset.motifs_a + dataset.motifs_b) == 1
        assert sum(m in pair.seq_b for m in dataset.motifs_a + dataset.motifs_b) == 1
        assert (pair.family_a == pair.family_b) == (pair.label == 1)
    negatives = [p for p in dataset.pairs if p.label == 0]
    # negatives use every A-side and every B-side motif, like positives do
    assert {p.family_a for p in negatives} == {p.family_b for p in negatives} == {0, 1, 2}


def test_planted_contacts_sit_on_the_motifs():
    dataset = generate(SynthConfig(**SMALL))
    for pair in dataset.pairs:
        contact = planted_contacts(pair, 5)
        assert contact.shape == (len(pair.seq_a), len(pair.seq_b))
        if pair.label == 0:
            assert contact.sum() == 0
            continue
        rows, cols = np.nonzero(contact)
        assert set(rows) == set(range(pair.start_a, pair.start_a + 5))
        assert set(cols) == set(range(pair.start_b, pair.start_b + 5))
        assert contact.sum() == 25


def test_cache_round_trips_in_both_orientations_and_is_marked_synthetic(tmp_path):
    config = SynthConfig(**SMALL)
    outputs = make_synthetic(config, tmp_path / "set")
    sequences = read_fasta(outputs.fasta)
    table = read_pairs(outputs.pairs, sequences)
    assert len(table) == 60 and table.has_split and table.has_labels
    dataset = generate(config)
    with TeacherCache.open(outputs.cache) as cache:
        assert cache.teacher == "synthetic" and not cache.random_weights
        assert cache.settings["synthetic"] is True
        assert {k: cache.settings[k] for k in config.to_dict()} == config.to_dict()
        assert json.loads(json.dumps(cache.info()))["n_pairs"] == 60
        assert cache.embedding_dim == 32 and cache.n_proteins == 120
        for pair in dataset.pairs:
            truth = planted_contacts(pair, 5)
            maps = cache.pair(pair.seq_a, pair.seq_b)
            np.testing.assert_array_equal(maps.contact, truth)
            np.testing.assert_array_equal(cache.pair(pair.seq_b, pair.seq_a).contact, truth.T)
            assert maps.attention.shape == truth.shape
            if pair.label == 1:  # attention is a noisy copy: the block stands out
                assert maps.attention[truth > 0].min() > maps.attention[truth == 0].max()
            assert np.isfinite(cache.protein(pair.seq_a).embedding).all()


def test_embeddings_carry_the_motif(tmp_path):
    """Two proteins with the same motif have closer teacher embeddings than two with different motifs, on average."""
    config = SynthConfig(**{**SMALL, "n_pairs": 200})
    outputs = make_synthetic(config, tmp_path / "set")
    dataset = generate(config)
    with TeacherCache.open(outputs.cache) as cache:
        emb = np.stack([cache.protein(p.seq_a).embedding for p in dataset.pairs])
    family = np.array([p.family_a for p in dataset.pairs])
    dist = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    same = family[:, None] == family[None]
    off_diagonal = ~np.eye(len(family), dtype=bool)
    assert dist[same & off_diagonal].mean() < 0.8 * dist[~same].mean()


def test_bad_settings_and_existing_output_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="at least 2 motif families"):
        SynthConfig(families=1)
    with pytest.raises(UserError, match="motif-len <= min-len"):
        SynthConfig(motif_len=30, min_len=20)
    make_synthetic(SynthConfig(**SMALL), tmp_path)
    with pytest.raises(UserError, match="--overwrite"):
        make_synthetic(SynthConfig(**SMALL), tmp_path)
    make_synthetic(SynthConfig(**SMALL), tmp_path, overwrite=True)


def test_cli_synth(tmp_path):
    from cli import cli

    result = CliRunner().invoke(cli, ["synth", "--out", str(tmp_path / "s"), "--n-pairs", "40", "--min-len", "30",
                                      "--max-len", "40", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["cache.h5", "pairs.tsv", "seqs.fasta"]
    again = CliRunner().invoke(cli, ["synth", "--out", str(tmp_path / "s"), "--n-pairs", "40"])
    assert again.exit_code == 2 and "--overwrite" in again.output
