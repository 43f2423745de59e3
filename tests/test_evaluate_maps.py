"""Map scoring against true contacts: metrics on known maps, chance levels, the cache and student paths, the CLI."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from data.align import align_to_sequence
from data.structure import ComplexContacts, ManifestRow, distance_map
from student.evaluation.evaluate_maps import (EvaluateMapsConfig, evaluate_maps, interface_recall_chance, score_complex,
                                   summarise)
from student.evaluation.map_metrics import default_k, interface_recall
from teacher_cache.teachers.structure import StructureCacheConfig, build_structure_cache
from tests.helpers import random_sequence, write_random_cache
from tests.test_structure import PDB_TEXT, SEQ_A, SEQ_B, write_manifest


def synthetic_complex(rng: np.random.Generator, len_a: int = 120, len_b: int = 90) -> ComplexContacts:
    """Two random-walk chains facing each other: a few hundred contacts among ~10^4 cells."""
    steps_a = rng.normal(size=(len_a, 3)) * 2.0
    steps_b = rng.normal(size=(len_b, 3)) * 2.0
    coords_a = np.cumsum(steps_a, axis=0)
    coords_b = np.cumsum(steps_b, axis=0) + np.array([6.0, 0.0, 0.0])
    seq_a, seq_b = random_sequence(rng, len_a), random_sequence(rng, len_b)
    row = ManifestRow("a", "b", Path("a.pdb"), Path("b.pdb"), None, None, "m.tsv", 2)
    return ComplexContacts(row, seq_a, seq_b, distance_map(coords_a, coords_b).astype(np.float32),
                           align_to_sequence(seq_a, seq_a), align_to_sequence(seq_b, seq_b))


def test_true_map_scores_one_and_shuffled_maps_score_chance(rng):
    complex_ = synthetic_complex(rng)
    truth = complex_.contacts()
    k = default_k(truth.shape)
    assert truth.sum() >= k  # otherwise precision 1 is impossible
    perfect = score_complex(-complex_.distance, complex_)
    assert perfect.precision_top_l5 == 1.0 and perfect.precision_top10 == 1.0
    assert perfect.aupr == pytest.approx(1.0)
    assert perfect.density == pytest.approx(truth.mean())
    shuffled = [score_complex(rng.permutation(truth.ravel()).reshape(truth.shape).astype(np.float32)
                              + rng.random(truth.shape).astype(np.float32) * 1e-3, complex_) for _ in range(200)]
    mean_precision = np.mean([s.precision_top_l5 for s in shuffled])
    mean_aupr = np.mean([s.aupr for s in shuffled])
    assert abs(mean_precision - perfect.density) < 0.35 * perfect.density + 0.01
    assert abs(mean_aupr - perfect.density) < 0.35 * perfect.density + 0.01
    assert mean_precision < 0.5


def test_interface_recall_chance_matches_random_draws(rng):
    truth = np.zeros((30, 20), dtype=bool)
    truth[3:6, 4:7] = True
    truth[20, 15] = True
    observed = np.ones_like(truth)
    observed[25:] = False
    observed[:, 18:] = False
    k = 6
    analytic = interface_recall_chance(truth, observed, k)
    draws = [interface_recall(np.where(observed, rng.random(truth.shape), 0.0), truth, k, observed)
             for _ in range(4000)]
    assert analytic == pytest.approx(np.mean(draws), abs=0.01)
    assert 0 < analytic < 1


def test_only_observed_cells_are_scored(rng):
    complex_ = synthetic_complex(rng, 60, 50)
    pred = -complex_.distance.copy()
    # a masked row: the alignment says residue 0 of A has no coordinates; giving it the top score must not matter
    index = complex_.align_a.index.copy()
    index[0] = -1
    masked = ComplexContacts(complex_.row, complex_.seq_a, complex_.seq_b,
                             np.where(np.arange(60)[:, None] == 0, np.inf, complex_.distance).astype(np.float32),
                             type(complex_.align_a)(index, 59, 60), complex_.align_b)
    pred[0, :] = 1e6
    score = score_complex(pred, masked)
    assert score.observed_cells == 59 * 50
    assert score.precision_top_l5 == 1.0


def test_summary_counts_complexes_equally(rng):
    scores = [score_complex(-c.distance, c) for c in (synthetic_complex(rng), synthetic_complex(rng, 40, 300))]
    summary = summarise(scores)
    assert summary["complexes"] == 2
    assert summary["aupr"]["mean"] == pytest.approx(1.0)
    assert summary["precision_top_l5"]["chance_mean"] == pytest.approx(np.mean([s.density for s in scores]))
    assert summary["precision_top_l5"]["above_chance"] == 2


@pytest.fixture
def fixture_complex(tmp_path: Path) -> Path:
    (tmp_path / "complex.pdb").write_text(PDB_TEXT)
    return write_manifest(tmp_path / "m.tsv", [("pa", "pb", "complex.pdb", "complex.pdb", "A", "B")])


def test_structure_cache_scores_perfectly_and_random_cache_is_flagged(tmp_path: Path, fixture_complex: Path):
    build_structure_cache(StructureCacheConfig(structures=str(fixture_complex), out=str(tmp_path / "s.h5")))
    result = evaluate_maps(EvaluateMapsConfig(structures=str(fixture_complex), cache=str(tmp_path / "s.h5"),
                                              out=str(tmp_path / "per.tsv"), plot=str(tmp_path / "plots")))
    score = result.scores[0]
    assert (score.contacts, score.observed_cells, score.k) == (5, 42, 1)
    assert score.precision_top_l5 == 1.0 and score.precision_top10 == 0.5
    assert score.aupr == pytest.approx(1.0)
    assert not result.random_teacher
    lines = (tmp_path / "per.tsv").read_text().splitlines()
    assert lines[0].startswith("id_a\tid_b\tline") and len(lines) == 2
    assert len(list((tmp_path / "plots").glob("*.png"))) == 1

    write_random_cache(tmp_path / "r.h5", [(SEQ_A, SEQ_B)])
    result = evaluate_maps(EvaluateMapsConfig(structures=str(fixture_complex), cache=str(tmp_path / "r.h5")))
    assert result.random_teacher and "RANDOM" in result.source


def test_cache_without_the_pair_is_a_clear_error(tmp_path: Path, fixture_complex: Path, rng):
    write_random_cache(tmp_path / "other.h5", [(random_sequence(rng, 20), random_sequence(rng, 30))])
    from data.errors import UserError

    with pytest.raises(UserError, match="none of the 1 complexes"):
        evaluate_maps(EvaluateMapsConfig(structures=str(fixture_complex), cache=str(tmp_path / "other.h5")))


def test_student_checkpoint_path(tmp_path: Path, fixture_complex: Path):
    import torch

    from student.checkpoint import save_checkpoint
    from student.config import ModelConfig, TrainConfig
    from student.model import StudentModel

    torch.manual_seed(0)
    model_config = ModelConfig(embed_dim=8, channels=(16,), kernel_sizes=(3,), hidden=8)
    model = StudentModel(model_config)
    save_checkpoint(tmp_path / "best.pt", {"model": model.state_dict(), "model_config": model_config.to_dict(),
                                           "train_config": TrainConfig(model=model_config).to_dict(),
                                           "threshold": 0.5, "epoch": 0})
    result = evaluate_maps(EvaluateMapsConfig(structures=str(fixture_complex), checkpoint=str(tmp_path / "best.pt")))
    score = result.scores[0]
    assert (score.len_a, score.len_b) == (len(SEQ_A), len(SEQ_B))
    assert 0.0 <= score.precision_top_l5 <= 1.0 and np.isfinite(score.aupr)


def test_evaluate_maps_cli(tmp_path: Path, fixture_complex: Path):
    from cli import cli

    runner = CliRunner()
    assert runner.invoke(cli, ["structure-cache", "--structures", str(fixture_complex), "--out",
                               str(tmp_path / "s.h5")]).exit_code == 0
    result = runner.invoke(cli, ["evaluate-maps", "--structures", str(fixture_complex), "--cache",
                                 str(tmp_path / "s.h5"), "--out", str(tmp_path / "per.tsv")])
    assert result.exit_code == 0, result.output
    assert "P@L/5" in result.output and (tmp_path / "per.tsv").exists()
    both = runner.invoke(cli, ["evaluate-maps", "--structures", str(fixture_complex)])
    assert both.exit_code == 2 and "exactly one of --cache" in both.output
