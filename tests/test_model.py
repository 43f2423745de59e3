"""The student model: shapes, padding invariance (eval outputs and training batch statistics), symmetry."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from data.alphabet import encode_batch
from student.config import ModelConfig
from student.model import MASKED_LOGIT, MaskedBatchNorm1d, StudentModel
from tests.helpers import random_sequence



SMALL = dict(embed_dim=8, channels=(16, 12), kernel_sizes=(3, 5), hidden=8, map_topk=5, semantic_dim=6)


def batch(sequences: list[str], length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = torch.from_numpy(encode_batch(sequences, length))
    return tokens, tokens != 0


def trained_like(model: StudentModel, seed: int = 0) -> StudentModel:
    """Random running statistics and map calibration, so eval mode is not an identity normalisation."""
    gen = torch.Generator().manual_seed(seed)
    for norm in model.norms:
        norm.running_mean.copy_(torch.randn(norm.running_mean.shape, generator=gen))
        norm.running_var.copy_(torch.rand(norm.running_var.shape, generator=gen) + 0.5)
    with torch.no_grad():
        model.map_scale.fill_(1.7)
        model.map_bias.fill_(-2.0)
    return model


@pytest.mark.parametrize("head", ["features", "map", "both"])
def test_shapes(head: str, rng: np.random.Generator) -> None:
    model = StudentModel(ModelConfig(head=head, **SMALL)).eval()
    seqs_a = [random_sequence(rng, n) for n in (7, 12)]
    seqs_b = [random_sequence(rng, n) for n in (9, 4)]
    out = model(*batch(seqs_a), *batch(seqs_b))
    assert out["logit"].shape == (2,)
    assert out["map"].shape == (2, 12, 9)
    assert out["sem_a"].shape == (2, 6)
    # masked cells: outside sequence 0's 7 rows, outside sequence 1's 4 columns
    assert (out["map"][0, 7:] == MASKED_LOGIT).all() and (out["map"][1, :, 4:] == MASKED_LOGIT).all()
    assert (out["feat_a"][0, 7:] == 0).all()


@pytest.mark.parametrize("head", ["features", "map", "both"])
def test_padding_invariance_eval(head: str, rng: np.random.Generator) -> None:
    torch.manual_seed(0)
    model = trained_like(StudentModel(ModelConfig(head=head, **SMALL))).eval()
    seq_a, seq_b = random_sequence(rng, 11), random_sequence(rng, 6)
    alone = model(*batch([seq_a]), *batch([seq_b]))
    # the same pair inside a batch with longer partners and extra padding
    others_a = [random_sequence(rng, 30), seq_a]
    others_b = [random_sequence(rng, 25), seq_b]
    padded = model(*batch(others_a, 40), *batch(others_b, 33))
    assert torch.allclose(alone["logit"][0], padded["logit"][1], atol=1e-5)
    assert torch.allclose(alone["map"][0], padded["map"][1, :11, :6], atol=1e-5)
    assert torch.allclose(alone["sem_a"][0], padded["sem_a"][1], atol=1e-5)
    # classify on separately encoded proteins (the screening path) agrees with forward
    feat_a = model.encode(*batch([seq_a], 20))
    feat_b = model.encode(*batch([seq_b], 17))
    logit = model.classify(feat_a, batch([seq_a], 20)[1], feat_b, batch([seq_b], 17)[1])
    assert torch.allclose(alone["logit"], logit, atol=1e-5)


def test_masked_batchnorm_statistics_ignore_padding() -> None:
    torch.manual_seed(0)
    norm = MaskedBatchNorm1d(4).train()
    x = torch.randn(3, 4, 10)
    mask = torch.zeros(3, 10, dtype=torch.bool)
    mask[0, :10], mask[1, :6], mask[2, :3] = True, True, True
    x = x * mask[:, None, :]
    more = torch.cat([x, torch.zeros(3, 4, 15)], dim=2)
    more_mask = torch.cat([mask, torch.zeros(3, 15, dtype=torch.bool)], dim=1)
    mean, var, count = norm.batch_stats(x, mask)
    mean2, var2, count2 = norm.batch_stats(more, more_mask)
    assert count == count2 == 19
    assert torch.allclose(mean, mean2, atol=1e-6) and torch.allclose(var, var2, atol=1e-6)
    # and they are the statistics of the valid positions alone
    valid = x.permute(0, 2, 1)[mask]  # (19, 4)
    assert torch.allclose(mean, valid.mean(0), atol=1e-6)
    assert torch.allclose(var, valid.var(0, unbiased=False), atol=1e-5)
    out1, out2 = norm(x, mask), norm(more, more_mask)
    assert torch.allclose(out1, out2[:, :, :10], atol=1e-5) and (out2[:, :, 10:] == 0).all()


def test_train_mode_outputs_padding_invariant(rng: np.random.Generator) -> None:
    """A whole training-mode forward (batch statistics) is unchanged by extra padding (dropout off)."""
    torch.manual_seed(0)
    model = StudentModel(ModelConfig(head="both", **{**SMALL, "dropout": 0.0})).train()
    seqs_a = [random_sequence(rng, n) for n in (9, 14)]
    seqs_b = [random_sequence(rng, n) for n in (5, 11)]
    tight = model(*batch(seqs_a), *batch(seqs_b))
    loose = model(*batch(seqs_a, 31), *batch(seqs_b, 22))
    assert torch.allclose(tight["logit"], loose["logit"], atol=1e-5)
    assert torch.allclose(tight["map"], loose["map"][:, :14, :11], atol=1e-5)


@pytest.mark.parametrize("head", ["features", "map", "both"])
def test_symmetry(head: str, rng: np.random.Generator) -> None:
    torch.manual_seed(1)
    model = trained_like(StudentModel(ModelConfig(head=head, **SMALL))).eval()
    seqs_a = [random_sequence(rng, n) for n in (13, 5, 8)]
    seqs_b = [random_sequence(rng, n) for n in (6, 17, 8)]
    ab = model(*batch(seqs_a), *batch(seqs_b))
    ba = model(*batch(seqs_b), *batch(seqs_a))
    assert torch.allclose(torch.sigmoid(ab["logit"]), torch.sigmoid(ba["logit"]), atol=1e-6)
    assert torch.allclose(ab["map"], ba["map"].transpose(1, 2), atol=1e-5)
