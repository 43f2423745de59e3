"""Issue 19, class 1: no output is ever overwritten silently. Every command that writes refuses an existing output
unless --overwrite, refuses an output that is one of its inputs (the same file, however it is spelled) even with
--overwrite, and refuses before any work starts. One mechanism for all writers: `data.atomic.check_outputs`.

Class 7 (small parts): `cache info` prints to stdout and takes --json; `evaluate` scores the test part by default
when the pairs file has a split column.

Everything runs on tiny generated data: a FASTA of random sequences, a random cache, a student trained for two
epochs, an untrained screening checkpoint and the hand-written PDB fixture of tests/test_structure.py."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from data.errors import UserError
from tests.test_screen import tiny_checkpoint
from tests.test_structure import PDB_TEXT, write_manifest
from tests.test_training import make_problem, tiny_config


def run(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def flat(text: str) -> str:
    return " ".join(text.split())


def refused(result, *names: str) -> str:
    """The command exited 2 with a one-line message (no traceback) naming each of `names`."""
    message = flat(result.output)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in message, result.output
    squeezed = "".join(result.output.split())  # rich folds long paths at the terminal width
    for name in names:
        assert "".join(name.split()) in squeezed, (name, result.output)
    return message


def ok(result) -> None:
    assert result.exit_code == 0, result.output


PRECIOUS = "precious data: must survive\n"


def precious(path: Path) -> Path:
    path.write_text(PRECIOUS)
    return path


def unchanged(path: Path) -> bool:
    return path.read_bytes() == PRECIOUS.encode()


# -- fixtures: one tiny problem, one trained student, one structure, one screening checkpoint ---------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """make_problem's 40 labelled pairs (28 train, 6 valid, 6 test) and a student trained on them for 2 epochs."""
    from student.trainer import train

    folder = tmp_path_factory.mktemp("outputs")
    files = make_problem(folder)
    train(tiny_config(files, folder / "run", epochs=2))
    return {**files, "checkpoint": folder / "run" / "best.pt", "folder": folder}


@pytest.fixture
def inputs(trained, tmp_path) -> dict[str, Path]:
    """Private copies of the tiny problem's pairs and FASTA (a test may try to destroy them)."""
    pairs, fasta = tmp_path / "pairs.tsv", tmp_path / "seqs.fasta"
    pairs.write_bytes(trained["pairs"].read_bytes())
    fasta.write_bytes(trained["fasta"].read_bytes())
    return {"pairs": pairs, "fasta": fasta, "checkpoint": trained["checkpoint"], "cache": trained["cache"]}


def predict_args(inputs: dict[str, Path], out: Path, *extra: object) -> list[object]:
    return ["predict", "--checkpoint", inputs["checkpoint"], "--pairs", inputs["pairs"], "--fasta", inputs["fasta"],
            "--out", out, *extra]


def evaluate_args(inputs: dict[str, Path], *extra: object) -> list[object]:
    return ["evaluate", "--checkpoint", inputs["checkpoint"], "--pairs", inputs["pairs"], "--fasta", inputs["fasta"],
            *extra]


@pytest.fixture
def structure(tmp_path) -> dict[str, Path]:
    pdb = tmp_path / "complex.pdb"
    pdb.write_text(PDB_TEXT)
    manifest = write_manifest(tmp_path / "complexes.tsv", [("pa", "pb", "complex.pdb", "complex.pdb", "A", "B")])
    cache = tmp_path / "structure.h5"
    ok(run("structure-cache", "--structures", manifest, "--out", cache))
    return {"manifest": manifest, "cache": cache, "pdb": pdb}


@pytest.fixture(scope="module")
def screening(tmp_path_factory) -> dict[str, Path]:
    import numpy as np

    from tests.test_screen import random_fasta

    folder = tmp_path_factory.mktemp("screening")
    fasta = folder / "set.fasta"
    random_fasta(fasta, np.random.default_rng(5), 8)
    return {"fasta": fasta, "checkpoint": tiny_checkpoint(folder / "model.pt", "map"), "folder": folder}


def screen_args(screening: dict[str, Path], out: Path, *extra: object) -> list[object]:
    return ["screen", "--checkpoint", screening["checkpoint"], "--fasta", screening["fasta"], "--top", "5",
            "--threads", "1", "--out", out, *extra]


# -- the mechanism --------------------------------------------------------------------------------------------
def test_check_outputs_refuses_existing_outputs_unless_overwrite(tmp_path):
    from data.atomic import check_outputs

    existing = precious(tmp_path / "old.tsv")
    check_outputs({"--out": tmp_path / "new.tsv"}, {}, overwrite=False)  # a new path is fine
    check_outputs({"--out": None}, {}, overwrite=False)  # an output not asked for is skipped
    with pytest.raises(UserError, match=r"old\.tsv.*already exists.*--overwrite"):
        check_outputs({"--out": existing}, {}, overwrite=False)
    check_outputs({"--out": existing}, {}, overwrite=True)
    with pytest.raises(UserError, match=r"is a directory"):
        check_outputs({"--out": tmp_path}, {}, overwrite=True)
    assert unchanged(existing)


def test_check_outputs_refuses_an_input_however_it_is_spelled_even_with_overwrite(tmp_path):
    from data.atomic import check_outputs

    fasta = precious(tmp_path / "seqs.fasta")
    (tmp_path / "sub").mkdir()
    os.link(fasta, tmp_path / "hard.fasta")
    os.symlink(fasta, tmp_path / "soft.fasta")
    spellings = [fasta, tmp_path / "sub" / ".." / "seqs.fasta", Path(os.path.relpath(fasta)),
                 tmp_path / "hard.fasta", tmp_path / "soft.fasta"]
    for spelling in spellings:
        for overwrite in (False, True):
            with pytest.raises(UserError, match=r"--fasta.*input|input.*--fasta"):
                check_outputs({"--out": spelling}, {"--fasta": fasta}, overwrite=overwrite)
    check_outputs({"--out": tmp_path / "other.tsv"}, {"--fasta": fasta, "--cache": None}, overwrite=False)
    assert unchanged(fasta)


def test_check_outputs_refuses_one_path_for_two_outputs(tmp_path):
    from data.atomic import check_outputs

    with pytest.raises(UserError, match=r"--out.*--maps|--maps.*--out"):
        check_outputs({"--out": tmp_path / "x", "--maps": tmp_path / "." / "x"}, {}, overwrite=True)


def test_check_outputs_folders_are_existing_when_not_empty(tmp_path):
    from data.atomic import check_outputs

    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.mkdir()
    full.mkdir()
    precious(full / "0000_a_b.png")
    check_outputs({}, {}, overwrite=False, folders={"--plot": empty})
    check_outputs({}, {}, overwrite=False, folders={"--plot": tmp_path / "new"})
    with pytest.raises(UserError, match=r"full.*not empty.*--overwrite"):
        check_outputs({}, {}, overwrite=False, folders={"--plot": full})
    check_outputs({}, {}, overwrite=True, folders={"--plot": full})
    with pytest.raises(UserError, match=r"not a folder|is a file"):
        check_outputs({}, {}, overwrite=True, folders={"--plot": full / "0000_a_b.png"})


# -- every writer: an existing output is refused, --overwrite replaces it ---------------------------------------
def test_split_refuses_an_existing_out_and_its_statistics(inputs, tmp_path):
    out = precious(tmp_path / "split.tsv")
    base = ["split", "--pairs", inputs["pairs"], "--fasta", inputs["fasta"], "--by", "random", "--out", out]
    refused(run(*base), "split.tsv", "--overwrite")
    assert unchanged(out) and not (tmp_path / "split.tsv.stats.json").exists()
    ok(run(*base, "--overwrite"))
    assert not unchanged(out)
    out.unlink()
    stats = tmp_path / "split.tsv.stats.json"
    assert stats.exists()
    refused(run(*base), "split.tsv.stats.json", "--overwrite")
    assert not out.exists()


def test_negatives_refuses_an_existing_out(inputs, tmp_path):
    out = precious(tmp_path / "negatives.tsv")
    base = ["negatives", "--pairs", inputs["pairs"], "--fasta", inputs["fasta"], "--ratio", "1", "--out", out]
    refused(run(*base), "negatives.tsv", "--overwrite")
    assert unchanged(out)
    ok(run(*base, "--overwrite"))
    assert not unchanged(out)


@pytest.mark.parametrize("which", ["--out", "--maps", "--plot"])
def test_predict_refuses_each_existing_output_before_writing_any(which, inputs, tmp_path):
    paths = {"--out": tmp_path / "preds.tsv", "--maps": tmp_path / "maps.h5", "--plot": tmp_path / "plots"}
    if which == "--plot":
        paths["--plot"].mkdir()
        existing = precious(paths["--plot"] / "0000_P1_P2.png")
    else:
        existing = precious(paths[which])
    args = predict_args(inputs, paths["--out"], "--maps", paths["--maps"], "--plot", paths["--plot"],
                        "--plot-max", "1")
    refused(run(*args), Path(paths[which]).name, "--overwrite")
    assert unchanged(existing)
    for name, path in paths.items():  # refused up front: nothing else was written either
        if name != which:
            assert not path.exists(), name
    ok(run(*args, "--overwrite"))
    assert paths["--out"].exists() and paths["--maps"].exists() and list(paths["--plot"].glob("*.png"))


def test_evaluate_refuses_an_existing_json(inputs, tmp_path):
    out = precious(tmp_path / "eval.json")
    refused(run(*evaluate_args(inputs, "--json", out)), "eval.json", "--overwrite")
    assert unchanged(out)
    ok(run(*evaluate_args(inputs, "--json", out, "--overwrite")))
    assert json.loads(out.read_text())["student"]["n"] > 0


@pytest.mark.parametrize("which", ["--out", "--plot"])
def test_evaluate_maps_refuses_an_existing_out_or_plot_folder(which, structure, tmp_path):
    out, plot = tmp_path / "scores.tsv", tmp_path / "plots"
    if which == "--out":
        existing = precious(out)
    else:
        plot.mkdir()
        existing = precious(plot / "00002_pa__pb.png")
    args = ["evaluate-maps", "--structures", structure["manifest"], "--cache", structure["cache"], "--out", out,
            "--plot", plot]
    refused(run(*args), (out if which == "--out" else plot).name, "--overwrite")
    assert unchanged(existing)
    ok(run(*args, "--overwrite"))
    assert out.exists() and not unchanged(existing)


def test_structure_cache_refuses_an_existing_fasta_out(structure, tmp_path):
    fasta_out = precious(tmp_path / "own.fasta")
    args = ["structure-cache", "--structures", structure["manifest"], "--out", tmp_path / "new.h5", "--fasta-out",
            fasta_out]
    refused(run(*args), "own.fasta", "--overwrite")
    assert unchanged(fasta_out) and not (tmp_path / "new.h5").exists()
    ok(run(*args, "--overwrite"))
    assert fasta_out.read_text().startswith(">")


@pytest.mark.parametrize("which", ["--out", "--maps"])
def test_screen_refuses_an_existing_out_or_maps(which, screening, tmp_path):
    out, maps = tmp_path / "hits.tsv", tmp_path / "maps.h5"
    existing = precious(out if which == "--out" else maps)
    args = screen_args(screening, out, "--maps", maps, "--maps-top", "2")
    refused(run(*args), existing.name, "--overwrite")
    assert unchanged(existing)
    assert not (tmp_path / "hits.tsv.json").exists() and not (tmp_path / "hits.tsv.state").exists()
    if which == "--maps":
        assert not out.exists()
    ok(run(*args, "--overwrite"))
    assert not unchanged(existing)


def test_screen_merge_refuses_an_existing_maps(screening, tmp_path):
    parts = []
    for shard in ("0/2", "1/2"):
        part = tmp_path / f"part{shard[0]}.tsv"
        ok(run(*screen_args(screening, part, "--shard", shard, "--maps", tmp_path / f"maps{shard[0]}.h5",
                            "--maps-top", "2")))
        parts.append(part)
    maps = precious(tmp_path / "merged-maps.h5")
    args = ["screen-merge", *parts, "--out", tmp_path / "merged.tsv", "--maps", maps]
    refused(run(*args), "merged-maps.h5", "--overwrite")
    assert unchanged(maps) and not (tmp_path / "merged.tsv").exists()
    ok(run(*args, "--overwrite"))
    assert not unchanged(maps)


# -- an output that is one of the inputs: refused even with --overwrite ----------------------------------------------
def test_predict_out_equal_to_its_fasta_is_refused_even_with_overwrite(inputs):
    before = inputs["fasta"].read_bytes()
    for extra in ((), ("--overwrite",)):
        refused(run(*predict_args(inputs, inputs["fasta"], *extra)), "--fasta", "seqs.fasta")
        assert inputs["fasta"].read_bytes() == before


def test_predict_out_hard_linked_to_its_pairs_is_refused(inputs, tmp_path):
    link = tmp_path / "looks-new.tsv"
    os.link(inputs["pairs"], link)
    before = inputs["pairs"].read_bytes()
    refused(run(*predict_args(inputs, link, "--overwrite")), "--pairs")
    assert inputs["pairs"].read_bytes() == before


def test_predict_same_path_for_out_and_maps_is_refused(inputs, tmp_path):
    refused(run(*predict_args(inputs, tmp_path / "x.out", "--maps", tmp_path / "x.out", "--overwrite")),
            "--out", "--maps")
    assert not (tmp_path / "x.out").exists()


@pytest.mark.parametrize("command", ["split", "negatives"])
def test_split_and_negatives_never_write_over_their_pairs(command, inputs):
    before = inputs["pairs"].read_bytes()
    extra = ["--by", "random"] if command == "split" else ["--ratio", "1"]
    spelled = inputs["pairs"].parent / "." / inputs["pairs"].name
    refused(run(command, "--pairs", inputs["pairs"], "--fasta", inputs["fasta"], *extra, "--out", spelled,
                "--overwrite"), "--pairs")
    assert inputs["pairs"].read_bytes() == before


def test_evaluate_json_equal_to_its_pairs_is_refused(inputs):
    before = inputs["pairs"].read_bytes()
    refused(run(*evaluate_args(inputs, "--json", inputs["pairs"], "--overwrite")), "--pairs")
    assert inputs["pairs"].read_bytes() == before


def test_precompute_out_equal_to_its_pairs_is_refused_even_with_overwrite(inputs, tmp_path):
    from teacher_cache.teachers.esm_runner import write_random_esm2

    model = write_random_esm2(tmp_path / "esm", num_layers=1, embed_dim=16, attention_heads=2)
    before = inputs["pairs"].read_bytes()
    refused(run("precompute", "--pairs", inputs["pairs"], "--fasta", inputs["fasta"], "--model", model, "--out",
                inputs["pairs"], "--overwrite"), "--pairs")
    assert inputs["pairs"].read_bytes() == before


def test_structure_cache_and_evaluate_maps_never_write_over_their_manifest(structure, tmp_path):
    before = structure["manifest"].read_bytes()
    refused(run("structure-cache", "--structures", structure["manifest"], "--out", structure["manifest"],
                "--overwrite"), "--structures")
    refused(run("evaluate-maps", "--structures", structure["manifest"], "--cache", structure["cache"], "--out",
                structure["manifest"], "--overwrite"), "--structures")
    refused(run("structure-cache", "--structures", structure["manifest"], "--out", tmp_path / "n.h5",
                "--fasta-out", structure["pdb"], "--overwrite"), "complex.pdb")
    assert structure["manifest"].read_bytes() == before and structure["pdb"].read_text() == PDB_TEXT


def test_screen_and_screen_merge_never_write_over_an_input(screening, tmp_path):
    fasta = tmp_path / "set.fasta"
    fasta.write_bytes(screening["fasta"].read_bytes())
    copy = dict(screening, fasta=fasta)
    before = fasta.read_bytes()
    refused(run(*screen_args(copy, fasta, "--overwrite")), "--fasta")
    assert fasta.read_bytes() == before
    parts = []
    for shard in ("0/2", "1/2"):
        part = tmp_path / f"part{shard[0]}.tsv"
        ok(run(*screen_args(copy, part, "--shard", shard)))
        parts.append(part)
    before = parts[0].read_bytes()
    refused(run("screen-merge", *parts, "--out", parts[0], "--overwrite"), "part0.tsv")
    assert parts[0].read_bytes() == before


def test_train_never_deletes_an_input_inside_its_run_folder(inputs, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    pairs = run_dir / "history.csv"  # an input that happens to carry the name of a run file
    pairs.write_bytes(inputs["pairs"].read_bytes())
    before = pairs.read_bytes()
    refused(run("train", "--pairs", pairs, "--fasta", inputs["fasta"], "--out", run_dir, "--epochs", "1",
                "--overwrite"), "--pairs")
    assert pairs.read_bytes() == before


# -- the promise in the interface and the docs --------------------------------------------------------------------
WRITERS = [("split",), ("negatives",), ("predict",), ("evaluate",), ("evaluate-maps",), ("structure-cache",),
           ("synth",), ("screen",), ("screen-merge",), ("cache", "merge"), ("precompute",), ("train",), ("demo",),
           ("random-teacher",)]


@pytest.mark.parametrize("command", WRITERS, ids=" ".join)
def test_every_writer_takes_overwrite(command):
    result = run(*command, "--help")
    ok(result)
    assert "--overwrite" in result.output


def test_docs_list_what_is_refused():
    text = flat((Path(__file__).resolve().parents[1] / "docs" / "refusals.md").read_text())
    for command in WRITERS:
        assert f"`{' '.join(command)}" in text, command
    for promise in ("--overwrite", "same file", "before"):
        assert promise in text, promise


# -- class 7: cache info on stdout, with --json; evaluate scores the test part by default ------------------------------
def test_cache_info_prints_to_stdout(trained):
    result = CliRunner().invoke(cli, ["cache", "info", str(trained["cache"])])
    ok(result)
    from teacher_cache import TeacherCache

    with TeacherCache.open(trained["cache"]) as cache:
        fingerprint = cache.fingerprint
    assert fingerprint in flat(result.stdout)
    assert fingerprint not in flat(result.stderr)


def test_cache_info_json(trained):
    result = CliRunner().invoke(cli, ["cache", "info", "--json", str(trained["cache"])])
    ok(result)
    info = json.loads(result.stdout)
    from teacher_cache import TeacherCache

    with TeacherCache.open(trained["cache"]) as cache:
        assert info["n_pairs"] == cache.n_pairs == 40
        assert info["fingerprint"] == cache.fingerprint
    assert info["random_weights"] is True


def test_evaluate_scores_the_test_part_by_default(inputs, tmp_path):
    out = tmp_path / "default.json"
    ok(run(*evaluate_args(inputs, "--json", out)))
    report = json.loads(out.read_text())
    assert report["part"] == "test" and report["student"]["n"] == 6
    everything = tmp_path / "all.json"
    ok(run(*evaluate_args(inputs, "--split", "all", "--json", everything)))
    assert json.loads(everything.read_text())["student"]["n"] == 40
    train_part = tmp_path / "train.json"
    ok(run(*evaluate_args(inputs, "--split", "train", "--json", train_part)))
    assert json.loads(train_part.read_text())["student"]["n"] == 28


def test_evaluate_help_says_the_test_part_is_the_default():
    result = run("evaluate", "--help")
    ok(result)
    text = flat(result.output)
    assert "test part" in text and "by default" in text, text
