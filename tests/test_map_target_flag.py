"""A pairs column `map_target` (0/1) leaves a pair's map out of the map loss: the clean way to keep, e.g., the
all-zero maps of a structure teacher's negatives from teaching the student that a non-complex has no interface."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from data.errors import InputError
from data.fasta import write_fasta
from data.pairs import read_pairs, write_pairs
from student.config import ModelConfig, TrainConfig
from student.dataset import PairDataset, collate_pairs
from student.losses import map_loss
from student.trainer import train
from teacher_cache import TeacherCache
from tests.helpers import random_sequence, write_random_cache


def _files(tmp_path: Path, flag_negatives: bool, cache_negatives: bool = True):
    rng = np.random.default_rng(3)
    sequences = {f"P{i}": random_sequence(rng, int(rng.integers(12, 30))) for i in range(12)}
    write_fasta(tmp_path / "s.fasta", sequences)
    rows = []
    for n, (a, b) in enumerate((i, j) for i in range(12) for j in range(i + 1, 12)):
        if n >= 36:
            break
        part = "train" if n < 24 else "valid" if n < 30 else "test"
        rows.append((f"P{a}", f"P{b}", n % 2, part))
    with open(tmp_path / "p.tsv", "w") as handle:
        handle.write("id_a\tid_b\tlabel\tsplit" + ("\tmap_target" if flag_negatives else "") + "\n")
        for a, b, label, part in rows:
            handle.write(f"{a}\t{b}\t{label}\t{part}" + (f"\t{label}" if flag_negatives else "") + "\n")
    cached = [(sequences[a], sequences[b]) for a, b, label, _ in rows if label == 1 or cache_negatives]
    write_random_cache(tmp_path / "c.h5", cached)
    return sequences


def test_the_column_is_read_written_and_checked(tmp_path):
    sequences = _files(tmp_path, flag_negatives=True)
    pairs = read_pairs(tmp_path / "p.tsv", sequences).pairs
    assert [p.map_target for p in pairs] == [bool(p.label) for p in pairs]
    write_pairs(tmp_path / "again.tsv", pairs, with_split=True)
    assert [p.map_target for p in read_pairs(tmp_path / "again.tsv", sequences).pairs] == [p.map_target for p in pairs]
    (tmp_path / "bad.tsv").write_text("id_a\tid_b\tlabel\tmap_target\nP0\tP1\t1\tyes\n")
    with pytest.raises(InputError, match=r"bad\.tsv:2: map_target 'yes' is not 0 or 1"):
        read_pairs(tmp_path / "bad.tsv", sequences)


def test_a_flagged_pair_carries_no_target_and_adds_nothing_to_the_map_loss(tmp_path):
    sequences = _files(tmp_path, flag_negatives=True)
    pairs = read_pairs(tmp_path / "p.tsv", sequences).pairs[:6]
    with TeacherCache.open(tmp_path / "c.h5") as cache:
        batch = collate_pairs([PairDataset(pairs, cache, "contact")[i] for i in range(len(pairs))])
        unflagged = [p for p in pairs if p.map_target]
        alone = collate_pairs([PairDataset(unflagged, cache, "contact")[i] for i in range(len(unflagged))])
    assert batch["has_target"].tolist() == [p.map_target for p in pairs]
    torch.manual_seed(0)
    logits = torch.randn(batch["target"].shape)
    valid = batch["mask_a"][:, :, None] & batch["mask_b"][:, None, :]
    rows = torch.tensor([p.map_target for p in pairs])
    la, lb = alone["target"].shape[1:]
    loss_all = map_loss(logits, batch["target"], valid, "bce", "mass", batch["has_target"])
    loss_alone = map_loss(logits[rows][:, :la, :lb], alone["target"], valid[rows][:, :la, :lb], "bce", "mass",
                          alone["has_target"])
    torch.testing.assert_close(loss_all, loss_alone)


def test_training_needs_no_map_of_a_flagged_pair(tmp_path):
    _files(tmp_path, flag_negatives=True, cache_negatives=False)  # the negatives' maps are not even cached
    model = ModelConfig(embed_dim=8, channels=(8,), kernel_sizes=(3,), hidden=8, map_topk=4, head="map")
    config = TrainConfig(pairs=str(tmp_path / "p.tsv"), fasta=str(tmp_path / "s.fasta"), cache=str(tmp_path / "c.h5"),
                         out=str(tmp_path / "run"), epochs=2, batch_size=8, max_len=24, model=model)
    results = train(config)
    assert results["epochs_run"] == 2 and results["test"]["n"] == 6
    assert results["test"]["map_pairs"] == 3  # map agreement over the test positives only
