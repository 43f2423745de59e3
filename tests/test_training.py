"""The trainer on tiny generated data: outputs, checkpoints, --resume, refusals, a planted problem."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from data.errors import UserError
from data.fasta import write_fasta
from student.checkpoint import load_checkpoint
from student.config import ModelConfig, TrainConfig
from student.trainer import train
from teacher_cache import CacheError
from tests.helpers import Killed, kill_after_epoch, random_sequence, write_random_cache


TINY_MODEL = ModelConfig(embed_dim=8, channels=(16, 16), kernel_sizes=(3, 3), hidden=8, map_topk=4)


def make_problem(folder: Path, n_pairs: int = 40, seed: int = 0, with_split: bool = True,
                 cache_pairs: slice | None = None) -> dict[str, Path]:
    """FASTA + pairs (+ split column) + random cache in the real format under `folder`."""
    rng = np.random.default_rng(seed)
    n_proteins = 16
    sequences = {f"P{i}": random_sequence(rng, int(rng.integers(12, 40))) for i in range(n_proteins)}
    fasta = folder / "seqs.fasta"
    write_fasta(fasta, sequences)
    rows, seen = [], set()
    while len(rows) < n_pairs:
        a, b = (int(x) for x in rng.choice(n_proteins, size=2, replace=False))
        if (min(a, b), max(a, b)) in seen:
            continue
        seen.add((min(a, b), max(a, b)))
        rows.append((f"P{a}", f"P{b}", int(len(rows) % 3 == 0)))
    parts = ["train"] * (n_pairs - 12) + ["valid"] * 6 + ["test"] * 6
    pairs = folder / "pairs.tsv"
    with open(pairs, "w") as handle:
        handle.write("id_a\tid_b\tlabel" + ("\tsplit" if with_split else "") + "\n")
        for (a, b, label), part in zip(rows, parts):
            handle.write(f"{a}\t{b}\t{label}" + (f"\t{part}" if with_split else "") + "\n")
    cached = rows[cache_pairs] if cache_pairs is not None else rows
    cache = write_random_cache(folder / "cache.h5", [(sequences[a], sequences[b]) for a, b, _ in cached],
                               embedding_dim=6)
    return {"fasta": fasta, "pairs": pairs, "cache": cache}


def tiny_config(files: dict[str, Path], out: Path, **changes) -> TrainConfig:
    cache = str(files["cache"]) if files["cache"] else None
    config = TrainConfig(pairs=str(files["pairs"]), fasta=str(files["fasta"]), cache=cache, out=str(out), epochs=3,
                         batch_size=8, max_len=24, patience=10, model=replace(TINY_MODEL))
    return replace(config, **changes)


def test_train_writes_run(tmp_path: Path) -> None:
    files = make_problem(tmp_path)
    results = train(tiny_config(files, tmp_path / "run", map_loss="kl", beta_sem=0.5))
    out = tmp_path / "run"
    for name in ("best.pt", "last.pt", "metrics.json", "history.csv", "config.json"):
        assert (out / name).exists(), name
    assert {"valid", "test", "best_epoch", "seconds"} <= set(results)
    assert results["test"]["n"] == 6 and results["test"]["map_top_l5"] is not None
    assert 0 <= results["valid"]["aupr"] <= 1
    # plain-dict checkpoints: load with weights_only and rebuild the model
    raw = torch.load(out / "best.pt", weights_only=True)
    assert raw["train_config"]["pos_weight"] == pytest.approx(2.0, rel=0.2)
    assert raw["model_config"]["semantic_dim"] == 6
    assert torch.load(out / "last.pt", weights_only=True)["optimizer"]["state"]
    model, checkpoint = load_checkpoint(out / "best.pt")
    assert not model.training and checkpoint["threshold"] == results["threshold"]
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, raw["model"][name])
    saved = json.loads((out / "config.json").read_text())
    assert saved["map_loss"] == "kl" and saved["teacher_fingerprint"]
    assert len((out / "history.csv").read_text().splitlines()) == 1 + results["epochs_run"]
    with pytest.raises(UserError, match="--resume .* --overwrite"):
        train(tiny_config(files, out))
    train(tiny_config(files, out, overwrite=True, epochs=1))
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 1


def test_resume_matches_uninterrupted(tmp_path: Path) -> None:
    files = make_problem(tmp_path)
    full = train(tiny_config(files, tmp_path / "full", epochs=4))

    with pytest.raises(Killed):
        train(tiny_config(files, tmp_path / "killed", epochs=4), on_epoch=kill_after_epoch(1))
    resumed = train(tiny_config(files, tmp_path / "killed", epochs=4, resume=True))
    assert resumed["epochs_run"] == full["epochs_run"] == 4
    assert resumed["best_epoch"] == full["best_epoch"]
    assert resumed["valid"]["aupr"] == pytest.approx(full["valid"]["aupr"], abs=1e-9)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "killed" / "last.pt", weights_only=True)["model"]
    for name in a:
        assert torch.allclose(a[name].float(), b[name].float(), atol=1e-6), name
    with pytest.raises(UserError, match="other settings.*lr"):
        train(tiny_config(files, tmp_path / "killed", epochs=4, resume=True, lr=0.5))


def test_refuses_pairs_missing_from_cache(tmp_path: Path) -> None:
    files = make_problem(tmp_path, cache_pairs=slice(0, 30))
    with pytest.raises(CacheError, match=r"missing from cache .*cache\.h5.*P\d+/P\d+"):
        train(tiny_config(files, tmp_path / "run"))


def test_refuses_cache_of_other_sequences(tmp_path: Path) -> None:
    files = make_problem(tmp_path)
    (tmp_path / "other").mkdir()
    other = make_problem(tmp_path / "other", seed=5)
    with pytest.raises(CacheError, match=r"cache\.h5: P\d+/P\d+.*sequences of P\d+.*other sequences"):
        train(tiny_config({**files, "cache": other["cache"]}, tmp_path / "run"))


def test_protein_split_and_subsample(tmp_path: Path) -> None:
    files = make_problem(tmp_path, n_pairs=60, with_split=False)
    results = train(tiny_config(files, tmp_path / "run", epochs=1, split="protein", valid_frac=0.2,
                                test_frac=0.2, n_train=8, map_loss="bce", map_norm="mean",
                                model=replace(TINY_MODEL, head="map")))
    assert results["split"]["method"] == "protein"
    assert results["train_pairs"] == min(8, results["split"]["train"]["pairs"])
    with pytest.raises(UserError, match="split"):
        train(tiny_config(files, tmp_path / "run2", epochs=1, split="column"))


def test_label_only_without_cache(tmp_path: Path) -> None:
    files = make_problem(tmp_path)
    results = train(tiny_config({**files, "cache": None}, tmp_path / "run", epochs=1))
    assert "map_top_l5" not in results["test"]
    raw = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert raw["train_config"]["alpha_map"] == 0 and raw["model_config"]["semantic_dim"] == 0


def test_workers_read_the_cache_like_the_main_process(tmp_path: Path) -> None:
    """DataLoader workers (each with its own HDF5 handle) give the same run as the main process."""
    files = make_problem(tmp_path)
    single = train(tiny_config(files, tmp_path / "w0", epochs=1, preload=False, workers=0))
    workers = train(tiny_config(files, tmp_path / "w2", epochs=1, preload=False, workers=2))
    assert workers["valid"]["aupr"] == pytest.approx(single["valid"]["aupr"], abs=1e-9)
    assert workers["test"]["map_top_l5"] == pytest.approx(single["test"]["map_top_l5"], abs=1e-9)


def test_stratified_subsample_keeps_rate_and_seed() -> None:
    from data.pairs import Pair
    from data.splits import stratified_subsample

    pairs = [Pair(f"a{i}", f"b{i}", "A", "C", int(i % 4 == 0)) for i in range(100)]
    sub = stratified_subsample(pairs, 20, seed=3)
    assert len(sub) == 20 and sum(p.label for p in sub) == 5
    assert sub == stratified_subsample(pairs, 20, seed=3) != stratified_subsample(pairs, 20, seed=4)
    assert sum(p.label for p in stratified_subsample(pairs, 2, seed=0)) == 1


def test_crop_and_target_alignment() -> None:
    from student.dataset import align_target, crop_window

    target = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert align_target(target, (3, 4)) is target  # same resolution: untouched
    resampled = align_target(target, (5, 7))
    assert resampled.shape == (5, 7) and resampled[0, 0] == 0 and resampled[-1, -1] == 11
    assert crop_window(10, None, None) == (0, 10) and crop_window(10, 20, None) == (0, 10)
    assert crop_window(10, 4, None) == (3, 7)  # evaluation with a max length: the centre window
    starts = {crop_window(10, 4, np.random.default_rng(s))[0] for s in range(50)}
    assert starts == set(range(7))  # training: every window position


def test_dataset_items_keep_the_stored_float16_and_collate_widens_them(tmp_path: Path) -> None:
    from data.fasta import read_fasta
    from data.pairs import read_pairs
    from student.dataset import PairDataset, collate_pairs
    from teacher_cache import TeacherCache

    files = make_problem(tmp_path, n_pairs=12)
    sequences = read_fasta(files["fasta"])
    pairs = read_pairs(files["pairs"], sequences).pairs
    with TeacherCache.open(files["cache"]) as cache:
        for preload in (False, True):
            dataset = PairDataset(pairs, cache, "contact", with_embeddings=True, preload=preload)
            items = [dataset[i] for i in range(4)]
            assert all(item["target"].dtype == np.float16 for item in items)
            batch = collate_pairs(items)
            assert batch["target"].dtype == torch.float32
            for row, (item, pair) in enumerate(zip(items, pairs)):
                expected = cache.pair(pair.seq_a, pair.seq_b).contact  # the reader's float32 decode
                rows, cols = expected.shape
                np.testing.assert_array_equal(batch["target"][row, :rows, :cols].numpy(), expected)
                assert float(batch["target"][row, rows:, :].abs().sum()) == 0.0  # padding stays zero
                np.testing.assert_array_equal(dataset.target(row), expected)
                np.testing.assert_array_equal(item["emb_a"], cache.protein(pair.seq_a).embedding)
                np.testing.assert_array_equal(item["emb_b"], cache.protein(pair.seq_b).embedding)


def test_class_weighting_can_be_switched_off(tmp_path: Path) -> None:
    from student.trainer import resolve_config, load_run_data

    files = make_problem(tmp_path)
    weighted = tiny_config(files, tmp_path / "w")
    data = load_run_data(weighted)
    assert resolve_config(weighted, data).pos_weight == pytest.approx(2.0, rel=0.2)
    assert resolve_config(replace(weighted, balance_classes=False), data).pos_weight == 1.0


def test_a_map_term_with_a_short_guaranteed_schedule_is_warned_about(tmp_path: Path, caplog) -> None:
    from student.trainer import SHORT_MAP_SCHEDULE, load_run_data, resolve_config

    files = make_problem(tmp_path)
    config = tiny_config(files, tmp_path / "w", alpha_map=1.0)
    data = load_run_data(config)
    with caplog.at_level("WARNING", logger="student.trainer"):
        resolve_config(config, data)
        assert "--min-epochs 0" in caplog.text
        caplog.clear()
        resolve_config(replace(config, min_epochs=SHORT_MAP_SCHEDULE), data)
        resolve_config(replace(config, alpha_map=0.0), data)  # labels (and semantics) only: nothing to wait for
        assert caplog.text == ""


def test_min_epochs_holds_early_stopping_back(tmp_path: Path) -> None:
    """With a learning rate of 0 and frozen batch-norm statistics no epoch after the first improves: patience 1
    stops after 2 epochs, unless min_epochs asks for more; the run never exceeds `epochs`."""
    files = make_problem(tmp_path)
    runs = {}
    for min_epochs in (0, 4, 9):
        runs[min_epochs] = train(tiny_config(files, tmp_path / f"run{min_epochs}", epochs=6, patience=1, lr=0.0,
                                             min_epochs=min_epochs, alpha_map=0.0, beta_sem=0.0,
                                             model=replace(TINY_MODEL, bn_momentum=0.0)))
    assert [runs[m]["epochs_run"] for m in (0, 4, 9)] == [2, 4, 6]
    assert all(runs[m]["best_epoch"] == runs[0]["best_epoch"] for m in runs)
    with pytest.raises(UserError, match="min-epochs"):
        tiny_config(files, tmp_path / "bad", min_epochs=-1)
