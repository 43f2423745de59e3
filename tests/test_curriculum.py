"""The map-first curriculum (`train --map-first-epochs N`): teacher terms alone for N epochs, then CE joins."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from data.errors import UserError
from student.evaluation.ablate import run_ablation
from student.trainer import train
from data.synth import SynthConfig
from teacher_cache.teachers.synthetic import make_synthetic
from tests.test_ablate import FakeTrainer, _config as ablate_config
from tests.test_training import make_problem, tiny_config


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    make_synthetic(SynthConfig(n_pairs=40, families=2, motif_len=4, min_len=16, max_len=24, seed=1,
                               embedding_dim=8), out)
    return out


def _history(out: Path) -> list[dict[str, str]]:
    with open(out / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_map_first_epochs_train_the_map_term_alone_and_are_never_the_best_epoch(tmp_path: Path) -> None:
    files = make_problem(tmp_path)
    results = train(tiny_config(files, tmp_path / "run", epochs=5, map_first_epochs=2, patience=1, beta_sem=0.0))
    rows = _history(tmp_path / "run")
    for row in rows[:2]:  # the loss is the map term alone (alpha 1), though CE is still measured
        assert float(row["train_loss"]) == pytest.approx(float(row["train_map"]), rel=1e-5)
        assert float(row["train_ce"]) > 0 and row["best"] == "0"
    for row in rows[2:]:
        assert float(row["train_loss"]) == pytest.approx(float(row["train_map"]) + float(row["train_ce"]), rel=1e-4)
    assert rows[2]["best"] == "1" and results["best_epoch"] >= 3
    # patience 1 counts from the first epoch with CE: at least two epochs run after the curriculum
    assert len(rows) >= 4
    plain = train(tiny_config(files, tmp_path / "plain", epochs=5, patience=1, beta_sem=0.0))
    assert float(_history(tmp_path / "plain")[0]["train_loss"]) > float(_history(tmp_path / "plain")[0]["train_map"])
    assert plain["best_epoch"] >= 1


def test_map_first_epochs_need_a_teacher_term_and_epochs_after_them(tmp_path: Path) -> None:
    files = make_problem(tmp_path)
    with pytest.raises(UserError, match="map-first-epochs"):
        tiny_config(files, tmp_path / "a", epochs=3, map_first_epochs=3)
    with pytest.raises(UserError, match="map-first-epochs"):
        tiny_config(files, tmp_path / "b", map_first_epochs=-1)
    with pytest.raises(UserError, match="map-first-epochs 1 .* has none"):
        train(tiny_config(files, tmp_path / "c", map_first_epochs=1, alpha_map=0.0, beta_sem=0.0))
    no_cache = dict(files, cache=None)
    with pytest.raises(UserError, match="has none"):
        train(tiny_config(no_cache, tmp_path / "d", map_first_epochs=1))
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_ablate_runs_ce_only_without_the_curriculum_and_keeps_it_a_folder_setting(synth_dir, tmp_path):
    fake = FakeTrainer()
    run_ablation(ablate_config(synth_dir, tmp_path / "run", map_first_epochs=1), train_fn=fake)
    assert sorted((c.alpha_map, c.map_first_epochs) for c in fake.configs) == [(0.0, 0), (1.0, 1)]
    with pytest.raises(UserError, match="other settings.*map_first_epochs"):
        run_ablation(ablate_config(synth_dir, tmp_path / "run"), train_fn=FakeTrainer())
    with pytest.raises(UserError, match="CE only"):
        ablate_config(synth_dir, tmp_path / "ce", losses=("ce",), map_first_epochs=1)
    # an ablate.json from before the setting existed reads as no curriculum
    run_ablation(ablate_config(synth_dir, tmp_path / "old"), train_fn=FakeTrainer())
    settings = tmp_path / "old" / "ablate.json"
    saved = json.loads(settings.read_text())
    del saved["map_first_epochs"]
    settings.write_text(json.dumps(saved))
    assert run_ablation(ablate_config(synth_dir, tmp_path / "old"), train_fn=FakeTrainer()).skipped == 2
