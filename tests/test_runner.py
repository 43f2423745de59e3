"""The ESM-2 teacher runner: safe loading of fair-esm checkpoints, and maps equal to fair-esm's own contact head."""
from __future__ import annotations

import datetime
import hashlib
import pickle
import shutil
import urllib.error

import numpy as np
import pytest
import torch

from tests.helpers import random_sequence
from data.errors import UserError
from teacher_cache.teachers.esm_runner import write_random_esm2
from teacher_cache.teachers.esm_runner import batch_indices, load_checkpoint, load_teacher, resolve_model_files

LINKER = "G" * 7


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_random_esm2(tmp_path_factory.mktemp("esm"), num_layers=2, embed_dim=32, attention_heads=4,
                             contact_scale=20.0)


@pytest.fixture(scope="module")
def teacher(checkpoint):
    torch.set_num_threads(1)
    return load_teacher(str(checkpoint))


def fair_esm_reference(teacher, seq_a: str, seq_b: str, linker: str, layers: list[int]):
    """fair-esm's own forward on the unpadded single sequence, sliced by hand."""
    tokens = teacher._tokens([seq_a + linker + seq_b])
    with torch.no_grad():
        result = teacher.model(tokens, return_contacts=True, need_head_weights=True)
    la, lb, lk = len(seq_a), len(seq_b), len(linker)
    contact = result["contacts"][0, :la, la + lk:la + lk + lb].numpy()  # contacts drop BOS/EOS already
    rows_a, cols_b = slice(1, 1 + la), slice(1 + la + lk, 1 + la + lk + lb)
    attention = result["attentions"][0, [layer - 1 for layer in layers]].mean(1).mean(0)  # (T, T)
    attention = ((attention[rows_a, cols_b] + attention[cols_b, rows_a].T) / 2).numpy()
    return contact, attention


# -- loading -------------------------------------------------------------------------------------------------------
def test_fixture_checkpoint_is_rejected_by_plain_weights_only_load_but_loads_with_ours(checkpoint):
    """The torch >= 2.6 trap: fair-esm files hold an argparse.Namespace, which weights_only=True refuses."""
    with pytest.raises(pickle.UnpicklingError, match="Namespace"):
        torch.load(checkpoint, map_location="cpu", weights_only=True)
    data = load_checkpoint(checkpoint)
    assert data["cfg"]["model"].encoder_layers == 2
    assert data["random_weights"] is True


def test_load_teacher_records_hashes_and_random_flag(checkpoint, teacher):
    info = teacher.info
    assert info.name == "esm2_t2_test"
    assert (info.num_layers, info.embed_dim, info.attention_heads) == (2, 32, 4)
    assert info.weights_sha256 == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    regression = checkpoint.with_name("esm2_t2_test-contact-regression.pt")
    assert info.regression_sha256 == hashlib.sha256(regression.read_bytes()).hexdigest()
    assert info.random_weights is True
    assert teacher.dtype == torch.float32


def test_missing_regression_file_is_a_clear_error(checkpoint, tmp_path):
    lonely = tmp_path / checkpoint.name
    shutil.copy(checkpoint, lonely)
    with pytest.raises(UserError, match="contact-regression.pt"):
        load_teacher(str(lonely))


def test_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_teacher(str(tmp_path / "esm2_t6_nothing.pt"))


def test_unknown_hub_name_is_a_clear_error():
    with pytest.raises(UserError, match="unknown model 'esm2_t7_nonsense'.*local"):
        load_teacher("esm2_t7_nonsense")


def test_hub_name_offline_is_a_clear_error(tmp_path, monkeypatch):
    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(UserError, match="cannot download .*esm2_t6_8M_UR50D.pt.*pass --model a local file"):
        load_teacher("esm2_t6_8M_UR50D")
    assert not list(tmp_path.rglob("*.pt"))


def test_hub_name_uses_files_already_in_the_hub_cache(checkpoint, tmp_path, monkeypatch):
    target = tmp_path / "checkpoints"
    target.mkdir()
    shutil.copy(checkpoint, target / "esm2_t6_8M_UR50D.pt")
    shutil.copy(checkpoint.with_name("esm2_t2_test-contact-regression.pt"),
                target / "esm2_t6_8M_UR50D-contact-regression.pt")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    name, model_path, regression_path = resolve_model_files("esm2_t6_8M_UR50D")
    assert (name, model_path, regression_path.name) == ("esm2_t6_8M_UR50D", target / "esm2_t6_8M_UR50D.pt",
                                                        "esm2_t6_8M_UR50D-contact-regression.pt")


def test_local_file_whose_name_does_not_start_with_esm2_loads_as_esm2(checkpoint, tmp_path, teacher):
    shutil.copy(checkpoint, tmp_path / "my_teacher.pt")
    shutil.copy(checkpoint.with_name("esm2_t2_test-contact-regression.pt"),
                tmp_path / "my_teacher-contact-regression.pt")
    renamed = load_teacher(str(tmp_path / "my_teacher.pt"))
    assert renamed.info.name == "my_teacher"
    assert renamed.info.weights_sha256 == teacher.info.weights_sha256


def test_checkpoint_with_other_objects_is_refused_not_unpickled(tmp_path):
    path = tmp_path / "esm2_evil.pt"
    torch.save({"model": {}, "when": datetime.date(2024, 1, 1)}, path)
    with pytest.raises(UserError, match="refused to load.*datetime"):
        load_checkpoint(path)


def test_checkpoint_with_missing_weights_names_them(checkpoint, tmp_path):
    data = load_checkpoint(checkpoint)
    del data["model"]["encoder.sentence_encoder.layers.1.fc1.weight"]
    torch.save(data, tmp_path / "esm2_t2_broken.pt")
    shutil.copy(checkpoint.with_name("esm2_t2_test-contact-regression.pt"),
                tmp_path / "esm2_t2_broken-contact-regression.pt")
    with pytest.raises(UserError, match="layers.1.fc1.weight"):
        load_teacher(str(tmp_path / "esm2_t2_broken.pt"))


def test_cpu_precisions():
    from teacher_cache.teachers.esm_runner import resolve_dtype

    cpu = torch.device("cpu")
    assert resolve_dtype(cpu, "auto") == torch.float32
    assert resolve_dtype(cpu, "bf16") == torch.bfloat16
    with pytest.raises(UserError, match="fp16 is for CUDA"):
        resolve_dtype(cpu, "fp16")


def test_bf16_teacher_loads_on_cpu(checkpoint):
    teacher = load_teacher(str(checkpoint), precision="bf16")
    assert teacher.dtype == torch.bfloat16 and next(teacher.model.parameters()).dtype == torch.bfloat16


def test_cuda_request_without_cuda_is_a_clear_error(checkpoint):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(UserError, match="no CUDA device"):
        load_teacher(str(checkpoint), device="cuda")


def test_resolve_layers(teacher):
    assert teacher.resolve_layers([-1]) == [2]
    assert teacher.resolve_layers([1, -1, 2]) == [1, 2]
    with pytest.raises(UserError, match="layers 1..2"):
        teacher.resolve_layers([3])


def test_batch_indices_follow_fair_esm_token_budget():
    lengths = [10, 50, 12, 30, 31, 200]
    batches = batch_indices(lengths, 64)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) == 1 or max(lengths[i] for i in batch) * len(batch) <= 64


# -- forward -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("linker,layers", [(LINKER, [2]), ("", [1, 2])])
def test_pair_maps_equal_fair_esm_contact_head(teacher, rng, linker, layers):
    pairs = [(random_sequence(rng, 23), random_sequence(rng, 17)), (random_sequence(rng, 9), random_sequence(rng, 31))]
    maps = teacher.pair_maps(pairs, linker, layers)
    for (seq_a, seq_b), (contact, attention) in zip(pairs, maps):
        ref_contact, ref_attention = fair_esm_reference(teacher, seq_a, seq_b, linker, layers)
        assert contact.shape == attention.shape == (len(seq_a), len(seq_b))
        assert np.abs(contact - ref_contact).max() <= 1e-4
        assert np.abs(attention - ref_attention).max() <= 1e-4
        assert contact.std() > 1e-3  # the random regression is scaled so the map is not flat
        assert 0.0 <= attention.min() and attention.max() <= 1.0


def test_pair_maps_do_not_depend_on_batch_padding(teacher, rng):
    pair = (random_sequence(rng, 20), random_sequence(rng, 14))
    long_pair = (random_sequence(rng, 150), random_sequence(rng, 120))
    alone = teacher.pair_maps([pair], LINKER, [-1])[0]
    batched = teacher.pair_maps([long_pair, pair], LINKER, [-1])[1]
    for single, padded in zip(alone, batched):
        assert np.abs(single - padded).max() <= 1e-5


def test_residue_embeddings_equal_fair_esm_and_ignore_padding(teacher, rng):
    seq, long_seq = random_sequence(rng, 25), random_sequence(rng, 140)
    tokens = teacher._tokens([seq])
    with torch.no_grad():
        reference = teacher.model(tokens, repr_layers=[2])["representations"][2][0, 1:-1].numpy()
    alone = teacher.residue_embeddings([seq])[0]
    batched = teacher.residue_embeddings([long_seq, seq])[1]
    assert alone.shape == (25, 32)
    assert np.abs(alone - reference).max() <= 1e-5
    assert np.abs(batched - alone).max() <= 1e-5


# -- half precision (the CUDA path, exercised here on CPU) --------------------------------------------------------
@pytest.fixture(scope="module")
def bf16_teacher(checkpoint):
    from teacher_cache.teachers.esm_runner import EsmTeacher

    fresh = load_teacher(str(checkpoint))
    return EsmTeacher(fresh.model, fresh.alphabet, fresh.info, torch.device("cpu"), torch.bfloat16)


def test_half_precision_rotary_positions_stay_exact(teacher, bf16_teacher):
    """fair-esm's own tables after .to(bfloat16) round positions above 256; ours compute angles in float32."""
    import copy

    length = 600
    reference, _ = copy.deepcopy(teacher.model.layers[0].self_attn.rot_emb)._update_cos_sin_tables(
        torch.zeros(1, length, 8), seq_dimension=-2)
    naive = copy.deepcopy(teacher.model.layers[0].self_attn.rot_emb).to(torch.bfloat16)
    naive_cos, _ = naive._update_cos_sin_tables(torch.zeros(1, length, 8, dtype=torch.bfloat16), seq_dimension=-2)
    ours, _ = bf16_teacher.model.layers[0].self_attn.rot_emb._update_cos_sin_tables(
        torch.zeros(1, length, 8, dtype=torch.bfloat16), seq_dimension=-2)
    assert ours.dtype == torch.bfloat16
    assert (ours.float() - reference).abs().max() <= 4e-3  # bf16 rounding of values in [-1, 1]
    assert (naive_cos.float() - reference).abs().max() > 0.1  # the trap this guards against


def test_bf16_maps_stay_close_to_fp32_and_regression_stays_fp32(teacher, bf16_teacher, rng):
    assert bf16_teacher.regression_weight.dtype == torch.float32
    pair = (random_sequence(rng, 180), random_sequence(rng, 140))
    full = teacher.pair_maps([pair], LINKER, [-1])[0]
    half = bf16_teacher.pair_maps([pair], LINKER, [-1])[0]
    for exact, approx in zip(full, half):
        assert approx.dtype == np.float32
        # relative to the map's own spread (an absolute 0.02 exceeded the attention values themselves, so an
        # all-zero map passed); tests/test_promises_teacher.py measures the bf16 error at 0.07-0.14 of it
        assert np.abs(exact - approx).max() <= 0.25 * (exact.max() - exact.min())


def test_equal_length_batches_skip_the_padding_mask_and_match_single_runs(teacher, rng):
    pairs = [(random_sequence(rng, 18), random_sequence(rng, 11)) for _ in range(2)]
    pairs.append((random_sequence(rng, 11), random_sequence(rng, 18)))  # same total length, other split
    batched = teacher.pair_maps(pairs, LINKER, [-1])
    for pair, maps in zip(pairs, batched):
        for single, in_batch in zip(teacher.pair_maps([pair], LINKER, [-1])[0], maps):
            assert single.shape == in_batch.shape and np.abs(single - in_batch).max() <= 1e-5
    seqs = [random_sequence(rng, 30) for _ in range(3)]
    for seq, rows in zip(seqs, teacher.residue_embeddings(seqs)):
        assert np.abs(teacher.residue_embeddings([seq])[0] - rows).max() <= 1e-5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_passes_queue_without_waiting_and_equal_cpu(checkpoint, teacher, rng):
    """On CUDA the passes must not synchronise (stage one overlaps host copies with the next batch's pass)."""
    from teacher_cache.teachers.esm_runner import HostCopy, to_host

    cuda_teacher = load_teacher(str(checkpoint), device="cuda", precision="fp32")
    pairs = [(random_sequence(rng, 40), random_sequence(rng, 25)), (random_sequence(rng, 12), random_sequence(rng, 9))]
    seqs = [random_sequence(rng, 33), random_sequence(rng, 17)]
    cuda_teacher.pair_maps(pairs, LINKER, [-1])  # warm-up: first calls may synchronise while allocating
    HostCopy([torch.zeros(3, device="cuda")]).arrays()
    torch.cuda.set_sync_debug_mode("error")
    try:
        maps = cuda_teacher.pair_maps_on_device(pairs, LINKER, [-1])
        map_copy = HostCopy([values for pair_maps in maps for values in pair_maps])
        rows = cuda_teacher.residue_embeddings_on_device(seqs)
        row_copy = HostCopy(rows)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    arrays = map_copy.arrays()
    for (contact, attention), expected in zip(zip(arrays[0::2], arrays[1::2]), teacher.pair_maps(pairs, LINKER, [-1])):
        assert np.abs(contact - expected[0]).max() <= 1e-4
        assert np.abs(attention - expected[1]).max() <= 1e-4
    for values, expected in zip(row_copy.arrays(), teacher.residue_embeddings(seqs)):
        assert np.abs(values - expected).max() <= 1e-4
    assert np.abs(to_host(rows[0]) - row_copy.arrays()[0]).max() == 0.0


def test_host_copy_returns_the_tensors_as_arrays_in_order():
    from teacher_cache.teachers.esm_runner import HostCopy

    tensors = [torch.arange(12, dtype=torch.float32).reshape(3, 4), torch.ones(2, 5), torch.zeros(0, 3)]
    arrays = HostCopy(tensors).arrays()
    assert [a.shape for a in arrays] == [(3, 4), (2, 5), (0, 3)]
    for array, tensor in zip(arrays, tensors):
        np.testing.assert_array_equal(array, tensor.numpy())
    assert HostCopy([]).arrays() == []
