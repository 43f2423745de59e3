"""The features head's pooling (`ModelConfig.pool`): max+mean and max+mean+length keep every padding and symmetry
guarantee, in eval and train mode, score the same through the screener, the length part reads a cropped protein's
whole length, and a checkpoint saved before the option reads as max."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from data.alphabet import encode_batch
from data.errors import UserError
from data.pairs import Pair
from student.config import ModelConfig
from student.model import StudentModel
from tests.helpers import perturb, random_sequence

SMALL = dict(embed_dim=8, channels=(16, 12), kernel_sizes=(3, 5), hidden=8, map_topk=5, pool="max+mean")


def _batch(sequences, length=None):
    tokens = torch.from_numpy(encode_batch(sequences, length))
    return tokens, tokens != 0


def _perturbed(model: StudentModel) -> StudentModel:
    torch.manual_seed(1)
    return perturb(model, 0.3)


def test_max_plus_mean_is_the_max_beside_the_mean(rng):
    model = StudentModel(ModelConfig(**SMALL)).eval()
    tokens, mask = _batch([random_sequence(rng, 9), random_sequence(rng, 4)], 12)
    feat = model.encode(tokens, mask)
    pooled = model.pool(feat, mask)
    assert pooled.shape == (2, 24) and model.config.pooled_dim == 24
    torch.testing.assert_close(pooled[1, :12], feat[1, :4].amax(0))
    torch.testing.assert_close(pooled[1, 12:], feat[1, :4].mean(0))
    assert model.features_head[0].in_features == 48
    with pytest.raises(UserError, match="unknown pool"):
        ModelConfig(pool="sum")


def test_the_length_part_is_the_centred_log_length_of_the_whole_protein(rng):
    from student.model import LOG_LENGTH_CENTRE

    model = StudentModel(ModelConfig(**{**SMALL, "pool": "max+mean+length"})).eval()
    assert model.config.pooled_dim == 25 and model.features_head[0].in_features == 50
    tokens, mask = _batch([random_sequence(rng, 9), random_sequence(rng, 4)], 12)
    feat = model.encode(tokens, mask)
    pooled = model.pool(feat, mask)
    torch.testing.assert_close(pooled[:, 24], torch.log(torch.tensor([9.0, 4.0])) - LOG_LENGTH_CENTRE)
    torch.testing.assert_close(pooled[:, :24], StudentModel(ModelConfig(**SMALL)).eval().pool(feat, mask))
    # a crop of training: the length given is the whole protein's, not the window's
    cropped = model.pool(feat, mask, torch.tensor([300, 40]))
    torch.testing.assert_close(cropped[:, 24], torch.log(torch.tensor([300.0, 40.0])) - LOG_LENGTH_CENTRE)
    mean_only = StudentModel(ModelConfig(**{**SMALL, "pool": "mean"})).eval()
    torch.testing.assert_close(mean_only.pool(feat, mask), pooled[:, 12:24])


def test_the_composition_part_is_the_baselines_composition_of_the_real_residues(rng):
    from student.evaluation.baselines import composition

    model = StudentModel(ModelConfig(**{**SMALL, "pool": "mean+length+composition"})).eval()
    assert model.config.pooled_dim == 12 + 1 + 20 and model.features_head[0].in_features == 66
    sequences = [random_sequence(rng, 9) + "XBUZO", "XXXX", random_sequence(rng, 30)]
    tokens, mask = _batch(sequences, 40)  # padded well beyond every sequence
    pooled = model.pool(model.encode(tokens, mask), mask, tokens=tokens)
    expected = torch.tensor(np.stack([composition(s) for s in sequences]), dtype=pooled.dtype)
    torch.testing.assert_close(pooled[:, 13:], expected, atol=1e-6, rtol=0)
    assert pooled[1, 13:].sum() == 0  # no standard residue at all: zeros, as the baseline gives
    with pytest.raises(ValueError, match="needs the tokens"):
        model.pool(model.encode(tokens, mask), mask)


def test_the_attention_part_is_a_softmax_weighted_mean_of_the_real_residues(rng):
    model = StudentModel(ModelConfig(**{**SMALL, "pool": "mean+attention+length"})).eval()
    assert model.config.pooled_dim == 12 + 12 + 1 and model.features_head[0].in_features == 50
    tokens, mask = _batch([random_sequence(rng, 9), random_sequence(rng, 4)], 12)
    feat = model.encode(tokens, mask)
    with torch.no_grad():
        model.attention.weight.zero_()
        model.attention.bias.fill_(3.0)
    pooled = model.pool(feat, mask)
    torch.testing.assert_close(pooled[:, 12:24], pooled[:, :12])  # equal scores: the mean over real residues
    with torch.no_grad():
        model.attention.weight.normal_()
    pooled = model.pool(feat, mask)
    scores = feat[1, :4] @ model.attention.weight[0] + model.attention.bias[0]
    expected = torch.softmax(scores, dim=0) @ feat[1, :4]
    torch.testing.assert_close(pooled[1, 12:24], expected)
    assert not torch.allclose(pooled[1, 12:24], pooled[1, :12])


def test_the_difference_pair_term_is_the_absolute_difference_of_the_standardised_pools():
    model = StudentModel(ModelConfig(head="features", **{**SMALL, "pair_terms": "sum+product+difference"})).eval()
    assert model.features_head[0].in_features == 3 * 24
    a, b = torch.randn(3, 24), torch.randn(3, 24)
    seen = {}
    model.features_head.register_forward_hook(lambda module, inputs, output: seen.update(x=inputs[0]))
    model.head(a, b, None)
    a_norm, b_norm = model.pool_norm(torch.cat([a, b])).split(3)
    torch.testing.assert_close(seen["x"], torch.cat([a_norm + b_norm, a_norm * b_norm, (a_norm - b_norm).abs()], 1))
    with pytest.raises(UserError, match="unknown pair terms"):
        ModelConfig(pair_terms="sum+ratio")


@pytest.mark.parametrize("head", ["features", "both"])
@pytest.mark.parametrize("train_mode", [False, True])
def test_the_difference_pair_term_keeps_symmetry_and_the_padding_guarantee(head, train_mode, rng):
    torch.manual_seed(0)
    config = ModelConfig(head=head, dropout=0.0, **{**SMALL, "pair_terms": "sum+product+difference"})
    model = _perturbed(StudentModel(config)).train(train_mode)
    seqs_a = [random_sequence(rng, n) for n in (7, 15)]
    seqs_b = [random_sequence(rng, n) for n in (12, 5)]
    ab = model(*_batch(seqs_a), *_batch(seqs_b))["logit"]
    torch.testing.assert_close(ab, model(*_batch(seqs_b), *_batch(seqs_a))["logit"], atol=1e-5, rtol=0)
    torch.testing.assert_close(ab, model(*_batch(seqs_a, 30), *_batch(seqs_b, 27))["logit"], atol=1e-5, rtol=0)


def test_training_passes_the_uncropped_lengths():
    from student.dataset import PairDataset, collate_pairs

    pairs = [Pair("a", "b", "ACDEFGHIKL" * 5, "MNPQRST", 1)]
    batch = collate_pairs([PairDataset(pairs, max_len=16, random_crop=True)[0]])
    assert batch["tokens_a"].shape == (1, 16) and batch["length_a"].tolist() == [50]
    assert batch["length_b"].tolist() == [7]


@pytest.mark.parametrize("pool, norm", [("max+mean", False), ("max+mean+length", False), ("max+mean+length", True),
                                        ("mean+length+composition", True), ("mean+attention+length", True)])
@pytest.mark.parametrize("head", ["features", "both"])
@pytest.mark.parametrize("train_mode", [False, True])
def test_outputs_do_not_change_with_padding(head, train_mode, pool, norm, rng):
    torch.manual_seed(0)
    model = _perturbed(StudentModel(ModelConfig(head=head, dropout=0.0, pool_norm=norm, **{**SMALL, "pool": pool})))
    model.train(train_mode)
    seq_a, seq_b = random_sequence(rng, 11), random_sequence(rng, 6)
    partners_a, partners_b = [random_sequence(rng, 9), seq_a], [random_sequence(rng, 7), seq_b]
    tight = model(*_batch(partners_a), *_batch(partners_b))["logit"]
    padded = model(*_batch(partners_a, 40), *_batch(partners_b, 33))["logit"]
    torch.testing.assert_close(tight, padded, atol=1e-5, rtol=0)


@pytest.mark.parametrize("pool, norm", [("max+mean", False), ("max+mean+length", False), ("mean+length", False),
                                        ("max+mean+length", True), ("mean+length+composition", True),
                                        ("mean+attention+length", True)])
@pytest.mark.parametrize("head", ["features", "map", "both"])
@pytest.mark.parametrize("train_mode", [False, True])
def test_predictions_are_symmetric(head, pool, norm, train_mode, rng):
    torch.manual_seed(0)
    model = _perturbed(StudentModel(ModelConfig(head=head, dropout=0.0, pool_norm=norm, **{**SMALL, "pool": pool})))
    model.train(train_mode)
    seqs_a = [random_sequence(rng, n) for n in (7, 15)]
    seqs_b = [random_sequence(rng, n) for n in (12, 5)]
    ab = model(*_batch(seqs_a), *_batch(seqs_b))["logit"]
    ba = model(*_batch(seqs_b), *_batch(seqs_a))["logit"]
    torch.testing.assert_close(ab, ba, atol=1e-5, rtol=0)


@pytest.mark.parametrize("pool, norm", [("max+mean", False), ("max+mean+length", True),
                                        ("mean+length+composition", True), ("mean+attention+length", True)])
def test_the_screener_scores_what_predict_scores(tmp_path, pool, norm, rng):
    from data.fasta import write_fasta
    from student.checkpoint import save_checkpoint
    from student.inference import predict_pairs
    from student.screening.screen import ScreenConfig, run_screen

    model = _perturbed(StudentModel(ModelConfig(head="both", pool_norm=norm, **{**SMALL, "pool": pool}))).eval()
    save_checkpoint(tmp_path / "m.pt", {"model": model.state_dict(), "model_config": model.config.to_dict()})
    records = {f"P{i:02d}": random_sequence(rng, int(rng.integers(5, 40))) for i in range(12)}
    write_fasta(tmp_path / "s.fasta", records)
    run_screen(ScreenConfig(checkpoint=str(tmp_path / "m.pt"), fasta=str(tmp_path / "s.fasta"),
                            out=str(tmp_path / "hits.tsv"), top=None, min_prob=0.0, device="cpu"))
    rows = [line.split("\t") for line in (tmp_path / "hits.tsv").read_text().splitlines()[1:]]
    pairs = [Pair(a, b, records[a], records[b]) for a, b, *_ in rows]
    np.testing.assert_allclose([float(r[2]) for r in rows], predict_pairs(model, pairs), atol=1e-5, rtol=0)


def test_a_config_saved_before_the_option_reads_as_max():
    saved = ModelConfig(**{**SMALL, "pool": "max"}).to_dict()
    del saved["pool"]
    del saved["pool_norm"]
    assert ModelConfig.from_dict(saved).pool == "max" and not ModelConfig.from_dict(saved).pool_norm
    assert ModelConfig.from_dict({**saved, "pool": "max+mean"}).pool == "max+mean"
