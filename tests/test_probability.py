"""The student's logit-to-probability conversion (student/probability.py): torch's sigmoid in float64, no overflow."""
import warnings

import numpy as np
import torch

from student.probability import probability


def test_probability_equals_torch_sigmoid_in_float64_without_overflow_warnings():
    logits = np.concatenate([np.linspace(-200, 200, 4001), [-1e4, -89.0, -88.0, 0.0, 88.0, 1e4],
                             np.random.default_rng(0).normal(0, 30, 1000)]).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the old 1 / (1 + exp(-x)) in float32 warned of overflow below about -88
        got = probability(logits)
    expected = torch.sigmoid(torch.from_numpy(logits).double()).numpy()
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)
    assert probability(np.float32(-1e4)) == 0.0 and probability(np.float32(1e4)) == 1.0
    assert float(probability(2.5)) == float(probability(np.float32(2.5)))  # float32 logits, whatever comes in
