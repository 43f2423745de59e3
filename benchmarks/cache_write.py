"""How fast a cache can be written: the stage-one writer's ceiling in pairs/s.

The same maps (shaped like contact probabilities and head-averaged attention, yeast pair lengths; see
benchmarks/cache_storage.py) go through `CacheBuilder` with the default storage (float16, gzip 4, shuffle), as
  hdf5 filter      HDF5 compresses each chunk in its own filter pipeline (one thread, as before chunk compression)
  chunks, 1 thread our gzip of whole chunks (`writer.gzip_chunk`), written with write_direct_chunk
  chunks, N threads the same on a pool of N threads
Rows run in alternating order over --rounds rounds; each row gives wall seconds, pairs/s and process CPU seconds
summed over rounds, and every file is checked to decode to the same values.

    python -m benchmarks.cache_write --n-pairs 200 --json bench_out/cache_write.json

A stage-one run cannot store pairs faster than its writer: compare pairs/s here with the teacher's pairs/s
(benchmarks/precompute.py, benchmarks/roofline.py).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from benchmarks.cache_storage import shaped_workload, yeast_or_generated_pairs
from benchmarks.common import write_result
from teacher_cache import CacheBuilder
from teacher_cache.writer import default_compression_threads

META = dict(teacher="synthetic", model="cache-write-benchmark", embedding_dim=8, random_weights=True,
            settings={"generator": "benchmarks/cache_write.py"})


def write(path: Path, maps: list, threads: int, direct: bool) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) to build and commit a cache of `maps`."""
    started, cpu_started = time.perf_counter(), time.process_time()
    builder = CacheBuilder(path, META, compression_threads=threads)
    builder._direct_chunks = direct and builder._direct_chunks  # the "hdf5 filter" row: HDF5's own pipeline
    with builder:
        for seq_a, seq_b, contact, attention in maps:
            builder.add_pair(seq_a, seq_b, contact, attention)
            for seq in (seq_a, seq_b):
                if not builder.has_protein(seq):
                    builder.add_protein(seq, np.zeros(8, dtype=np.float32))
    return time.perf_counter() - started, time.process_time() - cpu_started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-pairs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=default_compression_threads(),
                        help="threads of the last row (default: this machine's, at most 8)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    pairs, source = yeast_or_generated_pairs(args.n_pairs, rng)
    maps = shaped_workload(pairs, rng)
    cells = sum(contact.size for _, _, contact, _ in maps)
    rows = {"hdf5 filter": (1, False), "chunks, 1 thread": (1, True), f"chunks, {args.threads} threads":
            (args.threads, True)}
    totals = {name: {"seconds": 0.0, "cpu_seconds": 0.0} for name in rows}
    with tempfile.TemporaryDirectory() as tmp:
        for round_number in range(args.rounds):
            order = list(rows) if round_number % 2 == 0 else list(rows)[::-1]
            for name in order:
                path = Path(tmp) / f"{name.replace(' ', '_').replace(',', '')}.h5"
                path.unlink(missing_ok=True)
                wall, cpu = write(path, maps, *rows[name])
                totals[name]["seconds"] += wall
                totals[name]["cpu_seconds"] += cpu
                totals[name]["bytes"] = path.stat().st_size
        reference = None
        for name in rows:  # every variant decodes to the same stored values
            with h5py.File(Path(tmp) / f"{name.replace(' ', '_').replace(',', '')}.h5", "r") as handle:
                values = [handle["pairs"][map_name][()] for map_name in ("contact", "attention")]
            if reference is None:
                reference = values
            for mine, theirs in zip(values, reference):
                np.testing.assert_array_equal(mine, theirs)

    n = args.n_pairs * args.rounds
    print(f"{args.n_pairs} pairs x {args.rounds} rounds from {source}: {cells:,} cells per map per round "
          f"({cells / args.n_pairs:,.0f} per pair); default storage (float16, gzip 4, shuffle, 16k-cell chunks); "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    print(f"{'':<20} {'seconds':>8} {'pairs/s':>8} {'CPU s':>7} {'MB raw/s':>9} {'file MB':>8}")
    for name, total in totals.items():
        total["pairs_per_s"] = n / total["seconds"]
        total["raw_mb_per_s"] = n * (cells / args.n_pairs) * 2 * 4 / total["seconds"] / 1e6  # two float32 maps
        print(f"{name:<20} {total['seconds']:8.2f} {total['pairs_per_s']:8.1f} {total['cpu_seconds']:7.2f} "
              f"{total['raw_mb_per_s']:9.1f} {total['bytes'] / 1e6:8.2f}")
    base = totals["hdf5 filter"]["seconds"]
    for name in list(rows)[1:]:
        print(f"{name} vs hdf5 filter: {base / totals[name]['seconds']:.2f}x pairs/s")
    print("every variant decodes to identical stored values")
    if args.json:
        write_result(args.json, {"n_pairs": args.n_pairs, "rounds": args.rounds, "cells_per_map": cells,
                                 "source": source, "rows": totals})


if __name__ == "__main__":
    main()
