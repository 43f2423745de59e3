"""Loss terms: masking (zero gradient at padded cells), normalisation, and each term decreasing when a tiny
student overfits a tiny set."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from data.alphabet import encode_batch
from student.config import ModelConfig
from student.losses import map_loss, semantic_loss, total_loss
from student.model import MASKED_LOGIT, StudentModel
from tests.helpers import random_sequence




def padded_problem(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    len_a, len_b = torch.tensor([5, 8]), torch.tensor([7, 3])
    mask_a = torch.arange(8)[None, :] < len_a[:, None]
    mask_b = torch.arange(7)[None, :] < len_b[:, None]
    valid = mask_a[:, :, None] & mask_b[:, None, :]
    target = torch.rand(2, 8, 7, generator=gen) ** 4
    logits = torch.randn(2, 8, 7, generator=gen).masked_fill(~valid, MASKED_LOGIT).requires_grad_(True)
    return logits, target, valid


@pytest.mark.parametrize("kind", ["mse", "kl", "bce"])
@pytest.mark.parametrize("norm", ["mass", "mean"])
def test_map_loss_gradient_zero_at_padded_cells(kind: str, norm: str) -> None:
    logits, target, valid = padded_problem()
    # garbage in the target's padded cells must not matter either
    noisy_target = torch.where(valid, target, torch.full_like(target, 0.9))
    loss = map_loss(logits, noisy_target, valid, kind, norm)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert (logits.grad[~valid] == 0).all()
    assert (logits.grad[valid] != 0).any()
    clean = map_loss(logits.detach(), target, valid, kind, norm)
    assert torch.allclose(loss.detach(), clean)


def test_map_loss_through_the_model_zero_at_padding(rng: np.random.Generator) -> None:
    """The loss's gradient w.r.t. the model's map never flows through padded cells."""
    torch.manual_seed(0)
    model = StudentModel(ModelConfig(embed_dim=8, channels=(8,), kernel_sizes=(3,), hidden=4)).train()
    tokens_a = torch.from_numpy(encode_batch([random_sequence(rng, 6), random_sequence(rng, 9)]))
    tokens_b = torch.from_numpy(encode_batch([random_sequence(rng, 4), random_sequence(rng, 7)]))
    out = model(tokens_a, tokens_a != 0, tokens_b, tokens_b != 0)
    out["map"].retain_grad()
    valid = (tokens_a != 0)[:, :, None] & (tokens_b != 0)[:, None, :]
    map_loss(out["map"], torch.rand(out["map"].shape), valid, "bce").backward()
    assert (out["map"].grad[~valid] == 0).all() and (out["map"].grad[valid] != 0).all()


def test_mass_normalisation_keeps_sparse_maps_visible() -> None:
    """A map with 4 contact cells among 10,000: the mean-normalised loss is tiny, the mass-normalised one is O(1)."""
    target = torch.zeros(1, 100, 100)
    target[0, 10:12, 20:22] = 1.0
    valid = torch.ones(1, 100, 100, dtype=torch.bool)
    logits = torch.full((1, 100, 100), -5.0)
    mean = map_loss(logits, target, valid, "bce", "mean")
    mass = map_loss(logits, target, valid, "bce", "mass")
    assert mean < 0.01 < 1.0 < mass < 50.0  # mass: (4 x 5.0 + 9996 x 0.0067) / 4 = 21.8


def test_empty_maps_are_divided_by_the_expected_mass() -> None:
    """A negative with an empty map is normalised by mean_density x cells, not by 1 (its raw background sum)."""
    target = torch.zeros(1, 100, 100)
    valid = torch.ones(1, 100, 100, dtype=torch.bool)
    logits = torch.full((1, 100, 100), -6.0)
    raw = map_loss(logits, target, valid, "bce", "mass")
    floored = map_loss(logits, target, valid, "bce", "mass", mean_density=0.0025)
    assert raw == pytest.approx(10_000 * np.log1p(np.exp(-6.0)), rel=1e-4)
    assert floored == pytest.approx(float(raw) / 25.0, rel=1e-4)


def test_has_target_and_semantic() -> None:
    logits, target, valid = padded_problem()
    only_first = map_loss(logits, target, valid, "mse", "mass", has_target=torch.tensor([True, False]))
    first = map_loss(logits[:1], target[:1], valid[:1], "mse", "mass")
    assert torch.allclose(only_first, first)
    emb = torch.randn(4, 6)
    assert semantic_loss(emb, emb * 3) == pytest.approx(0.0, abs=1e-6)
    assert semantic_loss(emb, -emb) == pytest.approx(2.0, abs=1e-6)


@pytest.mark.parametrize("map_kind", ["mse", "kl", "bce"])
def test_each_term_decreases_when_overfitting(map_kind: str, rng: np.random.Generator) -> None:
    torch.manual_seed(0)
    model = StudentModel(ModelConfig(embed_dim=8, channels=(16, 16), kernel_sizes=(3, 3), hidden=8, head="both",
                                     semantic_dim=5, dropout=0.0, map_bias_init=-2.0))
    seqs_a = [random_sequence(rng, n) for n in (10, 14, 8, 12)]
    seqs_b = [random_sequence(rng, n) for n in (9, 6, 13, 11)]
    tokens_a, tokens_b = (torch.from_numpy(encode_batch(s)) for s in (seqs_a, seqs_b))
    batch = {"tokens_a": tokens_a, "mask_a": tokens_a != 0, "tokens_b": tokens_b, "mask_b": tokens_b != 0,
             "label": torch.tensor([1.0, 0.0, 1.0, 0.0]),
             "target": (torch.rand(4, tokens_a.shape[1], tokens_b.shape[1]) > 0.9).float(),
             "has_target": torch.ones(4, dtype=torch.bool), "emb_a": torch.randn(4, 5), "emb_b": torch.randn(4, 5)}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        out = model(batch["tokens_a"], batch["mask_a"], batch["tokens_b"], batch["mask_b"])
        loss, parts = total_loss(out, batch, 1.0, 1.0, 1.0, map_kind, "mass")
        first = first or {k: float(v) for k, v in parts.items()}
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    last = {k: float(v) for k, v in parts.items()}
    assert set(first) == {"ce", "map", "sem"}
    for name in first:
        assert last[name] < 0.7 * first[name], (name, first[name], last[name])
