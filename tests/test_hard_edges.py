"""Issue 19, classes 2-6: every writer locked, refusals up front, artefacts checked when loaded, OS failures as user
errors, messages that help. Tiny generated data only (random sequences, random caches, tiny untrained students).
The promises are listed in docs/refusals.md."""
from __future__ import annotations

import errno
import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from data.fasta import write_fasta
from data.lock import FileLock
from data.pairs import Pair, write_pairs
from student.checkpoint import save_checkpoint
from student.config import ModelConfig
from student.model import StudentModel
from student.screening.screen import ScreenConfig, run_screen
from teacher_cache import CacheBuilder
from tests.helpers import random_sequence, write_random_cache
from tests.test_outputs import ok, refused, run
from tests.test_screen import TINY, tiny_checkpoint
from tests.test_training import make_problem

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def esm_checkpoint(tmp_path_factory):
    """A tiny random-weight ESM-2 in fair-esm's file format (as tests/test_precompute.py uses)."""
    from tests.test_precompute import write_random_esm2

    return write_random_esm2(tmp_path_factory.mktemp("esm"), num_layers=2, embed_dim=32, attention_heads=4,
                             contact_scale=20.0)


def dead_pid() -> int:
    """The id of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _hold(path: str, ready, release) -> None:
    with FileLock(path):
        ready.set()
        release.wait(60)


class Holder:
    """Another process holding the lock of `path` (fork: the child only takes the lock and waits)."""

    def __init__(self, path: Path):
        context = multiprocessing.get_context("fork")
        self.ready, self.release = context.Event(), context.Event()
        self.process = context.Process(target=_hold, args=(str(path), self.ready, self.release))

    def __enter__(self):
        self.process.start()
        assert self.ready.wait(30)
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.process.join(30)


def small_proteome(folder: Path, n: int = 10, seed: int = 3) -> tuple[Path, dict[str, str]]:
    rng = np.random.default_rng(seed)
    sequences = {f"Q{i}": random_sequence(rng, int(rng.integers(12, 30))) for i in range(n)}
    fasta = folder / "proteome.fasta"
    write_fasta(fasta, sequences)
    return fasta, sequences


def pairs_file(folder: Path, sequences: dict[str, str], n: int = 6, name: str = "pairs.tsv") -> Path:
    ids = sorted(sequences)
    pairs = [Pair(ids[i], ids[i + 1], sequences[ids[i]], sequences[ids[i + 1]], i % 2) for i in range(n)]
    path = folder / name
    write_pairs(path, pairs)
    return path


# == class 2: every writer of a shared artefact holds the lock ====================================================

def test_cache_merge_is_refused_while_another_writer_holds_the_lock(tmp_path, rng):
    seqs = [(random_sequence(rng, 10), random_sequence(rng, 12))]
    source = write_random_cache(tmp_path / "shard0.h5", seqs)
    out = tmp_path / "teacher.h5"
    with Holder(out):
        message = refused(run("cache", "merge", out, source), str(out))
    assert "another process" in message
    assert not out.exists()


def test_a_waiting_lock_blocks_until_the_holder_lets_go(tmp_path):
    import threading

    path = tmp_path / "results.csv"
    with Holder(path) as holder:
        got = threading.Event()

        def take_it():
            with FileLock(path, wait=True):
                got.set()

        waiter = threading.Thread(target=take_it)
        waiter.start()
        assert not got.wait(0.5)  # held by the other process: the waiter neither raises nor proceeds
        holder.release.set()
        waiter.join(30)
    assert got.is_set()


def test_stale_partial_and_lock_of_a_killed_merge_are_cleaned(tmp_path, rng):
    seqs = [(random_sequence(rng, 10), random_sequence(rng, 12))]
    source = write_random_cache(tmp_path / "shard0.h5", seqs)
    out = tmp_path / "teacher.h5"
    pid = dead_pid()
    partial = tmp_path / f"teacher.h5.partial-{pid}"  # what a merge killed with -9 leaves
    partial.write_bytes(b"half an HDF5 file")
    Path(f"{out}.lock").write_text(f"{pid}\n")  # its lock file, released by the OS but still on disk
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        alive_partial = tmp_path / f"teacher.h5.partial-{live.pid}"  # a live process's file is never touched
        alive_partial.write_bytes(b"in use")
        result = run("cache", "merge", out, source)
        assert alive_partial.exists()
    finally:
        live.kill()
        live.wait()
    ok(result)
    assert not partial.exists()
    assert "stale lock" in " ".join(result.output.split())
    assert not Path(f"{out}.lock").exists()


TRAIN_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from dataclasses import replace
    sys.path.insert(0, {root!r})
    from student.trainer import train
    from tests.test_training import make_problem, tiny_config
    folder = Path({folder!r})
    files = {{"pairs": folder / "pairs.tsv", "fasta": folder / "seqs.fasta", "cache": folder / "cache.h5"}}
    def wait(epoch, row):
        (folder / "started").write_text("1")
        for _ in range(600):
            if (folder / "release").exists():
                return
            time.sleep(0.1)
    train(replace(tiny_config(files, folder / "run", epochs=2)), on_epoch=wait)
""")


def test_two_train_runs_on_one_out_cannot_both_run(tmp_path):
    make_problem(tmp_path)
    script = TRAIN_SCRIPT.format(root=str(ROOT), folder=str(tmp_path))
    first = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE)
    try:
        for _ in range(1200):
            if (tmp_path / "started").exists() or first.poll() is not None:
                break
            time.sleep(0.1)
        assert (tmp_path / "started").exists(), first.stderr.read().decode() if first.poll() is not None else ""
        result = run("train", "--pairs", tmp_path / "pairs.tsv", "--fasta", tmp_path / "seqs.fasta",
                     "--cache", tmp_path / "cache.h5", "--out", tmp_path / "run", "--overwrite", "--epochs", "1",
                     "--channels", "8", "--kernel-sizes", "3", "--embed-dim", "8", "--hidden", "8")
        message = refused(result, str(tmp_path / "run"))
        assert "another process" in message
    finally:
        (tmp_path / "release").write_text("1")
        first.wait(120)
    assert first.returncode == 0


def test_screen_output_is_locked(tmp_path):
    fasta, _ = small_proteome(tmp_path)
    checkpoint = tiny_checkpoint(tmp_path / "model.pt", "map")
    out = tmp_path / "hits.tsv"
    with Holder(out):
        message = refused(run("screen", "--checkpoint", checkpoint, "--fasta", fasta, "--out", out, "--top", "5"),
                          str(out))
    assert "another process" in message and not out.exists()
    with Holder(tmp_path / "merged.tsv"):
        refused(run("screen-merge", out, "--out", tmp_path / "merged.tsv"), "another process")


# == class 3: refuse up front, never after the work ===============================================================

def test_validation_part_with_one_class_is_refused_before_the_first_epoch(tmp_path):
    files = make_problem(tmp_path)
    lines = files["pairs"].read_text().splitlines()
    fixed = [lines[0]] + [("\t".join(line.split("\t")[:2] + ["0", "valid"]) if line.endswith("valid") else line)
                          for line in lines[1:]]
    files["pairs"].write_text("\n".join(fixed) + "\n")
    out = tmp_path / "run"
    message = refused(run("train", "--pairs", files["pairs"], "--fasta", files["fasta"], "--out", out, "--epochs",
                          "2", "--channels", "8", "--kernel-sizes", "3"), str(files["pairs"]))
    assert "validation" in message and "positive" in message
    assert not (out / "history.csv").exists() and not (out / "best.pt").exists()


def chain_components(rng, n_components: int = 30, positives: int | None = None):
    """Small connected groups of pairs (A-B, B-C): a sparse protein graph, like a real set of a few dozen pairs."""
    sequences, pairs = {}, []
    for c in range(n_components):
        ids = [f"C{c}_{k}" for k in range(3)]
        for name in ids:
            sequences[name] = random_sequence(rng, int(rng.integers(20, 40)))
        for k in range(2):
            label = int(len(pairs) % 3 == 0) if positives is None else int(len(pairs) < positives)
            pairs.append(Pair(ids[k], ids[k + 1], sequences[ids[k]], sequences[ids[k + 1]], label))
    return sequences, pairs


def test_protein_split_assigns_whole_connected_groups(tmp_path, rng):
    from data.splits import SplitConfig, make_split

    _, pairs = chain_components(rng)
    result = make_split(pairs, SplitConfig(by="protein", valid_frac=0.2, test_frac=0.2, seed=4))
    assert result.dropped == 0 and len(result.pairs) == len(pairs)
    assert all(result.stats[part]["pairs"] >= 6 for part in ("train", "valid", "test"))
    again = make_split(pairs, SplitConfig(by="protein", valid_frac=0.2, test_frac=0.2, seed=4))
    assert [p.split for p in again.pairs] == [p.split for p in result.pairs]  # deterministic for a seed
    parts_of = {}
    for pair in result.pairs:
        for seq in (pair.seq_a, pair.seq_b):
            parts_of.setdefault(seq, set()).add(pair.split)
    assert all(len(parts) == 1 for parts in parts_of.values())


def test_split_warns_when_a_part_lacks_a_class(tmp_path, rng):
    sequences, pairs = chain_components(rng, positives=1)
    write_fasta(tmp_path / "s.fasta", sequences)
    write_pairs(tmp_path / "p.tsv", pairs)
    result = run("split", "--pairs", tmp_path / "p.tsv", "--fasta", tmp_path / "s.fasta", "--out",
                 tmp_path / "o.tsv")
    ok(result)
    assert "no positive" in " ".join(result.output.split())


# == class 4: artefacts are checked when loaded ===================================================================

def flip_tensor_bytes(path: Path, count: int = 16) -> None:
    """Flip `count` bytes in the middle of the largest tensor stored in a torch zip checkpoint."""
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with open(path, "r+b") as handle:
        handle.seek(info.header_offset + 26)
        name_len, extra_len = np.frombuffer(handle.read(4), dtype="<u2")
        start = info.header_offset + 30 + int(name_len) + int(extra_len) + info.file_size // 2
        handle.seek(start)
        data = bytearray(handle.read(count))
        handle.seek(start)
        handle.write(bytes(b ^ 0xFF for b in data))


def predict_args(tmp_path: Path, checkpoint: Path, *extra) -> list:
    fasta, sequences = small_proteome(tmp_path)
    pairs = pairs_file(tmp_path, sequences)
    return ["predict", "--checkpoint", checkpoint, "--pairs", pairs, "--fasta", fasta, "--out",
            tmp_path / "preds.tsv", *extra]


def test_flipped_bytes_in_a_checkpoint_are_refused(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "best.pt", "both")
    flip_tensor_bytes(checkpoint)
    message = refused(run(*predict_args(tmp_path, checkpoint)), str(checkpoint))
    assert "checksum" in message
    assert not (tmp_path / "preds.tsv").exists()


def tiny_model(**changes) -> tuple[StudentModel, ModelConfig]:
    torch.manual_seed(0)
    config = ModelConfig(head="both", **TINY)
    return StudentModel(config), config


def test_non_finite_weights_and_threshold_are_refused(tmp_path):
    model, config = tiny_model()
    state = model.state_dict()
    state["map_bias"] = torch.full_like(state["map_bias"], float("nan"))
    nan_weights = save_checkpoint(tmp_path / "nan.pt", {"model": state, "model_config": config.to_dict()})
    message = refused(run(*predict_args(tmp_path, nan_weights)), str(nan_weights))
    assert "map_bias" in message and "NaN" in message
    model, config = tiny_model()
    nan_threshold = save_checkpoint(tmp_path / "thr.pt", {"model": model.state_dict(),
                                                          "model_config": config.to_dict(), "threshold": float("nan")})
    message = refused(run(*predict_args(tmp_path, nan_threshold)), str(nan_threshold))
    assert "threshold" in message
    assert not (tmp_path / "preds.tsv").exists()


def test_non_finite_predictions_are_errors(tmp_path, monkeypatch):
    from student import predict as predict_module

    checkpoint = tiny_checkpoint(tmp_path / "best.pt", "both")
    monkeypatch.setattr(predict_module, "predict_pairs",
                        lambda model, pairs, *a, **k: np.full(len(pairs), np.nan))
    message = refused(run(*predict_args(tmp_path, checkpoint)), str(checkpoint))
    assert "non-finite" in message and not (tmp_path / "preds.tsv").exists()


def test_verify_checks_embedding_range_and_tiled_flags(tmp_path, rng):
    from teacher_cache.verify import verify_cache

    path = tmp_path / "c.h5"
    meta = dict(teacher="synthetic", model="m", embedding_dim=4, random_weights=True,
                settings={"max_tokens": 64, "linker": "GGGGG", "tile_overlap": 8})
    with CacheBuilder(path, meta) as builder:
        for la, lb in ((10, 12), (40, 30)):  # 10+12+5+2 fits in 64 tokens; 40+30+5+2 does not
            a, b = random_sequence(rng, la), random_sequence(rng, lb)
            builder.add_pair(a, b, rng.random((la, lb)), rng.random((la, lb)), tiled=la + lb + 7 > 64)
            builder.add_protein(a, rng.standard_normal(4))
            builder.add_protein(b, rng.standard_normal(4))
    assert verify_cache(path).ok
    with h5py.File(path, "r+") as handle:
        embedding = handle["proteins/embedding"][()]
        embedding[1, 2] = 3.4e38
        handle["proteins/embedding"][...] = embedding
        tiled = handle["pairs/tiled"][()]
        tiled[0] = 1 - tiled[0]
        handle["pairs/tiled"][...] = tiled
    report = verify_cache(path)
    text = " ".join(report.problems)
    assert "3.4e+38" in text or "outside" in text, report.problems
    assert "tiled" in text, report.problems
    refused(run("cache", "verify", path), "tiled")


def test_screen_merge_refuses_a_truncated_shard(tmp_path):
    fasta, _ = small_proteome(tmp_path, n=12)
    checkpoint = tiny_checkpoint(tmp_path / "model.pt", "both")
    common = dict(checkpoint=str(checkpoint), fasta=str(fasta), top=30, block_cells=32 * 32)
    outputs = []
    for shard in (0, 1):
        out = tmp_path / f"shard{shard}.tsv"
        run_screen(ScreenConfig(out=str(out), shard=f"{shard}/2", **common))
        outputs.append(out)
    assert json.loads((tmp_path / "shard0.tsv.json").read_text())["summary"]["rows"] == 30
    lines = outputs[0].read_text().splitlines(keepends=True)
    outputs[0].write_text("".join(lines[:4]))  # truncated at a line boundary: 3 of 30 rows
    message = refused(run("screen-merge", *outputs, "--out", tmp_path / "merged.tsv"), str(outputs[0]))
    assert "30" in message and "3" in message
    assert not (tmp_path / "merged.tsv").exists()
    # same row count, other content: the content hash catches it
    outputs[0].write_text("".join(lines[:2] + [lines[3], lines[2]] + lines[4:]))
    refused(run("screen-merge", *outputs, "--out", tmp_path / "merged.tsv"), str(outputs[0]), "hash")


# == class 5: OS failures are user errors ==========================================================================

class _FullDisk:
    """A file whose writes fail as on a full disk."""

    def __init__(self, real):
        self.real = real

    def write(self, *args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.real.close()

    def __getattr__(self, name):
        return getattr(self.real, name)


def no_partials(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if "partial" in p.name]


def test_full_disk_while_writing_predictions(tmp_path, monkeypatch):
    from student import predict as predict_module

    checkpoint = tiny_checkpoint(tmp_path / "best.pt", "both")
    args = predict_args(tmp_path, checkpoint)
    real_open = open
    monkeypatch.setattr(predict_module, "open", lambda *a, **k: _FullDisk(real_open(*a, **k)), raising=False)
    refused(run(*args), str(tmp_path / "preds.tsv"), "No space left on device")
    assert not (tmp_path / "preds.tsv").exists() and no_partials(tmp_path)


def test_full_disk_while_saving_a_checkpoint(tmp_path, monkeypatch):
    files = make_problem(tmp_path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full)
    out = tmp_path / "run"
    refused(run("train", "--pairs", files["pairs"], "--fasta", files["fasta"], "--out", out, "--epochs", "1",
                "--channels", "8", "--kernel-sizes", "3"), str(out / "best.pt"), "No space left on device")
    assert not (out / "best.pt").exists() and no_partials(tmp_path)


def test_read_only_folder_for_hdf5_maps(tmp_path, monkeypatch):
    checkpoint = tiny_checkpoint(tmp_path / "best.pt", "both")
    maps = tmp_path / "maps.h5"
    real_file = h5py.File

    def read_only(name, mode="r", *args, **kwargs):
        if mode != "r":  # what h5py raises in a read-only folder: an OSError without errno, the cause in its text
            raise OSError(f"Unable to synchronously create file (unable to open file: name = '{name}', errno = 30, "
                          "error message = 'Read-only file system', flags = 13, o_flags = 242)")
        return real_file(name, mode, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", read_only)
    refused(run(*predict_args(tmp_path, checkpoint, "--maps", maps)), str(maps), "Read-only file system")
    assert not maps.exists() and no_partials(tmp_path)


def test_bad_config_value_inside_a_checkpoint(tmp_path):
    model, config = tiny_model()
    bad = config.to_dict() | {"kernel_sizes": "three"}
    checkpoint = save_checkpoint(tmp_path / "bad.pt", {"model": model.state_dict(), "model_config": bad})
    message = refused(run(*predict_args(tmp_path, checkpoint)), str(checkpoint))
    assert "kernel_sizes" in message
    assert not (tmp_path / "preds.tsv").exists()


def test_free_space_is_checked_before_writing_maps(tmp_path, monkeypatch):
    import shutil

    checkpoint = tiny_checkpoint(tmp_path / "best.pt", "both")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 ** 9, 10 ** 9 - 100, 100))
    maps = tmp_path / "maps.h5"
    message = refused(run(*predict_args(tmp_path, checkpoint, "--maps", maps)), str(maps))
    assert "free" in message
    assert not maps.exists() and not (tmp_path / "preds.tsv").exists()
    fasta, _ = small_proteome(tmp_path)
    message = refused(run("screen", "--checkpoint", checkpoint, "--fasta", fasta, "--out", tmp_path / "hits.tsv",
                          "--top", "5", "--maps", maps), str(maps))
    assert "free" in message and not maps.exists()


def test_free_space_is_checked_before_precompute(tmp_path, monkeypatch, esm_checkpoint):
    import shutil

    from data.errors import UserError
    from teacher_cache.teachers.precompute import parts_dir_of, run_precompute
    from tests.test_precompute import config_for, write_inputs

    pairs, fasta, _ = write_inputs(tmp_path, n_proteins=4, n_pairs=3)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 ** 9, 10 ** 9 - 100, 100))
    out = tmp_path / "cache.h5"
    with pytest.raises(UserError, match="free"):
        run_precompute(config_for(esm_checkpoint, pairs, fasta, out))
    assert not out.exists() and not parts_dir_of(out).exists() and not Path(f"{out}.lock").exists()


# == class 6: messages that help ===================================================================================

def test_uniprot_header_field_is_named(tmp_path, rng):
    fasta = tmp_path / "s.fasta"
    fasta.write_text(f">sp|P12345|NAME_HUMAN Some protein OS=Homo sapiens\n{random_sequence(rng, 20)}\n"
                     f">sp|Q99999|OTHER_HUMAN\n{random_sequence(rng, 20)}\n")
    pairs = tmp_path / "p.tsv"
    pairs.write_text("id_a\tid_b\tlabel\nP12345\tQ99999\t1\n")
    message = refused(run("split", "--pairs", pairs, "--fasta", fasta, "--out", tmp_path / "o.tsv"), "P12345")
    assert "sp|P12345|NAME_HUMAN" in message


def test_byte_order_mark_is_accepted(tmp_path, rng):
    from data.fasta import read_fasta
    from data.pairs import read_pairs

    fasta, pairs = tmp_path / "s.fasta", tmp_path / "p.tsv"
    fasta.write_text("\ufeff>A\n" + random_sequence(rng, 20) + "\n>B\n" + random_sequence(rng, 20) + "\n",
                     encoding="utf-8")
    pairs.write_text("\ufeffA\tB\t1\n", encoding="utf-8")
    sequences = read_fasta(fasta)
    assert sorted(sequences) == ["A", "B"]
    table = read_pairs(pairs, sequences)
    assert table.pairs[0].id_a == "A" and table.pairs[0].label == 1


def test_header_without_a_label_column_names_the_accepted_names(tmp_path):
    fasta, sequences = small_proteome(tmp_path)
    pairs = tmp_path / "p.tsv"
    pairs.write_text("id_a\tid_b\tinteracts\nQ0\tQ1\t1\nQ2\tQ3\t0\n")
    message = refused(run("split", "--pairs", pairs, "--fasta", fasta, "--out", tmp_path / "o.tsv"), str(pairs))
    assert "interacts" in message and "label" in message


def test_split_on_conflicting_labels_suggests_drop_conflicts(tmp_path):
    fasta, sequences = small_proteome(tmp_path)
    pairs = tmp_path / "p.tsv"
    pairs.write_text("id_a\tid_b\tlabel\nQ0\tQ1\t1\nQ1\tQ0\t0\nQ2\tQ3\t0\n")
    refused(run("split", "--pairs", pairs, "--fasta", fasta, "--out", tmp_path / "o.tsv"), "--drop-conflicts")


@pytest.mark.parametrize("content", [b"id_a\tid_b\tlabel\n", bytes(range(256)) * 4])
def test_a_file_that_is_not_a_checkpoint_is_named_so(tmp_path, content):
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(content)
    message = refused(run(*predict_args(tmp_path, checkpoint)), str(checkpoint))
    assert "not a checkpoint" in message
    for torch_text in ("Weights only", "unpickl", "pickle", "Unpickling", "PytorchStreamReader"):
        assert torch_text.lower() not in message.lower(), message
