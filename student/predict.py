"""Batched inference of a trained student: interaction probabilities and interaction maps of pairs.

Needs only a checkpoint and sequences: no teacher, and fair-esm is never imported (tests check it).

    from student.checkpoint import load_checkpoint
    from student.predict import predict_pairs
    model, checkpoint = load_checkpoint("run/best.pt")
    probs = predict_pairs(model, pairs)                       # (N,) float
    probs, maps = predict_pairs(model, pairs, return_maps=True)  # maps[i]: (len(seq_a), len(seq_b)) probabilities
"""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader

from data.atomic import atomic_path
from data.pairs import Pair
from student.dataset import LengthBucketSampler, PairDataset, align_target, batch_sizes, collate_pairs
from student.model import StudentModel


def autocast_for(device: torch.device | str):
    """bf16 autocast on CUDA, nothing elsewhere (bf16 on CPU is slower, ../shared/MEASURED.md)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def to_device(batch: dict[str, torch.Tensor], device: torch.device | str) -> dict[str, torch.Tensor]:
    return {name: value.to(device, non_blocking=True) for name, value in batch.items()}


@torch.no_grad()
def iterate_predictions(model: StudentModel, dataset: PairDataset, batch_size: int = 64,
                        device: torch.device | str = "cpu", with_maps: bool = False, workers: int = 0
                        ) -> Iterator[tuple[int, float, float, np.ndarray | None]]:
    """(pair index, probability, logit, map probabilities (La, Lb) or None) for every pair of `dataset`, in
    length-sorted order. The model is used in eval mode; padding does not change any value."""
    was_training = model.training
    model.eval()
    sampler = LengthBucketSampler(batch_sizes(dataset.lengths, dataset.max_len), batch_size, shuffle=False)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_pairs, num_workers=workers)
    try:
        for batch in loader:
            batch = to_device(batch, device)
            with autocast_for(device):
                feat_a = model.encode(batch["tokens_a"], batch["mask_a"])
                feat_b = model.encode(batch["tokens_b"], batch["mask_b"])
                map_logits = model.interaction_map(feat_a, batch["mask_a"], feat_b, batch["mask_b"])
                logits = model._logit(feat_a, batch["mask_a"], feat_b, batch["mask_b"],
                                      map_logits if model.uses_map else None)
            logits = logits.float().cpu().numpy()
            probs = 1.0 / (1.0 + np.exp(-logits))
            maps = torch.sigmoid(map_logits.float()).cpu().numpy() if with_maps else None
            len_a = batch["mask_a"].sum(1).cpu().numpy()
            len_b = batch["mask_b"].sum(1).cpu().numpy()
            for row, index in enumerate(batch["index"].tolist()):
                pair_map = maps[row, : len_a[row], : len_b[row]].copy() if maps is not None else None
                yield index, float(probs[row]), float(logits[row]), pair_map
    finally:
        model.train(was_training)


def predict_pairs(model: StudentModel, pairs: list[Pair], batch_size: int = 64, device: torch.device | str = "cpu",
                  return_maps: bool = False) -> np.ndarray | tuple[np.ndarray, list[np.ndarray]]:
    """Probabilities (N,) of `pairs` in their order; with return_maps also each pair's map probabilities."""
    dataset = PairDataset(pairs)
    probs = np.zeros(len(pairs), dtype=np.float64)
    maps: list[np.ndarray | None] = [None] * len(pairs)
    for index, prob, _, pair_map in iterate_predictions(model, dataset, batch_size, device, with_maps=return_maps):
        probs[index] = prob
        maps[index] = pair_map
    return (probs, maps) if return_maps else probs  # type: ignore[return-value]


def write_predictions(path: str | Path, pairs: list[Pair], probs: np.ndarray, threshold: float | None = None) -> Path:
    """TSV `id_a id_b probability [predicted] [label]`, written atomically."""
    path = Path(path)
    with_label = any(p.label is not None for p in pairs)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        header = ["id_a", "id_b", "probability"] + (["predicted"] if threshold is not None else []) + (
            ["label"] if with_label else [])
        handle.write("\t".join(header) + "\n")
        for pair, prob in zip(pairs, probs):
            row = [pair.id_a, pair.id_b, f"{prob:.6f}"]
            if threshold is not None:
                row.append(str(int(prob >= threshold)))
            if with_label:
                row.append("" if pair.label is None else str(pair.label))
            handle.write("\t".join(row) + "\n")
    return path


def write_maps(path: str | Path, pairs: list[Pair], maps: list[np.ndarray], attrs: dict | None = None) -> Path:
    """HDF5 with one float32 dataset per pair, `/maps/<row>` (rows = residues of id_a), attrs id_a, id_b;
    `/id_a`, `/id_b` list the pairs in order. Written atomically."""
    import h5py

    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            handle.attrs["content"] = "student interaction maps: sigmoid of the calibrated map logits"
            for name, value in (attrs or {}).items():
                handle.attrs[name] = value
            handle.create_dataset("id_a", data=np.array([p.id_a for p in pairs], dtype=object),
                                  dtype=h5py.string_dtype())
            handle.create_dataset("id_b", data=np.array([p.id_b for p in pairs], dtype=object),
                                  dtype=h5py.string_dtype())
            group = handle.create_group("maps")
            for row, (pair, pair_map) in enumerate(zip(pairs, maps)):
                dataset = group.create_dataset(str(row), data=np.asarray(pair_map, dtype=np.float32),
                                               compression="gzip", compression_opts=4)
                dataset.attrs["id_a"], dataset.attrs["id_b"] = pair.id_a, pair.id_b
    return path


def run_predict(config) -> dict:
    """`predict`: probabilities TSV, optional maps HDF5 and heatmaps (student.config.PredictConfig)."""
    from data.fasta import read_fasta
    from data.pairs import read_pairs
    from student.checkpoint import load_checkpoint
    from student.trainer import resolve_device

    device = resolve_device(config.device)
    model, checkpoint = load_checkpoint(config.checkpoint, device)
    sequences = read_fasta(config.fasta)
    pairs = read_pairs(config.pairs, sequences).pairs
    want_maps = config.maps is not None or config.plot is not None
    result = predict_pairs(model, pairs, config.batch_size, device, return_maps=want_maps)
    probs, maps = result if want_maps else (result, None)
    threshold = float(checkpoint.get("threshold", 0.5))
    write_predictions(config.out, pairs, probs, threshold)
    summary = {"pairs": len(pairs), "out": str(config.out), "threshold": threshold,
               "predicted_positive": int((probs >= threshold).sum())}
    if config.maps is not None:
        write_maps(config.maps, pairs, maps, {"checkpoint": str(config.checkpoint)})
        summary["maps"] = str(config.maps)
    if config.plot is not None:
        summary["plots"] = plot_maps(config, pairs, probs, maps)
    return summary


def plot_maps(config, pairs: list[Pair], probs: np.ndarray, maps: list[np.ndarray]) -> list[str]:
    """Heatmaps of the first `plot_max` pairs; with a cache, the teacher's map (the run's map target) beside."""
    from student.config import TrainConfig
    from student.plots import plot_pair_maps, safe_name

    folder = Path(config.plot)
    folder.mkdir(parents=True, exist_ok=True)
    cache, target_name = None, "contact"
    if config.cache:
        from teacher_cache import TeacherCache
        from student.checkpoint import read_checkpoint

        cache = TeacherCache.open(config.cache)
        target_name = TrainConfig.from_dict(read_checkpoint(config.checkpoint)["train_config"]).map_target
    written = []
    try:
        for row, pair in enumerate(pairs[: config.plot_max]):
            teacher = None
            if cache is not None and cache.has_pair(pair.seq_a, pair.seq_b):
                teacher = align_target(getattr(cache.pair(pair.seq_a, pair.seq_b), target_name), maps[row].shape)
            label = f"teacher {target_name}" + (" (random weights)" if cache is not None and cache.random_weights
                                                 else "")
            name = folder / f"{row:04d}_{safe_name(pair.id_a)}_{safe_name(pair.id_b)}.png"
            plot_pair_maps(name, maps[row], teacher, pair.id_a, pair.id_b, float(probs[row]), label)
            written.append(str(name))
    finally:
        if cache is not None:
            cache.close()
    return written
