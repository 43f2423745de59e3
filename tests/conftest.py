"""Shared fixtures (plain helpers are in tests/helpers.py): tiny generated data only."""
from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Test tensors are tiny: one thread is faster than two, and keeps runs comparable on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
