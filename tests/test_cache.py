"""The teacher cache: writer/reader round trip, merge, atomic writes, damaged files, fork safety, lock, verify,
and the `cache` commands."""
from __future__ import annotations

import json
import multiprocessing
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from data.keys import canonical_pair, sequence_key
from teacher_cache import CacheBuilder, CacheError, MissingEntryError, StorageConfig, TeacherCache, merge_caches
from teacher_cache.lock import CacheLock
from teacher_cache.verify import verify_cache
from tests.helpers import random_sequence, write_random_cache

META = dict(teacher="esm2", model="esm2_t6_8M_UR50D", weights_sha256="0" * 64, random_weights=True,
            embedding_dim=6, settings={"linker": "G" * 25, "layers": "all"})


def sequences(rng: np.random.Generator, n: int, low: int = 5, high: int = 40) -> list[str]:
    return [random_sequence(rng, int(rng.integers(low, high))) for _ in range(n)]


def contact_like(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Mostly tiny values with a few high cells, like a contact head's output."""
    values = rng.random(shape) ** 8 * 0.05
    hot = rng.random(shape) < 0.02
    values[hot] = rng.uniform(0.5, 1.0, size=int(hot.sum()))
    values.flat[0] = 1.0  # the extremes must survive every encoding
    values.flat[-1] = 0.0
    return values.astype(np.float32)


def build(path: Path, pairs: list[tuple[str, str]], rng: np.random.Generator, storage: StorageConfig | None = None,
          residues: bool = False) -> dict:
    """Write a cache of `pairs`; returns the maps and embeddings written, keyed like the inputs."""
    written: dict = {"pairs": {}, "proteins": {}}
    with CacheBuilder(path, META, storage) as builder:
        for seq_a, seq_b in pairs:
            contact = contact_like(rng, (len(seq_a), len(seq_b)))
            attention = rng.random((len(seq_a), len(seq_b))).astype(np.float32)
            assert builder.add_pair(seq_a, seq_b, contact, attention)
            written["pairs"][(seq_a, seq_b)] = (contact, attention)
            for seq in (seq_a, seq_b):
                if not builder.has_protein(seq):
                    embedding = rng.standard_normal(6).astype(np.float32)
                    residue = rng.standard_normal((len(seq), 6)).astype(np.float32) if residues else None
                    builder.add_protein(seq, embedding, residue)
                    written["proteins"][seq] = (embedding, residue)
    return written


# -- round trip ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float16", "uint8", "float32"])
def test_round_trip_both_orientations(tmp_path, rng, dtype):
    storage = StorageConfig(dtype=dtype)
    seqs = sequences(rng, 6)
    pairs = [(seqs[0], seqs[1]), (seqs[2], seqs[3]), (seqs[4], seqs[4]), (seqs[5], seqs[0])]
    written = build(tmp_path / "c.h5", pairs, rng, storage)
    tolerance = storage.max_abs_error
    with TeacherCache.open(tmp_path / "c.h5") as cache:
        assert cache.n_pairs == 4 and cache.n_proteins == 6 and cache.storage == storage
        for (seq_a, seq_b), (contact, attention) in written["pairs"].items():
            maps = cache.pair(seq_a, seq_b)
            assert maps.contact.dtype == np.float32 and maps.contact.shape == (len(seq_a), len(seq_b))
            assert np.abs(maps.contact - contact).max() <= tolerance
            assert np.abs(maps.attention - attention).max() <= tolerance
            flipped = cache.pair(seq_b, seq_a)
            if seq_a != seq_b:  # a self-pair has one orientation: the one written
                np.testing.assert_array_equal(flipped.contact, maps.contact.T)
                np.testing.assert_array_equal(flipped.attention, maps.attention.T)
            assert cache.has_pair(seq_a, seq_b) and cache.has_pair(seq_b, seq_a)
        # Stored orientation is canonical whatever orientation was written.
        for key_a, key_b in cache.pair_keys():
            assert key_a <= key_b
        for seq, (embedding, _) in written["proteins"].items():
            np.testing.assert_array_equal(cache.protein(seq).embedding, embedding)
        assert set(cache.sequences().values()) == set(seqs)


@pytest.mark.parametrize("dtype", ["float16", "uint8", "float32"])
def test_pair_map_as_float16_is_the_stored_map(tmp_path, rng, dtype):
    seqs = sequences(rng, 4)
    pairs = [(seqs[0], seqs[1]), (seqs[2], seqs[3])]
    build(tmp_path / "c.h5", pairs, rng, StorageConfig(dtype=dtype))
    with TeacherCache.open(tmp_path / "c.h5") as cache:
        for seq_a, seq_b in pairs + [(b, a) for a, b in pairs]:
            wide = cache.pair_map(seq_a, seq_b, "contact")
            narrow = cache.pair_map(seq_a, seq_b, "contact", dtype="float16")
            assert wide.dtype == np.float32 and narrow.dtype == np.float16 and narrow.shape == wide.shape
            if dtype == "float16":  # the stored values themselves, bit for bit
                np.testing.assert_array_equal(narrow.astype(np.float32), wide)
            else:  # decoded, then rounded to float16
                np.testing.assert_array_equal(narrow, wide.astype(np.float16))
        with pytest.raises(ValueError, match="float32 or float16"):
            cache.pair_map(seqs[0], seqs[1], "contact", dtype="int8")


def test_protein_embeddings_read_together_equal_one_by_one(tmp_path, rng):
    seqs = sequences(rng, 12)
    written = build(tmp_path / "c.h5", [(seqs[i], seqs[i + 1]) for i in range(0, 12, 2)], rng)
    asked = [seqs[7], seqs[0], seqs[7], seqs[11], seqs[3]]  # any order, repeats
    with TeacherCache.open(tmp_path / "c.h5") as cache:
        together = cache.protein_embeddings(asked)
        assert together.dtype == np.float32 and together.shape == (5, 6)
        for row, seq in enumerate(asked):
            np.testing.assert_array_equal(together[row], written["proteins"][seq][0])
        sparse = cache.protein_embeddings([seqs[0], seqs[11]])  # far apart: the point-selection read
        np.testing.assert_array_equal(sparse[1], written["proteins"][seqs[11]][0])
        assert cache.protein_embeddings([]).shape == (0, 6)
        with pytest.raises(MissingEntryError, match="protein not in cache .*sequence of length 10"):
            cache.protein_embeddings([seqs[0], "MKVLLAGGSW"])


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("storage", [StorageConfig(chunk_cells=64), StorageConfig(chunk_cells=64, shuffle=False),
                                     StorageConfig(dtype="uint8", chunk_cells=64),
                                     StorageConfig(chunk_cells=64, compression="lzf"),
                                     StorageConfig(chunk_cells=64, compression=None)])
def test_maps_written_by_chunk_compression_equal_hdf5s_own_pipeline(tmp_path, rng, storage, threads, monkeypatch):
    """The builder gzips whole chunks itself (write_direct_chunk); HDF5 must read them as if it had written them."""
    import teacher_cache.writer as writer

    monkeypatch.setattr(writer, "_FLUSH_CELLS", 500)  # several flushes, each leaving a partial chunk buffered
    seqs = sequences(rng, 12, low=5, high=30)
    pairs = [(seqs[i], seqs[(i + 1) % 12]) for i in range(12)]
    written: dict = {}
    with CacheBuilder(tmp_path / "c.h5", META, storage, compression_threads=threads) as builder:
        assert builder._direct_chunks == (storage.compression == "gzip")
        for seq_a, seq_b in pairs:
            maps = (contact_like(rng, (len(seq_a), len(seq_b))), rng.random((len(seq_a), len(seq_b))))
            builder.add_pair(seq_a, seq_b, *maps)
            written[(seq_a, seq_b)] = maps
        for seq in seqs:
            builder.add_protein(seq, np.zeros(6))
    with h5py.File(tmp_path / "c.h5", "r") as handle:
        for name in ("contact", "attention"):
            stored = handle["pairs"][name]
            flat = stored[()]
            assert stored.shape[0] == sum(len(a) * len(b) for a, b in pairs) and stored.chunks == (64,)
            # the same cells through h5py's own filter pipeline, with the same options
            with h5py.File(tmp_path / f"{name}-h5py.h5", "w") as other:
                other.create_dataset("x", data=flat, **storage.dataset_options())
            with h5py.File(tmp_path / f"{name}-h5py.h5", "r") as other:
                np.testing.assert_array_equal(other["x"][()], flat)
            if storage.compression == "gzip":  # the first chunk's stored bytes are ours
                _, data = stored.id.read_direct_chunk((0,))
                assert data == writer.gzip_chunk(flat[:64], storage.compression_level, storage.shuffle)
    with TeacherCache.open(tmp_path / "c.h5") as cache:
        for (seq_a, seq_b), (contact, attention) in written.items():
            maps = cache.pair(seq_a, seq_b)
            assert np.abs(maps.contact - contact).max() <= storage.max_abs_error
            assert np.abs(maps.attention - attention).max() <= storage.max_abs_error
    assert not verify_cache(tmp_path / "c.h5").problems


def test_float16_error_bound_is_tight_enough(rng):
    values = rng.random(100_000).astype(np.float32)
    for dtype in ("float16", "uint8", "float32"):
        storage = StorageConfig(dtype=dtype)
        error = np.abs(storage.decode(storage.encode(values)) - values).max()
        assert error <= storage.max_abs_error
    assert StorageConfig(dtype="uint8").decode(StorageConfig(dtype="uint8").encode(np.array([0.0, 1.0]))).tolist() \
        == [0.0, 1.0]


def test_builder_rejects_bad_maps_and_duplicate_pairs(tmp_path, rng):
    seq_a, seq_b = sequences(rng, 2)
    shape = (len(seq_a), len(seq_b))
    with CacheBuilder(tmp_path / "c.h5", META) as builder:
        with pytest.raises(ValueError, match="shape"):
            builder.add_pair(seq_a, seq_b, np.zeros(shape[::-1]) if shape[0] != shape[1] else np.zeros((1, 1)),
                             np.zeros(shape))
        with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
            builder.add_pair(seq_a, seq_b, np.full(shape, 2.0), np.zeros(shape))
        with pytest.raises(ValueError, match="NaN"):
            builder.add_pair(seq_a, seq_b, np.full(shape, np.nan), np.zeros(shape))
        assert builder.add_pair(seq_a, seq_b, np.zeros(shape), np.zeros(shape))
        assert not builder.add_pair(seq_b, seq_a, np.ones(shape[::-1]), np.ones(shape[::-1]))  # same pair, flipped
        builder.add_protein(seq_a, np.zeros(6))
        builder.add_protein(seq_b, np.zeros(6))
    with TeacherCache.open(tmp_path / "c.h5") as cache:
        assert cache.n_pairs == 1 and cache.pair(seq_a, seq_b).contact.max() == 0.0


def test_missing_entries_raise_key_error_naming_them(tmp_path, rng):
    seqs = sequences(rng, 3, low=10, high=20)
    build(tmp_path / "c.h5", [(seqs[0], seqs[1])], rng)
    missing = "MKVLLAGGSW"
    with TeacherCache.open(tmp_path / "c.h5") as cache:
        with pytest.raises(MissingEntryError, match=rf"pair not in cache .*c\.h5: sequences of length "
                                                    rf"{len(seqs[0])} and 10 \(keys {sequence_key(seqs[0])[:12]}"):
            cache.pair(seqs[0], missing)
        with pytest.raises(KeyError):
            cache.pair(seqs[0], seqs[2])
        with pytest.raises(MissingEntryError, match=rf"protein not in cache .*: sequence of length 10 "
                                                    rf"\(key {sequence_key(missing)[:12]}"):
            cache.protein(missing)
        assert not cache.has_pair(seqs[0], missing) and not cache.has_protein(missing)


def test_protein_entries_with_and_without_residue_embeddings(tmp_path, rng):
    seqs = sequences(rng, 4)
    with_residues = build(tmp_path / "r.h5", [(seqs[0], seqs[1]), (seqs[1], seqs[2])], rng, residues=True)
    without = build(tmp_path / "n.h5", [(seqs[0], seqs[3])], rng, residues=False)
    with TeacherCache.open(tmp_path / "r.h5") as cache:
        for seq, (embedding, residue) in with_residues["proteins"].items():
            entry = cache.protein(seq)
            np.testing.assert_array_equal(entry.embedding, embedding)
            assert entry.residue_embedding is not None and entry.residue_embedding.shape == (len(seq), 6)
            np.testing.assert_allclose(entry.residue_embedding, residue, rtol=1e-3, atol=1e-3)  # stored float16
    with TeacherCache.open(tmp_path / "n.h5") as cache:
        for seq in without["proteins"]:
            entry = cache.protein(seq)
            assert entry.residue_embedding is None and entry.embedding.shape == (6,)
    # Mixed: some proteins with, some without.
    with CacheBuilder(tmp_path / "m.h5", META) as builder:
        builder.add_protein(seqs[0], np.ones(6))
        builder.add_protein(seqs[1], np.ones(6), np.ones((len(seqs[1]), 6)))
    with TeacherCache.open(tmp_path / "m.h5") as cache:
        assert cache.protein(seqs[0]).residue_embedding is None
        np.testing.assert_array_equal(cache.protein(seqs[1]).residue_embedding, np.ones((len(seqs[1]), 6)))
    assert verify_cache(tmp_path / "m.h5").ok


def test_info_summarises_the_cache(tmp_path, rng):
    seqs = sequences(rng, 3)
    build(tmp_path / "c.h5", [(seqs[0], seqs[1]), (seqs[1], seqs[2])], rng)
    with TeacherCache.open(tmp_path / "c.h5") as cache:
        info = cache.info()
    assert info["n_pairs"] == 2 and info["n_proteins"] == 3 and info["random_weights"] is True
    assert info["teacher"] == "esm2" and info["settings"] == META["settings"]
    assert info["map_cells"] == len(seqs[0]) * len(seqs[1]) + len(seqs[1]) * len(seqs[2])
    assert info["storage"]["dtype"] == "float16" and len(info["fingerprint"]) == 16


# -- merge ----------------------------------------------------------------------------------------------

def test_merge_is_the_union(tmp_path, rng):
    seqs = sequences(rng, 6)
    first = build(tmp_path / "1.h5", [(seqs[0], seqs[1]), (seqs[2], seqs[3])], rng)
    second = build(tmp_path / "2.h5", [(seqs[3], seqs[2]), (seqs[4], seqs[5]), (seqs[0], seqs[5])], rng)
    merge_caches([tmp_path / "1.h5", tmp_path / "2.h5"], tmp_path / "m.h5")
    with TeacherCache.open(tmp_path / "m.h5") as merged, TeacherCache.open(tmp_path / "1.h5") as one, \
            TeacherCache.open(tmp_path / "2.h5") as two:
        assert merged.fingerprint == one.fingerprint == two.fingerprint
        assert set(merged.pair_keys()) == set(one.pair_keys()) | set(two.pair_keys())
        assert merged.n_pairs == 4 and merged.n_proteins == 6
        for source, written in ((one, first), (two, second)):
            for seq_a, seq_b in written["pairs"]:
                if source is two and one.has_pair(seq_a, seq_b):
                    continue  # present in both: taken from the first source (checked below)
                np.testing.assert_array_equal(merged.pair(seq_a, seq_b).contact, source.pair(seq_a, seq_b).contact)
        # The pair present in both comes from the first source.
        np.testing.assert_array_equal(merged.pair(seqs[2], seqs[3]).attention, one.pair(seqs[2], seqs[3]).attention)
        for seq in seqs:
            np.testing.assert_array_equal(merged.protein(seq).embedding,
                                          (one if one.has_protein(seq) else two).protein(seq).embedding)
    assert verify_cache(tmp_path / "m.h5").ok


def test_merge_refuses_different_fingerprints(tmp_path, rng):
    seqs = sequences(rng, 4)
    write_random_cache(tmp_path / "1.h5", [(seqs[0], seqs[1])], embedding_dim=6, seed=0)
    write_random_cache(tmp_path / "2.h5", [(seqs[2], seqs[3])], embedding_dim=6, seed=1)
    with pytest.raises(CacheError, match="different teachers or settings"):
        merge_caches([tmp_path / "1.h5", tmp_path / "2.h5"], tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()
    with pytest.raises(CacheError, match="nothing to merge"):
        merge_caches([], tmp_path / "m.h5")


def test_merge_into_one_of_its_sources(tmp_path, rng):
    seqs = sequences(rng, 4)
    build(tmp_path / "1.h5", [(seqs[0], seqs[1])], rng)
    build(tmp_path / "2.h5", [(seqs[2], seqs[3])], rng)
    merge_caches([tmp_path / "1.h5", tmp_path / "2.h5"], tmp_path / "1.h5")
    with TeacherCache.open(tmp_path / "1.h5") as merged:
        assert merged.n_pairs == 2


# -- atomic writes --------------------------------------------------------------------------------------

def test_exception_inside_builder_leaves_nothing(tmp_path, rng):
    seq_a, seq_b = sequences(rng, 2)
    target = tmp_path / "c.h5"
    with pytest.raises(RuntimeError, match="boom"):
        with CacheBuilder(target, META) as builder:
            builder.add_pair(seq_a, seq_b, np.zeros((len(seq_a), len(seq_b))), np.zeros((len(seq_a), len(seq_b))))
            assert builder.tmp_path.exists() and not target.exists()
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_target_is_not_overwritten_without_overwrite(tmp_path, rng):
    seqs = sequences(rng, 4)
    build(tmp_path / "c.h5", [(seqs[0], seqs[1])], rng)
    before = (tmp_path / "c.h5").read_bytes()
    with pytest.raises(CacheError, match="already exists"):
        CacheBuilder(tmp_path / "c.h5", META)
    assert (tmp_path / "c.h5").read_bytes() == before
    build(tmp_path / "c.h5.new", [(seqs[2], seqs[3])], rng)
    with CacheBuilder(tmp_path / "c.h5", META, overwrite=True) as builder:
        builder.add_protein(seqs[2], np.zeros(6))
    with TeacherCache.open(tmp_path / "c.h5") as cache:
        assert cache.n_pairs == 0 and cache.n_proteins == 1


# -- damaged and foreign files -----------------------------------------------------------------------------

def test_non_cache_hdf5_is_refused(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle.create_dataset("x", data=np.arange(3))
    with pytest.raises(CacheError, match="not a protein-loftr teacher cache"):
        TeacherCache.open(tmp_path / "other.h5")
    (tmp_path / "text.h5").write_text("not hdf5 at all\n")
    with pytest.raises(CacheError, match="not a readable HDF5 cache"):
        TeacherCache.open(tmp_path / "text.h5")
    with pytest.raises(CacheError, match="does not exist"):
        TeacherCache.open(tmp_path / "absent.h5")


def test_truncated_file_is_refused(tmp_path, rng):
    seqs = sequences(rng, 4, low=60, high=120)
    build(tmp_path / "c.h5", [(seqs[0], seqs[1]), (seqs[2], seqs[3])], rng)
    data = (tmp_path / "c.h5").read_bytes()
    (tmp_path / "c.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(CacheError, match="truncated or corrupted"):
        TeacherCache.open(tmp_path / "c.h5")
    with pytest.raises(CacheError, match="truncated or corrupted"):
        verify_cache(tmp_path / "c.h5")


def test_other_schema_version_and_incomplete_are_refused(tmp_path, rng):
    seqs = sequences(rng, 2)
    build(tmp_path / "c.h5", [(seqs[0], seqs[1])], rng)
    shutil.copy(tmp_path / "c.h5", tmp_path / "incomplete.h5")
    with h5py.File(tmp_path / "c.h5", "r+") as handle:
        handle.attrs["schema_version"] = 99
    with pytest.raises(CacheError, match="schema version 99"):
        TeacherCache.open(tmp_path / "c.h5")
    assert any("schema version 99" in p for p in verify_cache(tmp_path / "c.h5").problems)
    with h5py.File(tmp_path / "incomplete.h5", "r+") as handle:
        handle.attrs["complete"] = False
    with pytest.raises(CacheError, match="incomplete cache"):
        TeacherCache.open(tmp_path / "incomplete.h5")
    assert any("incomplete" in p for p in verify_cache(tmp_path / "incomplete.h5").problems)
    with h5py.File(tmp_path / "incomplete.h5", "r+") as handle:
        handle.attrs["complete"] = True
        del handle.attrs["storage"]
    with pytest.raises(CacheError, match="'storage' attribute is missing or invalid"):
        TeacherCache.open(tmp_path / "incomplete.h5")


# -- processes -----------------------------------------------------------------------------------------

def _sum_maps(cache: TeacherCache, pairs: list[tuple[str, str]]) -> list[float]:
    return [float(cache.pair(a, b).contact.sum() + cache.protein(a).embedding.sum()) for a, b in pairs]


def _inherited_worker(cache: TeacherCache, pairs: list[tuple[str, str]], queue) -> None:
    queue.put(_sum_maps(cache, pairs))


def test_reading_from_forked_workers(tmp_path, rng):
    seqs = sequences(rng, 8)
    pairs = [(seqs[i], seqs[i + 1]) for i in range(7)]
    build(tmp_path / "c.h5", pairs, rng)
    context = multiprocessing.get_context("fork")
    with TeacherCache.open(tmp_path / "c.h5") as cache:
        expected = _sum_maps(cache, pairs)  # the parent's handle is open before the fork, as with a DataLoader
        queue = context.Queue()
        workers = [context.Process(target=_inherited_worker, args=(cache, pairs[i::2], queue)) for i in range(2)]
        for worker in workers:
            worker.start()
        results = [queue.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
            assert worker.exitcode == 0
        assert sorted(sum(results, [])) == sorted(expected)
        with context.Pool(2) as pool:  # the cache pickled into workers (drops the parent's handle)
            chunks = pool.starmap(_sum_maps, [(cache, [pair]) for pair in pairs])
        assert [c[0] for c in chunks] == expected
        assert _sum_maps(cache, pairs) == expected  # the parent's handle still works


def test_lock_refuses_a_second_holder(tmp_path):
    target = tmp_path / "c.h5"
    with CacheLock(target) as lock:
        assert lock.path.exists()
        with pytest.raises(CacheError, match="being written by another process"):
            with CacheLock(target):
                pass
    assert not Path(f"{target}.lock").exists()
    with CacheLock(target):  # free again after release
        pass


def _hold_lock(path: str, ready, release) -> None:
    with CacheLock(path):
        ready.set()
        release.wait(30)


def test_lock_held_by_another_process(tmp_path):
    context = multiprocessing.get_context("fork")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(str(tmp_path / "c.h5"), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(CacheError, match="lock .* is held"):
            with CacheLock(tmp_path / "c.h5"):
                pass
    finally:
        release.set()
        holder.join(30)


# -- verify ---------------------------------------------------------------------------------------------

def test_verify_clean_cache(tmp_path, rng):
    seqs = sequences(rng, 6)
    pairs = [(seqs[i], seqs[j]) for i in range(6) for j in range(i, 6)]
    build(tmp_path / "c.h5", pairs, rng, residues=True)
    calls: list[tuple[int, int]] = []
    report = verify_cache(tmp_path / "c.h5", progress=lambda done, total: calls.append((done, total)))
    assert report.ok and report.problems == []
    assert report.n_pairs == len(pairs) and report.n_proteins == 6
    assert report.cells_checked == 2 * report.map_cells > 0
    assert calls and calls[-1][0] == calls[-1][1]
    report.raise_if_problems()  # no exception


def _chunk_location(path: Path, dataset: str, chunk: int) -> tuple[int, int]:
    with h5py.File(path, "r") as handle:
        info = handle[dataset].id.get_chunk_info(chunk)
    return info.byte_offset, info.size


def test_verify_reports_flipped_byte_in_compressed_chunk(tmp_path, rng):
    seqs = sequences(rng, 6, low=150, high=250)
    pairs = [(seqs[i], seqs[j]) for i in range(6) for j in range(i + 1, 6)]
    storage = StorageConfig(chunk_cells=4096)
    build(tmp_path / "c.h5", pairs, rng, storage)
    offset, size = _chunk_location(tmp_path / "c.h5", "pairs/contact", 3)
    data = bytearray((tmp_path / "c.h5").read_bytes())
    data[offset + size // 2] ^= 0xFF
    (tmp_path / "c.h5").write_bytes(bytes(data))
    report = verify_cache(tmp_path / "c.h5")
    assert not report.ok
    damaged = [p for p in report.problems if "cannot be decoded" in p]
    assert len(damaged) == 1 and "/pairs/contact cells 12288..16384" in damaged[0] and "pair rows" in damaged[0]
    with pytest.raises(CacheError, match="failed verification with 1 problem"):
        report.raise_if_problems()
    # The reader says which pair it could not decode, rather than returning garbage.
    with TeacherCache.open(tmp_path / "c.h5") as cache:
        with h5py.File(tmp_path / "c.h5", "r") as handle:
            offsets = handle["pairs/offset"][()]
        row = int(np.searchsorted(offsets, 12288, side="right") - 1)
        key_a, key_b = cache.pair_keys()[row]
        by_key = {sequence_key(s): s for s in seqs}
        with pytest.raises(CacheError, match=f"cannot decode the maps of pair row {row}"):
            cache.pair(by_key[key_a], by_key[key_b])


def test_verify_reports_flipped_byte_in_uncompressed_map(tmp_path, rng):
    seqs = sequences(rng, 4)
    storage = StorageConfig(compression=None, shuffle=False)
    written = build(tmp_path / "c.h5", [(seqs[0], seqs[1]), (seqs[2], seqs[3])], rng, storage)
    contact = written["pairs"][(seqs[0], seqs[1])][0]
    swapped = canonical_pair(sequence_key(seqs[0]), sequence_key(seqs[1]))[2]
    stored = (contact.T if swapped else contact).reshape(-1)
    with h5py.File(tmp_path / "c.h5", "r") as handle:
        row = 0 if handle["pairs/key_a"][0].decode() == min(sequence_key(seqs[0]), sequence_key(seqs[1])) else 1
        cell = int(handle["pairs/offset"][row]) + int(np.argmax(stored))  # a cell holding 1.0
    offset, _ = _chunk_location(tmp_path / "c.h5", "pairs/contact", 0)
    data = bytearray((tmp_path / "c.h5").read_bytes())
    data[offset + 2 * cell + 1] ^= 0x80  # sign bit of a little-endian float16: 1.0 -> -1.0
    (tmp_path / "c.h5").write_bytes(bytes(data))
    report = verify_cache(tmp_path / "c.h5")
    assert len(report.problems) == 1
    assert "outside [0, 1]" in report.problems[0] and f"pair rows [{row}]" in report.problems[0]
    assert "-1.0" in report.problems[0]


def _break_offset(handle: h5py.File) -> None:
    handle["pairs/offset"][1] += 7


def _break_length(handle: h5py.File) -> None:
    handle["pairs/len_a"][0] += 1


def _break_order(handle: h5py.File) -> None:
    key_a, key_b = handle["pairs/key_a"][0], handle["pairs/key_b"][0]
    handle["pairs/key_a"][0], handle["pairs/key_b"][0] = key_b, key_a


def _break_sequence(handle: h5py.File) -> None:
    sequence = handle["proteins/sequence"][0].decode()
    handle["proteins/sequence"][0] = ("A" if sequence[0] != "A" else "C") + sequence[1:]


def _break_duplicate(handle: h5py.File) -> None:
    handle["pairs/key_a"][1], handle["pairs/key_b"][1] = handle["pairs/key_a"][0], handle["pairs/key_b"][0]


def _break_missing_protein(handle: h5py.File) -> None:
    handle["proteins/key"][0] = b"f" * 64


def _break_attribute(handle: h5py.File) -> None:
    handle.attrs["model"] = "esm2_t48_15B_UR50D"


def _break_dataset(handle: h5py.File) -> None:
    del handle["pairs/tiled"]


def _break_embedding(handle: h5py.File) -> None:
    handle["proteins/embedding"][1, 2] = np.nan


@pytest.mark.parametrize("damage, expected", [
    (_break_offset, "offsets must be contiguous"),
    (_break_length, "len_a is"),
    (_break_order, "not in canonical order"),
    (_break_sequence, "is not the SHA-256 of its stored sequence"),
    (_break_duplicate, "appears twice"),
    (_break_missing_protein, "is not in /proteins"),
    (_break_attribute, "does not match the attributes"),
    (_break_dataset, "dataset /pairs/tiled is missing"),
    (_break_embedding, "NaN or infinite values in rows [1]"),
])
def test_verify_reports_hand_broken_index(tmp_path, rng, damage, expected):
    seqs = sequences(rng, 4)
    build(tmp_path / "c.h5", [(seqs[0], seqs[1]), (seqs[2], seqs[3]), (seqs[1], seqs[2])], rng)
    assert verify_cache(tmp_path / "c.h5").ok
    with h5py.File(tmp_path / "c.h5", "r+") as handle:
        damage(handle)
    problems = verify_cache(tmp_path / "c.h5").problems
    assert any(expected in p for p in problems), problems


def test_verify_reports_broken_residue_rows(tmp_path, rng):
    seqs = sequences(rng, 3)
    build(tmp_path / "c.h5", [(seqs[0], seqs[1]), (seqs[1], seqs[2])], rng, residues=True)
    with h5py.File(tmp_path / "c.h5", "r+") as handle:
        handle["proteins/residue_offset"][2] += 3
        handle["proteins/residue_embedding"][0, 0] = np.inf
    problems = verify_cache(tmp_path / "c.h5").problems
    assert any("run past" in p for p in problems), problems
    assert any("not contiguous" in p for p in problems), problems
    assert any("NaN or infinite" in p for p in problems), problems


@pytest.mark.parametrize("run_config", [None, {"shard": [0, 1]}, {"shard": [1, 3]}])
def test_verify_pair_without_protein_is_a_problem_even_in_a_shard(tmp_path, rng, run_config):
    # precompute shards embed every protein their pairs use, so a missing protein is damage in any cache
    seq_a, seq_b = sequences(rng, 2)
    meta = dict(META) | ({"run_config": json.dumps(run_config)} if run_config else {})
    with CacheBuilder(tmp_path / "c.h5", meta) as builder:
        builder.add_pair(seq_a, seq_b, np.zeros((len(seq_a), len(seq_b))), np.zeros((len(seq_a), len(seq_b))))
        builder.add_protein(seq_a, np.zeros(6))
    report = verify_cache(tmp_path / "c.h5")
    assert not report.ok
    assert any("is not in /proteins" in p for p in report.problems)


def test_verify_refuses_foreign_and_missing_files(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle.create_dataset("x", data=np.arange(3))
    report = verify_cache(tmp_path / "other.h5")
    assert report.problems and "not a protein-loftr teacher cache" in report.problems[0]
    with pytest.raises(CacheError, match="does not exist"):
        verify_cache(tmp_path / "absent.h5")


# -- commands -------------------------------------------------------------------------------------------

def flat(output: str) -> str:
    """Command output with rich's line wrapping undone."""
    return " ".join(output.split())


@pytest.fixture
def cli_app():
    cli_module = pytest.importorskip("cli")
    return cli_module.cli


def test_cache_info_command_flags_random_teacher(tmp_path, rng, cli_app):
    seqs = sequences(rng, 3)
    build(tmp_path / "c.h5", [(seqs[0], seqs[1])], rng)
    result = CliRunner().invoke(cli_app, ["cache", "info", str(tmp_path / "c.h5")])
    assert result.exit_code == 0, result.output
    assert "RANDOM-WEIGHT TEACHER: maps carry no biological signal" in flat(result.output)
    assert "esm2_t6_8M_UR50D" in flat(result.output)
    write_random_cache(tmp_path / "s.h5", [(seqs[0], seqs[2])], teacher="synthetic")
    result = CliRunner().invoke(cli_app, ["cache", "info", str(tmp_path / "s.h5")])
    assert result.exit_code == 0 and "SYNTHETIC TEACHER" in flat(result.output)


def test_cache_verify_command_exit_codes(tmp_path, rng, cli_app):
    seqs = sequences(rng, 4)
    build(tmp_path / "c.h5", [(seqs[0], seqs[1]), (seqs[2], seqs[3])], rng)
    result = CliRunner().invoke(cli_app, ["cache", "verify", str(tmp_path / "c.h5")])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    with h5py.File(tmp_path / "c.h5", "r+") as handle:
        handle["pairs/offset"][1] += 7
    result = CliRunner().invoke(cli_app, ["cache", "verify", str(tmp_path / "c.h5")])
    assert result.exit_code == 2
    assert "offsets must be contiguous" in flat(result.output)


def test_cache_merge_command(tmp_path, rng, cli_app):
    seqs = sequences(rng, 4)
    build(tmp_path / "1.h5", [(seqs[0], seqs[1])], rng)
    build(tmp_path / "2.h5", [(seqs[2], seqs[3])], rng)
    out = tmp_path / "m.h5"
    args = ["cache", "merge", str(out), str(tmp_path / "1.h5"), str(tmp_path / "2.h5")]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    with TeacherCache.open(out) as cache:
        assert cache.n_pairs == 2
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 2 and "already exists" in flat(result.output)
    assert CliRunner().invoke(cli_app, args + ["--overwrite"]).exit_code == 0


def test_storage_benchmark_runs(tmp_path):
    """Smoke test of benchmarks/cache_storage.py on generated shapes (its numbers are not checked here)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "storage.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks.cache_storage", "--n-pairs", "3",
                             "--reads", "5", "--esm-pairs", "0", "--lengths", "generated", "--variants",
                             "float16 gzip4 shuffle (default),uint8 gzip4", "--json", str(out)],
                            capture_output=True, text=True, timeout=120, cwd=root)
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["variant"] for r in rows] == ["float16 gzip4 shuffle (default)", "uint8 gzip4"]
    assert rows[0]["contact_max_err"] <= StorageConfig().max_abs_error
    assert rows[1]["contact_max_err"] <= StorageConfig(dtype="uint8").max_abs_error
