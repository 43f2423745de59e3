"""The ablation grid (student.evaluation.ablate): rows, columns, resumption, settings checks; and one tiny real run."""
from __future__ import annotations

import csv

import pytest

from data.errors import UserError
from data.synth import SynthConfig
from student.evaluation.ablate import KEY_COLUMNS, RESULT_COLUMNS, AblateConfig, grid, run_ablation
from student.config import ModelConfig, TrainConfig
from teacher_cache.teachers.synthetic import make_synthetic

TINY_MODEL = ModelConfig(embed_dim=8, channels=(8,), kernel_sizes=(3,), hidden=8, map_topk=4)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    make_synthetic(SynthConfig(n_pairs=60, families=2, motif_len=4, min_len=16, max_len=24, seed=1,
                               embedding_dim=8), out)
    return out


def _config(data, out, **overrides) -> AblateConfig:
    values = dict(pairs=str(data / "pairs.tsv"), fasta=str(data / "seqs.fasta"), cache=str(data / "cache.h5"),
                  out=str(out), heads=("map",), losses=("ce", "ce+map"), n_train=(20,), seeds=(0,), epochs=2,
                  batch_size=8, model=TINY_MODEL)
    values.update(overrides)
    return AblateConfig(**values)


class FakeTrainer:
    """Stands in for student.trainer.train: records the configs and returns metrics that depend on them."""

    def __init__(self):
        self.configs: list[TrainConfig] = []

    def __call__(self, config: TrainConfig) -> dict:
        self.configs.append(config)
        aupr = 0.5 + 0.4 * (config.alpha_map > 0) + 0.01 * config.seed
        return {"valid": {"aupr": aupr, "auroc": aupr}, "test": {"aupr": aupr, "auroc": aupr, "map_top_l5": 0.25},
                "best_epoch": 1, "seconds": 0.1}


def _read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_grid_rows_columns_and_resume(synth_dir, tmp_path):
    fake = FakeTrainer()
    result = run_ablation(_config(synth_dir, tmp_path / "run", seeds=(0, 1)), train_fn=fake)
    assert (result.ran, result.skipped) == (4, 0)
    rows = _read(tmp_path / "run" / "results.csv")
    assert list(rows[0]) == list(RESULT_COLUMNS)
    assert len({r["student_code"] for r in rows}) == 1 and len(rows[0]["student_code"]) == 12
    assert sorted((r["losses"], r["seed"]) for r in rows) == [("ce", "0"), ("ce", "1"), ("ce+map", "0"),
                                                              ("ce+map", "1")]
    ce_row = next(r for r in rows if r["losses"] == "ce" and r["seed"] == "0")
    map_row = next(r for r in rows if r["losses"] == "ce+map" and r["seed"] == "0")
    assert (ce_row["map_loss"], ce_row["alpha_map"], ce_row["aupr"]) == ("", "0", "0.5000")
    assert (map_row["map_loss"], map_row["map_norm"], map_row["alpha_map"], map_row["aupr"]) == \
        ("marginal", "mass", "1", "0.9000")
    assert map_row["map_top_target"] == "16" and ce_row["map_top_target"] == ""
    # what each run was asked to do
    by_alpha = {c.alpha_map: c for c in fake.configs}
    assert by_alpha[1.0].map_loss == "marginal" and by_alpha[0.0].beta_sem == 0.0
    assert all(c.split == "column" and c.n_train == 20 and c.model.head == "map" and c.epochs == 2
               for c in fake.configs)
    assert len({c.out for c in fake.configs}) == 4
    summary = result.summary_md.read_text()
    assert "0.905 ± 0.007" in summary and "0.505 ± 0.007" in summary
    assert result.plot_png is not None and result.plot_png.stat().st_size > 0

    # a re-run skips every finished row; a wider grid runs only what is new; a new map loss reuses CE rows
    again = FakeTrainer()
    result = run_ablation(_config(synth_dir, tmp_path / "run", seeds=(0, 1)), train_fn=again)
    assert (result.ran, result.skipped, again.configs) == (0, 4, [])
    result = run_ablation(_config(synth_dir, tmp_path / "run", seeds=(0, 1), map_loss="mse", map_norm="mean",
                                  alpha_map=10.0), train_fn=again)
    assert (result.ran, result.skipped) == (2, 2)
    assert {(c.map_loss, c.map_norm, c.alpha_map) for c in again.configs} == {("mse", "mean", 10.0)}
    rows = _read(tmp_path / "run" / "results.csv")
    assert len(rows) == 6 and len({tuple(r[c] for c in KEY_COLUMNS) for r in rows}) == 6


def test_changed_shared_settings_and_bad_inputs_are_refused(synth_dir, tmp_path):
    run_ablation(_config(synth_dir, tmp_path / "run"), train_fn=FakeTrainer())
    with pytest.raises(UserError, match="other settings.*epochs"):
        run_ablation(_config(synth_dir, tmp_path / "run", epochs=3), train_fn=FakeTrainer())
    with pytest.raises(UserError, match="exceed the 48 training pairs"):
        run_ablation(_config(synth_dir, tmp_path / "big", n_train=(100,)), train_fn=FakeTrainer())
    with pytest.raises(UserError, match="unknown or missing losses"):
        _config(synth_dir, tmp_path, losses=("ce+kd",))
    no_split = tmp_path / "nosplit.tsv"
    lines = (synth_dir / "pairs.tsv").read_text().splitlines()
    no_split.write_text("\n".join("\t".join(line.split("\t")[:3]) for line in lines) + "\n")
    with pytest.raises(UserError, match="no split column"):
        run_ablation(_config(synth_dir, tmp_path / "x", pairs=str(no_split)), train_fn=FakeTrainer())


def test_grid_order_and_keys():
    config = AblateConfig(pairs="p", fasta="f", cache="c", out="o", n_train=(500, 250), seeds=(0, 1))
    specs = grid(config)
    assert len(specs) == 3 * 4 * 2 * 2 and len({s.key for s in specs}) == len(specs)
    assert [s.n_train for s in specs[:24]] == [250] * 24  # small training sets first


def test_tiny_real_grid_with_the_trainer(synth_dir, tmp_path):
    """Two real 1-epoch runs through student.trainer.train: rows with metrics, the planted-map precision, resume."""
    config = _config(synth_dir, tmp_path / "real", epochs=1, losses=("ce", "ce+map+sem"), beta_sem=0.1)
    result = run_ablation(config)
    assert (result.ran, result.skipped) == (2, 0)
    rows = _read(tmp_path / "real" / "results.csv")
    for row in rows:
        assert 0.0 <= float(row["aupr"]) <= 1.0 and 0.0 <= float(row["auroc"]) <= 1.0
        assert 0.0 <= float(row["map_top_l5"]) <= 1.0  # the test part holds positives with planted contacts
        assert row["epochs"] == "1" and float(row["seconds"]) > 0
        loss = "ce" if row["losses"] == "ce" else "ce-map-sem_marginal-mass-a1-top16_b0.1"
        assert (tmp_path / "real" / "runs" / f"map_{loss}_n20_s0" / "best.pt").exists()
    assert run_ablation(config).ran == 0


def test_report_only(synth_dir, tmp_path):
    from click.testing import CliRunner

    from cli import cli

    run_ablation(_config(synth_dir, tmp_path / "run"), train_fn=FakeTrainer())
    (tmp_path / "run" / "summary.md").unlink()
    result = CliRunner().invoke(cli, ["ablate", "--out", str(tmp_path / "run"), "--report-only"])
    assert result.exit_code == 0, result.output
    assert "0.900" in (tmp_path / "run" / "summary.md").read_text()
    missing = CliRunner().invoke(cli, ["ablate", "--out", str(tmp_path / "nothing"), "--report-only"])
    assert missing.exit_code == 2 and "no results.csv" in " ".join(missing.output.split())


def test_top_target_is_a_key_column_and_old_rows_read_as_off(synth_dir, tmp_path):
    """map_top_target reaches each run's TrainConfig and the row key; a results file from before the column reads
    as top_target 0 for map rows (so re-running the old grid skips them) and empty for CE rows."""
    from student.evaluation.ablate import read_results

    trainer = FakeTrainer()
    config = _config(synth_dir, tmp_path / "a", map_top_target=16)
    run_ablation(config, train_fn=trainer)
    assert [c.map_top_target for c in trainer.configs if c.alpha_map > 0] == [16]
    rows = _read(tmp_path / "a" / "results.csv")
    assert sorted(r["map_top_target"] for r in rows) == ["", "16"]
    assert any("top16" in spec.name for spec in grid(config))
    old = tmp_path / "old.csv"
    with open(old, "w", newline="") as handle:
        columns = [c for c in RESULT_COLUMNS if c != "map_top_target"]
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    assert sorted(r["map_top_target"] for r in read_results(old)) == ["", "0"]


def test_settings_saved_before_new_model_fields_still_match(synth_dir, tmp_path):
    """An ablate.json written before ModelConfig had pool/pool_norm reads as their old behaviour (max pooling,
    no standardisation): the same grid with those settings given explicitly extends it; today's defaults do not."""
    import json
    from dataclasses import replace

    old_model = replace(TINY_MODEL, pool="max", pool_norm=False)
    run_ablation(_config(synth_dir, tmp_path / "a", model=old_model), train_fn=FakeTrainer())
    settings = tmp_path / "a" / "ablate.json"
    saved = json.loads(settings.read_text())
    for name in ("pool", "pool_norm"):
        del saved["model"][name]
    settings.write_text(json.dumps(saved))
    run_ablation(_config(synth_dir, tmp_path / "a", model=old_model, seeds=(1,)), train_fn=FakeTrainer())
    with pytest.raises(UserError, match="other settings"):
        run_ablation(_config(synth_dir, tmp_path / "a", model=replace(TINY_MODEL, pool_norm=True)),
                     train_fn=FakeTrainer())


def test_two_ablations_into_one_folder_keep_each_others_rows(synth_dir, tmp_path):
    """One seed per process into a shared folder: while this ablation trains seed 0, another (simulated by a
    nested call) finishes seed 1. Each reads the file before it adds its own row, so neither row is lost, and the
    first then skips what the other already ran."""
    out = tmp_path / "shared"
    other = FakeTrainer()

    class Racing(FakeTrainer):
        def __call__(self, config: TrainConfig) -> dict:
            if not other.configs:
                run_ablation(_config(synth_dir, out, losses=("ce",), seeds=(1,)), train_fn=other)
            return super().__call__(config)

    first = Racing()
    result = run_ablation(_config(synth_dir, out, losses=("ce",), seeds=(0, 1)), train_fn=first)
    assert [c.seed for c in first.configs] == [0] and [c.seed for c in other.configs] == [1]
    assert (result.ran, result.skipped) == (1, 1)
    assert sorted(r["seed"] for r in _read(out / "results.csv")) == ["0", "1"]
    assert not (out / "results.csv.lock").exists()


def test_unlabelled_pairs_and_ce_norm_are_settings_of_the_whole_folder(synth_dir, tmp_path):
    """Rows with and without unlabelled pairs (or, with unlabelled pairs, another CE normalisation) never share a
    results.csv; without unlabelled pairs the CE normalisation changes nothing and is no difference; an ablate.json
    saved before the two settings existed reads as neither (CE the labelled pairs' mean)."""
    import json

    run_ablation(_config(synth_dir, tmp_path / "run"), train_fn=FakeTrainer())
    unlabelled = tmp_path / "unlabelled.tsv"
    unlabelled.write_text("id_a\tid_b\n")
    with pytest.raises(UserError, match="other settings.*unlabelled_pairs"):
        run_ablation(_config(synth_dir, tmp_path / "run", unlabelled_pairs=str(unlabelled)), train_fn=FakeTrainer())
    # without unlabelled pairs both normalisations are the same loss: the folder takes either
    run_ablation(_config(synth_dir, tmp_path / "run", ce_norm="labelled"), train_fn=FakeTrainer())
    u_run = _config(synth_dir, tmp_path / "u_run", unlabelled_pairs=str(unlabelled), ce_norm="labelled")
    run_ablation(u_run, train_fn=FakeTrainer())
    with pytest.raises(UserError, match="other settings.*ce_norm"):
        run_ablation(_config(synth_dir, tmp_path / "u_run", unlabelled_pairs=str(unlabelled), ce_norm="batch"),
                     train_fn=FakeTrainer())
    settings = tmp_path / "run" / "ablate.json"
    saved = json.loads(settings.read_text())
    del saved["unlabelled_pairs"], saved["ce_norm"]
    settings.write_text(json.dumps(saved))
    result = run_ablation(_config(synth_dir, tmp_path / "run", seeds=(0, 1)), train_fn=FakeTrainer())
    assert result.skipped >= 1 and result.ran >= 1
    # a folder with unlabelled pairs saved before --ce-norm existed ran with the labelled pairs' mean
    settings = tmp_path / "u_run" / "ablate.json"
    saved = json.loads(settings.read_text())
    del saved["ce_norm"]
    settings.write_text(json.dumps(saved))
    with pytest.raises(UserError, match="other settings.*ce_norm"):
        run_ablation(_config(synth_dir, tmp_path / "u_run", unlabelled_pairs=str(unlabelled)), train_fn=FakeTrainer())
    run_ablation(_config(synth_dir, tmp_path / "u_run", unlabelled_pairs=str(unlabelled), ce_norm="labelled"),
                 train_fn=FakeTrainer())
