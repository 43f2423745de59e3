"""Window planning and stitching for inputs longer than the teacher's context."""
from __future__ import annotations

import numpy as np
import pytest

from teacher_cache.teachers.tiling import (MapStitcher, RowStitcher, chain_windows, pair_window_sizes, plan_chain,
                                           plan_pair)


@pytest.mark.parametrize("length,size,overlap", [(10, 10, 3), (11, 10, 3), (100, 17, 5), (100, 17, 40), (7, 1, 0)])
def test_chain_windows_cover_every_residue_within_size(length, size, overlap):
    windows = chain_windows(length, size, overlap)
    covered = np.zeros(length, int)
    for start, stop in windows:
        assert 0 <= start < stop <= length
        assert stop - start == min(size, length)
        covered[start:stop] += 1
    assert covered.min() >= 1
    assert windows == sorted(windows)
    if len(windows) > 1:  # neighbours overlap by at least the (clamped) overlap, except possibly the last
        shared = [a_stop - b_start for (_, a_stop), (b_start, _) in zip(windows, windows[1:])]
        assert min(shared) >= min(overlap, size // 2)


@pytest.mark.parametrize("len_a,len_b,budget", [(30, 40, 100), (30, 400, 100), (400, 30, 100), (500, 600, 100),
                                                (1, 300, 2)])
def test_pair_window_sizes_respect_budget(len_a, len_b, budget):
    size_a, size_b = pair_window_sizes(len_a, len_b, budget)
    assert size_a + size_b <= budget
    assert 1 <= size_a <= len_a and 1 <= size_b <= len_b
    if len_a + len_b <= budget:
        assert (size_a, size_b) == (len_a, len_b)


def test_plan_pair_fits_as_one_window_and_tiles_otherwise():
    assert plan_pair(30, 40, max_tokens=100, linker_length=25, overlap=8) == [((0, 30), (0, 40))]
    plan = plan_pair(90, 130, max_tokens=100, linker_length=25, overlap=8)
    assert len(plan) > 1
    for (a0, a1), (b0, b1) in plan:
        assert (a1 - a0) + (b1 - b0) + 25 + 2 <= 100
    with pytest.raises(ValueError):
        plan_pair(10, 10, max_tokens=20, linker_length=18, overlap=0)


def test_stitched_windows_reproduce_a_map_that_every_window_agrees_on():
    """Windows that each see the true value of their cells stitch back to the full map, every cell covered."""
    len_a, len_b = 57, 83
    truth = np.random.default_rng(0).random((len_a, len_b))
    stitcher = MapStitcher(len_a, len_b)
    plan = plan_pair(len_a, len_b, max_tokens=60, linker_length=4, overlap=6)
    assert len(plan) > 4
    for wa, wb in plan:
        window = truth[slice(*wa), slice(*wb)]
        stitcher.add(wa, wb, contact=window, attention=1 - window)
    result = stitcher.result()
    assert result["contact"].shape == (len_a, len_b)
    np.testing.assert_allclose(result["contact"], truth, atol=1e-6)
    np.testing.assert_allclose(result["attention"], 1 - truth, atol=1e-6)


def test_stitching_averages_overlaps_and_refuses_gaps():
    stitcher = MapStitcher(2, 3)
    stitcher.add((0, 2), (0, 2), contact=np.ones((2, 2)), attention=np.zeros((2, 2)))
    stitcher.add((0, 2), (1, 3), contact=np.zeros((2, 2)), attention=np.zeros((2, 2)))
    contact = stitcher.result()["contact"]
    np.testing.assert_allclose(contact, [[1, 0.5, 0], [1, 0.5, 0]])
    gap = MapStitcher(2, 3)
    gap.add((0, 2), (0, 2), contact=np.ones((2, 2)), attention=np.ones((2, 2)))
    with pytest.raises(ValueError, match="uncovered"):
        gap.result()


def test_chain_stitching_means_rows_over_windows():
    length, dim = 50, 3
    truth = np.arange(length * dim, dtype=float).reshape(length, dim)
    stitcher = RowStitcher(length, dim)
    windows = plan_chain(length, max_tokens=14, overlap=4)
    assert len(windows) > 1 and all(stop - start == 12 for start, stop in windows)
    for window in windows:
        stitcher.add(window, truth[slice(*window)])
    np.testing.assert_allclose(stitcher.result(), truth)


def test_single_window_stitch_equals_untiled_teacher_maps(tmp_path):
    """A pair that fits: its one window is the whole pair, so stitching returns the untiled maps exactly."""
    import torch

    from tests.helpers import random_sequence
    from teacher_cache.teachers.esm_runner import write_random_esm2
    from teacher_cache.teachers.esm_runner import load_teacher

    torch.set_num_threads(1)
    teacher = load_teacher(str(write_random_esm2(tmp_path, contact_scale=20.0)))
    rng = np.random.default_rng(3)
    seq_a, seq_b = random_sequence(rng, 21), random_sequence(rng, 16)
    plan = plan_pair(len(seq_a), len(seq_b), max_tokens=64, linker_length=5, overlap=4)
    assert plan == [((0, 21), (0, 16))]
    contact, attention = teacher.pair_maps([(seq_a, seq_b)], "G" * 5, [-1])[0]
    stitcher = MapStitcher(len(seq_a), len(seq_b))
    for wa, wb in plan:
        window_contact, window_attention = teacher.pair_maps(
            [(seq_a[slice(*wa)], seq_b[slice(*wb)])], "G" * 5, [-1])[0]
        stitcher.add(wa, wb, contact=window_contact, attention=window_attention)
    stitched = stitcher.result()
    np.testing.assert_array_equal(stitched["contact"], contact)
    np.testing.assert_array_equal(stitched["attention"], attention)
