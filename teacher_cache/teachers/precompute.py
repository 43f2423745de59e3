"""Stage one: run the ESM-2 teacher over a pairs table and write (or extend) a teacher cache.

    run_precompute(PrecomputeConfig(pairs=..., fasta=..., model=..., out="cache.h5"), progress=callback)

1. Read and validate the inputs, check that --out can be written (before anything is loaded).
2. Hold `CacheLock(out)` for the whole run; load the teacher; work out the cache fingerprint.
3. Skip every protein and pair already in --out (same fingerprint) or in a finished part under `OUT.parts/`.
4. Compute what is missing (length-sorted batches under a token budget; long inputs tiled), committing a small
   complete cache `OUT.parts/part-NNNNNN.h5` at least every `checkpoint_seconds`.
5. Merge --out and the parts into --out (atomic replace), then delete the parts.

A run killed at any point leaves --out as it was (or complete) plus finished parts; the re-run completes the work.
Work is keyed by content (`data.keys`), so a pair in either orientation or under other ids is computed once: the
teacher always sees it as `first + linker + second` in canonical order (the chain whose sequence key sorts first
is A), whatever the order in the pairs table; the reader transposes for the other orientation.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from data.atomic import check_free_space, check_outputs
from data.errors import UserError
from data.fasta import read_fasta
from data.keys import canonical_pair, sequence_key
from data.pairs import read_pairs
from teacher_cache.teachers.config import PrecomputeConfig
from teacher_cache.errors import CacheError
from teacher_cache.lock import CacheLock
from teacher_cache.reader import TeacherCache
from teacher_cache.schema import FORMAT_NAME, SCHEMA_VERSION, StorageConfig, fingerprint
from teacher_cache.teachers.tiling import MapStitcher, RowStitcher, plan_chain, plan_pair
from teacher_cache.merge import merge_caches
from teacher_cache.writer import CacheBuilder

log = logging.getLogger(__name__)

RUNNER_VERSION = 1  # bump when the teacher computation changes what is stored; part of the fingerprint
MAX_MERGE_SOURCES = 128  # caches opened at once by one merge_caches call
Progress = Callable[[str, int, int], None]  # (stage "proteins" | "pairs", advance, total)


@dataclass
class PrecomputeResult:
    out: str
    teacher: str
    weights_sha256: str
    random_weights: bool
    fingerprint: str
    pairs_in_input: int
    pairs_in_shard: int
    pairs_cached: int  # already in --out or in parts of an earlier run
    pairs_computed: int
    pairs_tiled: int
    proteins_in_shard: int
    proteins_cached: int
    proteins_computed: int
    proteins_tiled: int
    forward_batches: int
    tokens: int  # non-padding tokens run through the teacher (BOS/EOS and linker included)
    compute_seconds: float  # inside the teacher's forward passes, proteins and pairs
    pair_tokens: int
    pair_seconds: float  # the pairs' share of compute_seconds
    seconds: float  # the whole run, loading and merging included
    parts_merged: int
    tokens_per_batch: int = 0  # what batching used (--tokens-per-batch, or what auto chose)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


# -- steps 1-2: inputs, output checks, metadata ------------------------------------------------------------------
def check_output_path(out: Path) -> None:
    if out.exists() and out.is_dir():
        raise UserError(f"--out {out} is a directory; give a file name such as {out / 'cache.h5'}")
    parent = out.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise UserError(f"cannot write {out}: {parent} {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {out}: directory {parent} is not writable")


def cache_settings(config: PrecomputeConfig, teacher_name: str, regression_sha256: str, attention_layers: list[int],
                   compute_dtype: str) -> dict:
    """Everything that decides the stored values (and nothing that does not: batch size, device, shard)."""
    return {"model": teacher_name, "contact_regression_sha256": regression_sha256, "linker": config.linker,
            "attention_layers": attention_layers, "max_tokens": config.max_tokens,
            "tile_overlap": config.tile_overlap, "compute_dtype": compute_dtype, "per_residue": config.per_residue,
            "runner_version": RUNNER_VERSION}


def expected_fingerprint(meta: dict) -> str:
    """The fingerprint CacheBuilder will write for `meta` (same attribute encoding as its commit)."""
    attrs = {"format": FORMAT_NAME, "schema_version": SCHEMA_VERSION, "teacher": meta["teacher"],
             "model": meta.get("model", ""), "weights_sha256": meta.get("weights_sha256", ""),
             "settings": json.dumps(meta["settings"], sort_keys=True)}
    return fingerprint(attrs)


def parts_dir_of(out: Path) -> Path:
    return Path(f"{out}.parts")


# -- step 3: what is already there ----------------------------------------------------------------------------------
@dataclass
class _Done:
    pairs: set[tuple[str, str]] = field(default_factory=set)
    proteins: set[str] = field(default_factory=set)
    out_usable: bool = False
    parts: list[Path] = field(default_factory=list)


def _remove_stale_temporaries(out: Path, parts_dir: Path) -> None:
    """Temporary files of a killed writer (we hold the lock, so no live writer owns them)."""
    stale = list(out.parent.glob(f"{out.name}.partial-*"))
    if parts_dir.is_dir():
        stale += list(parts_dir.glob("*.partial-*"))
    for path in stale:
        log.info("removing %s left by an interrupted run", path)
        path.unlink(missing_ok=True)


def _existing_work(out: Path, parts_dir: Path, expected: str, overwrite: bool) -> _Done:
    done = _Done()
    if out.exists():
        try:
            with TeacherCache.open(out) as cache:
                compatible = cache.fingerprint == expected
                if compatible:
                    done.pairs.update(cache.pair_keys())
                    done.proteins.update(cache.protein_keys())
                what = (f"was built with another teacher or settings (fingerprint {cache.fingerprint}, this run "
                        f"{expected}; teacher {cache.teacher} {cache.attrs.get('model', '')}, settings "
                        f"{json.dumps(cache.settings, sort_keys=True)})")
        except CacheError as exc:
            compatible, what = False, f"is not a usable teacher cache ({exc})"
        if not compatible and not overwrite:
            raise CacheError(f"--out {out} {what}; refusing to replace it: pass --overwrite to replace it, or "
                             "choose another --out")
        if not compatible:
            log.warning("%s %s; it will be replaced (--overwrite)", out, what)
        done.out_usable = compatible
    if parts_dir.is_dir():
        for part in sorted(parts_dir.glob("part-*.h5")):
            try:
                with TeacherCache.open(part) as cache:
                    part_fingerprint = cache.fingerprint
                    keys = (cache.pair_keys(), cache.protein_keys())
            except CacheError as exc:  # parts are renamed into place complete, so this is a damaged disk or file
                log.warning("discarding unreadable part %s (%s)", part, exc)
                part.unlink(missing_ok=True)
                continue
            if part_fingerprint != expected:
                if not overwrite:
                    raise CacheError(
                        f"{part} holds results of an interrupted run with other settings or another teacher "
                        f"(fingerprint {part_fingerprint}, this run {expected}); re-run with that run's options to "
                        f"finish it, or pass --overwrite to discard {parts_dir}")
                log.warning("discarding %s: other settings (--overwrite)", part)
                part.unlink()
                continue
            done.pairs.update(keys[0])
            done.proteins.update(keys[1])
            done.parts.append(part)
    return done


# -- step 4: computing ---------------------------------------------------------------------------------------------
def _next_part_path(parts_dir: Path) -> Path:
    numbers = [int(p.stem[5:]) for p in parts_dir.glob("part-*.h5") if p.stem[5:].isdigit()]
    return parts_dir / f"part-{max(numbers, default=-1) + 1:06d}.h5"


class _PartWriter:
    """Results go into `parts_dir/part-NNNNNN.h5`, committed (atomically) at least every `every` seconds.

    Encoding, compression and HDF5 writes run on one background thread, so they overlap the teacher's next forward
    pass (torch releases the GIL inside its kernels). The queue holds at most `depth` pending items, which bounds
    the memory of maps waiting to be written. An error on the writer thread is raised on the caller's next call.
    """

    def __init__(self, parts_dir: Path, meta: dict, storage: StorageConfig, every: float, depth: int = 256):
        self.parts_dir, self.meta, self.storage, self.every = parts_dir, meta, storage, every
        self.written: list[Path] = []
        self._builder: CacheBuilder | None = None
        self._opened = 0.0
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="cache-part-writer", daemon=True)
        self._thread.start()

    # -- the writer thread ----------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            task = self._queue.get()
            try:
                if task is None:
                    return
                if self._error is None:
                    task()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                self._error = exc
            finally:
                self._queue.task_done()

    def _open_builder(self) -> CacheBuilder:
        if self._builder is None:
            self.parts_dir.mkdir(exist_ok=True)
            self._builder = CacheBuilder(_next_part_path(self.parts_dir), self.meta, self.storage)
            self._opened = time.monotonic()
        return self._builder

    def _commit_if_due(self) -> None:
        if self._builder is not None and time.monotonic() - self._opened >= self.every:
            self._commit_now()

    def _commit_now(self) -> None:
        if self._builder is not None:
            self.written.append(self._builder.commit())
            self._builder = None

    # -- the caller's side ----------------------------------------------------------------------------------
    def _submit(self, task: Callable[[], None]) -> None:
        self._raise_pending()
        self._queue.put(task)

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def add_pair(self, seq_a: str, seq_b: str, contact, attention, tiled: bool) -> None:
        self._submit(lambda: self._open_builder().add_pair(seq_a, seq_b, contact, attention, tiled=tiled))

    def add_protein(self, sequence: str, embedding, residue_embedding, tiled: bool) -> None:
        self._submit(lambda: self._open_builder().add_protein(sequence, embedding, residue_embedding, tiled=tiled))

    def batch_done(self) -> None:
        self._submit(self._commit_if_due)

    def commit(self, even_if_empty: bool = False) -> None:
        """Write out everything queued and commit the open part (an empty one too when `even_if_empty`)."""
        if even_if_empty:
            self._submit(self._open_builder)
        self._submit(self._commit_now)
        self._queue.join()
        self._raise_pending()

    def abort(self) -> None:
        """Commit what was queued before the failure as a finished part (the re-run keeps it), then stop."""
        self._queue.join()
        if self._error is None:
            try:
                self._commit_now()
            except Exception:  # noqa: BLE001 - the original failure is what the caller re-raises
                pass
        if self._builder is not None:
            self._builder.abort()
            self._builder = None
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


@dataclass
class _Counters:
    batches: int = 0
    tokens: int = 0  # non-padding tokens, BOS/EOS and linker included
    seconds: float = 0.0  # time inside the teacher's forward passes


def _shard_block(items: list, shard: tuple[int, int]) -> list:
    index, count = shard
    start, stop = len(items) * index // count, len(items) * (index + 1) // count
    return items[start:stop]


def _chain_tokens(window: tuple[int, int]) -> int:
    """Tokens of one chain window's forward input: BOS + residues + EOS."""
    start, stop = window
    return stop - start + 2


def _pair_tokens(window_a: tuple[int, int], window_b: tuple[int, int], linker: str) -> int:
    """Tokens of one pair window's forward input: BOS + A + linker + B + EOS."""
    return (window_a[1] - window_a[0]) + (window_b[1] - window_b[0]) + len(linker) + 2


def _one_batch_behind(batches: list[list[int]], launch: Callable[[list[int]], Any],
                      finish: Callable[[list[int], Any], None]) -> None:
    """launch(batch) for each batch in order, and finish(batch, launched) one batch behind.

    On CUDA, launch queues a batch's forward pass and the copy of its results to the host (`runner.HostCopy`)
    without waiting for the device, and finish waits for that copy: the device works on batch k + 1 while the
    host stitches batch k and queues it for writing. On CPU, launch computes and the order changes nothing.
    Device memory holds at most two batches' results. When a launch fails, the batch before it is still finished
    (its results are kept).
    """
    pending: tuple[list[int], Any] | None = None
    for batch in batches:
        try:
            launched = launch(batch)
        except BaseException:
            if pending is not None:
                finish(*pending)
            raise
        if pending is not None:
            finish(*pending)
        pending = (batch, launched)
    if pending is not None:
        finish(*pending)


def _compute_proteins(teacher, sequences: list[str], config: PrecomputeConfig, writer: _PartWriter,
                      counters: _Counters, progress: Progress | None) -> int:
    """Embeddings of `sequences` (each tiled when longer than the context); returns how many were tiled."""
    from teacher_cache.teachers.esm_runner import HostCopy, batch_indices

    tasks = [(seq, window) for seq in sequences for window in plan_chain(len(seq), config.max_tokens,
                                                                          config.tile_overlap)]
    windows_left = {seq: len(plan_chain(len(seq), config.max_tokens, config.tile_overlap)) for seq in sequences}
    stitchers: dict[str, RowStitcher] = {}
    tiled = 0

    def launch(batch: list[int]) -> HostCopy:
        texts = [tasks[i][0][slice(*tasks[i][1])] for i in batch]
        started = time.perf_counter()
        rows = HostCopy(teacher.residue_embeddings_on_device(texts))
        counters.seconds += time.perf_counter() - started
        counters.batches += 1
        counters.tokens += sum(len(text) + 2 for text in texts)
        return rows

    def finish(batch: list[int], copy: HostCopy) -> None:
        nonlocal tiled
        started = time.perf_counter()
        rows = copy.arrays()  # on CUDA, waits for this batch's pass and copy
        counters.seconds += time.perf_counter() - started
        finished = 0
        for i, values in zip(batch, rows):
            seq, window = tasks[i]
            stitcher = stitchers.setdefault(seq, RowStitcher(len(seq), values.shape[1]))
            stitcher.add(window, values)
            windows_left[seq] -= 1
            if windows_left[seq] == 0:
                residues = stitchers.pop(seq).result()  # (L, D)
                is_tiled = len(seq) + 2 > config.max_tokens
                tiled += is_tiled
                writer.add_protein(seq, residues.mean(0), residues if config.per_residue else None,
                                   tiled=is_tiled)
                finished += 1
        writer.batch_done()
        if progress and finished:
            progress("proteins", finished, len(sequences))

    _one_batch_behind(batch_indices([_chain_tokens(window) for _, window in tasks], config.tokens_per_batch),
                      launch, finish)
    return tiled


def _compute_pairs(teacher, pairs: list[tuple[str, str]], config: PrecomputeConfig, attention_layers: list[int],
                   writer: _PartWriter, counters: _Counters, progress: Progress | None) -> int:
    """Maps of `pairs` (tiled where they exceed the context); returns how many were tiled."""
    from teacher_cache.teachers.esm_runner import HostCopy, batch_indices

    linker = config.linker
    plans = [plan_pair(len(a), len(b), config.max_tokens, len(linker), config.tile_overlap) for a, b in pairs]
    tasks = [(p, wa, wb) for p, plan in enumerate(plans) for wa, wb in plan]
    windows_left = [len(plan) for plan in plans]
    stitchers: dict[int, MapStitcher] = {}
    tiled = 0
    lengths = [_pair_tokens(wa, wb, linker) for _, wa, wb in tasks]

    def launch(batch: list[int]) -> HostCopy:
        inputs = [(pairs[tasks[i][0]][0][slice(*tasks[i][1])], pairs[tasks[i][0]][1][slice(*tasks[i][2])])
                  for i in batch]
        started = time.perf_counter()
        maps = teacher.pair_maps_on_device(inputs, linker, attention_layers)
        copy = HostCopy([values for pair_maps in maps for values in pair_maps])  # contact, attention, contact, ...
        counters.seconds += time.perf_counter() - started
        counters.batches += 1
        counters.tokens += sum(lengths[i] for i in batch)
        return copy

    def finish(batch: list[int], copy: HostCopy) -> None:
        nonlocal tiled
        started = time.perf_counter()
        arrays = copy.arrays()  # on CUDA, waits for this batch's pass and copy
        maps = list(zip(arrays[0::2], arrays[1::2]))
        counters.seconds += time.perf_counter() - started
        finished = 0
        for i, (contact, attention) in zip(batch, maps):
            p, wa, wb = tasks[i]
            seq_a, seq_b = pairs[p]
            if len(plans[p]) == 1:
                writer.add_pair(seq_a, seq_b, contact, attention, tiled=False)
                finished += 1
                continue
            stitcher = stitchers.setdefault(p, MapStitcher(len(seq_a), len(seq_b)))
            stitcher.add(wa, wb, contact=contact, attention=attention)
            windows_left[p] -= 1
            if windows_left[p] == 0:
                stitched = stitchers.pop(p).result()
                writer.add_pair(seq_a, seq_b, stitched["contact"], stitched["attention"], tiled=True)
                tiled += 1
                finished += 1
        writer.batch_done()
        if progress and finished:
            progress("pairs", finished, len(pairs))

    _one_batch_behind(batch_indices(lengths, config.tokens_per_batch), launch, finish)
    return tiled


def _fit_tokens_per_batch(teacher, config: PrecomputeConfig, proteins: list[str],
                          pairs: list[tuple[str, str]]) -> int:
    """--tokens-per-batch auto: fitted to the device's free memory for the longest forward input of this run."""
    from teacher_cache.teachers.batch_size import auto_tokens_per_batch

    windows = [_chain_tokens(window) for seq in proteins
               for window in plan_chain(len(seq), config.max_tokens, config.tile_overlap)]
    windows += [_pair_tokens(wa, wb, config.linker) for a, b in pairs
                for wa, wb in plan_pair(len(a), len(b), config.max_tokens, len(config.linker), config.tile_overlap)]
    if not windows:
        return 1
    return auto_tokens_per_batch(teacher.device, max(windows), teacher.info.attention_heads, teacher.info.embed_dim)


def estimated_bytes(pairs: list[tuple[str, str]], proteins: list[str], embedding_dim: int, per_residue: bool,
                    storage: StorageConfig | None = None) -> int:
    """What the new entries take on disk before compression: two maps per pair in the storage dtype, one
    embedding per protein (and per residue with per_residue). The parts and the merged file coexist for a moment,
    so the compressed total of both is about this."""
    item = np.dtype((storage or StorageConfig()).dtype).itemsize
    cells = sum(len(a) * len(b) for a, b in pairs)
    residues = sum(len(seq) for seq in proteins) if per_residue else 0
    return 2 * cells * item + 4 * embedding_dim * (len(proteins) + residues) + 200 * (len(pairs) + len(proteins))


# -- step 5: merging -------------------------------------------------------------------------------------------------
def _merge(out: Path, parts_dir: Path, parts: list[Path], include_out: bool) -> None:
    """Join the parts (and --out, when compatible) into --out; merge in groups so few files are open at once."""
    parts = list(parts)
    while len(parts) + include_out > MAX_MERGE_SOURCES:
        group, parts = parts[:MAX_MERGE_SOURCES], parts[MAX_MERGE_SOURCES:]
        merged = _next_part_path(parts_dir)
        merge_caches(group, merged)
        for part in group:
            part.unlink()
        parts.append(merged)
    # parts first: the merged file's run_config attribute then comes from this (or the interrupted) run
    merge_caches(parts + ([out] if include_out else []), out, overwrite=True, locked=True)  # we hold its lock


# -- the whole stage -------------------------------------------------------------------------------------------------
def run_precompute(config: PrecomputeConfig, progress: Progress | None = None) -> PrecomputeResult:
    """Compute and store every missing entry of this shard; see the module docstring."""
    started = time.monotonic()
    config.validate()
    out = Path(config.out)
    check_output_path(out)
    model = Path(config.model).expanduser()  # a hub name names no local file, and is no input here
    local_model = {"--model": model, "contact regression of --model":
                   model.with_name(f"{model.stem}-contact-regression.pt")} if model.is_file() else {}
    # An existing --out is this command's to extend (or, with --overwrite, to replace): see _existing_work.
    check_outputs({"--out": out}, {"--pairs": config.pairs, "--fasta": config.fasta, **local_model}, overwrite=True)
    sequences = read_fasta(config.fasta)
    table = read_pairs(config.pairs, sequences)
    pair_sequences = [(p.seq_a, p.seq_b) for p in table.pairs]

    with CacheLock(out):
        from teacher_cache.teachers.esm_runner import dtype_name, load_teacher

        teacher = load_teacher(config.model, config.device, config.precision)
        info = teacher.info
        if info.random_weights:
            log.warning("teacher %s holds RANDOM weights (its checkpoint says so): the cache is for tests only",
                        info.model_path)
        attention_layers = teacher.resolve_layers(config.attention_layers)
        compute_dtype = dtype_name(teacher.dtype)
        settings = cache_settings(config, info.name, info.regression_sha256, attention_layers, compute_dtype)
        run_config = config.to_dict() | {"attention_layers_resolved": attention_layers,
                                         "compute_dtype": compute_dtype, "model_path": info.model_path}
        meta = {"teacher": "esm2", "model": info.name, "weights_sha256": info.weights_sha256,
                "random_weights": info.random_weights, "embedding_dim": info.embed_dim,
                "num_layers": info.num_layers, "attention_heads": info.attention_heads,
                "settings": settings, "run_config": json.dumps(run_config, sort_keys=True)}
        expected = expected_fingerprint(meta)
        parts_dir = parts_dir_of(out)
        _remove_stale_temporaries(out, parts_dir)
        done = _existing_work(out, parts_dir, expected, config.overwrite)

        # The work lists: de-duplicated by content, sorted by (length, key) so every shard sees the same order.
        unique_pairs: dict[tuple[str, str], tuple[str, str]] = {}
        for seq_a, seq_b in pair_sequences:
            first, second, swapped = canonical_pair(sequence_key(seq_a), sequence_key(seq_b))
            unique_pairs.setdefault((first, second), (seq_b, seq_a) if swapped else (seq_a, seq_b))
        pair_work = sorted(unique_pairs.items(), key=lambda item: (len(item[1][0]) + len(item[1][1]), item[0]))
        pair_shard = _shard_block(pair_work, config.shard)
        # Each shard embeds the proteins its own pairs use, so every shard file is a complete cache by itself
        # (a protein shared by two shards is computed twice; `cache merge` keeps one copy).
        shard_proteins = {sequence_key(seq): seq for _, seqs in pair_shard for seq in seqs}
        protein_shard = sorted(shard_proteins.items(), key=lambda item: (len(item[1]), item[0]))
        pairs_todo = [seqs for key, seqs in pair_shard if key not in done.pairs]
        proteins_todo = [seq for key, seq in protein_shard if key not in done.proteins]
        log.info("%d of %d pairs and %d of %d proteins of this shard to compute", len(pairs_todo), len(pair_shard),
                 len(proteins_todo), len(protein_shard))

        check_free_space(out, estimated_bytes(pairs_todo, proteins_todo, info.embed_dim, config.per_residue), "--out")
        tokens_per_batch = config.tokens_per_batch or _fit_tokens_per_batch(teacher, config, proteins_todo,
                                                                            pairs_todo)
        batching = replace(config, tokens_per_batch=tokens_per_batch)
        writer = _PartWriter(parts_dir, meta, StorageConfig(), config.checkpoint_seconds)
        protein_counters, pair_counters = _Counters(), _Counters()
        try:
            proteins_tiled = _compute_proteins(teacher, proteins_todo, batching, writer, protein_counters, progress)
            pairs_tiled = _compute_pairs(teacher, pairs_todo, batching, attention_layers, writer, pair_counters,
                                         progress)
            # nothing new and no usable --out (e.g. an empty shard): still write an (empty) cache
            writer.commit(even_if_empty=not (done.parts or writer.written or pairs_todo or proteins_todo)
                          and not done.out_usable)
        except BaseException:
            writer.abort()  # finished parts stay; the re-run picks them up
            raise
        writer.close()
        parts = done.parts + writer.written
        if parts or not done.out_usable:
            _merge(out, parts_dir, parts, done.out_usable)
        shutil.rmtree(parts_dir, ignore_errors=True)
        with TeacherCache.open(out) as cache:
            final_fingerprint = cache.fingerprint
    notes = []
    if info.random_weights:
        notes.append(f"teacher {info.name} holds RANDOM weights (the checkpoint says so): maps and embeddings are "
                     "for testing only")
    return PrecomputeResult(
        out=str(out), teacher=info.name, weights_sha256=info.weights_sha256, random_weights=info.random_weights,
        fingerprint=final_fingerprint, pairs_in_input=len(table.pairs), pairs_in_shard=len(pair_shard),
        pairs_cached=len(pair_shard) - len(pairs_todo), pairs_computed=len(pairs_todo), pairs_tiled=pairs_tiled,
        proteins_in_shard=len(protein_shard), proteins_cached=len(protein_shard) - len(proteins_todo),
        proteins_computed=len(proteins_todo), proteins_tiled=proteins_tiled,
        forward_batches=protein_counters.batches + pair_counters.batches,
        tokens=protein_counters.tokens + pair_counters.tokens,
        compute_seconds=protein_counters.seconds + pair_counters.seconds, pair_tokens=pair_counters.tokens,
        pair_seconds=pair_counters.seconds, seconds=time.monotonic() - started,
        parts_merged=len(parts), tokens_per_batch=tokens_per_batch, notes=notes)
