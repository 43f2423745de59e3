"""Stage-two and command-line promises, each checked so that the broken behaviour fails (issue 21).

- `train --resume` computes only the remaining epochs (counted), never re-runs a finished one;
- a pickled object inside a student checkpoint is refused on load and never executed;
- `--debug` prints the traceback of a user error (read from the real process's stderr);
- in a coarse screen with --min-prob only re-scored (exactly scored) pairs are reported.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from data.errors import UserError
from data.fasta import write_fasta
from data.keys import sequence_key
from student.checkpoint import FORMAT, FORMAT_VERSION, load_checkpoint, read_checkpoint
from student.screening.screen import ScreenConfig, run_screen
from student.trainer import train
from test_screen import tiny_checkpoint, tsv_rows
from test_training import make_problem, tiny_config
from tests.helpers import Killed, kill_after_epoch, random_sequence

ROOT = Path(__file__).resolve().parents[1]


# -- train --resume ----------------------------------------------------------------------------------------------------
def history_rows(run: Path) -> list[dict]:
    with open(run / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_resume_runs_only_the_remaining_epochs(tmp_path):
    files = make_problem(tmp_path)
    run = tmp_path / "run"

    with pytest.raises(Killed):
        train(tiny_config(files, run, epochs=5), on_epoch=kill_after_epoch(1))
    before = history_rows(run)
    assert [row["epoch"] for row in before] == ["1", "2"]

    computed: list[int] = []
    resumed = train(tiny_config(files, run, epochs=5, resume=True), on_epoch=lambda epoch, row: computed.append(epoch))
    assert computed == [2, 3, 4]  # 0-based: epochs 3..5, each once; 1 and 2 are not run again
    after = history_rows(run)
    assert [row["epoch"] for row in after] == ["1", "2", "3", "4", "5"]
    assert after[:2] == before  # the finished epochs' rows (their timings too) are the first process's
    assert resumed["epochs_run"] == 5

    computed.clear()
    again = train(tiny_config(files, run, epochs=5, resume=True), on_epoch=lambda epoch, row: computed.append(epoch))
    assert computed == []  # a finished run resumed computes no epoch at all
    assert history_rows(run) == after and again["epochs_run"] == 5


# -- checkpoints hold no code ---------------------------------------------------------------------------------------
class Payload:
    """Unpickling this object would create `marker` (a directory): the load must refuse it, not run it."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def evil_checkpoint(path: Path, marker: Path, source: Path) -> Path:
    """A genuine student checkpoint (from `source`) with one pickled object added."""
    payload = torch.load(source, weights_only=True)
    assert payload["format"] == FORMAT and payload["format_version"] == FORMAT_VERSION
    payload["notes"] = Payload(marker)
    torch.save(payload, path)
    return path


def test_checkpoint_with_a_pickled_object_is_refused_and_never_run(tmp_path):
    source = tiny_checkpoint(tmp_path / "good.pt")
    marker = tmp_path / "EXECUTED"
    evil = evil_checkpoint(tmp_path / "evil.pt", marker, source)
    load_checkpoint(source)  # the same checkpoint without the object loads
    for load in (read_checkpoint, load_checkpoint):
        with pytest.raises(UserError, match=r"evil\.pt"):  # a user error naming the file, not a traceback
            load(evil)
        assert not marker.exists(), f"{load.__name__} executed code from the checkpoint"


def test_cli_refuses_a_checkpoint_with_a_pickled_object(tmp_path):
    from click.testing import CliRunner

    from cli import cli

    source = tiny_checkpoint(tmp_path / "good.pt")
    marker = tmp_path / "EXECUTED"
    evil = evil_checkpoint(tmp_path / "evil.pt", marker, source)
    write_fasta(tmp_path / "seqs.fasta", {"a": "MKTAYIAKQR", "b": "GLLVVKQEWW"})
    (tmp_path / "pairs.tsv").write_text("a\tb\n")
    result = CliRunner().invoke(cli, ["predict", "--checkpoint", str(evil), "--pairs", str(tmp_path / "pairs.tsv"),
                                      "--fasta", str(tmp_path / "seqs.fasta"), "--out", str(tmp_path / "preds.tsv")])
    assert result.exit_code == 2, result.output
    assert "evil.pt" in result.output and "Traceback" not in result.output
    assert not marker.exists() and not (tmp_path / "preds.tsv").exists()


def test_resume_refuses_a_last_checkpoint_with_a_pickled_object(tmp_path):
    files = make_problem(tmp_path, n_pairs=24)
    run = tmp_path / "run"
    train(tiny_config(files, run, epochs=1))
    marker = tmp_path / "EXECUTED"
    evil_checkpoint(run / "last.pt", marker, run / "last.pt")
    with pytest.raises(UserError, match=r"last\.pt"):
        train(tiny_config(files, run, epochs=2, resume=True))
    assert not marker.exists()


# -- --debug ---------------------------------------------------------------------------------------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="400")  # rich wraps its messages at the terminal width
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)


def test_debug_prints_the_traceback_of_a_user_error(tmp_path):
    (tmp_path / "empty.fasta").write_text("")
    (tmp_path / "pairs.tsv").write_text("a\tb\t1\n")
    command = ["split", "--pairs", str(tmp_path / "pairs.tsv"), "--fasta", str(tmp_path / "empty.fasta"),
               "--out", str(tmp_path / "split.tsv")]
    plain = run_cli(*command)
    assert plain.returncode == 2
    assert "Traceback" not in plain.stderr and "no FASTA records found" in " ".join(plain.stderr.split())

    debug = run_cli("--debug", *command)
    assert debug.returncode != 0
    assert "Traceback (most recent call last):" in debug.stderr, debug.stderr
    # the traceback reaches the frame that raised, and ends with the error itself
    assert f"{os.sep}data{os.sep}fasta.py" in debug.stderr and "in read_fasta" in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1].startswith("data.errors.InputError: ")
    assert "no FASTA records found" in debug.stderr.rstrip().splitlines()[-1]
    assert not (tmp_path / "split.tsv").exists()


# -- coarse screen with --min-prob ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def distinct_proteome(tmp_path_factory) -> tuple[Path, dict]:
    """Thirty proteins with distinct sequences, so that a reported row is one scored pair."""
    rng = np.random.default_rng(21)
    records: dict[str, str] = {}
    while len(records) < 30:
        sequence = random_sequence(rng, int(rng.integers(5, 60)))
        if sequence not in records.values():
            records[f"Q{len(records):03d}"] = sequence
    path = tmp_path_factory.mktemp("proteome") / "set.fasta"
    write_fasta(path, records)
    return path, records


def test_coarse_screen_with_min_prob_reports_only_rescored_pairs(tmp_path, distinct_proteome):
    fasta, records = distinct_proteome
    checkpoint = tiny_checkpoint(tmp_path / "model.pt", "both")
    common = dict(checkpoint=str(checkpoint), fasta=str(fasta), top=None, block_cells=32 * 32)
    coarse = dict(exact_below=0, rescore_fraction=0.2)
    run_screen(ScreenConfig(out=str(tmp_path / "exact.tsv"), min_prob=0.0, **common))
    exact = {(r[0], r[1]): float(r[2]) for r in tsv_rows(tmp_path / "exact.tsv")}
    assert len(exact) == 30 * 31 // 2

    # --min-prob 0: every re-scored pair is reported, and nothing else
    everything = run_screen(ScreenConfig(out=str(tmp_path / "rescored.tsv"), min_prob=0.0, **common, **coarse))
    assert everything.mode == "coarse"
    rescored = tsv_rows(tmp_path / "rescored.tsv")
    pairs = {frozenset((sequence_key(records[r[0]]), sequence_key(records[r[1]]))) for r in rescored}
    assert len(rescored) == len(pairs) == everything.pairs_exact
    assert 0 < everything.pairs_exact < everything.pairs_total
    for row in rescored:  # exactly scored: the exact screen's score
        assert float(row[2]) == pytest.approx(exact[(row[0], row[1])], abs=1e-5)

    # a threshold that some re-scored and some never re-scored pairs reach, between two reported probabilities
    probs = sorted({float(r[2]) for r in rescored}, reverse=True)
    cut = (probs[len(probs) // 2] + probs[len(probs) // 2 + 1]) / 2
    reported = run_screen(ScreenConfig(out=str(tmp_path / "cut.tsv"), min_prob=cut, **common, **coarse))
    rows = tsv_rows(tmp_path / "cut.tsv")
    assert rows == [r for r in rescored if float(r[2]) >= cut]
    above_anywhere = {pair for pair, prob in exact.items() if prob >= cut}
    assert len(above_anywhere) > len(rows) > 0  # pairs above the cut that the coarse pass skipped are not reported
    assert reported.pairs_exact == everything.pairs_exact
