"""Prediction and the stage-two CLI (train, evaluate, predict) on a tiny generated set; predict never imports ESM."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli import cli
from data.fasta import read_fasta
from data.pairs import read_pairs
from student.checkpoint import load_checkpoint
from student.inference import predict_pairs
from tests.test_training import make_problem

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--channels", "8,8", "--kernel-sizes", "3,3", "--embed-dim", "8", "--epochs", "2", "--batch-size", "8",
        "--max-len", "24"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("stage2")
    files = make_problem(folder)
    out = folder / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = CliRunner().invoke(cli, ["train", "--pairs", str(files["pairs"]), "--fasta", str(files["fasta"]),
                                          "--cache", str(files["cache"]), "--out", str(out), *TINY])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    return {**files, "out": out, "checkpoint": out / "best.pt", "folder": folder}


def test_train_cli_outputs(trained: dict[str, Path]) -> None:
    metrics = json.loads((trained["out"] / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["split"]["method"] == "column"
    again = CliRunner().invoke(cli, ["train", "--pairs", str(trained["pairs"]), "--fasta", str(trained["fasta"]),
                                     "--out", str(trained["out"]), *TINY])
    assert again.exit_code == 2 and "--resume" in again.output


def test_evaluate_cli(trained: dict[str, Path]) -> None:
    out_json = trained["folder"] / "eval.json"
    result = CliRunner().invoke(cli, ["evaluate", "--checkpoint", str(trained["checkpoint"]), "--pairs",
                                      str(trained["pairs"]), "--fasta", str(trained["fasta"]), "--cache",
                                      str(trained["cache"]), "--split", "test", "--baselines", "--json",
                                      str(out_json)])
    assert result.exit_code == 0, result.output
    report = json.loads(out_json.read_text())
    assert report["student"]["n"] == 6 and report["student"]["map_top_l5"] is not None
    test_pairs = [p for p in read_pairs(trained["pairs"], read_fasta(trained["fasta"])).pairs if p.split == "test"]
    assert report["chance_aupr"] == pytest.approx(np.mean([p.label for p in test_pairs]))
    assert "baselines" in report and report["baseline_train_pairs"] == 28
    assert report["threshold"] == torch.load(trained["checkpoint"], weights_only=True)["threshold"]
    # the test part's metrics equal what training reported for it
    trained_metrics = json.loads((trained["out"] / "metrics.json").read_text())["test"]
    assert report["student"]["aupr"] == pytest.approx(trained_metrics["aupr"], abs=1e-9)


def test_predict_cli_maps_and_plots(trained: dict[str, Path]) -> None:
    folder = trained["folder"]
    result = CliRunner().invoke(cli, ["predict", "--checkpoint", str(trained["checkpoint"]), "--pairs",
                                      str(trained["pairs"]), "--fasta", str(trained["fasta"]), "--out",
                                      str(folder / "preds.tsv"), "--maps", str(folder / "maps.h5"), "--plot",
                                      str(folder / "plots"), "--plot-max", "2", "--cache", str(trained["cache"])])
    assert result.exit_code == 0, result.output
    lines = (folder / "preds.tsv").read_text().splitlines()
    assert lines[0].startswith("# student trained on a RANDOM-weight teacher")  # the tests' caches are random
    rows = [line for line in lines if not line.startswith("#")]
    assert rows[0].split("\t")[:3] == ["id_a", "id_b", "probability"] and len(rows) == 41
    pairs = read_pairs(trained["pairs"], read_fasta(trained["fasta"])).pairs
    model, _ = load_checkpoint(trained["checkpoint"])
    probs, maps = predict_pairs(model, pairs, batch_size=5, return_maps=True)
    written = np.array([float(r.split("\t")[2]) for r in rows[1:]])
    assert np.allclose(written, probs, atol=1e-6)
    with h5py.File(folder / "maps.h5") as handle:
        first = handle["maps/0"][()]
        assert first.shape == (len(pairs[0].seq_a), len(pairs[0].seq_b))
        assert handle["maps/0"].attrs["id_a"] == pairs[0].id_a
        assert np.allclose(first, maps[0], atol=1e-6) and (0 <= first).all() and (first <= 1).all()
    assert len(list((folder / "plots").glob("*.png"))) == 2
    # batch size (hence padding) does not change predictions
    assert np.allclose(predict_pairs(model, pairs, batch_size=1), probs, atol=1e-5)


def test_predict_never_imports_esm(trained: dict[str, Path]) -> None:
    script = f"""
import sys
sys.modules["esm"] = None  # any `import esm` now raises ImportError
sys.path.insert(0, {str(ROOT)!r})
from click.testing import CliRunner
from cli import cli
result = CliRunner().invoke(cli, ["predict", "--checkpoint", {str(trained["checkpoint"])!r}, "--pairs",
                                  {str(trained["pairs"])!r}, "--fasta", {str(trained["fasta"])!r}, "--out",
                                  {str(trained["folder"] / "noesm.tsv")!r}])
assert result.exit_code == 0, result.output
assert sys.modules["esm"] is None
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0 and "ok" in done.stdout, done.stdout + done.stderr


def test_predict_refuses_bad_checkpoint(tmp_path: Path, trained: dict[str, Path]) -> None:
    bogus = tmp_path / "bogus.pt"
    torch.save({"weights": torch.zeros(2)}, bogus)
    result = CliRunner().invoke(cli, ["predict", "--checkpoint", str(bogus), "--pairs", str(trained["pairs"]),
                                      "--fasta", str(trained["fasta"]), "--out", str(tmp_path / "p.tsv")])
    assert result.exit_code == 2 and "not a protein-loftr student checkpoint" in result.output
