"""The teacher-quality benchmark's report: variant names and CE pairing (benchmarks/teacher_quality.py)."""
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmarks.teacher_quality import SCHEDULES, VARIANTS, _folder, _variant, schedule_markdown, summary
from cli import cli


def _row(schedule, variant_options, seed, aupr, valid=0.5):
    base = {"map_loss": "", "map_pairs": "all", "map_confidence": "False", "map_top_target": "0", "alpha_map": "1.0"}
    return {**base, **variant_options, "schedule": schedule, "teacher": "esm-like", "head": "both",
            "n_train": "500", "seed": str(seed), "aupr": str(aupr), "valid_aupr": str(valid),
            "map_top_l5": "0.1", "teacher_p_l5": "0.4", "teacher_aupr": "0.8", "best_epoch": "3", "epochs": "7"}


def test_variants_are_told_apart_by_their_alpha_and_top_target():
    marginal = {"map_loss": "marginal", "map_top_target": "16"}
    assert _variant(_row("grid", marginal, 0, 0.6)) == "marginal-top"
    assert _variant(_row("grid", {**marginal, "alpha_map": "2.0"}, 0, 0.6)) == "marginal-top-a2"
    assert _variant(_row("grid", {**marginal, "map_top_target": "32"}, 0, 0.6)) == "marginal-top32"
    assert _variant(_row("grid", {**marginal, "alpha_map": "3.0"}, 0, 0.6)) == "marginal-all-top16-a3.0"
    assert _variant(_row("grid", {}, 0, 0.6)) == "ce"


def test_every_variant_runs_what_its_name_says_whatever_trains_defaults_are(tmp_path, monkeypatch):
    """Each variant's options, parsed by the real `ablate` command, give a row that reads back as that variant:
    a variant that leant on a `train` default (issue 16 changed them) would read back as another one."""
    seen = []

    def record(config, progress=None):
        seen.append(config)
        raise SystemExit(0)  # the command stops here: nothing trains

    monkeypatch.setattr("student.evaluation.ablate.run_ablation", record)
    monkeypatch.setattr("student.evaluation.ablate.data_dir_inputs",
                        lambda *args: {"pairs": "pairs.tsv", "fasta": "seqs.fasta", "cache": "cache.h5"})
    for name, options in VARIANTS.items():
        result = CliRunner().invoke(cli, ["ablate", "--data", str(tmp_path), "--out", str(tmp_path / "out"),
                                           "--losses", "ce+map", *options])
        assert result.exit_code == 0, result.output
        config = seen.pop()
        row = {"map_loss": config.map_loss, "map_pairs": config.map_pairs, "map_confidence": str(config.map_confidence),
               "map_top_target": str(config.map_top_target), "alpha_map": str(config.alpha_map)}
        assert _variant(row) == name


def test_gains_pair_with_the_ce_run_of_the_same_schedule_and_seed():
    marginal = {"map_loss": "marginal", "map_top_target": "16"}
    rows = [_row("grid", {}, 0, 0.50), _row("grid", {}, 1, 0.60), _row("e15-m10", {}, 0, 0.40),
            _row("e15-m10", {}, 1, 0.30), _row("grid", marginal, 0, 0.55), _row("grid", marginal, 1, 0.70),
            _row("e15-m10", marginal, 0, 0.80), _row("e15-m10", marginal, 1, 0.90)]
    for row in rows:
        row["variant"] = _variant(row)
    groups = {(g["schedule"], g["variant"]): g for g in summary(rows)}
    assert groups[("grid", "marginal-top")]["gain"].tolist() == [0.55 - 0.50, 0.70 - 0.60]
    assert [round(x, 9) for x in groups[("e15-m10", "marginal-top")]["gain"]] == [0.4, 0.6]
    table = schedule_markdown(list(groups.values()))
    assert table.count("(none)") == 2  # one CE row per schedule
    assert "| esm-like | e15-m10 | 500 | marginal-top |" in table


def test_the_first_grid_keeps_its_folders_and_every_schedule_fixes_its_epochs(tmp_path):
    assert _folder(tmp_path, "ce", "grid") == tmp_path / "ablate_ce"
    assert _folder(tmp_path, "good", "e25-m15") == tmp_path / "ablate_good_e25-m15"
    assert all("--epochs" in options and "--patience" in options for options in SCHEDULES.values())


def test_a_set_size_reaches_synth_and_a_folder_of_another_size_is_refused(tmp_path, monkeypatch):
    import benchmarks.teacher_quality as tq

    commands = []
    monkeypatch.setattr(tq, "_run", commands.append)
    tq.run_grid(tmp_path, ("esm-like",), ("bce",), (0,), schedules=("e6-p2",), n_pairs=3500)
    synth = commands[0]
    assert synth[0] == "synth" and synth[synth.index("--n-pairs") + 1] == "3500"
    assert [c[c.index("--epochs") + 1] for c in commands[1:]] == ["6", "6"]  # CE, then the variant
    (tmp_path / "synth_esm-like").mkdir()
    (tmp_path / "synth_esm-like" / "pairs.tsv").write_text("id_a\tid_b\tlabel\na\tb\t1\n")
    with pytest.raises(SystemExit, match="holds 1 pairs, not --n-pairs 3500"):
        tq.run_grid(tmp_path, ("esm-like",), ("bce",), (0,), n_pairs=3500)


def test_unlabelled_runs_read_their_own_folders_and_pair_with_the_schedules_ce(tmp_path, monkeypatch):
    """--unlabelled: the unlabelled table holds the train part's pairs only; map rows come from the `_unl` folder
    (labelled `<schedule>+unl`), CE rows from the schedule's own CE folder."""
    from benchmarks import teacher_quality
    from student.evaluation.ablate import RESULT_COLUMNS, write_results

    synth = tmp_path / "synth_esm-like"
    synth.mkdir()
    (synth / "pairs.tsv").write_text("id_a\tid_b\tlabel\tsplit\nA1\tB1\t1\ttrain\nA2\tB2\t0\tvalid\n"
                                     "A3\tB3\t0\ttrain\nA4\tB4\t1\ttest\n")
    (synth / "cache.h5").write_text("")
    assert teacher_quality.write_unlabelled(synth).read_text() == "id_a\tid_b\nA1\tB1\nA3\tB3\n"
    assert teacher_quality.write_unlabelled(synth, "negatives").read_text() == "id_a\tid_b\nA3\tB3\n"
    monkeypatch.setattr(teacher_quality, "_teacher_settings", lambda _: {})
    blank = {c: "" for c in RESULT_COLUMNS}
    common = dict(head="both", n_train="500", seed="0", map_pairs="all", map_confidence="False", alpha_map="1",
                  map_top_target="16", aupr="0.5")
    for folder in (_folder(tmp_path, "ce", "e40-m25"), _folder(tmp_path, "ce", "e40-m25", unlabelled="all")):
        folder.mkdir()
        write_results(folder / "results.csv", [{**blank, **common, "losses": "ce",
                                                "aupr": "0.5" if folder.name.endswith("m25") else "0.1"}])
    for folder, aupr in ((_folder(tmp_path, "esm-like", "e40-m25"), "0.6"),
                         (_folder(tmp_path, "esm-like", "e40-m25", unlabelled="all"), "0.9")):
        folder.mkdir()
        write_results(folder / "results.csv", [{**blank, **common, "losses": "ce+map", "map_loss": "marginal",
                                                "aupr": aupr}])
    rows = teacher_quality.collect(tmp_path, ("esm-like",), ("e40-m25",), unlabelled="all")
    assert [(r["schedule"], r["variant"], r["aupr"]) for r in rows] == [("e40-m25+unl", "ce", "0.5"),
                                                                         ("e40-m25+unl", "marginal-top", "0.9")]


def _grid_commands(tmp_path, monkeypatch) -> list:
    """A two-pair synth folder of the ESM-like teacher, and the list the grid's commands go to (none runs)."""
    import benchmarks.teacher_quality as tq

    synth = tmp_path / "synth_esm-like"
    synth.mkdir()
    (synth / "pairs.tsv").write_text("id_a\tid_b\tlabel\tsplit\nA1\tB1\t1\ttrain\nA3\tB3\t0\ttrain\n")
    (synth / "cache.h5").write_text("")
    commands = []
    monkeypatch.setattr(tq, "_run", commands.append)
    return commands


def test_a_ce_batch_mode_passes_its_option_to_the_map_runs_only(tmp_path, monkeypatch):
    import benchmarks.teacher_quality as tq

    commands = _grid_commands(tmp_path, monkeypatch)
    tq.run_grid(tmp_path, ("esm-like",), ("marginal-top",), (0,), schedules=("e40-m25-b8",), n_pairs=2,
                unlabelled="negatives-ce-batch")
    ce, mapped = commands
    assert "--ce-norm" not in ce and "--unlabelled-pairs" not in ce
    assert mapped[mapped.index("--ce-norm") + 1] == "batch"
    assert mapped[mapped.index("--out") + 1] == str(tmp_path / "ablate_esm-like_e40-m25-b8_unlneg_ceb")
    assert Path(mapped[mapped.index("--unlabelled-pairs") + 1]).read_text() == "id_a\tid_b\nA3\tB3\n"


def test_the_older_unlabelled_modes_pin_the_ce_normalisation_they_ran_with(tmp_path, monkeypatch):
    """`all` and `negatives` ran when CE was the mean over a batch's labelled pairs; train's default is now the
    batch size, so a re-run of those folders must pass --ce-norm labelled, or it would train something else."""
    import benchmarks.teacher_quality as tq
    from student.config import TrainConfig

    assert TrainConfig().ce_norm == "batch"
    for mode in ("all", "negatives"):
        (tmp_path / mode).mkdir()
        commands = _grid_commands(tmp_path / mode, monkeypatch)
        tq.run_grid(tmp_path / mode, ("esm-like",), ("marginal-top",), (0,), schedules=("e40-m25-b8",), n_pairs=2,
                    unlabelled=mode)
        mapped = commands[-1]
        assert mapped[mapped.index("--ce-norm") + 1] == "labelled"


def test_a_curriculum_schedule_passes_its_option_to_the_map_runs_and_reads_its_base_schedules_ce(tmp_path,
                                                                                                 monkeypatch):
    import benchmarks.teacher_quality as tq
    from student.evaluation.ablate import RESULT_COLUMNS, write_results

    commands = _grid_commands(tmp_path, monkeypatch)
    tq.run_grid(tmp_path, ("esm-like",), ("marginal-top",), (0,), schedules=("e40-m25-b8-mf5",), n_pairs=2)
    ce, mapped = commands
    assert "--map-first-epochs" not in ce and ce[ce.index("--out") + 1] == str(tmp_path / "ablate_ce_e40-m25-b8")
    assert ce[ce.index("--batch-size") + 1] == "8"
    assert mapped[mapped.index("--map-first-epochs") + 1] == "5"
    assert mapped[mapped.index("--out") + 1] == str(tmp_path / "ablate_esm-like_e40-m25-b8-mf5")
    monkeypatch.setattr(tq, "_teacher_settings", lambda _: {"teacher_p_l5": "0.3", "teacher_aupr": "0.8"})
    blank = {c: "" for c in RESULT_COLUMNS}
    common = dict(head="both", n_train="500", seed="0", map_pairs="all", map_confidence="False", alpha_map="1",
                  map_top_target="16")
    for name, losses, aupr in (("ablate_ce_e40-m25-b8", "ce", "0.5"),
                               ("ablate_esm-like_e40-m25-b8-mf5", "ce+map", "0.8")):
        (tmp_path / name).mkdir()
        write_results(tmp_path / name / "results.csv", [{**blank, **common, "losses": losses, "aupr": aupr,
                                                         "map_loss": "marginal" if losses != "ce" else ""}])
    rows = tq.collect(tmp_path, ("esm-like",), ("e40-m25-b8-mf5",))
    assert [(r["schedule"], r["variant"], r["aupr"]) for r in rows] == [("e40-m25-b8-mf5", "ce", "0.5"),
                                                                         ("e40-m25-b8-mf5", "marginal-top", "0.8")]
    assert summary(rows)[-1]["gain"].tolist() == pytest.approx([0.3])
