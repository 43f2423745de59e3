"""Stage one on real yeast sequences with a RANDOM-weight ESM-2 of a real architecture: exercises and times the
`precompute` path (tiling, batching, writing). The maps carry no biological signal: a random teacher.

    python benchmarks/yeast_stage_one.py --n-pairs 20 --arch t6 --json bench_out/yeast_stage_one.json

Prints one table: pairs, proteins, tokens, tiled pairs, seconds, pairs/s and tokens/s, cache bytes per pair.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data.fasta import read_fasta  # noqa: E402
from data.pairs import write_pairs  # noqa: E402
from teacher_cache import TeacherCache  # noqa: E402
from teacher_cache.config import PrecomputeConfig  # noqa: E402
from teacher_cache.precompute import run_precompute  # noqa: E402
from teacher_cache.runner import ARCHITECTURES, write_random_esm2  # noqa: E402

YEAST = ROOT.parent / "shared" / "data" / "dscript-yeast"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(YEAST))
    parser.add_argument("--n-pairs", type=int, default=20, help="the first N pairs of pairs.tsv")
    parser.add_argument("--arch", default="t6", choices=sorted(ARCHITECTURES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", dest="json_out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from data.pairs import Pair
    sequences = read_fasta(Path(args.data) / "seqs.fasta")
    pairs = []
    with open(Path(args.data) / "pairs.tsv") as handle:
        for line in handle:
            id_a, id_b, label = line.split()[:3]
            pairs.append(Pair(id_a, id_b, sequences[id_a], sequences[id_b], int(float(label))))
            if len(pairs) == args.n_pairs:
                break
    layers, dim, heads = ARCHITECTURES[args.arch]
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        model = write_random_esm2(work / "model", layers, dim, heads, name=f"esm2_{args.arch}_random")
        table = work / "pairs.tsv"
        write_pairs(table, pairs)
        out = work / "cache.h5"
        result = run_precompute(PrecomputeConfig(pairs=str(table), fasta=str(Path(args.data) / "seqs.fasta"),
                                                 model=str(model), out=str(out)))
        with TeacherCache.open(out) as cache:
            info = cache.info()
    row = {
        "teacher": f"RANDOM-weight ESM-2 {args.arch} ({layers} layers, {dim} dim, {heads} heads)",
        "pairs": result.pairs_computed, "proteins": result.proteins_computed, "pairs_tiled": result.pairs_tiled,
        "tokens": result.tokens, "seconds": round(result.seconds, 1),
        "pairs_per_s": round(result.pairs_computed / result.pair_seconds, 3) if result.pair_seconds else None,
        "tokens_per_s": round(result.tokens / result.compute_seconds, 1) if result.compute_seconds else None,
        "cache_bytes_per_pair": round(info["file_bytes"] / max(1, info["n_pairs"])),
        "threads": args.threads, "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, CPU",
    }
    width = max(len(k) for k in row)
    print("stage one on yeast pairs -- RANDOM TEACHER: timings only, the maps carry no signal")
    for key, value in row.items():
        print(f"  {key:<{width}}  {value}")
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
