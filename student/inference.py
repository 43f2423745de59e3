"""Batched inference of a trained student: probabilities, logits and interaction maps of pairs, and the metrics
of a labelled set. Needs only a checkpoint and sequences: no teacher, and fair-esm is never imported (tests check it).

    from student.checkpoint import load_checkpoint
    from student.inference import predict_pairs
    model, checkpoint = load_checkpoint("run/best.pt")
    probs = predict_pairs(model, pairs)                       # (N,) float
    probs, maps = predict_pairs(model, pairs, return_maps=True)  # maps[i]: (len(seq_a), len(seq_b)) probabilities
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader

from data.device import autocast_for, to_device
from data.pairs import Pair
from student.dataset import LengthBucketSampler, PairDataset, batch_sizes, collate_pairs
from student.evaluation.metrics import classification_metrics, map_agreement, ranking_metrics
from student.losses import classification_loss
from student.model import StudentModel
from student.probability import probability


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
                logits = model.classify(feat_a, batch["mask_a"], feat_b, batch["mask_b"], map_logits,
                                        tokens_a=batch["tokens_a"], tokens_b=batch["tokens_b"])
            logits = logits.float().cpu().numpy()
            probs = probability(logits)
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


def evaluate_dataset(model: StudentModel, dataset: PairDataset, batch_size: int, device: torch.device,
                     threshold: float | None = None, pos_weight: float | None = None, with_maps: bool = False,
                     workers: int = 0) -> tuple[dict, np.ndarray]:
    """Metrics of `model` on `dataset` (uncropped) and the probabilities in dataset order.

    Without a threshold only ranking metrics and the (class-weighted) CE loss are computed (per-epoch validation);
    with one, every classification metric, and with_maps the agreement with the teacher's maps.
    """
    n = len(dataset)
    probs, logits = np.zeros(n), np.zeros(n)
    agreement: list[tuple[np.ndarray, np.ndarray]] = []
    for index, prob, logit, pair_map in iterate_predictions(model, dataset, batch_size, device,
                                                           with_maps=with_maps, workers=workers):
        probs[index], logits[index] = prob, logit
        target = dataset.target(index) if pair_map is not None else None
        if target is not None:
            agreement.append((pair_map, target))
    labels = np.array([p.label for p in dataset.pairs], dtype=np.float64)
    if threshold is None:
        metrics = ranking_metrics(labels, probs)
        metrics["n"] = n
    else:
        metrics = classification_metrics(labels, probs, threshold)
    if n:
        metrics["loss"] = float(classification_loss(torch.from_numpy(logits), torch.from_numpy(labels), pos_weight))
    if with_maps and agreement:
        metrics.update(map_agreement(agreement))
    return metrics, probs
