"""Stage one on real yeast sequences with a RANDOM-weight ESM-2 of a real architecture: exercises and times the
`precompute` path (tiling, batching, writing). The maps carry no biological signal: a random teacher.

    python -m benchmarks.yeast_stage_one --n-pairs 20 --arch t6 --json bench_out/yeast_stage_one.json
    python -m benchmarks.yeast_stage_one --n-pairs 500 --arch t33 --device cuda --tokens-per-batch auto

Without the yeast set (../shared/data/dscript-yeast, absent on a machine that only has the repository, such as a
lent GPU machine) it generates sequences with the yeast set's median length (314) and spread, and pairs them at
random; the output says which.

Prints one table: pairs, proteins, tokens, tiled pairs, seconds, pairs/s and tokens/s, cache bytes per pair.
"""
from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import torch

from benchmarks.common import SHARED_DATA, write_result
from data.fasta import read_fasta, write_fasta
from data.pairs import write_pairs
from teacher_cache import TeacherCache
from teacher_cache.teachers.config import PrecomputeConfig
from teacher_cache.teachers.esm_runner import ARCHITECTURES, write_random_esm2
from teacher_cache.teachers.precompute import run_precompute

YEAST = SHARED_DATA / "dscript-yeast"


def generated(n_pairs: int, seed: int = 0) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Sequences with the yeast set's length distribution, about 10 pairs per protein (a data set's reuse)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n_proteins = max(n_pairs // 5, int(np.sqrt(2 * n_pairs)) + 2)
    letters = np.array(list("LAGVSERTIDPKQNFYMHWC"))
    lengths = np.clip(rng.lognormal(np.log(314), 0.55, size=n_proteins), 50, 800).astype(int)
    sequences = {f"g{i}": "".join(rng.choice(letters, int(n))) for i, n in enumerate(lengths)}
    rows, seen = [], set()
    while len(rows) < n_pairs and len(seen) < n_proteins * (n_proteins - 1) // 2:
        a, b = sorted(int(x) for x in rng.choice(n_proteins, size=2, replace=False))
        if (a, b) not in seen:
            seen.add((a, b))
            rows.append((f"g{a}", f"g{b}", "0"))
    return sequences, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(YEAST))
    parser.add_argument("--n-pairs", type=int, default=20, help="the first N pairs of pairs.tsv")
    parser.add_argument("--arch", default="t6", choices=sorted(ARCHITECTURES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="auto", help="auto (fp32 on CPU, bf16 on CUDA), fp32, bf16, fp16")
    parser.add_argument("--tokens-per-batch", default="4096", help="a token budget, or auto (fitted to memory)")
    parser.add_argument("--json", dest="json_out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from data.pairs import Pair
    from data.allocator import keep_freed_memory
    from teacher_cache.teachers.config import parse_tokens_per_batch

    keep_freed_memory()  # as `cli.py precompute` runs
    layers, dim, heads = ARCHITECTURES[args.arch]
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        fasta = Path(args.data) / "seqs.fasta"
        if fasta.exists():
            source = f"the first {args.n_pairs} pairs of {Path(args.data) / 'pairs.tsv'}"
            sequences = read_fasta(fasta)
            rows = (line.split()[:3] for line in open(Path(args.data) / "pairs.tsv"))
        else:
            source = f"{args.n_pairs} GENERATED pairs (yeast-like lengths; {fasta} is absent)"
            sequences, rows = generated(args.n_pairs)
            fasta = work / "seqs.fasta"
            write_fasta(fasta, sequences)
        pairs = []
        for id_a, id_b, label in rows:
            pairs.append(Pair(id_a, id_b, sequences[id_a], sequences[id_b], int(float(label))))
            if len(pairs) == args.n_pairs:
                break
        model = write_random_esm2(work / "model", layers, dim, heads, name=f"esm2_{args.arch}_random")
        table = work / "pairs.tsv"
        write_pairs(table, pairs)
        out = work / "cache.h5"
        result = run_precompute(PrecomputeConfig(
            pairs=str(table), fasta=str(fasta), model=str(model), out=str(out), device=args.device,
            precision=args.precision, tokens_per_batch=parse_tokens_per_batch(args.tokens_per_batch)))
        with TeacherCache.open(out) as cache:
            info = cache.info()
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"{platform.machine()}, {torch.get_num_threads()} torch threads, CPU"
    row = {
        "teacher": f"RANDOM-weight ESM-2 {args.arch} ({layers} layers, {dim} dim, {heads} heads)",
        "inputs": source, "device": str(device), "compute_dtype": info["settings"]["compute_dtype"],
        "tokens_per_batch": result.tokens_per_batch,
        "pairs": result.pairs_computed, "proteins": result.proteins_computed, "pairs_tiled": result.pairs_tiled,
        "tokens": result.tokens, "seconds": round(result.seconds, 1),
        "pairs_per_s": round(result.pairs_computed / result.pair_seconds, 3) if result.pair_seconds else None,
        "tokens_per_s": round(result.tokens / result.compute_seconds, 1) if result.compute_seconds else None,
        "cache_bytes_per_pair": round(info["file_bytes"] / max(1, info["n_pairs"])),
    }
    width = max(len(k) for k in [*row, "machine"])
    print("stage one on yeast pairs -- RANDOM TEACHER: timings only, the maps carry no signal")
    for key, value in [*row.items(), ("machine", where)]:  # the machine: in the result file's provenance block
        print(f"  {key:<{width}}  {value}")
    if args.json_out:
        write_result(args.json_out, row)


if __name__ == "__main__":
    main()
