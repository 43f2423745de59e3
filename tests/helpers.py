"""Helpers shared by the tests: tiny generated sequences and caches (no network, no real weights, no ../shared).
Fixtures live in conftest.py; this module holds plain functions that tests import by name."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from data.alphabet import RESIDUES
from teacher_cache import CacheBuilder

STANDARD = RESIDUES[:20]


def random_sequence(rng: np.random.Generator, length: int) -> str:
    return "".join(rng.choice(list(STANDARD), size=length))


def write_random_cache(path: Path, pairs: list[tuple[str, str]], embedding_dim: int = 8, seed: int = 0,
                       teacher: str = "synthetic", model: str = "test-random") -> Path:
    """A cache in the real format with random maps in [0, 1] and random embeddings for every sequence."""
    rng = np.random.default_rng(seed)
    meta = dict(teacher=teacher, model=model, embedding_dim=embedding_dim, random_weights=True,
                settings={"generator": "tests.helpers.write_random_cache", "seed": seed})
    with CacheBuilder(path, meta) as builder:
        for seq_a, seq_b in pairs:
            shape = (len(seq_a), len(seq_b))
            builder.add_pair(seq_a, seq_b, rng.random(shape) ** 4, rng.random(shape))
            for seq in (seq_a, seq_b):
                builder.add_protein(seq, rng.standard_normal(embedding_dim))
    return path


def interrupt_at_pair_batch(n: int):
    """A `precompute` progress callback that raises KeyboardInterrupt when the n-th batch of pairs reports."""
    batches = []

    def progress(stage: str, advance: int, total: int) -> None:
        if stage == "pairs":
            batches.append(advance)
            if len(batches) == n:
                raise KeyboardInterrupt
    return progress


class Killed(Exception):
    """Stands for a kill in the middle of training (raised from the trainer's on_epoch callback)."""


def kill_after_epoch(last: int):
    """An `on_epoch` callback that raises Killed once epoch `last` (0-based) has written its checkpoints."""
    def on_epoch(epoch: int, row: dict) -> None:
        if epoch == last:
            raise Killed
    return on_epoch


def perturb(model, scale: float):
    """Move a model's weights and batch-norm statistics away from their initial values (draws from torch's global
    generator: seed it first), so that every head and normalisation carries weight in a test."""
    import torch

    with torch.no_grad():
        for param in model.parameters():
            param.add_(scale * torch.randn_like(param))
        for norm in [*model.norms, *([model.pool_norm] if hasattr(model, "pool_norm") else [])]:
            norm.running_mean.uniform_(-0.3, 0.3)
            norm.running_var.uniform_(0.5, 1.5)
    return model
