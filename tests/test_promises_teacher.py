"""Stage-one promises, each checked against a reference the project's own code does not produce (issue 21).

- tiling: stitched maps and tiled embeddings equal a per-window reference built here by hand (each window run
  through the teacher alone, then placed and averaged with numpy as teacher_cache/teachers/tiling.py says);
- tokenisation: the runner's tokens equal fair-esm's own `alphabet.get_batch_converter()` output, and maps and
  embeddings computed by fair-esm from those tokens equal ours;
- bf16: tolerances scaled to the spread of the values compared (an all-zero or constant map fails);
- parts: a part with another fingerprint is refused unless overwrite; an unreadable part is discarded and its
  work recomputed.
"""
from __future__ import annotations

from dataclasses import replace

import esm
import numpy as np
import pytest
import torch

from data.keys import canonical_pair, sequence_key
from teacher_cache import StorageConfig, TeacherCache
from teacher_cache.errors import CacheError
from teacher_cache.teachers.esm_runner import EsmTeacher, load_teacher, write_random_esm2
from teacher_cache.teachers.precompute import parts_dir_of, run_precompute
from teacher_cache.teachers.tiling import plan_chain, plan_pair
from test_precompute import assert_same_contents, config_for, write_inputs
from tests.helpers import STANDARD, interrupt_at_pair_batch, random_sequence, write_random_cache

LINKER = "GGGGG"
STORED = StorageConfig().max_abs_error  # float16 storage of maps


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.set_num_threads(1)
    return write_random_esm2(tmp_path_factory.mktemp("esm"), num_layers=2, embed_dim=32, attention_heads=4,
                             contact_scale=20.0)


@pytest.fixture(scope="module")
def teacher(checkpoint):
    return load_teacher(str(checkpoint))


def fair_esm_tokens(texts: list[str]) -> torch.Tensor:
    """fair-esm's own tokenisation, from a fresh ESM-2 alphabet (not the runner's)."""
    converter = esm.data.Alphabet.from_architecture("ESM-1b").get_batch_converter()
    _, _, tokens = converter([(f"seq{i}", text) for i, text in enumerate(texts)])
    return tokens


def oriented(seq_a: str, seq_b: str) -> tuple[str, str, bool]:
    """The orientation stage one runs a pair in: first + linker + second, in sequence-key order."""
    _, _, swapped = canonical_pair(sequence_key(seq_a), sequence_key(seq_b))
    return (seq_b, seq_a, True) if swapped else (seq_a, seq_b, False)


# -- tiling --------------------------------------------------------------------------------------------------------
MAX_TOKENS, OVERLAP = 48, 6


@pytest.fixture(scope="module")
def tiled_run(checkpoint, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiled")
    pairs, fasta, sequence_pairs = write_inputs(folder, n_proteins=5, n_pairs=4, seed=11, lengths=(30, 75))
    out = folder / "tiled.h5"
    result = run_precompute(config_for(checkpoint, pairs, fasta, out, max_tokens=MAX_TOKENS, tile_overlap=OVERLAP,
                                       per_residue=True))
    return out, result, sequence_pairs


def test_tiled_pair_maps_equal_the_per_window_reference(teacher, tiled_run):
    """Each (A window, B window) run alone through the teacher, placed at its offsets, averaged cell-wise."""
    out, result, sequence_pairs = tiled_run
    assert result.pairs_tiled == len(sequence_pairs)
    with TeacherCache.open(out) as cache:
        for seq_a, seq_b in sequence_pairs:
            first, second, swapped = oriented(seq_a, seq_b)
            plan = plan_pair(len(first), len(second), MAX_TOKENS, len(LINKER), OVERLAP)
            assert len(plan) > 1
            sums = {name: np.zeros((len(first), len(second))) for name in ("contact", "attention")}
            counts = np.zeros((len(first), len(second)))
            starts_b = set()
            for (a0, a1), (b0, b1) in plan:
                assert 0 <= a0 < a1 <= len(first) and 0 <= b0 < b1 <= len(second)
                assert (a1 - a0) + len(LINKER) + (b1 - b0) + 2 <= MAX_TOKENS
                starts_b.add(b0)
                contact, attention = teacher.pair_maps([(first[a0:a1], second[b0:b1])], LINKER, [-1])[0]
                sums["contact"][a0:a1, b0:b1] += contact
                sums["attention"][a0:a1, b0:b1] += attention
                counts[a0:a1, b0:b1] += 1
            assert counts.min() >= 1 and counts.max() > 1  # every cell covered, some by several windows
            if len(second) > MAX_TOKENS // 2:
                assert len(starts_b) > 1  # B itself is cut into windows at several offsets
            maps = cache.pair(seq_a, seq_b)
            assert maps.tiled
            for name in ("contact", "attention"):
                reference = sums[name] / counts
                if swapped:
                    reference = reference.T
                stored = getattr(maps, name)
                assert stored.shape == reference.shape == (len(seq_a), len(seq_b))
                assert np.abs(stored - reference).max() <= 2 * STORED, name
                # the comparison means something: the reference varies far more than the tolerance
                assert reference.std() > 10 * STORED, name


def test_tiled_protein_embeddings_equal_the_per_window_reference(teacher, tiled_run):
    out, result, sequence_pairs = tiled_run
    proteins = sorted({seq for pair in sequence_pairs for seq in pair})
    long_ones = [seq for seq in proteins if len(seq) + 2 > MAX_TOKENS]
    assert long_ones and result.proteins_tiled == len(long_ones)
    with TeacherCache.open(out) as cache:
        for seq in proteins:
            windows = plan_chain(len(seq), MAX_TOKENS, OVERLAP)
            sums, counts = np.zeros((len(seq), 32)), np.zeros(len(seq))
            for start, stop in windows:
                assert 0 <= start < stop <= len(seq) and stop - start + 2 <= MAX_TOKENS
                sums[start:stop] += teacher.residue_embeddings([seq[start:stop]])[0]
                counts[start:stop] += 1
            assert counts.min() >= 1
            rows = sums / counts[:, None]
            entry = cache.protein(seq)
            assert entry.tiled == (seq in long_ones)
            np.testing.assert_allclose(entry.residue_embedding, rows, rtol=1e-3, atol=1e-4)  # stored as float16
            assert np.abs(entry.embedding - rows.mean(0)).max() <= 1e-5
            if seq in long_ones:  # the last window read from the chain's start instead would be far off
                start, stop = windows[-1]
                wrong = teacher.residue_embeddings([seq[:stop - start]])[0]
                assert np.abs(wrong - rows[start:stop]).max() > 1e-2


# -- tokenisation ----------------------------------------------------------------------------------------------------
def sequences_with_every_letter(rng: np.random.Generator) -> list[str]:
    rare = "XBUZO"
    return [random_sequence(rng, 23) + rare, rare[::-1] + random_sequence(rng, 9), STANDARD, random_sequence(rng, 1)]


def test_runner_tokens_equal_fair_esm_batch_converter(teacher, rng):
    chains = sequences_with_every_letter(rng)
    assert teacher.alphabet.tok_to_idx == esm.data.Alphabet.from_architecture("ESM-1b").tok_to_idx
    for batch in ([chains[0]], chains, chains[::-1]):  # alone, and padded in batches
        ours = teacher._tokens(batch)
        theirs = fair_esm_tokens(batch)
        assert ours.dtype == theirs.dtype == torch.int64
        assert torch.equal(ours.cpu(), theirs), (ours, theirs)
    pairs = [(chains[0], chains[1]), (chains[2], chains[3])]
    for linker in (LINKER, ""):
        texts = [a + linker + b for a, b in pairs]
        assert torch.equal(teacher._tokens(texts).cpu(), fair_esm_tokens(texts))
    # the runner's own pair input: intercept what pair_maps feeds the model
    seen = []
    original = teacher._tokens
    teacher._tokens = lambda texts: seen.append(list(texts)) or original(texts)
    try:
        teacher.pair_maps(pairs, LINKER, [-1])
    finally:
        del teacher._tokens
    assert seen == [[a + LINKER + b for a, b in pairs]]


@pytest.mark.parametrize("linker", [LINKER, ""])
def test_maps_and_embeddings_from_fair_esm_tokens_equal_ours(teacher, rng, linker):
    """fair-esm's forward (return_contacts) on fair-esm's own tokens, sliced by hand, against pair_maps."""
    chains = sequences_with_every_letter(rng)
    pairs = [(chains[0], chains[1]), (chains[1], random_sequence(rng, 17))]
    ours = teacher.pair_maps(pairs, linker, [1, 2])
    for (seq_a, seq_b), (contact, attention) in zip(pairs, ours):
        tokens = fair_esm_tokens([seq_a + linker + seq_b])
        with torch.no_grad():
            result = teacher.model(tokens, return_contacts=True, need_head_weights=True)
        la, lb, lk = len(seq_a), len(seq_b), len(linker)
        ref_contact = result["contacts"][0, :la, la + lk:la + lk + lb].numpy()
        heads = result["attentions"][0].mean(1).mean(0)  # layers 1 and 2, heads averaged: (T, T)
        rows_a, cols_b = slice(1, 1 + la), slice(1 + la + lk, 1 + la + lk + lb)
        ref_attention = ((heads[rows_a, cols_b] + heads[cols_b, rows_a].T) / 2).numpy()
        assert contact.shape == ref_contact.shape == (la, lb)
        assert np.abs(contact - ref_contact).max() <= 1e-4
        assert np.abs(attention - ref_attention).max() <= 1e-4
        assert contact.std() > 1e-3 and attention.std() > 1e-4  # not flat maps
    for seq, rows in zip(chains, teacher.residue_embeddings(chains)):
        with torch.no_grad():
            reference = teacher.model(fair_esm_tokens([seq]), repr_layers=[2])["representations"][2][0, 1:-1]
        assert rows.shape == (len(seq), 32)
        assert np.abs(rows - reference.numpy()).max() <= 1e-5


# -- half precision --------------------------------------------------------------------------------------------------
def test_bf16_maps_match_fp32_relative_to_their_spread(checkpoint, teacher, rng):
    """The error bound is a fraction of the spread of the map compared (attention values are <= 0.01 here, so an
    absolute 0.02 would pass an all-zero map)."""
    fresh = load_teacher(str(checkpoint))
    half_teacher = EsmTeacher(fresh.model, fresh.alphabet, fresh.info, torch.device("cpu"), torch.bfloat16)
    pair = (random_sequence(rng, 180), random_sequence(rng, 140))
    exact_maps = teacher.pair_maps([pair], "G" * 7, [-1])[0]
    half_maps = half_teacher.pair_maps([pair], "G" * 7, [-1])[0]
    for name, exact, approx in zip(("contact", "attention"), exact_maps, half_maps):
        spread = float(exact.std())
        assert spread > 0
        error = float(np.abs(exact - approx).max())
        assert error <= 0.25 * spread, (name, error, spread)
        assert np.corrcoef(exact.ravel(), approx.ravel())[0, 1] > 0.999, name
        # the bound rejects the degenerate answers an absolute tolerance let through
        for degenerate in (np.zeros_like(exact), np.full_like(exact, exact.mean())):
            assert np.abs(exact - degenerate).max() > 0.25 * spread


# -- parts of an interrupted run --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory):
    return write_inputs(tmp_path_factory.mktemp("inputs"), n_proteins=8, n_pairs=8, seed=4, lengths=(10, 30))


@pytest.fixture(scope="module")
def reference_run(checkpoint, small_inputs, tmp_path_factory):
    pairs, fasta, _ = small_inputs
    out = tmp_path_factory.mktemp("reference") / "cache.h5"
    run_precompute(config_for(checkpoint, pairs, fasta, out))
    return out


def test_part_with_another_fingerprint_is_refused_unless_overwrite(checkpoint, small_inputs, reference_run,
                                                                   tmp_path):
    pairs, fasta, sequence_pairs = small_inputs
    out = tmp_path / "cache.h5"
    parts = parts_dir_of(out)
    parts.mkdir()
    foreign_pairs = [(random_sequence(np.random.default_rng(9), 15), random_sequence(np.random.default_rng(8), 12))]
    foreign = write_random_cache(parts / "part-000000.h5", foreign_pairs)
    before = foreign.read_bytes()
    with pytest.raises(CacheError, match=r"part-000000\.h5.*other settings.*--overwrite"):
        run_precompute(config_for(checkpoint, pairs, fasta, out))
    assert foreign.read_bytes() == before and not out.exists()  # nothing discarded, nothing written

    result = run_precompute(config_for(checkpoint, pairs, fasta, out, overwrite=True, checkpoint_seconds=3600))
    assert result.pairs_computed == len(sequence_pairs) and result.pairs_cached == 0
    assert result.parts_merged == 1  # this run's own part only
    assert not parts.exists()
    with TeacherCache.open(out) as cache:
        assert not cache.has_pair(*foreign_pairs[0])  # the foreign part's results were not merged in
    assert_same_contents(out, reference_run)


def test_unreadable_part_is_discarded_and_its_work_recomputed(checkpoint, small_inputs, reference_run, tmp_path):
    pairs, fasta, sequence_pairs = small_inputs
    out = tmp_path / "cache.h5"
    config = config_for(checkpoint, pairs, fasta, out, tokens_per_batch=1, checkpoint_seconds=0)
    with pytest.raises(KeyboardInterrupt):
        run_precompute(config, progress=interrupt_at_pair_batch(3))
    parts = sorted(parts_dir_of(out).glob("part-*.h5"))
    assert len(parts) >= 3
    damaged = parts[-1]  # the last part: it holds pairs (the proteins come first)
    with TeacherCache.open(damaged) as cache:
        lost_pairs = cache.n_pairs
    assert lost_pairs > 0
    damaged.write_bytes(damaged.read_bytes()[:200])  # truncated: not a readable HDF5 file
    with pytest.raises(CacheError):
        TeacherCache.open(damaged)

    result = run_precompute(replace(config, tokens_per_batch=512, checkpoint_seconds=3600))
    assert result.pairs_cached == 3 - lost_pairs
    assert result.pairs_computed == len(sequence_pairs) - result.pairs_cached
    assert result.parts_merged == (len(parts) - 1) + 1  # the readable old parts, and this run's one part
    assert not parts_dir_of(out).exists()
    assert_same_contents(out, reference_run)
