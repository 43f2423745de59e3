"""Unlabelled pairs (`--unlabelled-pairs`): they train the map and semantic terms only, never CE, and never carry a
validation or test protein into training."""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from data.errors import UserError
from data.fasta import write_fasta
from student.checkpoint import read_checkpoint
from student.config import ModelConfig, TrainConfig
from student.losses import classification_loss, total_loss
from student.trainer import train
from tests.helpers import random_sequence, write_random_cache

TINY_MODEL = ModelConfig(embed_dim=8, channels=(16, 16), kernel_sizes=(3, 3), hidden=8, map_topk=4)


def _problem(folder: Path) -> dict[str, Path]:
    """Train proteins T0-T11 and held-out proteins H0-H7; labelled pairs: train among T, valid/test among H.
    Unlabelled: 20 new pairs among T, 3 with an H protein, 2 that are labelled pairs (one reversed)."""
    rng = np.random.default_rng(3)
    sequences = {f"T{i}": random_sequence(rng, int(rng.integers(12, 30))) for i in range(12)}
    sequences.update({f"H{i}": random_sequence(rng, int(rng.integers(12, 30))) for i in range(8)})
    write_fasta(folder / "seqs.fasta", sequences)
    all_t = [(f"T{i}", f"T{j}") for i in range(12) for j in range(i + 1, 12)]
    order = rng.permutation(len(all_t))
    train_pairs = [all_t[k] for k in order[:24]]
    extra = [all_t[k] for k in order[24:44]]
    held = [(f"H{i}", f"H{j}") for i in range(8) for j in range(i + 1, 8)][:16]
    labelled = [(a, b, i % 2, "train") for i, (a, b) in enumerate(train_pairs)]
    labelled += [(a, b, i % 2, "valid" if i < 8 else "test") for i, (a, b) in enumerate(held)]
    with open(folder / "pairs.tsv", "w") as handle:
        handle.write("id_a\tid_b\tlabel\tsplit\n")
        handle.writelines(f"{a}\t{b}\t{y}\t{s}\n" for a, b, y, s in labelled)
    unlabelled = extra + [("T0", "H0"), ("H1", "T3"), ("H2", "H6")]
    unlabelled += [train_pairs[0], (train_pairs[1][1], train_pairs[1][0])]
    with open(folder / "unlabelled.tsv", "w") as handle:
        handle.write("id_a\tid_b\tlabel\n")  # a label column that must not be read
        handle.writelines(f"{a}\t{b}\t1\n" for a, b in unlabelled)
    cached = [(a, b) for a, b, _, _ in labelled] + unlabelled
    write_random_cache(folder / "cache.h5", [(sequences[a], sequences[b]) for a, b in cached], embedding_dim=6)
    return {"fasta": folder / "seqs.fasta", "pairs": folder / "pairs.tsv", "cache": folder / "cache.h5",
            "unlabelled": folder / "unlabelled.tsv"}


def _config(files: dict[str, Path], out: Path, **changes) -> TrainConfig:
    config = TrainConfig(pairs=str(files["pairs"]), fasta=str(files["fasta"]), cache=str(files["cache"]),
                         out=str(out), epochs=2, batch_size=8, max_len=24, patience=10, beta_sem=0.0,
                         model=replace(TINY_MODEL))
    return replace(config, **changes)


def test_unlabelled_pairs_leave_out_labelled_and_held_out_ones(tmp_path: Path, caplog) -> None:
    files = _problem(tmp_path)
    with caplog.at_level(logging.INFO):
        result = train(_config(files, tmp_path / "run", unlabelled_pairs=str(files["unlabelled"])))
    assert result["split"]["unlabelled"] == {"given": 25, "used": 20, "left_out_labelled": 2,
                                             "left_out_held_out_protein": 3}
    assert "leak the held-out proteins" in caplog.text and "label column is not read" in caplog.text


def test_unlabelled_pairs_change_a_map_run_and_leave_a_label_only_run_alone(tmp_path: Path, caplog) -> None:
    files = _problem(tmp_path)
    u = str(files["unlabelled"])

    def weights(name: str, **changes) -> dict[str, torch.Tensor]:
        train(_config(files, tmp_path / name, **changes))
        return read_checkpoint(tmp_path / name / "last.pt")["model"]

    plain, with_u = weights("map"), weights("map_u", unlabelled_pairs=u)
    assert any(not torch.equal(plain[k], with_u[k]) for k in plain)
    with caplog.at_level(logging.INFO):
        ce, ce_u = weights("ce", alpha_map=0.0), weights("ce_u", alpha_map=0.0, unlabelled_pairs=u)
    assert all(torch.equal(ce[k], ce_u[k]) for k in ce)
    assert "the 20 unlabelled pair(s) are not used" in caplog.text


def test_unlabelled_pairs_need_a_cache_and_a_map_loss_on_all_pairs(tmp_path: Path) -> None:
    files = _problem(tmp_path)
    u = str(files["unlabelled"])
    with pytest.raises(UserError, match="needs a teacher cache"):
        train(_config(files, tmp_path / "a", cache=None, unlabelled_pairs=u))
    with pytest.raises(UserError, match="map-pairs positives"):
        train(_config(files, tmp_path / "b", map_pairs="positives", unlabelled_pairs=u))


def test_ce_reads_only_the_labelled_pairs_of_a_batch() -> None:
    torch.manual_seed(0)
    logits, labels = torch.randn(6), torch.tensor([1.0, 0, 0, 1, 0, 0])
    labelled = torch.tensor([True, True, False, True, False, False])
    batch = {"label": labels, "labelled": labelled}
    loss, parts = total_loss({"logit": logits}, batch, 2.0, 0.0, 0.0, "bce", "mass", ce_norm="labelled")
    assert torch.allclose(parts["ce"], classification_loss(logits[labelled], labels[labelled], 2.0))
    changed = logits.clone()
    changed[~labelled] += 5.0  # the unlabelled pairs' logits do not enter
    assert torch.equal(total_loss({"logit": changed}, batch, 2.0, 0.0, 0.0, "bce", "mass", ce_norm="labelled")[0],
                       loss)
    nothing = {"label": labels, "labelled": torch.zeros(6, dtype=torch.bool)}
    empty_loss, empty_parts = total_loss({"logit": logits.requires_grad_()}, nothing, 2.0, 0.0, 0.0, "bce", "mass")
    assert "ce" not in empty_parts and float(empty_loss.detach()) == 0.0
    empty_loss.backward()  # a batch of unlabelled pairs only still backpropagates (a zero gradient)
    assert torch.equal(logits.grad, torch.zeros(6))


def test_ce_norm_batch_divides_the_labelled_pairs_ce_by_the_batch_size() -> None:
    torch.manual_seed(1)
    logits, labels = torch.randn(8), torch.tensor([1.0, 0, 0, 1, 0, 0, 1, 0])
    labelled = torch.tensor([True, True, False, True, False, False, False, False])
    batch = {"label": labels, "labelled": labelled}
    per_label = torch.nn.functional.binary_cross_entropy_with_logits(
        logits[labelled], labels[labelled], pos_weight=torch.tensor(2.0), reduction="none")
    mean, parts = total_loss({"logit": logits}, batch, 2.0, 0.0, 0.0, "bce", "mass", ce_norm="labelled")
    by_batch, parts_b = total_loss({"logit": logits}, batch, 2.0, 0.0, 0.0, "bce", "mass", ce_norm="batch")
    assert torch.allclose(mean, per_label.mean()) and torch.allclose(by_batch, per_label.sum() / 8)
    assert torch.equal(parts["ce"], parts_b["ce"])  # the CE reported is the labelled pairs' mean either way
    # with every pair labelled the two are the same loss
    full = {"label": labels, "labelled": torch.ones(8, dtype=torch.bool)}
    assert torch.equal(total_loss({"logit": logits}, full, 2.0, 0.0, 0.0, "bce", "mass", ce_norm="labelled")[0],
                       total_loss({"logit": logits}, full, 2.0, 0.0, 0.0, "bce", "mass", ce_norm="batch")[0])
    with pytest.raises(ValueError, match="CE normalisation"):
        total_loss({"logit": logits}, batch, 2.0, 0.0, 0.0, "bce", "mass", ce_norm="sum")


def test_ce_norm_batch_changes_a_run_with_unlabelled_pairs_only(tmp_path: Path) -> None:
    files = _problem(tmp_path)
    u = str(files["unlabelled"])

    def weights(name: str, **changes) -> dict[str, torch.Tensor]:
        train(_config(files, tmp_path / name, **changes))
        return read_checkpoint(tmp_path / name / "last.pt")["model"]

    plain, plain_b = weights("map", ce_norm="labelled"), weights("map_b", ce_norm="batch")
    assert all(torch.equal(plain[k], plain_b[k]) for k in plain)
    with_u = weights("map_u", unlabelled_pairs=u, ce_norm="labelled")
    with_u_b = weights("map_u_b", unlabelled_pairs=u, ce_norm="batch")
    assert any(not torch.equal(with_u[k], with_u_b[k]) for k in with_u)
    with pytest.raises(UserError, match="unknown ce-norm"):
        _config(files, tmp_path / "x", ce_norm="sum").check_training_settings()
