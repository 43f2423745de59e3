"""Proteome-scale screening: score every pair of a protein set (or of two sets) with a trained student and keep
the best pairs, with the argmax residue pair of each map and optionally the top maps.

    from student.screening.screen import ScreenConfig, run_screen
    summary = run_screen(ScreenConfig(checkpoint="run/best.pt", fasta="yeast.fasta", out="hits.tsv", top=10000))

Stages (see docs/screening.md):
1. proteins are keyed by sequence and sorted by length; each distinct sequence is encoded once (features held in
   memory, or spilled to a memory-mapped file under the state directory when they exceed --memory-gb);
2. the pair space is cut into blocks (`student.screening.plan`); a shard is a contiguous run of blocks;
3. each block is scored as one matrix product (`student.screening.score`): exactly, or, in coarse mode, on
   window-max-pooled features first, re-scoring exactly only the pairs whose coarse logit reaches the threshold
   that selects `rescore_fraction` of a fixed sample of pairs; reported logits are always exact;
4. the best pairs are kept in a bounded top-K (or every pair over --min-prob in a spill file) and a checkpoint
   is written atomically after finished blocks, so a killed run resumes where it stopped;
5. the kept pairs are expanded to their ids, their maps recomputed for the argmax (and the top maps), and the
   TSV, maps and a JSON summary are written under temporary names and renamed into place.
Never imports fair-esm.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from data.atomic import atomic_path, check_free_space, check_outputs, write_text_atomic
from data.device import resolve_device
from data.errors import InputError, UserError
from data.fasta import read_fasta
from data.keys import file_sha256, sequence_key
from data.lock import FileLock, remove_stale_partials
from data.pairs import Pair
from data.version import TOOL_VERSION
from student.checkpoint import load_checkpoint
from student.predict import write_maps
from student.probability import probability
from student.screening.plan import Block, ProteinSet, ScreenPlan, length_groups, parse_shard
from student.screening.results import CANDIDATE, HitRow, HitSpill, TopK, candidates, rank_order, read_hits, write_hits
from student.screening.config import ScreenConfig
from student.screening.score import COARSE_DTYPES, BlockScorer, coarse_dtype, coarse_topk
from student.screening.store import ProteinFeatures, encode_proteins

log = logging.getLogger(__name__)

STATE_FORMAT = 1
SAMPLE_PROTEINS = 200  # proteins per side whose pairs calibrate the coarse threshold
BASE_MEMORY = 0.6e9  # python, torch and the model, before any feature or block


ProgressFn = Callable[[str, int, int], None]  # (phase, advance, total)


@dataclass
class ScreenSummary:
    out: str
    rows: int
    pairs_total: int  # distinct-sequence pairs of the whole screen
    pairs_shard: int  # of them in this shard
    pairs_exact: int  # scored exactly (all of the shard in exact mode)
    mode: str
    shard: str
    seconds: float
    pairs_per_s: float
    features_spilled: bool
    maps: str | None = None
    resumed_from_block: int = 0
    extra: dict = field(default_factory=dict)


# -- inputs ------------------------------------------------------------------------------------------------------
def _set_digest(protein_set: ProteinSet) -> str:
    digest = hashlib.sha256()
    for sequence, ids in zip(protein_set.sequences, protein_set.ids):
        digest.update((sequence_key(sequence) + "\t" + " ".join(ids) + "\n").encode())
    return digest.hexdigest()


def load_sets(fasta: str, fasta_b: str | None) -> tuple[ProteinSet, ProteinSet | None]:
    records_a = read_fasta(fasta)
    if fasta_b is None:
        return ProteinSet.from_fasta(records_a), None
    records_b = read_fasta(fasta_b)
    for name in records_a.keys() & records_b.keys():
        if records_a[name] != records_b[name]:
            raise InputError(f"id '{name}' names different sequences here and in {fasta}", fasta_b)
    return ProteinSet.from_fasta(records_a), ProteinSet.from_fasta(records_b)


# -- state of a run (resume) -------------------------------------------------------------------------------------
def state_dir_for(out: Path) -> Path:
    return out.with_name(out.name + ".state")


def summary_path_for(out: Path) -> Path:
    return out.with_name(out.name + ".json")


def _save_state(path: Path, state: dict, kept: np.ndarray) -> None:
    """One file, renamed into place: the kept records and the bookkeeping can never disagree."""
    with atomic_path(path) as tmp:
        np.savez(tmp, kept=kept, state=np.array(json.dumps(state)))


def _load_state(path: Path) -> tuple[dict, np.ndarray] | None:
    if not path.exists():
        return None
    with np.load(path) as data:
        return json.loads(str(data["state"])), data["kept"].astype(CANDIDATE)


# -- the screen --------------------------------------------------------------------------------------------------
class Screener:
    def __init__(self, config: ScreenConfig, progress: ProgressFn | None,
                 after_block: Callable[[int], None] | None):
        self.config = config
        self.progress = progress or (lambda phase, advance, total: None)
        self.after_block = after_block
        self.out = Path(config.out)
        self.state_dir = state_dir_for(self.out)
        self.device = resolve_device(config.device)

    def setup(self) -> None:
        config = self.config
        if config.threads:
            torch.set_num_threads(config.threads)
        self.set_a, set_b = load_sets(config.fasta, config.fasta_b)
        self.model, _ = load_checkpoint(config.checkpoint, self.device)
        self.scorer = BlockScorer(self.model)
        n_a = len(self.set_a)
        total = n_a * (n_a + 1) // 2 if set_b is None else n_a * len(set_b)
        if not self.scorer.uses_map:
            config.mode = "exact"  # the features head needs no map: exact scoring is cheap
        elif config.exact or total <= config.exact_below:
            config.mode = "exact"
        else:
            config.mode = "coarse"
        self.coarse_dtype = torch.float32
        if config.mode == "coarse":  # written back, like the mode: the summary says which precision ran
            self.coarse_dtype = coarse_dtype(config.coarse_precision, self.device)
            config.coarse_precision = {dtype: name for name, dtype in COARSE_DTYPES.items()}[self.coarse_dtype]
        side = math.isqrt(config.block_cells)
        budget = side * (config.coarse_factor if config.mode == "coarse" else 1)
        if not self.scorer.uses_map:
            budget = side * 8
        self.plan = ScreenPlan(self.set_a, set_b, no_self=config.no_self, token_budget=budget)
        self.shard, self.n_shards = parse_shard(config.shard)
        self.blocks = self.plan.shard_blocks(self.shard, self.n_shards)
        self.fingerprint = {
            "state_format": STATE_FORMAT, "tool_version": TOOL_VERSION,
            "checkpoint_sha256": file_sha256(config.checkpoint), "set_a": _set_digest(self.set_a),
            "set_b": _set_digest(set_b) if set_b is not None else None,
            "head": self.model.config.head, "mode": config.mode, "no_self": config.no_self, "top": config.top,
            "min_prob": config.min_prob, "block_cells": config.block_cells,
            "coarse_factor": config.coarse_factor if config.mode == "coarse" else None,
            "rescore_fraction": config.rescore_fraction if config.mode == "coarse" else None,
            "coarse_pool": config.coarse_pool if config.mode == "coarse" else None,
            "coarse_precision": config.coarse_precision if config.mode == "coarse" else None,
            "n_shards": self.n_shards}

    # -- memory -------------------------------------------------------------------------------------------------
    def _needed_bytes(self) -> int:
        factor = self.config.coarse_factor if self.config.mode == "coarse" else None
        dim = self.model.config.feature_dim
        total = ProteinFeatures.nbytes_for(self.set_a.lengths, dim, factor, self.model.config.pooled_dim)
        if self.plan.bipartite:
            total += ProteinFeatures.nbytes_for(self.plan.set_b.lengths, dim, factor,
                                                self.model.config.pooled_dim)
        return total

    def make_features(self) -> None:
        config = self.config
        budget = config.memory_gb * 1e9 - BASE_MEMORY - 12 * config.block_cells
        needed = self._needed_bytes()
        self.spilled = needed > budget
        spill_dir = self.state_dir if self.spilled else None
        if self.spilled:
            log.info("features need %.2f GB, over the --memory-gb budget: spilling them to %s", needed / 1e9,
                     self.state_dir)
        factor = config.coarse_factor if config.mode == "coarse" else None
        dim = self.model.config.feature_dim
        self.features_a = ProteinFeatures(self.set_a.lengths, dim, factor, spill_dir, "a", config.coarse_pool,
                                          self.model.config.pooled_dim)
        self.features_b = (ProteinFeatures(self.plan.set_b.lengths, dim, factor, spill_dir, "b", config.coarse_pool,
                                           self.model.config.pooled_dim)
                           if self.plan.bipartite else self.features_a)

    def encode(self, rows: np.ndarray, cols: np.ndarray) -> None:
        rows = np.unique(rows)
        cols = np.unique(cols)
        todo_a = int((~self.features_a.done[rows]).sum())
        todo_b = int((~self.features_b.done[cols]).sum()) if self.plan.bipartite else 0
        if not self.plan.bipartite:
            rows = np.union1d(rows, cols)
            todo_a = int((~self.features_a.done[rows]).sum())
        total = todo_a + todo_b
        tick = lambda n: self.progress("encode", n, total)  # noqa: E731
        encode_proteins(self.model, self.set_a.sequences, rows, self.features_a, self.device, progress=tick)
        if self.plan.bipartite:
            encode_proteins(self.model, self.plan.set_b.sequences, cols, self.features_b, self.device,
                            progress=tick)

    # -- coarse threshold ---------------------------------------------------------------------------------------
    def _threshold_sample(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(0)
        sample_a = np.sort(rng.choice(len(self.plan.set_a), size=min(SAMPLE_PROTEINS, len(self.plan.set_a)),
                                      replace=False))
        sample_b = (np.sort(rng.choice(len(self.plan.set_b), size=min(SAMPLE_PROTEINS, len(self.plan.set_b)),
                                       replace=False)) if self.plan.bipartite else sample_a)
        return sample_a, sample_b

    def calibrate_coarse_threshold(self) -> float:
        """The coarse logit above which `rescore_fraction` of a fixed sample of pairs lies: all pairs among a seeded
        sample of proteins (the same in every shard), scored in length-sorted tiles like the blocks."""
        sample_a, sample_b = self._threshold_sample()
        self.encode(sample_a, sample_b)
        groups_a = length_groups(self.plan.set_a.lengths[sample_a], self.plan.token_budget)
        groups_b = length_groups(self.plan.set_b.lengths[sample_b], self.plan.token_budget)
        values = []
        for gi, (a0, a1) in enumerate(groups_a):
            for gj, (b0, b1) in enumerate(groups_b):
                if not self.plan.bipartite and gj < gi:
                    continue
                keep = np.ones((a1 - a0, b1 - b0), dtype=bool)
                if not self.plan.bipartite and gi == gj:
                    keep = np.triu(keep)
                local_r, local_c = np.nonzero(keep)
                values.append(self._score_tile(sample_a[a0:a1], sample_b[b0:b1], local_r, local_c, True))
        return float(np.quantile(np.concatenate(values), 1.0 - self.config.rescore_fraction))

    # -- scoring ------------------------------------------------------------------------------------------------
    def _gather(self, features: ProteinFeatures, indices: np.ndarray, coarse: bool):
        store = features.coarse if coarse else features.full
        feat, mask = store.gather(indices, extra=2)  # spare columns for the scorer's calibration
        return feat.to(self.device), mask.to(self.device), features.pooled_tensor(indices).to(self.device)

    def _coarse_topk(self) -> int:
        return coarse_topk(self.model.config.map_topk, self.config.coarse_factor)

    def _length_batches(self, rows: np.ndarray, cols: np.ndarray, cells: int) -> Iterator[np.ndarray]:
        """Index arrays into the aligned pairs (rows, cols), length-sorted, of at most `cells` padded map cells."""
        n = len(rows)
        len_a = self.plan.set_a.lengths[rows]
        len_b = self.plan.set_b.lengths[cols]
        order = np.lexsort((len_b, len_a))
        start = 0
        while start < n:
            stop = start + 1
            while stop < n and (stop + 1 - start) * int(len_a[order[start:stop + 1]].max()) * int(
                    len_b[order[start:stop + 1]].max()) <= cells:
                stop += 1
            yield order[start:stop]
            start = stop

    def rescore(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Exact logits of aligned pairs (what the coarse pass passes on)."""
        logits = np.zeros(len(rows), dtype=np.float32)
        for batch in self._length_batches(rows, cols, self.config.block_cells):
            fa, ma, pa = self._gather(self.features_a, rows[batch], False)
            fb, mb, pb = self._gather(self.features_b, cols[batch], False)
            logits[batch] = self.scorer.pair_logits(fa, ma, pa, fb, mb, pb).cpu().numpy()
        return logits

    def locate(self, rows: np.ndarray, cols: np.ndarray, with_maps: bool = False, cells: int | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray] | None]:
        """Argmax residues (0-based, into row and column sequence) and map maxima of aligned pairs, in
        length-sorted batches of at most `cells` padded map cells; with_maps also their map probabilities."""
        n = len(rows)
        arg_a = np.zeros(n, dtype=np.int64)
        arg_b = np.zeros(n, dtype=np.int64)
        map_max = np.zeros(n, dtype=np.float32)
        maps: list[np.ndarray] | None = [None] * n if with_maps else None  # type: ignore[list-item]
        len_a = self.plan.set_a.lengths[rows]
        len_b = self.plan.set_b.lengths[cols]
        for batch in self._length_batches(rows, cols, cells or self.config.block_cells):
            fa, ma, _ = self._gather(self.features_a, rows[batch], False)
            fb, mb, _ = self._gather(self.features_b, cols[batch], False)
            argmax, peak, batch_maps = self.scorer.locate_pairs(fa, ma, fb, mb, with_maps=with_maps)
            width = fb.shape[1]
            argmax = argmax.cpu().numpy()
            arg_a[batch], arg_b[batch] = argmax // width, argmax % width
            map_max[batch] = peak.cpu().numpy()
            if with_maps:
                probs = torch.sigmoid(batch_maps).cpu().numpy()
                for k, index in enumerate(batch.tolist()):
                    maps[index] = probs[k, : len_a[index], : len_b[index]].copy()  # type: ignore[index]
        return arg_a, arg_b, map_max, maps  # type: ignore[return-value]

    def _score_tile(self, rows_idx: np.ndarray, cols_idx: np.ndarray, local_r: np.ndarray, local_c: np.ndarray,
                    coarse: bool) -> np.ndarray:
        """Logits of the pairs (rows_idx[local_r], cols_idx[local_c]) as one block product."""
        if self.scorer.uses_map:
            fa, ma, pa = self._gather(self.features_a, rows_idx, coarse)
            fb, mb, pb = self._gather(self.features_b, cols_idx, coarse)
        else:  # the features head needs only the pooled features
            fa = ma = fb = mb = None
            pa = self.features_a.pooled_tensor(rows_idx).to(self.device)
            pb = self.features_b.pooled_tensor(cols_idx).to(self.device)
        lr = torch.from_numpy(local_r).to(self.device)
        lc = torch.from_numpy(local_c).to(self.device)
        return self.scorer.score_block(fa, ma, pa, fb, mb, pb, lr, lc, topk=self._coarse_topk() if coarse else None,
                                       dtype=self.coarse_dtype if coarse else torch.float32).cpu().numpy()

    def score_block(self, block: Block) -> tuple[np.ndarray, int]:
        """Candidate records of the exactly scored pairs of a block, and how many pairs it scored exactly."""
        local_r, local_c = self.plan.block_pairs(block)
        coarse = self.config.mode == "coarse"
        logits = self._score_tile(np.arange(*block.rows), np.arange(*block.cols), local_r, local_c, coarse)
        rows, cols = local_r + block.rows[0], local_c + block.cols[0]
        if coarse:
            chosen = logits >= self.config.coarse_threshold
            rows, cols = rows[chosen], cols[chosen]
            logits = self.rescore(rows, cols) if len(rows) else logits[:0]
        return candidates(rows, cols, logits, self.plan.tie_keys(rows, cols)), len(rows)

    # -- run ----------------------------------------------------------------------------------------------------
    def run(self) -> ScreenSummary:
        """The whole screen, holding the lock of --out (a second screen of the same --out is refused)."""
        with FileLock(self.out, "screen output"):
            for path in (self.out, summary_path_for(self.out), self.config.maps):
                if path:
                    remove_stale_partials(path)
            return self._run()

    def _run(self) -> ScreenSummary:
        config = self.config
        started = time.perf_counter()
        summary_path = summary_path_for(self.out)
        state_file = self.state_dir / "progress.npz"
        # An unfinished run of this --out (its state is there) passed these checks when it started: it resumes.
        check_outputs({"--out": self.out, "summary of --out": summary_path, "--maps": config.maps},
                      {"--checkpoint": config.checkpoint, "--fasta": config.fasta, "--fasta-b": config.fasta_b},
                      config.overwrite or state_file.exists())
        self.setup()
        if config.maps:  # the top maps, float32 before compression, of proteins of the sets' mean lengths
            n_maps = min(config.maps_top, self.plan.total_pairs)
            mean_a, mean_b = float(self.set_a.lengths.mean()), float(self.plan.set_b.lengths.mean())
            check_free_space(config.maps, int(n_maps * mean_a * mean_b * 4), "--maps")
        if config.overwrite and self.state_dir.exists():
            shutil.rmtree(self.state_dir)
        loaded = _load_state(state_file)
        if loaded is not None and loaded[0]["fingerprint"] != self.fingerprint:
            changed = _changed_keys(loaded[0]["fingerprint"], self.fingerprint)
            raise UserError(f"{self.state_dir} holds an unfinished screen with other settings or inputs "
                            f"({', '.join(changed)}): rerun with the same ones, or use --overwrite to start afresh")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.make_features()

        state = {"fingerprint": self.fingerprint, "next_block": 0, "pairs_done": 0, "pairs_exact": 0,
                 "hits": 0, "coarse_threshold": None, "seconds": 0.0}
        kept = np.empty(0, dtype=CANDIDATE)
        if loaded is not None:
            state, kept = loaded
            log.info("resuming %s from block %d of %d", self.out, state["next_block"], len(self.blocks))
        resumed_from = state["next_block"]
        use_spill = config.min_prob is not None and config.top is None
        topk = TopK(config.top or 1, kept if not use_spill else None)
        spill = HitSpill(self.state_dir / "hits.bin", state["hits"]) if use_spill else None
        min_logit = _min_logit(config.min_prob)

        # encode the proteins this shard (and the threshold's sample) needs, in one pass
        todo = self.blocks[state["next_block"]:]
        need_rows = [np.arange(*b.rows) for b in todo]
        need_cols = [np.arange(*b.cols) for b in todo]
        if config.mode == "coarse" and state["coarse_threshold"] is None:
            sample_a, sample_b = self._threshold_sample()
            need_rows.append(sample_a)
            need_cols.append(sample_b)
        empty = np.empty(0, dtype=np.int64)
        self.encode(np.concatenate(need_rows) if need_rows else empty,
                     np.concatenate(need_cols) if need_cols else empty)
        if config.mode == "coarse":
            if state["coarse_threshold"] is None:
                state["coarse_threshold"] = self.calibrate_coarse_threshold()
            config.coarse_threshold = state["coarse_threshold"]

        shard_pairs = sum(b.pairs for b in self.blocks)
        self.progress("pairs", state["pairs_done"], shard_pairs)
        last_save = time.monotonic()
        block_started = time.perf_counter()
        for position in range(state["next_block"], len(self.blocks)):
            block = self.blocks[position]
            records, exact = self.score_block(block)
            if min_logit is not None:
                records = records[records["logit"] >= min_logit]
            if spill is not None:
                spill.add(records)
            else:
                topk.add(records)
            state["next_block"] = position + 1
            state["pairs_done"] += block.pairs
            state["pairs_exact"] += exact
            state["hits"] = spill.length if spill is not None else 0
            if time.monotonic() - last_save >= config.checkpoint_every_s or position + 1 == len(self.blocks):
                state["seconds"] += time.perf_counter() - block_started
                block_started = time.perf_counter()
                if spill is not None:
                    spill.sync()
                _save_state(state_file, state, topk.best() if spill is None else kept[:0])
                last_save = time.monotonic()
            self.progress("pairs", block.pairs, shard_pairs)
            if self.after_block is not None:
                self.after_block(position)
        scoring_seconds = state["seconds"] + (time.perf_counter() - block_started
                                              if state["next_block"] < len(self.blocks) else 0.0)

        # final rows: exact maps of the kept pairs for the argmax (and the top maps)
        kept = spill.read() if spill is not None else topk.best()
        kept = kept[rank_order(kept)]
        if config.top is not None:
            kept = kept[: config.top]
        rows, maps = self.final_rows(kept)
        bad = [r for r in rows if not (math.isfinite(r.logit) and math.isfinite(r.map_probability))]
        if bad:
            raise UserError(f"{config.checkpoint}: the model gives non-finite scores (NaN or infinite) for "
                            f"{len(bad)} of {len(rows)} kept pairs (e.g. {bad[0].id_a}/{bad[0].id_b}); nothing was "
                            "written: the checkpoint is broken, use another one")
        write_hits(self.out, rows)
        if config.maps:
            write_maps(Path(config.maps), [Pair(r.id_a, r.id_b, "", "") for r in rows[: config.maps_top]],
                       maps, attrs={"source": "protein-loftr screen", "checkpoint": str(config.checkpoint)})
        seconds = time.perf_counter() - started
        summary = ScreenSummary(
            out=str(self.out), rows=len(rows), pairs_total=self.plan.total_pairs, pairs_shard=shard_pairs,
            pairs_exact=state["pairs_exact"], mode=config.mode, shard=f"{self.shard}/{self.n_shards}",
            seconds=round(seconds, 2), pairs_per_s=round(shard_pairs / max(scoring_seconds, 1e-9), 1),
            features_spilled=self.spilled, maps=config.maps, resumed_from_block=resumed_from,
            extra={"blocks": len(self.blocks), "coarse_threshold": config.coarse_threshold,
                   "scoring_seconds": round(scoring_seconds, 2)})
        _write_json(summary_path, {"config": config.to_dict(), "fingerprint": self.fingerprint,
                                   "summary": asdict(summary), "tsv_sha256": file_sha256(self.out),
                                   "command": sys.argv, "complete": True})
        shutil.rmtree(self.state_dir, ignore_errors=True)
        return summary

    def final_rows(self, kept: np.ndarray) -> tuple[list[HitRow], list[np.ndarray]]:
        """Expand kept pairs to their id rows, best first; maps (oriented as id_a x id_b) of the top rows."""
        config = self.config
        rows_idx, cols_idx = kept["row"].astype(np.int64), kept["col"].astype(np.int64)
        expanded: list[tuple[HitRow, int, bool]] = []
        for k, (i, j, logit) in enumerate(zip(rows_idx.tolist(), cols_idx.tolist(), kept["logit"].tolist())):
            for id_a, id_b, swapped in self.plan.rows_of(i, j):
                expanded.append((HitRow(id_a, id_b, float(np.float32(logit)), 0, 0, 0.0), k, swapped))
        expanded.sort(key=lambda item: item[0].sort_key())
        if config.top is not None:
            expanded = expanded[: config.top]
        used = sorted({k for _, k, _ in expanded})
        with_maps = {k for _, k, _ in expanded[: config.maps_top]} if config.maps else set()
        pair_maps: dict[int, np.ndarray] = {}
        info: dict[int, tuple[int, int, float]] = {}
        if used:
            self.encode(rows_idx[used], cols_idx[used])
            for subset, want_maps in ((sorted(with_maps), True), (sorted(set(used) - with_maps), False)):
                if not subset:
                    continue
                arg_a, arg_b, map_max, maps = self.locate(rows_idx[subset], cols_idx[subset], want_maps)
                for n, k in enumerate(subset):
                    info[k] = (int(arg_a[n]), int(arg_b[n]), float(map_max[n]))
                    if want_maps:
                        pair_maps[k] = maps[n]  # type: ignore[index]
        rows: list[HitRow] = []
        maps_out: list[np.ndarray] = []
        for position, (row, k, swapped) in enumerate(expanded):
            arg_a, arg_b, map_max = info[k]
            if swapped:
                arg_a, arg_b = arg_b, arg_a
            row.residue_a, row.residue_b = arg_a + 1, arg_b + 1
            row.map_probability = float(probability(map_max))
            rows.append(row)
            if config.maps and position < config.maps_top:
                maps_out.append(pair_maps[k].T if swapped else pair_maps[k])
        return rows, maps_out


def _changed_keys(first: dict, second: dict) -> list[str]:
    return sorted(k for k in first.keys() | second.keys() if first.get(k, "?") != second.get(k, "?"))


def _min_logit(min_prob: float | None) -> float | None:
    """The smallest float32 logit whose probability (as `probability` computes it) reaches min_prob."""
    if min_prob is None:
        return None
    if min_prob <= 0.0:
        return -np.inf
    if min_prob >= 1.0:
        return np.inf
    guess = np.float32(math.log(min_prob / (1.0 - min_prob)))
    while probability(guess) >= min_prob:  # step down to the boundary, then back up
        guess = np.nextafter(guess, np.float32(-np.inf))
    while probability(guess) < min_prob:
        guess = np.nextafter(guess, np.float32(np.inf))
    return float(guess)


def _write_json(path: Path, payload: dict) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, default=str))


def run_screen(config: ScreenConfig, progress: ProgressFn | None = None,
               after_block: Callable[[int], None] | None = None) -> ScreenSummary:
    """Screen the pair space of `config` (or its shard); resumes an unfinished run with the same settings.

    progress(phase, advance, total) is called with phase "encode" (proteins) and "pairs";
    after_block(position) runs after each finished block (tests use it to interrupt a run)."""
    with torch.inference_mode():
        return Screener(config, progress, after_block).run()


# -- merge -------------------------------------------------------------------------------------------------------
def merge_screens(inputs: list[str | Path], out: str | Path, maps: str | None = None,
                  overwrite: bool = False) -> ScreenSummary:
    """Join the outputs of the shards 0..N-1 of one screen into the result one run would give."""
    out = Path(out)
    if not inputs:
        raise UserError("screen-merge needs the TSV outputs of the shards")
    shard_files = {f"shard {path}": path for path in inputs}
    shard_files.update({f"summary of shard {path}": summary_path_for(Path(path)) for path in inputs})
    check_outputs({"--out": out, "summary of --out": summary_path_for(out), "--maps": maps}, shard_files, overwrite)
    with FileLock(out, "screen output"):
        return _merge_locked(inputs, out, maps)


def _check_shard(path: Path, info: dict, rows: list[HitRow]) -> None:
    """A shard's TSV holds what its sidecar says: its row count and (when recorded) its SHA-256."""
    expected = info.get("summary", {}).get("rows")
    if expected is not None and expected != len(rows):
        raise UserError(f"{path} holds {len(rows)} rows but {summary_path_for(path).name} says the screen wrote "
                        f"{expected}: the shard is truncated or was edited; re-run that shard")
    digest = info.get("tsv_sha256")
    if digest is not None and file_sha256(path) != digest:
        raise UserError(f"{path} does not match the content hash (SHA-256) in {summary_path_for(path).name}: it was "
                        "changed after the screen wrote it; re-run that shard")


def _merge_locked(inputs: list[str | Path], out: Path, maps: str | None) -> ScreenSummary:
    for path in (out, summary_path_for(out), maps):
        if path:
            remove_stale_partials(path)
    runs = []
    for path in inputs:
        path = Path(path)
        summary_file = summary_path_for(path)
        if not path.exists() or not summary_file.exists():
            raise UserError(f"{path}: not a finished screen output (missing {path} or {summary_file.name}; "
                            "is the shard still running?)")
        try:
            runs.append((path, json.loads(summary_file.read_text(encoding="utf-8"))))
        except (ValueError, UnicodeDecodeError) as exc:
            raise UserError(f"{summary_file}: not a screen summary (unreadable JSON: {exc})") from None
    check_outputs({"--maps": maps}, {f"maps of shard {path}": info["config"].get("maps") for path, info in runs},
                  overwrite=True)  # existing outputs were checked above; a shard's maps file is an input too
    first = runs[0][1]["fingerprint"]
    for path, info in runs[1:]:
        changed = _changed_keys(first, info["fingerprint"])
        if changed:
            raise UserError(f"{path} comes from a screen with other settings or inputs than {runs[0][0]} "
                            f"({', '.join(changed)})")
    n_shards = first["n_shards"]
    shards = [int(info["summary"]["shard"].split("/")[0]) for _, info in runs]
    missing = sorted(set(range(n_shards)) - set(shards))
    repeated = sorted({s for s in shards if shards.count(s) > 1})
    if missing or repeated:
        raise UserError(f"screen-merge needs each shard 0..{n_shards - 1} once: "
                        + (f"missing {missing}" if missing else "") + (f" repeated {repeated}" if repeated else ""))
    config = runs[0][1]["config"]
    rows: list[HitRow] = []
    row_maps: dict[tuple[str, str], tuple[Path, str]] = {}
    for path, info in runs:
        shard_rows = read_hits(path)
        _check_shard(path, info, shard_rows)
        rows.extend(shard_rows)
        maps_file = info["config"].get("maps")
        if maps and maps_file:
            import h5py
            with h5py.File(maps_file, "r") as handle:
                for name in handle["maps"]:
                    attrs = handle["maps"][name].attrs
                    row_maps[(str(attrs["id_a"]), str(attrs["id_b"]))] = (Path(maps_file), name)
    rows.sort(key=HitRow.sort_key)
    if config["top"] is not None:
        rows = rows[: config["top"]]
    write_hits(out, rows)
    if maps:
        import h5py
        top_rows = rows[: config["maps_top"]]
        missing_maps = [r for r in top_rows if (r.id_a, r.id_b) not in row_maps]
        if missing_maps:
            raise UserError(f"the shards hold no map for {len(missing_maps)} of the top {len(top_rows)} rows "
                            f"(e.g. {missing_maps[0].id_a} {missing_maps[0].id_b}): run the shards with --maps "
                            "and the same --maps-top")
        arrays = []
        for row in top_rows:
            file, name = row_maps[(row.id_a, row.id_b)]
            with h5py.File(file, "r") as handle:
                arrays.append(handle["maps"][name][()])
        write_maps(Path(maps), [Pair(r.id_a, r.id_b, "", "") for r in top_rows], arrays,
                   attrs={"source": "protein-loftr screen-merge", "checkpoint": str(config["checkpoint"])})
    summaries = [info["summary"] for _, info in runs]
    summary = ScreenSummary(
        out=str(out), rows=len(rows), pairs_total=summaries[0]["pairs_total"],
        pairs_shard=sum(s["pairs_shard"] for s in summaries), pairs_exact=sum(s["pairs_exact"] for s in summaries),
        mode=summaries[0]["mode"], shard=f"merged {n_shards}", seconds=sum(s["seconds"] for s in summaries),
        pairs_per_s=0.0, features_spilled=any(s["features_spilled"] for s in summaries), maps=maps,
        extra={"inputs": [str(p) for p, _ in runs]})
    merged_config = dict(config, out=str(out), maps=maps, shard=None)
    _write_json(summary_path_for(out), {"config": merged_config, "fingerprint": first, "summary": asdict(summary),
                                        "command": sys.argv, "complete": True})
    return summary
