"""The one logit-to-probability conversion of the student's outputs (predict, evaluate, screen), numpy only."""
from __future__ import annotations

import numpy as np


def probability(logit: np.ndarray | float) -> np.ndarray:
    """sigmoid of float32 logits, computed in float64 as exp(-log(1 + exp(-x))): no overflow at any finite logit."""
    x = np.asarray(logit, dtype=np.float32).astype(np.float64)
    return np.exp(-np.logaddexp(0.0, -x))
