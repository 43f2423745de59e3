import numpy as np

from student.evaluation.map_metrics import contact_density, default_k, map_aupr, top_k_overlap, top_k_precision


def test_true_map_scores_one_and_shuffled_map_scores_near_density():
    rng = np.random.default_rng(0)
    truth = np.zeros((60, 50))
    truth[10:18, 20:28] = 1
    k = default_k(truth.shape)
    assert top_k_precision(truth + rng.random(truth.shape) * 0.1, truth, k) == 1.0
    shuffled = [top_k_precision(rng.random(truth.shape), truth, k) for _ in range(200)]
    assert abs(np.mean(shuffled) - contact_density(truth)) < 0.01
    assert map_aupr(truth, truth) == 1.0


def test_top_k_overlap_counts_every_tied_reference_cell():
    # A binary teacher with 64 contacts: a prediction whose top-k lies inside the block must score 1,
    # whichever of the tied cells it picks (cutting the tie in row order would score it lower).
    teacher = np.zeros((40, 40))
    teacher[20:28, 20:28] = 1
    pred = np.zeros((40, 40))
    pred[27, 20:28] = 1.0  # the block's last row: not among the first k cells in row order
    assert top_k_overlap(pred, teacher, k=8) == 1.0
    pred_off = np.zeros((40, 40))
    pred_off[0, :8] = 1.0
    assert top_k_overlap(pred_off, teacher, k=8) == 0.0


def test_pair_map_reads_one_map_in_either_orientation(tmp_path):
    from tests.helpers import write_random_cache
    from teacher_cache import TeacherCache

    seq_a, seq_b = "MKTAYIAKQR", "GLLVVKQ"
    path = write_random_cache(tmp_path / "c.h5", [(seq_a, seq_b)])
    with TeacherCache.open(path) as cache:
        both = cache.pair(seq_a, seq_b)
        np.testing.assert_array_equal(cache.pair_map(seq_a, seq_b, "contact"), both.contact)
        np.testing.assert_array_equal(cache.pair_map(seq_b, seq_a, "attention"), both.attention.T)
