"""Pairs as training examples: tokens, label, the teacher's map and embeddings from the cache, cropping and
length-bucketed batches.

Training crops a protein longer than `max_len` to a random window (the map is cropped with the same rows and
columns); the window is drawn from (seed, epoch, pair index), so an epoch is the same whether or not the run was
resumed and whatever the number of DataLoader workers. Evaluation does not crop (`max_len=None`), or, when a
`max_len` is given with `random_crop=False`, takes the centre window. Each DataLoader worker opens its own HDF5
handle (TeacherCache reopens per process).

Maps stay in the cache's float16 from the read to `collate_pairs`, which widens them to float32 while copying them
into the padded batch: one pass over each map instead of three, and half the memory when preloaded. The proteins'
embeddings are small and read once, all together, when the dataset is made.
"""
from __future__ import annotations

import logging
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from data.alphabet import PAD_INDEX, encode
from data.pairs import Pair
from teacher_cache import CacheError, TeacherCache

log = logging.getLogger(__name__)

BUCKET_BATCHES = 16  # batches per length bucket: pairs of similar length share a batch, order still random


def check_cache(pairs: list[Pair], cache: TeacherCache, need_embeddings: bool) -> None:
    """Raise CacheError naming the pairs and proteins the cache lacks (e.g. a cache built from other sequences)."""
    absent: dict[str, None] = {}  # ids whose sequence has no protein entry, in order of first appearance
    missing_pairs: list[str] = []
    for pair in pairs:
        for name, seq in ((pair.id_a, pair.seq_a), (pair.id_b, pair.seq_b)):
            if name not in absent and not cache.has_protein(seq):
                absent[name] = None
        if pair.map_target and not cache.has_pair(pair.seq_a, pair.seq_b):
            missing_pairs.append(f"{pair.id_a}/{pair.id_b}")
    other_sequences = list(absent)
    if missing_pairs:
        message = (f"{len(missing_pairs)} pair(s) are missing from cache {cache.path}: "
                   f"{', '.join(missing_pairs[:10])}{' ...' if len(missing_pairs) > 10 else ''}")
        if other_sequences:
            shown = ", ".join(other_sequences[:8]) + (
                f" and {len(other_sequences) - 8} more" if len(other_sequences) > 8 else "")
            message += (f"; the FASTA's sequences of {shown} are not in it at all: was the cache built from other "
                        "sequences (another FASTA) or another pairs file?")
        raise CacheError(message + "; run `precompute` on this FASTA and pairs file to build or extend it")
    if need_embeddings and other_sequences:
        raise CacheError(f"cache {cache.path} lacks the protein embeddings of {', '.join(other_sequences[:10])} "
                         "(needed by the semantic loss; use --beta-sem 0 or rebuild the cache)")


def align_target(target: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The map itself when it has `shape`, else a bilinear resampling of it (a target stored at another resolution)."""
    if target.shape == shape:
        return target
    log.debug("resampling a teacher map from %s to %s", target.shape, shape)
    values = torch.from_numpy(np.ascontiguousarray(target, dtype=np.float32))[None, None]  # (1, 1, La', Lb')
    return F.interpolate(values, size=shape, mode="bilinear", align_corners=True)[0, 0].numpy()


def crop_window(length: int, max_len: int | None, rng: np.random.Generator | None) -> tuple[int, int]:
    """(start, stop) of the kept window: everything, a random window (rng given) or the centre window."""
    if max_len is None or length <= max_len:
        return 0, length
    start = int(rng.integers(0, length - max_len + 1)) if rng is not None else (length - max_len) // 2
    return start, start + max_len


class PairDataset(Dataset):
    """Examples of `pairs`; with a cache, each carries the teacher map `map_target` and the proteins' embeddings."""

    def __init__(self, pairs: list[Pair], cache: TeacherCache | None = None, map_target: str | None = "contact",
                 with_embeddings: bool = False, max_len: int | None = None, random_crop: bool = False,
                 seed: int = 0, preload: bool = False):
        self.pairs = pairs
        self.cache = cache
        self.map_target = map_target if cache is not None else None
        self.with_embeddings = with_embeddings and cache is not None
        self.max_len, self.random_crop, self.seed = max_len, random_crop, seed
        self.epoch = 0
        self.tokens = {}  # sequence -> tokens, shared by every pair of a protein
        for pair in pairs:
            for seq in (pair.seq_a, pair.seq_b):
                if seq not in self.tokens:
                    self.tokens[seq] = encode(seq)
        self.lengths = np.array([(len(p.seq_a), len(p.seq_b)) for p in pairs], dtype=np.int64).reshape(-1, 2)
        self._targets: dict[int, np.ndarray] | None = None
        self._embeddings: dict[str, np.ndarray] = {}
        if self.with_embeddings:
            sequences = list(self.tokens)
            self._embeddings = dict(zip(sequences, self.cache.protein_embeddings(sequences)))
        if preload:
            self.preload()

    def preload(self) -> None:
        """Read every target into memory once (as stored: float16 for the default storage)."""
        if self.map_target is not None:
            self._targets = {i: self._read_target(i) for i, pair in enumerate(self.pairs) if pair.map_target}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs)

    def _read_target(self, index: int) -> np.ndarray:
        pair = self.pairs[index]
        target = self.cache.pair_map(pair.seq_a, pair.seq_b, self.map_target, dtype="float16")
        return align_target(target, (len(pair.seq_a), len(pair.seq_b)))

    def _stored_target(self, index: int) -> np.ndarray | None:
        if self.map_target is None or not self.pairs[index].map_target:
            return None
        if self._targets is not None:
            return self._targets[index]
        return self._read_target(index)

    def target(self, index: int) -> np.ndarray | None:
        """The full (uncropped) teacher map of pair `index`, float32; None without a cache or when the pair's
        `map_target` flag is off."""
        target = self._stored_target(index)
        return None if target is None else target.astype(np.float32)

    def embedding(self, sequence: str) -> np.ndarray:
        return self._embeddings[sequence]

    def __getitem__(self, index: int) -> dict:
        pair = self.pairs[index]
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.random_crop else None
        start_a, stop_a = crop_window(len(pair.seq_a), self.max_len, rng)
        start_b, stop_b = crop_window(len(pair.seq_b), self.max_len, rng)
        item = {"index": index, "label": float(pair.label if pair.label is not None else 0),
                "labelled": pair.label is not None,
                "tokens_a": self.tokens[pair.seq_a][start_a:stop_a],
                "tokens_b": self.tokens[pair.seq_b][start_b:stop_b],
                "length_a": len(pair.seq_a), "length_b": len(pair.seq_b)}  # before cropping
        target = self._stored_target(index)
        if target is not None:
            item["target"] = target[start_a:stop_a, start_b:stop_b]  # a view, float16 as stored
        if self.with_embeddings:
            item["emb_a"], item["emb_b"] = self.embedding(pair.seq_a), self.embedding(pair.seq_b)
        return item


def collate_pairs(items: list[dict]) -> dict[str, torch.Tensor]:
    """Right-pad a list of examples into a batch: tokens/masks (B, L), target (B, La, Lb), label (B,) and whether
    the pair has one (B,), the proteins' lengths before cropping (B,)."""
    len_a = max(len(it["tokens_a"]) for it in items)
    len_b = max(len(it["tokens_b"]) for it in items)
    tokens_a = torch.full((len(items), len_a), PAD_INDEX, dtype=torch.long)
    tokens_b = torch.full((len(items), len_b), PAD_INDEX, dtype=torch.long)
    for row, it in enumerate(items):
        tokens_a[row, : len(it["tokens_a"])] = torch.from_numpy(it["tokens_a"])
        tokens_b[row, : len(it["tokens_b"])] = torch.from_numpy(it["tokens_b"])
    batch = {"tokens_a": tokens_a, "mask_a": tokens_a != PAD_INDEX, "tokens_b": tokens_b,
             "mask_b": tokens_b != PAD_INDEX, "label": torch.tensor([it["label"] for it in items]),
             "labelled": torch.tensor([it["labelled"] for it in items], dtype=torch.bool),
             "index": torch.tensor([it["index"] for it in items]),
             "length_a": torch.tensor([it["length_a"] for it in items]),
             "length_b": torch.tensor([it["length_b"] for it in items])}
    if any("target" in it for it in items):
        target = torch.zeros(len(items), len_a, len_b)
        has_target = torch.zeros(len(items), dtype=torch.bool)
        for row, it in enumerate(items):
            if "target" in it:
                rows, cols = it["target"].shape
                target[row, :rows, :cols] = torch.from_numpy(np.asarray(it["target"]))  # float16 widened by the copy
                has_target[row] = True
        batch["target"], batch["has_target"] = target, has_target
    if all("emb_a" in it for it in items):
        batch["emb_a"] = torch.from_numpy(np.stack([it["emb_a"] for it in items]))
        batch["emb_b"] = torch.from_numpy(np.stack([it["emb_b"] for it in items]))
    return batch


class LengthBucketSampler(Sampler[list[int]]):
    """Batches of pairs of similar size. Shuffled: random buckets of BUCKET_BATCHES batches, sorted by size inside,
    batch order shuffled, all drawn from (seed, epoch). Not shuffled: sorted by size (deterministic)."""

    def __init__(self, sizes: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0):
        self.sizes = np.asarray(sizes)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        n = len(self.sizes)
        if not self.shuffle:
            order = np.argsort(self.sizes, kind="stable")
            return [order[i:i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        rng = np.random.default_rng([self.seed, self.epoch, 7])
        order = rng.permutation(n)
        span = self.batch_size * BUCKET_BATCHES
        batches = []
        for start in range(0, n, span):
            bucket = order[start:start + span]
            bucket = bucket[np.argsort(self.sizes[bucket], kind="stable")]
            batches.extend(bucket[i:i + self.batch_size].tolist() for i in range(0, len(bucket), self.batch_size))
        return [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return (len(self.sizes) + self.batch_size - 1) // self.batch_size if not self.shuffle else len(self.batches())


def batch_sizes(lengths: np.ndarray, max_len: int | None) -> np.ndarray:
    """Per-pair cost used for bucketing: the larger (cropped) length of the two proteins."""
    capped = lengths if max_len is None else np.minimum(lengths, max_len)
    return capped.max(axis=1) if len(capped) else np.zeros(0, dtype=np.int64)
