"""Screening: equal to `predict`, each pair once, shards and resume equal one run, spilled equals in-memory."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from data.errors import UserError
from data.fasta import write_fasta
from data.pairs import Pair
from student.checkpoint import load_checkpoint, save_checkpoint
from student.config import ModelConfig
from student.model import StudentModel
from student.inference import predict_pairs
from student.screening.screen import ScreenConfig, merge_screens, run_screen, state_dir_for
from student.screening.plan import ProteinSet, ScreenPlan, length_groups, parse_shard
from student.screening.results import TopK, candidates, rank_order, read_hits
from student.screening.score import BlockScorer, coarse_dtype, coarsen
from tests.helpers import perturb, random_sequence

TINY = dict(embed_dim=8, channels=(16, 16), kernel_sizes=(3, 5), hidden=8, map_topk=16)


def tiny_checkpoint(path: Path, head: str = "both", seed: int = 0) -> Path:
    """An untrained tiny student whose weights and batch-norm statistics are perturbed away from the defaults
    (so that every head and the calibration carry weight), saved through the real checkpoint code."""
    torch.manual_seed(seed)
    config = ModelConfig(head=head, **TINY)
    model = StudentModel(config)
    perturb(model, 0.2)
    with torch.no_grad():
        model.map_scale.fill_(0.7)
        model.map_bias.fill_(-1.5)
    save_checkpoint(path, {"model": model.state_dict(), "model_config": config.to_dict()})
    return path


def random_fasta(path: Path, rng: np.random.Generator, n: int, prefix: str = "P", duplicates: int = 0) -> dict:
    records = {f"{prefix}{i:03d}": random_sequence(rng, int(rng.integers(5, 60))) for i in range(n)}
    names = list(records)
    for k in range(duplicates):  # the same sequence under a second id
        records[f"{prefix}dup{k}"] = records[names[k]]
    write_fasta(path, records)
    return records


def tsv_rows(path: Path) -> list[list[str]]:
    return [line.rstrip("\n").split("\t") for line in open(path)][1:]


def all_pairs(records: dict, no_self: bool = False) -> set[tuple[str, str]]:
    names = sorted(records)
    return {(a, b) for i, a in enumerate(names) for b in names[i:] if not (no_self and a == b)}




@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screen")


@pytest.fixture(scope="module")
def proteome(workdir) -> tuple[Path, dict]:
    rng = np.random.default_rng(7)
    path = workdir / "set.fasta"
    return path, random_fasta(path, rng, 30, duplicates=2)


@pytest.mark.parametrize("head", ["features", "map", "both"])
def test_every_pair_once_and_equal_to_predict(tmp_path, proteome, head):
    fasta, records = proteome
    checkpoint = tiny_checkpoint(tmp_path / "model.pt", head)
    out = tmp_path / "hits.tsv"
    summary = run_screen(ScreenConfig(checkpoint=str(checkpoint), fasta=str(fasta), out=str(out), top=None,
                                      min_prob=0.0, block_cells=64 * 64, checkpoint_every_s=0))
    rows = tsv_rows(out)
    names = [(r[0], r[1]) for r in rows]
    assert len(names) == len(set(names))  # no pair twice
    assert set(names) == all_pairs(records)  # ... and every unordered pair, self pairs included
    n_distinct = len(set(records.values()))
    assert summary.pairs_total == n_distinct * (n_distinct + 1) // 2  # identical sequences scored once
    assert summary.mode == "exact" and len(ScreenPlan(ProteinSet.from_fasta(records), token_budget=64).blocks) > 3
    model, _ = load_checkpoint(checkpoint)
    pairs = [Pair(a, b, records[a], records[b]) for a, b in names]
    expected = predict_pairs(model, pairs, batch_size=7)
    got = np.array([float(r[2]) for r in rows])
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert list(got) == sorted(got, reverse=True)
    # the argmax residues are those of predict's maps (ties aside), oriented as id_a x id_b
    _, maps = predict_pairs(model, pairs[:20], return_maps=True)
    for row, pair_map in zip(rows[:20], maps):
        i, j = int(row[4]) - 1, int(row[5]) - 1
        assert pair_map.shape == (len(records[row[0]]), len(records[row[1]]))
        assert pair_map[i, j] >= pair_map.max() - 1e-6
        assert float(row[6]) == pytest.approx(float(pair_map.max()), abs=1e-5)
    assert not state_dir_for(out).exists()


def test_no_self_and_duplicate_ids(tmp_path, proteome):
    fasta, records = proteome
    checkpoint = tiny_checkpoint(tmp_path / "model.pt", "both")
    out = tmp_path / "hits.tsv"
    run_screen(ScreenConfig(checkpoint=str(checkpoint), fasta=str(fasta), out=str(out), top=None, min_prob=0.0,
                            no_self=True))
    names = {(r[0], r[1]) for r in tsv_rows(out)}
    assert names == all_pairs(records, no_self=True)
    assert ("P000", "Pdup0") in names  # two ids of one sequence stay a pair
    scores = {(r[0], r[1]): r[2] for r in tsv_rows(out)}
    assert scores[("P001", "P005")] == scores[("P005", "Pdup1")]  # one score, reported under both ids


def test_bipartite(tmp_path):
    rng = np.random.default_rng(3)
    records_a = random_fasta(tmp_path / "a.fasta", rng, 9, "A")
    records_b = random_fasta(tmp_path / "b.fasta", rng, 13, "B")
    checkpoint = tiny_checkpoint(tmp_path / "model.pt", "map")
    out = tmp_path / "hits.tsv"
    run_screen(ScreenConfig(checkpoint=str(checkpoint), fasta=str(tmp_path / "a.fasta"),
                            fasta_b=str(tmp_path / "b.fasta"), out=str(out), top=None, min_prob=0.0,
                            block_cells=48 * 48))
    rows = tsv_rows(out)
    assert {(r[0], r[1]) for r in rows} == {(a, b) for a in records_a for b in records_b}
    model, _ = load_checkpoint(checkpoint)
    pairs = [Pair(r[0], r[1], records_a[r[0]], records_b[r[1]]) for r in rows]
    np.testing.assert_allclose([float(r[2]) for r in rows], predict_pairs(model, pairs), atol=1e-5, rtol=0)
    # an id in both files must name one sequence
    write_fasta(tmp_path / "c.fasta", {"A000": "MKV"})
    with pytest.raises(UserError, match="A000"):
        run_screen(ScreenConfig(checkpoint=str(checkpoint), fasta=str(tmp_path / "a.fasta"),
                                fasta_b=str(tmp_path / "c.fasta"), out=str(tmp_path / "x.tsv")))


def test_top_k_and_threshold_agree_with_full_sort(tmp_path, proteome):
    fasta, _ = proteome
    checkpoint = tiny_checkpoint(tmp_path / "model.pt", "both")
    full = tmp_path / "all.tsv"
    run_screen(ScreenConfig(checkpoint=str(checkpoint), fasta=str(fasta), out=str(full), top=None, min_prob=0.0,
                            block_cells=40 * 40))
    everything = tsv_rows(full)
    top = tmp_path / "top.tsv"
    run_screen(ScreenConfig(checkpoint=str(checkpoint), fasta=str(fasta), out=str(top), top=25,
                            block_cells=40 * 40))
    assert tsv_rows(top) == everything[:25]
    # a cut between two printed probabilities, so that rounding in the TSV cannot move a pair across it
    probs = [float(r[2]) for r in everything]
    i = next(i for i in range(60, len(probs) - 1) if probs[i] - probs[i + 1] > 1e-6)
    cut = (probs[i] + probs[i + 1]) / 2
    above = tmp_path / "above.tsv"
    run_screen(ScreenConfig(checkpoint=str(checkpoint), fasta=str(fasta), out=str(above), top=None, min_prob=cut,
                            block_cells=40 * 40))
    assert tsv_rows(above) == [r for r in everything if float(r[2]) >= cut]
    both = tmp_path / "both.tsv"
    run_screen(ScreenConfig(checkpoint=str(checkpoint), fasta=str(fasta), out=str(both), top=10, min_prob=cut,
                            block_cells=40 * 40))
    assert tsv_rows(both) == everything[:10]


def test_shards_merge_to_one_run_with_maps(tmp_path, proteome):
    fasta, _ = proteome
    checkpoint = tiny_checkpoint(tmp_path / "model.pt", "both")
    common = dict(checkpoint=str(checkpoint), fasta=str(fasta), top=40, maps_top=12, block_cells=32 * 32)
    run_screen(ScreenConfig(out=str(tmp_path / "one.tsv"), maps=str(tmp_path / "one.h5"), **common))
    outputs = []
    for shard in (0, 1, 2):
        out = tmp_path / f"shard{shard}.tsv"
        summary = run_screen(ScreenConfig(out=str(out), maps=str(tmp_path / f"shard{shard}.h5"),
                                          shard=f"{shard}/3", **common))
        assert summary.pairs_shard < summary.pairs_total
        outputs.append(out)
    with pytest.raises(UserError, match=r"missing \[1\]"):
        merge_screens([outputs[0], outputs[2]], tmp_path / "bad.tsv")
    merge_screens(outputs, tmp_path / "merged.tsv", maps=str(tmp_path / "merged.h5"))
    assert tsv_rows(tmp_path / "merged.tsv") == tsv_rows(tmp_path / "one.tsv")
    with h5py.File(tmp_path / "one.h5") as one, h5py.File(tmp_path / "merged.h5") as merged:
        assert len(one["maps"]) == len(merged["maps"]) == 12
        for name in one["maps"]:
            assert one["maps"][name].attrs["id_a"] == merged["maps"][name].attrs["id_a"]
            np.testing.assert_array_equal(one["maps"][name][()], merged["maps"][name][()])
    other = tmp_path / "other.tsv"
    run_screen(ScreenConfig(out=str(other), shard="0/3", **dict(common, top=41)))
    with pytest.raises(UserError, match="top"):
        merge_screens([other, outputs[1], outputs[2]], tmp_path / "bad2.tsv")


def test_resume_after_interruption(tmp_path, proteome):
    fasta, _ = proteome
    checkpoint = tiny_checkpoint(tmp_path / "model.pt", "both")
    common = dict(checkpoint=str(checkpoint), fasta=str(fasta), block_cells=96 * 96, checkpoint_every_s=0)
    for top, min_prob in ((30, None), (None, 0.3)):
        reference = tmp_path / f"ref{top}.tsv"
        run_screen(ScreenConfig(out=str(reference), top=top, min_prob=min_prob, **common))
        out = tmp_path / f"resumed{top}.tsv"
        seen: list[int] = []

        def interrupt(position: int) -> None:
            seen.append(position)
            if position == 4:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            run_screen(ScreenConfig(out=str(out), top=top, min_prob=min_prob, **common), after_block=interrupt)
        assert state_dir_for(out).exists() and not out.exists()
        with pytest.raises(UserError, match="other settings"):
            run_screen(ScreenConfig(out=str(out), top=7, min_prob=min_prob, **common))
        resumed: list[int] = []
        summary = run_screen(ScreenConfig(out=str(out), top=top, min_prob=min_prob, **common),
                             after_block=resumed.append)
        assert summary.resumed_from_block == 5 and resumed[0] == 5
        assert tsv_rows(out) == tsv_rows(reference)
        assert not state_dir_for(out).exists()
    with pytest.raises(UserError, match="already exists"):
        run_screen(ScreenConfig(out=str(out), top=None, min_prob=0.3, **common))


def test_spilled_features_equal_in_memory(tmp_path, proteome):
    fasta, _ = proteome
    checkpoint = tiny_checkpoint(tmp_path / "model.pt", "both")
    common = dict(checkpoint=str(checkpoint), fasta=str(fasta), top=50, block_cells=32 * 32)
    memory = run_screen(ScreenConfig(out=str(tmp_path / "memory.tsv"), **common))
    spilled = run_screen(ScreenConfig(out=str(tmp_path / "spilled.tsv"), memory_gb=0.5, **common))
    assert not memory.features_spilled and spilled.features_spilled
    assert tsv_rows(tmp_path / "spilled.tsv") == tsv_rows(tmp_path / "memory.tsv")


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "auto"])
def test_coarse_mode_reports_exact_scores(tmp_path, proteome, precision):
    """Forced coarse mode on a tiny set: every reported score is still the exact one, and re-scoring every pair
    (fraction 1) gives the exact result, whatever the coarse pass's precision."""
    fasta, _ = proteome
    checkpoint = tiny_checkpoint(tmp_path / "model.pt", "both")
    common = dict(checkpoint=str(checkpoint), fasta=str(fasta), top=None, min_prob=0.0, block_cells=32 * 32)
    run_screen(ScreenConfig(out=str(tmp_path / "exact.tsv"), **common))
    exact = {(r[0], r[1]): r for r in tsv_rows(tmp_path / "exact.tsv")}
    common["coarse_precision"] = precision
    coarse = run_screen(ScreenConfig(out=str(tmp_path / "coarse.tsv"), exact_below=0, rescore_fraction=0.2,
                                     **common))
    assert coarse.mode == "coarse" and 0 < coarse.pairs_exact < coarse.pairs_total
    ran = json.loads((tmp_path / "coarse.tsv.json").read_text())["config"]["coarse_precision"]
    assert ran == precision if precision != "auto" else ran in ("float32", "bfloat16")
    for row in tsv_rows(tmp_path / "coarse.tsv"):
        assert float(row[2]) == pytest.approx(float(exact[(row[0], row[1])][2]), abs=1e-5)
    run_screen(ScreenConfig(out=str(tmp_path / "all.tsv"), exact_below=0, rescore_fraction=1.0, **common))
    assert [r[:2] for r in tsv_rows(tmp_path / "all.tsv")] == [r[:2] for r in tsv_rows(tmp_path / "exact.tsv")]


def test_block_scores_do_not_depend_on_padding(rng):
    """One pair scored in a block of long proteins, and alone: same logit."""
    model = StudentModel(ModelConfig(head="both", **TINY)).eval()
    scorer = BlockScorer(model)
    sequences = [random_sequence(rng, n) for n in (7, 50, 12, 33)]
    from data.alphabet import encode_batch
    tokens = torch.from_numpy(encode_batch(sequences))
    mask = tokens != 0
    with torch.no_grad():
        feat = model.encode(tokens, mask)
        pooled = model.pool(feat, mask)
        block = scorer.score_block(feat[:2], mask[:2], pooled[:2], feat[2:], mask[2:], pooled[2:],
                                   torch.tensor([0]), torch.tensor([0]))
        alone = model.classify(feat[:1, :7], mask[:1, :7], feat[2:3, :12], mask[2:3, :12])
    assert block.item() == pytest.approx(alone.item(), abs=1e-5)


def _block_inputs(rng, lengths=(7, 50, 12, 33, 21, 40), head="both", **config):
    model = StudentModel(ModelConfig(head=head, **dict(TINY, **config))).eval()
    perturb(model, 0.2)
    from data.alphabet import encode_batch
    tokens = torch.from_numpy(encode_batch([random_sequence(rng, n) for n in lengths]))
    mask = tokens != 0
    with torch.no_grad():
        feat = model.encode(tokens, mask)
        pooled = model.pool(feat, mask)
    return model, feat, mask, pooled


@pytest.mark.parametrize("topk", [1, 16])
def test_block_statistics_equal_the_model_in_slices(rng, topk):
    """The block statistics (max, top-k mean, log-mean-exp through exp2 with the padding clamp) equal the model's
    own `map_statistics` of each pair's unpadded map, computed whole or in slices of a few cells."""
    model, feat, mask, _ = _block_inputs(rng, map_topk=topk)
    lengths = mask.sum(1).tolist()
    with torch.no_grad():
        whole = BlockScorer(model, chunk_cells=None).block_statistics(feat[:3].clone(), mask[:3], feat[3:].clone(),
                                                                      mask[3:])
        sliced = BlockScorer(model, chunk_cells=60).block_statistics(feat[:3].clone(), mask[:3], feat[3:].clone(),
                                                                     mask[3:])
        for i in range(3):
            for j in range(3):
                la, lb = lengths[i], lengths[3 + j]
                fa, ma = feat[i:i + 1, :la], mask[i:i + 1, :la]
                fb, mb = feat[3 + j:4 + j, :lb], mask[3 + j:4 + j, :lb]
                expected = model.map_statistics(model.interaction_map(fa, ma, fb, mb), ma, mb)[0]
                assert torch.allclose(whole[i, j], expected, atol=1e-5), (i, j)
    assert torch.allclose(sliced, whole, atol=1e-6)


def test_pair_logits_in_slices_equal_classify(rng):
    """Aligned pairs scored in slices of one pair (and whole) equal `classify` of each unpadded pair."""
    model, feat, mask, pooled = _block_inputs(rng)
    lengths = mask.sum(1).tolist()
    with torch.no_grad():
        got = {chunk: BlockScorer(model, chunk_cells=chunk).pair_logits(feat[:3].clone(), mask[:3], pooled[:3],
                                                                        feat[3:].clone(), mask[3:], pooled[3:])
               for chunk in (None, 1)}
        for i in range(3):
            la, lb = lengths[i], lengths[3 + i]
            alone = model.classify(feat[i:i + 1, :la], mask[i:i + 1, :la], feat[3 + i:4 + i, :lb],
                                   mask[3 + i:4 + i, :lb])
            assert got[None][i].item() == pytest.approx(alone.item(), abs=1e-5)
    assert torch.allclose(got[1], got[None], atol=1e-6)


def test_bfloat16_block_statistics_are_close_to_float32(rng):
    """The bfloat16 coarse product only approximates: within bfloat16's rounding of the float32 statistics."""
    model, feat, mask, _ = _block_inputs(rng)
    scorer = BlockScorer(model)
    with torch.no_grad():
        exact = scorer.block_statistics(feat[:3].clone(), mask[:3], feat[3:].clone(), mask[3:])
        rough = scorer.block_statistics(feat[:3].clone(), mask[:3], feat[3:].clone(), mask[3:],
                                        dtype=torch.bfloat16)
    assert not torch.equal(rough, exact)
    assert torch.allclose(rough, exact, rtol=2e-2, atol=2e-2)
    with pytest.raises(UserError, match="coarse precision"):
        ScreenConfig(checkpoint="m.pt", fasta="f.fa", coarse_precision="int8")
    cpu = torch.device("cpu")
    assert coarse_dtype("float32", cpu) == torch.float32 and coarse_dtype("bfloat16", cpu) == torch.bfloat16
    assert coarse_dtype("auto", cpu) in (torch.float32, torch.bfloat16)


def test_plan_pieces():
    lengths = np.array([3, 4, 4, 10, 11, 30])
    groups = length_groups(lengths, 20)
    assert groups == [(0, 3), (3, 4), (4, 5), (5, 6)]  # 3 x 4 <= 20 < 4 x 10; 2 x 11 > 20; 30 alone
    assert parse_shard("1/5") == (1, 5) and parse_shard(None) == (0, 1)
    with pytest.raises(UserError):
        parse_shard("5/5")
    records = {f"p{i}": "A" * (i + 3) for i in range(9)}
    plan = ScreenPlan(ProteinSet.from_fasta(records), token_budget=12)
    shards = [plan.shard_blocks(i, 4) for i in range(4)]
    blocks = [b.index for shard in shards for b in shard]
    assert blocks == list(range(len(plan.blocks)))  # contiguous, complete, disjoint
    assert sum(b.pairs for b in plan.blocks) == 9 * 10 // 2
    np.testing.assert_allclose(coarsen(np.arange(10, dtype=np.float32).reshape(5, 2), 2),
                               [[2, 3], [6, 7], [8, 9]])
    np.testing.assert_allclose(coarsen(np.arange(10, dtype=np.float32).reshape(5, 2), 2, "mean"),
                               [[1, 2], [5, 6], [8, 9]])


def test_topk_keeps_best_with_ties():
    rng = np.random.default_rng(0)
    logits = rng.integers(0, 5, size=500).astype(np.float32)  # many ties
    records = candidates(np.arange(500), np.arange(500), logits, rng.permutation(500))
    top = TopK(37)
    for start in range(0, 500, 23):
        top.add(records[start:start + 23])
    expected = records[rank_order(records)[:37]]
    np.testing.assert_array_equal(np.sort(top.best(), order=["row"]), np.sort(expected, order=["row"]))


def test_summary_and_errors(tmp_path, proteome):
    fasta, _ = proteome
    checkpoint = tiny_checkpoint(tmp_path / "model.pt", "map")
    out = tmp_path / "hits.tsv"
    run_screen(ScreenConfig(checkpoint=str(checkpoint), fasta=str(fasta), out=str(out), top=5))
    info = json.loads((tmp_path / "hits.tsv.json").read_text())
    assert info["complete"] and info["summary"]["rows"] == 5 and info["config"]["mode"] == "exact"
    assert len(read_hits(out)) == 5
    with pytest.raises(UserError, match="--top"):
        ScreenConfig(top=None, min_prob=None)
    with pytest.raises(UserError, match="not a protein-loftr student checkpoint|not a readable"):
        (tmp_path / "junk.pt").write_bytes(b"junk")
        run_screen(ScreenConfig(checkpoint=str(tmp_path / "junk.pt"), fasta=str(fasta), out=str(tmp_path / "y.tsv")))


def test_cli_screen_and_merge(tmp_path, proteome):
    from click.testing import CliRunner

    from cli import cli

    fasta, _ = proteome
    checkpoint = tiny_checkpoint(tmp_path / "model.pt", "map")
    runner = CliRunner()
    common = ["--checkpoint", str(checkpoint), "--fasta", str(fasta), "--top", "20", "--threads", "1"]
    result = runner.invoke(cli, ["screen", *common, "--out", str(tmp_path / "one.tsv")])
    assert result.exit_code == 0, result.output
    parts = []
    for shard in ("0/2", "1/2"):
        part = tmp_path / f"part{shard[0]}.tsv"
        result = runner.invoke(cli, ["screen", *common, "--shard", shard, "--out", str(part)])
        assert result.exit_code == 0, result.output
        parts.append(str(part))
    result = runner.invoke(cli, ["screen-merge", *parts, "--out", str(tmp_path / "merged.tsv")])
    assert result.exit_code == 0, result.output
    assert tsv_rows(tmp_path / "merged.tsv") == tsv_rows(tmp_path / "one.tsv")
    result = runner.invoke(cli, ["screen", *common, "--shard", "3/2", "--out", str(tmp_path / "x.tsv")])
    assert result.exit_code == 2 and "shard" in result.output


def test_screen_never_imports_esm():
    import subprocess
    import sys

    code = ("import sys, student.screening.screen, student.screening.store; "
            "assert 'esm' not in sys.modules, 'esm imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_bipartite_no_self_with_shared_ids(tmp_path):
    """An id in both files: with --no-self its pair with itself is not reported; its other pairs are."""
    rng = np.random.default_rng(5)
    shared = random_sequence(rng, 20)
    records_a = {"S": shared, "A1": random_sequence(rng, 15), "A2": shared}
    records_b = {"S": shared, "B1": random_sequence(rng, 25)}
    write_fasta(tmp_path / "a.fasta", records_a)
    write_fasta(tmp_path / "b.fasta", records_b)
    checkpoint = tiny_checkpoint(tmp_path / "model.pt", "both")
    out = tmp_path / "hits.tsv"
    run_screen(ScreenConfig(checkpoint=str(checkpoint), fasta=str(tmp_path / "a.fasta"),
                            fasta_b=str(tmp_path / "b.fasta"), out=str(out), top=None, min_prob=0.0, no_self=True))
    names = [(r[0], r[1]) for r in tsv_rows(out)]
    expected = {(a, b) for a in records_a for b in records_b} - {("S", "S")}
    assert sorted(names) == sorted(expected)


def test_full_screen_benchmark_runs_variants_side_by_side(tmp_path, proteome):
    """benchmarks.screen_full: each variant in its own child process, hits kept, recall against the --truth run.
    A set this small is always scored exactly, so both runs find the same rows: recall 1 for both."""
    import subprocess
    import sys

    fasta, _ = proteome
    checkpoint = tiny_checkpoint(tmp_path / "model.pt", "both")
    out = tmp_path / "result.json"
    subprocess.run([sys.executable, "-m", "benchmarks.screen_full", "--checkpoint", str(checkpoint), "--fasta",
                    str(fasta), "--top", "50", "--threads", "1", "--variant", "exact=--exact", "--variant",
                    "coarse=--rescore-fraction 0.3", "--truth", "exact", "--keep", str(tmp_path / "hits"),
                    "--json", str(out)], check=True, cwd=Path(__file__).resolve().parents[1])
    result = json.loads(out.read_text())
    assert result["order"] == ["exact", "coarse"]
    assert result["runs"]["exact"]["recall_top1000_vs_exact"] == 1.0
    assert result["runs"]["coarse"]["recall_top10000_vs_exact"] == 1.0
    assert (tmp_path / "hits" / "coarse.tsv").exists() and result["runs"]["coarse"]["rows"] == 50
