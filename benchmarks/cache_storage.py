"""How teacher maps should be stored: size, write time, random-read latency and fidelity per `StorageConfig`.

Workloads (each written once per storage variant through the project's own `CacheBuilder` / `TeacherCache`):
  shaped      maps of real yeast pair shapes (../shared/data/dscript-yeast when present, else generated lengths
              with the same median): a contact-like map (mostly tiny probabilities, a few hot interface cells)
              and an attention-like map (head-averaged attention, ~1/T with smooth structure and peaks).
  random-esm  the maps `teacher_cache.teachers.esm_runner` computes with a RANDOMLY INITIALISED ESM-2 of a real architecture
              (no real weights exist here): real value distributions of the pipeline, no biological signal.

Per variant: stored bytes per map cell (each map dataset, and the whole file per cell of both maps), write time,
read latency of one pair (`TeacherCache.pair`) in random order (median and p95; the file is in the OS page cache,
just written), and fidelity against the float32 original (max and mean absolute error, top-L/5 overlap).

    python -m benchmarks.cache_storage --n-pairs 200 --json cache_storage.json
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from benchmarks.common import SHARED_DATA, load_average, write_result
from data.alphabet import RESIDUES
from student.evaluation.map_metrics import default_k, top_k_overlap
from teacher_cache import CacheBuilder, StorageConfig, TeacherCache

YEAST = SHARED_DATA / "dscript-yeast"


class _Fletcher32Storage(StorageConfig):
    """The default encoding plus HDF5's per-chunk Fletcher-32 checksum (not a schema option; measured to decide)."""

    def dataset_options(self) -> dict:
        return {**super().dataset_options(), "fletcher32": True}


VARIANTS: dict[str, StorageConfig] = {
    "float16 gzip4 shuffle (default)": StorageConfig(),
    "float16 gzip1 shuffle": StorageConfig(compression_level=1),
    "float16 gzip6 shuffle": StorageConfig(compression_level=6),
    "float16 gzip4 no-shuffle": StorageConfig(shuffle=False),
    "float16 lzf shuffle": StorageConfig(compression="lzf"),
    "float16 uncompressed": StorageConfig(compression=None, shuffle=False),
    "float16 gzip4 chunk 64k (first default)": StorageConfig(chunk_cells=65536),
    "float16 gzip4 chunk 256k": StorageConfig(chunk_cells=262144),
    "float16 gzip4 +fletcher32": _Fletcher32Storage(),
    "uint8 gzip4": StorageConfig(dtype="uint8", shuffle=False),
    "float32 gzip4 shuffle": StorageConfig(dtype="float32"),
}


@dataclass
class Row:
    workload: str
    variant: str
    pairs: int
    cells_per_map: int
    contact_bytes_per_cell: float
    attention_bytes_per_cell: float
    file_bytes_per_cell: float  # whole file / (2 * cells_per_map)
    write_s: float
    write_cpu_s: float  # process CPU time of the write: less sensitive than wall time to a shared CPU
    read_median_ms: float
    read_p95_ms: float
    read_cpu_median_ms: float
    read_cpu_p95_ms: float
    contact_max_err: float
    contact_mean_err: float
    attention_max_err: float
    attention_mean_err: float
    contact_top_l5_overlap: float  # mean over pairs
    attention_top_l5_overlap: float


# -- workloads -----------------------------------------------------------------------------------------------------
def _random_sequence(rng: np.random.Generator, length: int) -> str:
    return "".join(rng.choice(list(RESIDUES[:20]), size=length))


def yeast_or_generated_pairs(n_pairs: int, rng: np.random.Generator, max_total: int | None = None,
                             use_yeast: bool = True) -> tuple[list[tuple[str, str]], str]:
    """Random pairs of the yeast table (real sequences and lengths) or, without it, generated ones."""
    if use_yeast and (YEAST / "seqs.fasta").exists() and (YEAST / "pairs.tsv").exists():
        from data.fasta import read_fasta

        # Only the shapes matter here, so the table is read without read_pairs' validation (the published table
        # repeats one pair with both labels, which read_pairs rightly refuses).
        sequences = read_fasta(YEAST / "seqs.fasta")
        rows = [line.split("\t")[:2] for line in (YEAST / "pairs.tsv").read_text().splitlines() if line.strip()]
        candidates = [(sequences[a], sequences[b]) for a, b in rows
                      if max_total is None or len(sequences[a]) + len(sequences[b]) <= max_total]
        chosen = rng.choice(len(candidates), size=min(n_pairs, len(candidates)), replace=False)
        return [candidates[i] for i in chosen], f"yeast pairs ({YEAST})"
    pairs = []
    while len(pairs) < n_pairs:
        la, lb = (int(np.clip(rng.lognormal(np.log(314), 0.55), 50, 800)) for _ in range(2))
        if max_total is None or la + lb <= max_total:
            pairs.append((_random_sequence(rng, la), _random_sequence(rng, lb)))
    return pairs, "generated lengths (lognormal, median 314, 50..800)"


def contact_like(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Inter-chain contact probabilities: a smooth low background (~1e-3) and a few hot interface patches."""
    la, lb = shape
    background = rng.normal(-7.0, 1.2, size=shape) + np.add.outer(rng.normal(0, 0.8, la), rng.normal(0, 0.8, lb))
    logits = background
    for _ in range(int(rng.integers(0, 4))):  # interface patches: short anti-diagonal stripes
        i, j, n = int(rng.integers(0, la)), int(rng.integers(0, lb)), int(rng.integers(3, 12))
        for step in range(n):
            if i + step < la and j - step >= 0:
                logits[i + step, j - step] = rng.normal(1.5, 1.5)
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def attention_like(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Head-averaged attention between chains: ~1/T with row/column structure and sparse peaks."""
    la, lb = shape
    total = la + lb + 27
    values = np.exp(rng.normal(0, 0.5, size=shape) + np.add.outer(rng.normal(0, 0.7, la), rng.normal(0, 0.7, lb)))
    values /= total
    peaks = rng.random(shape) < 0.002
    values[peaks] += rng.uniform(0.02, 0.3, size=int(peaks.sum()))
    return np.clip(values, 0.0, 1.0).astype(np.float32)


def shaped_workload(pairs: list[tuple[str, str]], rng: np.random.Generator) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    return [(a, b, contact_like(rng, (len(a), len(b))), attention_like(rng, (len(a), len(b)))) for a, b in pairs]


def random_esm_workload(pairs: list[tuple[str, str]], arch: str, workdir: Path
                        ) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """Maps from teacher_cache.teachers.esm_runner with a random ESM-2 of a real architecture (fair-esm format on disk)."""
    import torch

    from teacher_cache.teachers.config import DEFAULT_LINKER
    from teacher_cache.teachers.esm_runner import ARCHITECTURES, load_teacher, write_random_esm2

    layers, dim, heads = ARCHITECTURES[arch]
    model_path = write_random_esm2(workdir / "model", layers, dim, heads, seed=0, name=f"esm2_{arch}_random")
    teacher = load_teacher(str(model_path), device="cpu")
    out = []
    with torch.inference_mode():
        for a, b in pairs:
            contact, attention = teacher.pair_maps([(a, b)], DEFAULT_LINKER, [-1])[0]
            out.append((a, b, contact, attention))
    return out


# -- measurement ---------------------------------------------------------------------------------------------------
def measure(workload: str, maps: list[tuple[str, str, np.ndarray, np.ndarray]], name: str, storage: StorageConfig,
            workdir: Path, reads: int, rng: np.random.Generator) -> Row:
    path = workdir / f"{workload}-{name.replace(' ', '_').replace('(', '').replace(')', '')}.h5"
    path.unlink(missing_ok=True)
    meta = dict(teacher="esm2", model="benchmark", embedding_dim=4, random_weights=True,
                settings={"benchmark": "cache_storage", "workload": workload})
    start, start_cpu = time.perf_counter(), time.process_time()
    with CacheBuilder(path, meta, storage) as builder:
        for a, b, contact, attention in maps:
            builder.add_pair(a, b, contact, attention)
        for a, b, _, _ in maps:
            for seq in (a, b):
                builder.add_protein(seq, np.zeros(4, np.float32))
    write_s, write_cpu_s = time.perf_counter() - start, time.process_time() - start_cpu
    cells = sum(c.size for _, _, c, _ in maps)
    with h5py.File(path, "r") as handle:
        contact_bytes = handle["pairs/contact"].id.get_storage_size()
        attention_bytes = handle["pairs/attention"].id.get_storage_size()
    file_bytes = path.stat().st_size

    latencies, cpu_latencies = [], []
    errors = {"contact": [], "attention": []}
    overlaps = {"contact": [], "attention": []}
    with TeacherCache.open(path) as cache:
        order = np.concatenate([rng.permutation(len(maps)) for _ in range(-(-reads // len(maps)))])[:reads]
        for index in order:  # random order, each read timed alone
            a, b = maps[index][0], maps[index][1]
            t0, c0 = time.perf_counter(), time.process_time()
            cache.pair(a, b)
            latencies.append(time.perf_counter() - t0)
            cpu_latencies.append(time.process_time() - c0)
        for a, b, contact, attention in maps:
            decoded = cache.pair(a, b)
            for label, original, back in (("contact", contact, decoded.contact),
                                          ("attention", attention, decoded.attention)):
                diff = np.abs(back - original)
                errors[label].append((float(diff.max()), float(diff.sum()), diff.size))
                overlaps[label].append(top_k_overlap(back, original, default_k(original.shape)))
    latencies_ms, cpu_ms = np.array(latencies) * 1e3, np.array(cpu_latencies) * 1e3

    def err(label: str) -> tuple[float, float]:
        values = errors[label]
        return max(v[0] for v in values), sum(v[1] for v in values) / sum(v[2] for v in values)

    contact_max, contact_mean = err("contact")
    attention_max, attention_mean = err("attention")
    path.unlink()
    return Row(workload, name, len(maps), cells, contact_bytes / cells, attention_bytes / cells,
               file_bytes / (2 * cells), write_s, write_cpu_s, float(np.median(latencies_ms)),
               float(np.percentile(latencies_ms, 95)), float(np.median(cpu_ms)), float(np.percentile(cpu_ms, 95)),
               contact_max, contact_mean, attention_max, attention_mean,
               float(np.mean(overlaps["contact"])), float(np.mean(overlaps["attention"])))


def print_table(rows: list[Row]) -> None:
    header = (f"{'workload':<11} {'variant':<32} {'B/cell C':>8} {'B/cell A':>8} {'file B/c':>8} {'write s':>7} "
              f"{'w CPU s':>7} {'read ms':>7} {'p95 ms':>7} {'CPU ms':>7} {'CPU p95':>7} {'C maxerr':>9} {'C meanerr':>9} {'A maxerr':>9} {'C topL5':>7} "
              f"{'A topL5':>7}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r.workload:<11} {r.variant:<32} {r.contact_bytes_per_cell:8.3f} {r.attention_bytes_per_cell:8.3f} "
              f"{r.file_bytes_per_cell:8.3f} {r.write_s:7.2f} {r.write_cpu_s:7.2f} {r.read_median_ms:7.2f} "
              f"{r.read_p95_ms:7.2f} {r.read_cpu_median_ms:7.2f} {r.read_cpu_p95_ms:7.2f} "
              f"{r.contact_max_err:9.2e} {r.contact_mean_err:9.2e} {r.attention_max_err:9.2e} "
              f"{r.contact_top_l5_overlap:7.3f} {r.attention_top_l5_overlap:7.3f}")


def markdown_table(rows: list[Row]) -> str:
    lines = ["| workload | variant | bytes/cell contact | bytes/cell attention | file bytes/cell | write s (CPU s) | "
             "read median ms (CPU) | read p95 ms (CPU) | contact max err | contact mean err | attention max err | "
             "contact top-L/5 | attention top-L/5 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.workload} | {r.variant} | {r.contact_bytes_per_cell:.3f} | {r.attention_bytes_per_cell:.3f} "
                     f"| {r.file_bytes_per_cell:.3f} | {r.write_s:.2f} ({r.write_cpu_s:.2f}) | {r.read_median_ms:.2f} "
                     f"({r.read_cpu_median_ms:.2f}) | {r.read_p95_ms:.2f} ({r.read_cpu_p95_ms:.2f}) | "
                     f"{r.contact_max_err:.2e} | {r.contact_mean_err:.2e} | "
                     f"{r.attention_max_err:.2e} | {r.contact_top_l5_overlap:.3f} | {r.attention_top_l5_overlap:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-pairs", type=int, default=200, help="pairs of the shaped workload")
    parser.add_argument("--reads", type=int, default=200, help="timed random-order reads per variant")
    parser.add_argument("--esm-pairs", type=int, default=24, help="pairs of the random-ESM workload (0: skip it)")
    parser.add_argument("--esm-arch", default="t6", help="random ESM-2 architecture: t6, t12, t30, t33")
    parser.add_argument("--variants", default="", help="comma-separated variant names to run (default all)")
    parser.add_argument("--lengths", choices=["yeast", "generated"], default="yeast",
                        help="pair shapes from the yeast set (when present) or generated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the random-ESM maps")
    parser.add_argument("--json", type=Path, help="write the rows and the setup here")
    parser.add_argument("--markdown", action="store_true", help="also print the table as markdown")
    parser.add_argument("--workdir", type=Path, help="where the cache files are written (default: a temp dir)")
    args = parser.parse_args()

    variants = VARIANTS
    if args.variants:
        wanted = [v.strip() for v in args.variants.split(",")]
        unknown = [v for v in wanted if v not in VARIANTS]
        if unknown:
            parser.error(f"unknown variants {unknown}; known: {list(VARIANTS)}")
        variants = {v: VARIANTS[v] for v in wanted}
    rng = np.random.default_rng(args.seed)
    print(f"load average before: {load_average()} (1 min) on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        workdir = Path(tmp)
        use_yeast = args.lengths == "yeast"
        pairs, source = yeast_or_generated_pairs(args.n_pairs, rng, use_yeast=use_yeast)
        workloads = {"shaped": shaped_workload(pairs, rng)}
        print(f"shaped: {len(pairs)} {source}, {sum(len(a) * len(b) for a, b in pairs):,} cells per map")
        if args.esm_pairs:
            try:
                import torch

                torch.set_num_threads(args.threads)
                esm_pairs, esm_source = yeast_or_generated_pairs(args.esm_pairs, rng, max_total=1000,
                                                                 use_yeast=use_yeast)
                t0 = time.perf_counter()
                workloads["random-esm"] = random_esm_workload(esm_pairs, args.esm_arch, workdir)
                print(f"random-esm: {len(esm_pairs)} {esm_source}, RANDOM-WEIGHT ESM-2 {args.esm_arch} maps "
                      f"(no biological signal), computed in {time.perf_counter() - t0:.1f} s")
            except ImportError as exc:
                print(f"random-esm workload skipped: {exc}")
        rows = []
        for workload, maps in workloads.items():
            for name, storage in variants.items():
                rows.append(measure(workload, maps, name, storage, workdir, args.reads, rng))
                print(f"  measured {workload} / {name}", file=sys.stderr)
    load_after = os.getloadavg()
    print(f"\nload average after: {load_after[0]:.1f} (1 min), {load_after[1]:.1f} (5 min)")
    print_table(rows)
    print("\nB/cell: stored bytes per map cell (float32 raw = 4); file B/c: whole file per cell of both maps; read: "
          "one TeacherCache.pair() in random order, file in the OS page cache (wall, and CPU time of the process); errors vs float32 originals; "
          "topL5: top-L/5 overlap of the decoded map with the original (L = shorter chain).")
    if args.markdown:
        print()
        print(markdown_table(rows))
    if args.json:
        setup = {"shaped_source": source, "esm_arch": args.esm_arch, "esm_random_weights": True}
        write_result(args.json, {"setup": setup, "rows": [asdict(r) for r in rows]})


if __name__ == "__main__":
    main()
