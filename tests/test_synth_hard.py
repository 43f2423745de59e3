"""Issue 16: the harder planted generator, the imperfect synthetic teacher and its quality, and the map-loss
variants meant to survive an imperfect teacher (positives only, rank, marginals, peak weighting)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from data.errors import UserError
from data.synth import PRESETS, TEACHER_PRESETS, SynthConfig, generate, planted_contacts, planted_truth, truth_block
from student.losses import map_loss, top_cells
from student.model import MASKED_LOGIT
from teacher_cache import TeacherCache
from teacher_cache.teachers.synthetic import imperfect_contact, make_synthetic, teacher_contact

HARD = dict(n_pairs=40, families=4, motif_len=6, min_len=30, max_len=50, mutation_rate=0.3, decoy_motifs=3,
            decoys_per_protein=2, background="yeast", seed=3)


def test_hard_knobs_mutate_motifs_plant_decoys_and_keep_positions():
    dataset = generate(SynthConfig(**HARD))
    assert len(dataset.decoys) == 3
    mismatches = []
    for pair in dataset.pairs:
        for seq, start, motif in ((pair.seq_a, pair.start_a, dataset.motifs_a[pair.family_a]),
                                  (pair.seq_b, pair.start_b, dataset.motifs_b[pair.family_b])):
            assert 30 <= len(seq) <= 50
            copy = seq[start:start + 6]
            mismatches.append(sum(a != b for a, b in zip(copy, motif)))
    # ~30% of motif residues substituted; the motif still sits at the recorded start (close to its family motif)
    assert 0.15 < np.mean(mismatches) / 6 < 0.45
    assert generate(SynthConfig(**HARD)).pairs == dataset.pairs  # seeded


def test_default_knobs_draw_the_first_versions_data():
    base = dict(n_pairs=30, families=3, motif_len=5, min_len=20, max_len=40, seed=7)
    plain = generate(SynthConfig(**base))
    # teacher knobs never change the data; the hard knobs at their defaults take the first version's path
    other_teacher = generate(SynthConfig(**base, **{k: v for k, v in TEACHER_PRESETS["esm-like"].items()}))
    assert plain.pairs == other_teacher.pairs and plain.decoys == []
    assert not SynthConfig(**base).hard_data and SynthConfig(**base).oracle_teacher


def test_yeast_background_is_not_uniform():
    dataset = generate(SynthConfig(**{**HARD, "n_pairs": 200, "mutation_rate": 0.0, "decoys_per_protein": 0,
                                      "decoy_motifs": 0}))
    text = "".join(p.seq_a for p in dataset.pairs)
    assert text.count("L") / len(text) > 0.07 and text.count("W") / len(text) < 0.02  # uniform: 0.05 each


def test_bad_knobs_are_refused():
    for bad in (dict(mutation_rate=1.5), dict(decoys_per_protein=1), dict(background="mars"),
                dict(teacher_recall=2.0), dict(teacher_offset=-1), dict(decoy_motifs=2, decoys_per_protein=9)):
        with pytest.raises(UserError):
            SynthConfig(**{**dict(n_pairs=20, min_len=20, max_len=30), **bad})


def _pairs(config):
    dataset = generate(config)
    return dataset, [p for p in dataset.pairs if p.label == 1], [p for p in dataset.pairs if p.label == 0]


def test_teacher_knobs_do_what_they_say():
    base = dict(n_pairs=40, families=3, motif_len=6, min_len=30, max_len=40, seed=1)
    config = SynthConfig(**base)
    dataset, pos, neg = _pairs(config)
    for i, pair in enumerate(dataset.pairs):  # the oracle: the truth
        assert np.array_equal(teacher_contact(pair, config, i), planted_contacts(pair, 6))
    # discrimination 1 with fixed strength: a negative's map is a positive's (a block at its motifs)
    blind = SynthConfig(**base, teacher_discrimination=1.0)
    for i, pair in enumerate(dataset.pairs):
        block = imperfect_contact(pair, blind, i)[pair.start_a:pair.start_a + 6, pair.start_b:pair.start_b + 6]
        assert block.min() == 1.0
    half = SynthConfig(**base, teacher_discrimination=0.5)
    i = dataset.pairs.index(neg[0])
    assert imperfect_contact(neg[0], half, i).max() == 0.5
    # recall: the share of true cells marked
    thin = SynthConfig(**base, teacher_recall=0.45)
    marked = [(imperfect_contact(p, thin, dataset.pairs.index(p)) > 0)[planted_contacts(p, 6) > 0].mean()
              for p in pos]
    assert 0.3 < np.mean(marked) < 0.6
    # decoys: extra marked cells away from the truth; noise: every cell above zero
    decoyed = SynthConfig(**base, teacher_decoys=3, teacher_decoy_strength=0.5)
    off = [(imperfect_contact(p, decoyed, dataset.pairs.index(p)) > 0)[planted_contacts(p, 6) == 0].sum()
           for p in pos]
    assert min(off) > 0 and max(imperfect_contact(p, decoyed, 0).max() for p in neg) <= 0.5
    noisy = SynthConfig(**base, teacher_noise=0.1)
    assert (imperfect_contact(neg[0], noisy, i) > 0).mean() > 0.9
    # offset: the block moves (by up to 2 residues per axis), so the oracle cells are not all covered
    shifted = SynthConfig(**base, teacher_offset=2)
    moved = [(imperfect_contact(p, shifted, dataset.pairs.index(p)) > 0)[planted_contacts(p, 6) > 0].mean()
             for p in pos]
    assert min(moved) < 1.0 and all(m >= (4 / 6) ** 2 - 1e-9 for m in moved)


def test_teacher_quality_is_stored_and_tracks_the_knobs(tmp_path):
    base = dict(n_pairs=60, families=3, motif_len=5, min_len=25, max_len=40, seed=2)
    qualities = {}
    for name in ("oracle", "esm-like", "useless"):
        outputs = make_synthetic(SynthConfig(**base, **TEACHER_PRESETS[name]), tmp_path / name)
        with TeacherCache.open(outputs.cache) as cache:
            assert cache.settings["teacher_quality"] == outputs.quality
            assert cache.settings["teacher_recall"] == TEACHER_PRESETS[name]["teacher_recall"]
        qualities[name] = outputs.quality
    assert qualities["oracle"]["teacher_aupr"] == 1.0 and qualities["oracle"]["teacher_p_l5"] == 1.0
    assert qualities["useless"]["teacher_p_l5"] < 0.1 < qualities["esm-like"]["teacher_p_l5"] < 1.0
    assert qualities["useless"]["teacher_aupr"] < qualities["esm-like"]["teacher_aupr"] < 1.0
    truth = planted_truth(tmp_path / "esm-like" / "pairs.tsv")
    pair = generate(SynthConfig(**base)).pairs[0]
    assert np.array_equal(truth_block((len(pair.seq_a), len(pair.seq_b)), *truth[(pair.id_a, pair.id_b)], 5),
                          planted_contacts(pair, 5) > 0)


def test_synth_presets_and_explicit_options(tmp_path):
    from cli import cli

    result = CliRunner().invoke(cli, ["synth", "--out", str(tmp_path / "s"), "--n-pairs", "20", "--preset", "hard",
                                      "--min-len", "60", "--max-len", "80", "--teacher-preset", "esm-like"])
    assert result.exit_code == 0, result.output
    assert "teacher quality" in result.output
    with TeacherCache.open(tmp_path / "s" / "cache.h5") as cache:
        s = cache.settings
    assert (s["families"], s["min_len"], s["max_len"]) == (PRESETS["hard"]["families"], 60, 80)  # explicit wins
    assert s["mutation_rate"] == PRESETS["hard"]["mutation_rate"] and s["teacher_recall"] == 0.45


# -- map-loss variants ------------------------------------------------------------------------------------------
def _problem(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    len_a, len_b = torch.tensor([5, 8, 6]), torch.tensor([7, 3, 6])
    mask_a = torch.arange(8)[None, :] < len_a[:, None]
    mask_b = torch.arange(7)[None, :] < len_b[:, None]
    valid = mask_a[:, :, None] & mask_b[:, None, :]
    target = torch.rand(3, 8, 7, generator=gen) ** 4
    logits = torch.randn(3, 8, 7, generator=gen).masked_fill(~valid, MASKED_LOGIT).requires_grad_(True)
    labels = torch.tensor([1.0, 0.0, 1.0])
    return logits, target, valid, labels


VARIANTS = [dict(kind="rank"), dict(kind="marginal"), dict(kind="marginal", norm="mean"),
            dict(kind="bce", pairs="positives"), dict(kind="rank", pairs="positives"),
            dict(kind="bce", confidence=True), dict(kind="marginal", pairs="positives", confidence=True),
            dict(kind="bce", top_target=5), dict(kind="marginal", top_target=5)]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v.values())))
def test_variants_are_padding_invariant(variant):
    logits, target, valid, labels = _problem()
    options = dict(labels=labels, rank_k=4, **{"norm": "mass", **variant})
    kind = options.pop("kind")
    garbage = torch.where(valid, target, torch.full_like(target, 0.95))
    loss = map_loss(logits, garbage, valid, kind, **options)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert (logits.grad[~valid] == 0).all() and (logits.grad[valid] != 0).any()
    assert torch.allclose(loss.detach(), map_loss(logits.detach(), target, valid, kind, **options))
    # padding every map further changes nothing
    wide_logits = torch.nn.functional.pad(logits.detach(), (0, 3, 0, 2), value=MASKED_LOGIT)
    wide_target = torch.nn.functional.pad(target, (0, 3, 0, 2), value=0.7)
    wide_valid = torch.nn.functional.pad(valid, (0, 3, 0, 2), value=False)
    assert torch.allclose(loss.detach(), map_loss(wide_logits, wide_target, wide_valid, kind, **options), atol=1e-6)


def test_positives_only_ignores_negatives_maps():
    logits, target, valid, labels = _problem()
    changed = target.clone()
    changed[1] = 1.0 - changed[1]  # the negative's teacher map
    for kind in ("bce", "rank", "marginal"):
        a = map_loss(logits.detach(), target, valid, kind, labels=labels, pairs="positives", rank_k=4)
        b = map_loss(logits.detach(), changed, valid, kind, labels=labels, pairs="positives", rank_k=4)
        c = map_loss(logits.detach(), changed, valid, kind, labels=labels, pairs="all", rank_k=4)
        assert torch.allclose(a, b) and not torch.allclose(b, c)
    with pytest.raises(ValueError):
        map_loss(logits, target, valid, "bce", pairs="positives")


def test_rank_uses_only_the_order_of_the_teachers_cells():
    logits, target, valid, labels = _problem()
    base = map_loss(logits.detach(), target, valid, "rank", rank_k=5)
    # any increasing transform of the teacher's values (same top cells) gives the same loss: absolute strength is out
    assert torch.allclose(base, map_loss(logits.detach(), 0.3 * target ** 0.5, valid, "rank", rank_k=5))
    # it falls when the student ranks the teacher's top cells first
    flat = target.masked_fill(~valid, -1).reshape(3, -1)
    top = torch.zeros_like(flat).scatter(1, flat.topk(5, dim=1).indices, 1.0).reshape(target.shape).bool()
    better = logits.detach() + 3.0 * top
    assert map_loss(better, target, valid, "rank", rank_k=5) < base
    # an empty teacher map has no rank term at all
    empty = target.clone()
    empty[0] = 0
    only = map_loss(logits.detach()[1:], target[1:], valid[1:], "rank", rank_k=5)
    assert torch.allclose(map_loss(logits.detach(), empty, valid, "rank", rank_k=5), only)


def test_marginal_is_bce_of_row_and_column_maxima():
    logits, target, valid, labels = _problem()
    loss = map_loss(logits.detach(), target, valid, "marginal", norm="mean")
    expected = []
    for b in range(3):
        la, lb = int(valid[b].any(1).sum()), int(valid[b].any(0).sum())
        lg, tg = logits.detach()[b, :la, :lb], target[b, :la, :lb]
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        expected.append(0.5 * (bce(lg.amax(1), tg.amax(1)) + bce(lg.amax(0), tg.amax(0))))
    assert torch.allclose(loss, torch.stack(expected).mean(), atol=1e-6)


def test_confidence_weights_pairs_by_the_teachers_peak():
    logits, target, valid, labels = _problem()
    scaled = target.clone()
    scaled[0] *= 0.01  # a weak teacher map counts for (almost) nothing
    weighted = map_loss(logits.detach(), scaled, valid, "rank", confidence=True, rank_k=4)
    rest = map_loss(logits.detach()[1:], target[1:], valid[1:], "rank", confidence=True, rank_k=4)
    assert abs(float(weighted - rest)) < 0.05 * float(rest)


def test_confidence_reads_the_teachers_peak_under_a_top_target():
    """With top_target the target is 0/1 (every peak 1); the weight must still be the teacher's own peak."""
    logits, target, valid, labels = _problem()
    scaled = target.clone()
    scaled[0] *= 0.01
    for kind in ("marginal", "bce"):
        weighted = map_loss(logits.detach(), scaled, valid, kind, confidence=True, top_target=4)
        rest = map_loss(logits.detach()[1:], target[1:], valid[1:], kind, confidence=True, top_target=4)
        plain = map_loss(logits.detach(), scaled, valid, kind, top_target=4)
        assert abs(float(weighted - rest)) < 0.05 * float(rest) and abs(float(plain - rest)) > 0.05 * float(rest)


def test_top_target_is_the_teachers_top_cells_as_a_binary_map():
    """top_target=k: the loss equals the plain loss against a 0/1 map of each teacher map's k best valid cells
    (no cell where the teacher is 0), so background strength and noise below the top cells do not enter."""
    logits, target, valid, labels = _problem()
    target[2] = 0.0
    target[2, 0, 0] = 0.5  # a map with a single marked cell keeps just that one
    binary = top_cells(target * valid, valid, 5)
    assert binary.sum(dim=(1, 2)).tolist() == [5.0, 5.0, 1.0] and binary[2, 0, 0] == 1
    assert not binary[~valid].any()
    for b in range(2):
        chosen = binary[b][valid[b]].bool()
        assert target[b][valid[b]][chosen].min() >= target[b][valid[b]][~chosen].max()
    for kind in ("bce", "marginal"):
        loss = map_loss(logits.detach(), target, valid, kind, top_target=5)
        assert torch.allclose(loss, map_loss(logits.detach(), binary, valid, kind))
        quieter = torch.where(binary.bool(), target, 0.5 * target)  # the background changes, the top cells stay
        assert torch.allclose(map_loss(logits.detach(), quieter, valid, kind, top_target=5), loss)
        assert not torch.allclose(map_loss(logits.detach(), quieter, valid, kind),
                                  map_loss(logits.detach(), target, valid, kind))
    with pytest.raises(UserError, match="map-top-target"):
        from student.config import TrainConfig
        TrainConfig(pairs="p.tsv", fasta="f.fa", out="o", map_top_target=-1)
