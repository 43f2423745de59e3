"""Stage one end to end on a tiny random ESM-2: stored values, reuse, resume after kill -9, shards, tiling, errors."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.helpers import interrupt_at_pair_batch, random_sequence, write_random_cache
from data.errors import UserError
from data.fasta import write_fasta
from data.keys import canonical_pair, sequence_key
from teacher_cache.teachers.esm_runner import write_random_esm2
from teacher_cache import StorageConfig, TeacherCache, merge_caches
from teacher_cache.teachers.config import PrecomputeConfig
from teacher_cache.verify import verify_cache
from teacher_cache.errors import CacheError
from teacher_cache.lock import CacheLock
from teacher_cache.teachers.precompute import parts_dir_of, run_precompute
from teacher_cache.teachers.esm_runner import load_teacher
from test_runner import fair_esm_reference

REPO = Path(__file__).resolve().parents[1]
LINKER = "GGGGG"
TOLERANCE = StorageConfig().max_abs_error  # float16 storage; the computation itself is within 1e-6 here


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.set_num_threads(1)
    return write_random_esm2(tmp_path_factory.mktemp("esm"), num_layers=2, embed_dim=32, attention_heads=4,
                             contact_scale=20.0)


def write_inputs(directory: Path, n_proteins: int, n_pairs: int, seed: int = 0, lengths=(12, 60),
                 prefix: str = "p") -> tuple[Path, Path, list[tuple[str, str]]]:
    rng = np.random.default_rng(seed)
    sequences = {f"{prefix}{i}": random_sequence(rng, int(rng.integers(*lengths))) for i in range(n_proteins)}
    chosen: list[tuple[int, int]] = []
    while len(chosen) < n_pairs:
        a, b = (int(x) for x in rng.choice(n_proteins, 2, replace=False))
        if (a, b) not in chosen and (b, a) not in chosen:
            chosen.append((a, b))
    write_fasta(directory / "seqs.fasta", sequences)
    pairs = [(f"{prefix}{a}", f"{prefix}{b}") for a, b in chosen]
    (directory / "pairs.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in pairs))
    return directory / "pairs.tsv", directory / "seqs.fasta", [(sequences[a], sequences[b]) for a, b in pairs]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return write_inputs(tmp_path_factory.mktemp("inputs"), n_proteins=10, n_pairs=14)


def config_for(checkpoint, pairs, fasta, out, **options) -> PrecomputeConfig:
    options.setdefault("linker", LINKER)
    options.setdefault("tokens_per_batch", 512)
    return PrecomputeConfig(pairs=str(pairs), fasta=str(fasta), model=str(checkpoint), out=str(out), **options)


def contents(path: Path) -> tuple[dict, dict]:
    """{pair key: (contact, attention, tiled)}, {protein key: (embedding, tiled)} of a cache."""
    with TeacherCache.open(path) as cache:
        pairs = {(a, b): (m.contact, m.attention, m.tiled) for a, b, m in cache.iter_pairs()}
        proteins = {key: (cache.protein(seq).embedding, cache.protein(seq).tiled)
                    for key, seq in cache.sequences().items()}
    return pairs, proteins


def assert_same_contents(path_a: Path, path_b: Path, atol: float = 2 * StorageConfig().max_abs_error) -> None:
    pairs_a, proteins_a = contents(path_a)
    pairs_b, proteins_b = contents(path_b)
    assert pairs_a.keys() == pairs_b.keys()
    assert proteins_a.keys() == proteins_b.keys()
    for key, (contact, attention, tiled) in pairs_a.items():
        other = pairs_b[key]
        assert tiled == other[2]
        assert np.abs(contact - other[0]).max() <= atol
        assert np.abs(attention - other[1]).max() <= atol
    for key, (embedding, tiled) in proteins_a.items():
        assert tiled == proteins_b[key][1]
        assert np.abs(embedding - proteins_b[key][0]).max() <= 1e-5


@pytest.fixture(scope="module")
def full_run(checkpoint, inputs, tmp_path_factory):
    pairs, fasta, _ = inputs
    out = tmp_path_factory.mktemp("full") / "cache.h5"
    result = run_precompute(config_for(checkpoint, pairs, fasta, out))
    return out, result


# -- stored content ----------------------------------------------------------------------------------------------
def test_stored_maps_and_embeddings_match_fair_esm(checkpoint, inputs, full_run):
    _, _, sequence_pairs = inputs
    out, result = full_run
    teacher = load_teacher(str(checkpoint))
    assert result.pairs_computed == len(sequence_pairs) and result.pairs_cached == 0
    assert result.random_weights and result.tokens > 0
    assert not parts_dir_of(out).exists() and not Path(f"{out}.lock").exists()
    with TeacherCache.open(out) as cache:
        assert cache.random_weights and cache.teacher == "esm2" and cache.embedding_dim == 32
        assert cache.attrs["weights_sha256"] == teacher.info.weights_sha256
        assert cache.settings["linker"] == LINKER and cache.settings["attention_layers"] == [2]
        assert cache.settings["compute_dtype"] == "fp32"
        assert "tokens_per_batch" not in cache.settings and "tokens_per_batch" in cache.attrs["run_config"]
        for seq_a, seq_b in sequence_pairs:
            # the teacher runs each pair once, as first + linker + second in canonical (key) order
            _, _, swapped = canonical_pair(sequence_key(seq_a), sequence_key(seq_b))
            first, second = (seq_b, seq_a) if swapped else (seq_a, seq_b)
            ref_contact, ref_attention = fair_esm_reference(teacher, first, second, LINKER, [2])
            if swapped:
                ref_contact, ref_attention = ref_contact.T, ref_attention.T
            maps = cache.pair(seq_a, seq_b)
            assert not maps.tiled
            assert np.abs(maps.contact - ref_contact).max() <= TOLERANCE
            assert np.abs(maps.attention - ref_attention).max() <= TOLERANCE
        for seq in {s for pair in sequence_pairs for s in pair}:
            with torch.no_grad():
                reference = teacher.model(teacher._tokens([seq]), repr_layers=[2])["representations"][2]
            expected = reference[0, 1:len(seq) + 1].mean(0).numpy()
            assert np.abs(cache.protein(seq).embedding - expected).max() <= 1e-5


def test_either_orientation_and_other_ids_reuse_the_cache(checkpoint, inputs, full_run, tmp_path):
    """Swapped pairs under new ids: nothing is recomputed and the file is left as it was."""
    _, _, sequence_pairs = inputs
    out, _ = full_run
    fasta = {f"renamed_{i}_{side}": seq for i, pair in enumerate(sequence_pairs) for side, seq in zip("ab", pair)}
    write_fasta(tmp_path / "renamed.fasta", fasta)
    swapped = "".join(f"renamed_{i}_b\trenamed_{i}_a\n" for i in range(len(sequence_pairs)))
    (tmp_path / "swapped.tsv").write_text(swapped)
    before = out.stat().st_mtime_ns
    result = run_precompute(config_for(checkpoint, tmp_path / "swapped.tsv", tmp_path / "renamed.fasta", out))
    assert (result.pairs_computed, result.proteins_computed, result.forward_batches) == (0, 0, 0)
    assert result.pairs_cached == len(sequence_pairs)
    assert out.stat().st_mtime_ns == before


def test_superset_run_computes_only_new_pairs(checkpoint, inputs, full_run, tmp_path):
    pairs, fasta, sequence_pairs = inputs
    subset = tmp_path / "subset.tsv"
    subset.write_text("".join(pairs.read_text().splitlines(keepends=True)[:5]))
    out = tmp_path / "cache.h5"
    first = run_precompute(config_for(checkpoint, subset, fasta, out))
    assert first.pairs_computed == 5
    second = run_precompute(config_for(checkpoint, pairs, fasta, out))
    assert (second.pairs_computed, second.pairs_cached) == (len(sequence_pairs) - 5, 5)
    assert second.proteins_cached == first.proteins_computed
    assert_same_contents(out, full_run[0])


def test_per_residue_embeddings_are_stored_on_request(checkpoint, inputs, tmp_path):
    pairs, fasta, sequence_pairs = inputs
    out = tmp_path / "cache.h5"
    run_precompute(config_for(checkpoint, pairs, fasta, out, per_residue=True))
    with TeacherCache.open(out) as cache:
        entry = cache.protein(sequence_pairs[0][0])
        assert entry.residue_embedding.shape == (len(sequence_pairs[0][0]), 32)
        np.testing.assert_allclose(entry.residue_embedding.mean(0), entry.embedding, atol=2e-3)


# -- interruption and concurrency ----------------------------------------------------------------------------------
def test_resume_after_interrupt_with_parts_and_stale_partial(checkpoint, inputs, full_run, tmp_path, monkeypatch):
    pairs, fasta, sequence_pairs = inputs
    out = tmp_path / "cache.h5"
    config = config_for(checkpoint, pairs, fasta, out, tokens_per_batch=1, checkpoint_seconds=0)
    with pytest.raises(KeyboardInterrupt):
        run_precompute(config, progress=interrupt_at_pair_batch(2))
    parts = sorted(parts_dir_of(out).glob("part-*.h5"))
    assert parts and not out.exists()
    stale = parts_dir_of(out) / "part-000099.h5.partial-123"
    stale.write_bytes(b"half a file")
    (tmp_path / "cache.h5.partial-456").write_bytes(b"half a merge")
    import teacher_cache.teachers.precompute as precompute
    monkeypatch.setattr(precompute, "MAX_MERGE_SOURCES", 3)  # exercise the merge in groups too
    result = run_precompute(replace(config, tokens_per_batch=512, checkpoint_seconds=60))
    assert result.parts_merged == len(parts) + 1
    assert result.pairs_cached == 2 and result.pairs_computed == len(sequence_pairs) - 2
    assert result.proteins_computed == 0
    assert not parts_dir_of(out).exists() and not (tmp_path / "cache.h5.partial-456").exists()
    assert_same_contents(out, full_run[0])


def test_kill_minus_nine_mid_run_then_rerun_completes(checkpoint, tmp_path):
    """A real `kill -9` of `cli.py precompute` once some parts are written; the re-run yields the full content."""
    pairs, fasta, sequence_pairs = write_inputs(tmp_path, n_proteins=20, n_pairs=120, seed=5, lengths=(10, 30))
    out = tmp_path / "killed.h5"
    command = [sys.executable, str(REPO / "cli.py"), "precompute", "--pairs", str(pairs), "--fasta", str(fasta),
               "--model", str(checkpoint), "--out", str(out), "--linker", LINKER, "--tokens-per-batch", "1",
               "--checkpoint-seconds", "0"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while len(list(parts_dir_of(out).glob("part-*.h5"))) < 25 and process.poll() is None:
            assert time.monotonic() < deadline, "no part file appeared"
            time.sleep(0.01)
        assert process.poll() is None, f"run finished before it could be killed: {process.stderr.read()[-500:]}"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not out.exists()
    parts = list(parts_dir_of(out).glob("part-*.h5"))
    for part in parts:  # every part on disk is a complete, readable cache
        TeacherCache.open(part).close()
    resumed = run_precompute(config_for(checkpoint, pairs, fasta, out))
    assert 0 < resumed.pairs_computed < len(sequence_pairs)
    assert resumed.pairs_cached + resumed.pairs_computed == len(sequence_pairs)
    reference = tmp_path / "uninterrupted.h5"
    run_precompute(config_for(checkpoint, pairs, fasta, reference))
    assert_same_contents(out, reference)


def test_second_writer_is_refused(checkpoint, inputs, tmp_path):
    pairs, fasta, _ = inputs
    out = tmp_path / "cache.h5"
    with CacheLock(out):
        with pytest.raises(CacheError, match="being written by another process"):
            run_precompute(config_for(checkpoint, pairs, fasta, out))
    assert not out.exists()


# -- shards and tiling --------------------------------------------------------------------------------------------
def test_two_shards_merged_equal_one_run(checkpoint, inputs, full_run, tmp_path):
    pairs, fasta, sequence_pairs = inputs
    shards = []
    for index in range(2):
        path = tmp_path / f"shard{index}.h5"
        result = run_precompute(config_for(checkpoint, pairs, fasta, path, shard=(index, 2)))
        assert 0 < result.pairs_computed < len(sequence_pairs)
        assert verify_cache(path).ok, "each shard must be a complete cache by itself"
        shards.append(path)
    merge_caches(shards, tmp_path / "merged.h5")
    assert_same_contents(tmp_path / "merged.h5", full_run[0])
    with TeacherCache.open(tmp_path / "merged.h5") as merged, TeacherCache.open(full_run[0]) as single:
        assert merged.fingerprint == single.fingerprint


def test_long_inputs_are_tiled_with_flags_and_full_shapes(checkpoint, tmp_path):
    pairs, fasta, sequence_pairs = write_inputs(tmp_path, n_proteins=6, n_pairs=5, seed=2, lengths=(30, 70))
    out = tmp_path / "tiled.h5"
    max_tokens = 48
    result = run_precompute(config_for(checkpoint, pairs, fasta, out, max_tokens=max_tokens, tile_overlap=6))
    expected_tiled = sum(len(a) + len(b) + len(LINKER) + 2 > max_tokens for a, b in sequence_pairs)
    assert result.pairs_tiled == expected_tiled == len(sequence_pairs)
    with TeacherCache.open(out) as cache:
        info = cache.info()
        assert info["n_tiled_pairs"] == expected_tiled
        assert info["n_tiled_proteins"] == sum(len(s) + 2 > max_tokens for s in cache.sequences().values()) > 0
        assert cache.settings["max_tokens"] == max_tokens
        for seq_a, seq_b in sequence_pairs:
            maps = cache.pair(seq_a, seq_b)
            assert maps.tiled and maps.contact.shape == (len(seq_a), len(seq_b))
            assert 0 <= maps.contact.min() and maps.contact.max() <= 1 and maps.contact.std() > 0


# -- errors ----------------------------------------------------------------------------------------------------------
def test_incompatible_existing_out_needs_overwrite(checkpoint, inputs, tmp_path):
    pairs, fasta, sequence_pairs = inputs
    out = tmp_path / "cache.h5"
    write_random_cache(out, sequence_pairs[:2])
    before = out.read_bytes()
    with pytest.raises(CacheError, match="refusing to replace it: pass --overwrite"):
        run_precompute(config_for(checkpoint, pairs, fasta, out))
    assert out.read_bytes() == before
    result = run_precompute(config_for(checkpoint, pairs, fasta, out, overwrite=True))
    assert result.pairs_computed == len(sequence_pairs)
    with TeacherCache.open(out) as cache:
        assert cache.teacher == "esm2" and cache.n_pairs == len(sequence_pairs)


def test_other_settings_on_the_same_out_are_refused(checkpoint, inputs, full_run, tmp_path):
    pairs, fasta, _ = inputs
    with pytest.raises(CacheError, match="another teacher or settings"):
        run_precompute(config_for(checkpoint, pairs, fasta, full_run[0], linker="GG"))


def test_unwritable_output_is_refused_before_loading_anything(inputs, tmp_path, monkeypatch):
    pairs, fasta, _ = inputs
    missing_model = str(tmp_path / "esm2_never_loaded.pt")  # a model error would mean the output was checked late
    config = PrecomputeConfig(pairs=str(pairs), fasta=str(fasta), model=missing_model, out="")
    with pytest.raises(UserError, match="does not exist"):
        run_precompute(replace(config, out=str(tmp_path / "no" / "such" / "dir" / "cache.h5")))
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="is not a directory"):
        run_precompute(replace(config, out=str(tmp_path / "file" / "cache.h5")))
    locked = tmp_path / "readonly"
    locked.mkdir()
    locked.chmod(0o500)
    if os.geteuid() == 0:  # root writes anywhere; simulate the permission check's answer
        import teacher_cache.teachers.precompute as precompute
        monkeypatch.setattr(precompute.os, "access", lambda path, mode: False)
    with pytest.raises(UserError, match="is not writable"):
        run_precompute(replace(config, out=str(locked / "cache.h5")))


def test_cli_reports_errors_and_random_teacher(checkpoint, inputs, tmp_path):
    from cli import cli

    pairs, fasta, sequence_pairs = inputs
    out = tmp_path / "cache.h5"
    write_random_cache(out, sequence_pairs[:1])
    base = ["precompute", "--pairs", str(pairs), "--fasta", str(fasta), "--model", str(checkpoint),
            "--linker", LINKER]
    runner = CliRunner()
    refused = runner.invoke(cli, base + ["--out", str(out)])
    assert refused.exit_code == 2 and "--overwrite" in refused.output
    bad_shard = runner.invoke(cli, base + ["--out", str(tmp_path / "x.h5"), "--shard", "2/2"])
    assert bad_shard.exit_code == 2 and "--shard 2/2" in bad_shard.output
    done = runner.invoke(cli, base + ["--out", str(out), "--overwrite"])
    assert done.exit_code == 0, done.output
    assert "RANDOM weights" in done.output and "pairs/s" in done.output


def test_batches_are_finished_one_behind_and_kept_when_a_launch_fails():
    from teacher_cache.teachers.precompute import _one_batch_behind

    events = []
    _one_batch_behind([[0], [1], [2]], lambda batch: events.append(("launch", batch[0])) or batch[0] * 10,
                      lambda batch, launched: events.append(("finish", batch[0], launched)))
    assert events == [("launch", 0), ("launch", 1), ("finish", 0, 0), ("launch", 2), ("finish", 1, 10),
                      ("finish", 2, 20)]

    finished = []

    def launch(batch):
        if batch[0] == 2:
            raise MemoryError("out of device memory")
        return batch[0]

    with pytest.raises(MemoryError):
        _one_batch_behind([[0], [1], [2], [3]], launch, lambda batch, launched: finished.append(launched))
    assert finished == [0, 1]  # batch 1 was launched before the failure: its results are not thrown away
    _one_batch_behind([], launch, lambda batch, launched: finished.append(launched))
    assert finished == [0, 1]
