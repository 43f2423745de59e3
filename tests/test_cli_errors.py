"""Issue 6's hard edges, through the command line: every bad input exits non-zero with a message that names
the file and line (or the id), prints no traceback, and leaves nothing half-written."""
from __future__ import annotations

import gzip
import re
from pathlib import Path

import h5py
import pytest
from click.testing import CliRunner

from cli import cli
from tests.helpers import random_sequence, write_random_cache
from teacher_cache.teachers.esm_runner import write_random_esm2

GOOD_FASTA = (">a\nMKTAYIAKQRQISFVKSHFSRQ\n>b\nGLLVVKQEWWTR\n>c\nMSTNPKPQRKTKRNTNRRPQDVKFPGG\n"
              ">d\nMDEKRSLLAVWQ\n>e\nMPLKVVTTRSAEEW\n")
GOOD_PAIRS = "a\tb\t1\na\tc\t0\nb\tc\t1\n"
SPLIT_PAIRS = ("id_a\tid_b\tlabel\tsplit\n" + "a\tb\t1\ttrain\na\tc\t0\ttrain\nb\tc\t1\ttrain\na\ta\t0\ttrain\n"
               "b\tb\t1\tvalid\nc\tc\t0\tvalid\nd\te\t1\ttest\nd\td\t0\ttest\n")


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return write_random_esm2(tmp_path_factory.mktemp("esm"), num_layers=1, embed_dim=16, attention_heads=2)


def precompute(model: Path, pairs: Path, fasta: Path, out: Path, *extra: str):
    return run("precompute", "--pairs", pairs, "--fasta", fasta, "--model", model, "--out", out, *extra)


BAD_FASTA = {
    "no_header": ("MKTAYIAK\n>a\nMK\n", r"bad\.fasta:1: sequence data before the first '>' header"),
    "empty_record": (">a\n>b\nMKT\n", r"bad\.fasta:1: record 'a' has an empty sequence"),
    "two_sequences": (">a\nMKT\n>a\nMKV\n", r"bad\.fasta:3: id 'a' appears twice with different sequences"),
    "invalid_residue": (">a\nMKT\nMK1J\n", r"bad\.fasta:3: invalid residue character\(s\) '1J'"),
    "empty_file": ("", r"bad\.fasta: no FASTA records found"),
    "not_utf8": (b">a\nMKT\n>b\xff\xfe\nMK\n", r"bad\.fasta:3: not valid UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BAD_FASTA))
def test_bad_fasta_is_named_with_its_line_and_nothing_is_written(case, model, tmp_path):
    text, message = BAD_FASTA[case]
    fasta = write(tmp_path / "bad.fasta", text)
    pairs = write(tmp_path / "pairs.tsv", "a\tb\t1\n")
    out = tmp_path / "cache.h5"
    result = precompute(model, pairs, fasta, out)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert re.search(message, " ".join(result.output.split())), result.output
    assert not out.exists() and not list(tmp_path.glob("cache.h5*"))


BAD_PAIRS = {
    "unknown_id": ("a\tb\t1\na\tzz\t0\n", r"bad_pairs\.tsv:2: protein id 'zz' is not in the FASTA file"),
    "label": ("a\tb\t1\na\tc\t2\n", r"bad_pairs\.tsv:2: label '2' is not 0 or 1"),
    "columns": ("a\tb\t1\na\tc\n", r"bad_pairs\.tsv:2: expected 3 columns like the first row, found 2"),
    "empty": ("", r"bad_pairs\.tsv: no pairs found"),
    "one_column": ("a\n", r"bad_pairs\.tsv:1: expected at least two columns"),
}


@pytest.mark.parametrize("case", sorted(BAD_PAIRS))
def test_bad_pairs_are_named_with_their_line_in_train(case, tmp_path):
    text, message = BAD_PAIRS[case]
    fasta = write(tmp_path / "seqs.fasta", GOOD_FASTA)
    pairs = write(tmp_path / "bad_pairs.tsv", text)
    out = tmp_path / "run"
    result = run("train", "--pairs", pairs, "--fasta", fasta, "--out", out, "--epochs", "1")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert re.search(message, " ".join(result.output.split())), result.output
    assert not out.exists() or not any(out.iterdir())


def test_crlf_and_gzip_inputs_are_accepted(model, tmp_path):
    fasta = tmp_path / "seqs.fasta.gz"
    with gzip.open(fasta, "wb") as handle:
        handle.write(GOOD_FASTA.replace("\n", "\r\n").encode())
    pairs = write(tmp_path / "pairs.tsv", GOOD_PAIRS.replace("\n", "\r\n"))
    result = precompute(model, pairs, fasta, tmp_path / "cache.h5")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cache.h5").exists()


def test_precompute_tokens_per_batch_auto_and_bad_values(model, tmp_path):
    fasta, pairs = write(tmp_path / "seqs.fasta", GOOD_FASTA), write(tmp_path / "pairs.tsv", GOOD_PAIRS)
    result = precompute(model, pairs, fasta, tmp_path / "cache.h5", "--tokens-per-batch", "auto")
    assert result.exit_code == 0, result.output
    assert re.search(r"batches\s+of\s+up\s+to\s+\d+\s+tokens", result.output)
    result = precompute(model, pairs, fasta, tmp_path / "other.h5", "--tokens-per-batch", "many")
    assert result.exit_code == 2 and "--tokens-per-batch 'many'" in result.output
    assert not (tmp_path / "other.h5").exists()


def test_cache_from_other_sequences_is_refused_by_train(tmp_path):
    fasta = write(tmp_path / "seqs.fasta", GOOD_FASTA)
    pairs = write(tmp_path / "pairs.tsv", SPLIT_PAIRS)
    import numpy as np
    rng = np.random.default_rng(0)
    other = [(random_sequence(rng, 20), random_sequence(rng, 15)) for _ in range(3)]
    cache = write_random_cache(tmp_path / "other.h5", other)
    result = run("train", "--pairs", pairs, "--fasta", fasta, "--cache", cache, "--out", tmp_path / "run",
                 "--epochs", "1")
    assert result.exit_code == 2, result.output
    assert "other.h5" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("damage", ["truncated", "not_hdf5", "other_schema"])
def test_damaged_cache_is_reported_by_info_verify_and_train(damage, tmp_path):
    fasta = write(tmp_path / "seqs.fasta", GOOD_FASTA)
    pairs = write(tmp_path / "pairs.tsv", SPLIT_PAIRS)
    from data.fasta import read_fasta
    from data.pairs import read_pairs
    table = read_pairs(pairs, read_fasta(fasta))
    cache = write_random_cache(tmp_path / "cache.h5", [(p.seq_a, p.seq_b) for p in table.pairs])
    healthy = run("cache", "verify", cache)
    assert healthy.exit_code == 0, healthy.output
    if damage == "truncated":
        data = cache.read_bytes()
        cache.write_bytes(data[: len(data) // 2])
    elif damage == "not_hdf5":
        cache.write_text("hello\n")
    else:
        with h5py.File(cache, "a") as handle:
            handle.attrs["schema_version"] = 999
    for args in (("cache", "info", cache), ("cache", "verify", cache),
                 ("train", "--pairs", pairs, "--fasta", fasta, "--cache", cache, "--out", tmp_path / "run",
                  "--epochs", "1")):
        result = run(*args)
        assert result.exit_code != 0, (args, result.output)
        assert "cache.h5" in result.output and "Traceback" not in result.output, result.output


def test_existing_outputs_are_never_overwritten_silently(model, tmp_path):
    fasta = write(tmp_path / "seqs.fasta", GOOD_FASTA)
    pairs = write(tmp_path / "pairs.tsv", GOOD_PAIRS)
    not_a_cache = write(tmp_path / "cache.h5", "precious data\n")
    result = precompute(model, pairs, fasta, not_a_cache)
    assert result.exit_code == 2 and "--overwrite" in " ".join(result.output.split()), result.output
    assert not_a_cache.read_text() == "precious data\n"

    pairs = write(tmp_path / "split_pairs.tsv", SPLIT_PAIRS)
    run_dir = tmp_path / "run"
    first = run("train", "--pairs", pairs, "--fasta", fasta, "--out", run_dir, "--epochs", "1")
    assert first.exit_code == 0, first.output
    again = run("train", "--pairs", pairs, "--fasta", fasta, "--out", run_dir, "--epochs", "1")
    assert again.exit_code == 2 and "--resume" in again.output and "--overwrite" in again.output, again.output


def test_unwritable_output_path_is_refused(model, tmp_path):
    fasta = write(tmp_path / "seqs.fasta", GOOD_FASTA)
    pairs = write(tmp_path / "pairs.tsv", GOOD_PAIRS)
    result = precompute(model, pairs, fasta, tmp_path / "no" / "such" / "dir" / "cache.h5")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "no/such/dir" in result.output


def _all_commands(group, prefix=()):
    import click
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _all_commands(command, prefix + (name,))
        else:
            yield prefix + (name,)


@pytest.mark.parametrize("command", sorted(_all_commands(cli)), ids=" ".join)
def test_every_command_help_shows_an_example(command):
    result = run(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and "python cli.py" in result.output, result.output


def test_train_killed_with_sigkill_resumes_from_its_last_checkpoint(tmp_path):
    """A real `kill -9` of `cli.py train` between epochs; `--resume` continues and finishes every epoch."""
    import csv
    import os
    import signal
    import subprocess
    import sys
    import time

    import numpy as np
    from data.fasta import write_fasta

    rng = np.random.default_rng(3)
    sequences = {f"P{i}": random_sequence(rng, int(rng.integers(20, 40))) for i in range(16)}
    fasta = tmp_path / "seqs.fasta"
    write_fasta(fasta, sequences)
    rows = [f"P{i}\tP{(i + k) % 16}\t{int(k == 1)}\t{part}" for part, ids in
            (("train", range(0, 10)), ("valid", range(10, 13)), ("test", range(13, 16))) for i in ids for k in (1, 2)]
    pairs = write(tmp_path / "pairs.tsv", "id_a\tid_b\tlabel\tsplit\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, str(root / "cli.py"), "train", "--pairs", str(pairs), "--fasta", str(fasta),
               "--out", str(out), "--epochs", "8", "--patience", "8", "--channels", "8,8", "--kernel-sizes", "3,3",
               "--embed-dim", "8",
               "--batch-size", "4", "--seed", "0"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root)
    deadline = time.time() + 120
    try:
        while not (out / "history.csv").exists() or len((out / "history.csv").read_text().splitlines()) < 3:
            assert process.poll() is None, "training ended before it could be killed"
            assert time.time() < deadline, "no epoch finished in time"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    with open(out / "history.csv") as handle:
        epochs_before = len(list(csv.DictReader(handle)))
    assert 2 <= epochs_before < 8
    assert not (out / "metrics.json").exists() or epochs_before == 8

    refused = run(*command[2:])
    assert refused.exit_code == 2 and "--resume" in refused.output
    resumed = run(*command[2:], "--resume")
    assert resumed.exit_code == 0, resumed.output
    with open(out / "history.csv") as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    assert epochs == list(range(1, 9)) or epochs == list(range(8)), epochs
    assert (out / "metrics.json").exists()
