"""One pair's forward pass, side by side: fair-esm's forward, fair-esm with return_contacts=True, and ours.

A RANDOMLY INITIALISED ESM-2 of a real architecture (timings do not depend on the weights) reads one generated pair
`A + linker + B` (lengths --la, --lb). Rows, each the median of --repeats timed calls after one warm-up:
  fair-esm forward          model(tokens), no attention returned
  fair-esm return_contacts  model(tokens, return_contacts=True): all layers' attention stacked, contact head
  ours fp32 / ours bf16     EsmTeacher.pair_maps: layer by layer, only the A x B block (teacher_cache.teachers.esm_runner)

    python -m benchmarks.pair_pass --arch t12 --threads 1
    python -m benchmarks.pair_pass --arch t12 --threads 1 --keep-heap   # as `cli.py precompute` runs (allocator)

Each configuration is timed in this one process, one after the other; compare ratios within one run.
"""
from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch

from benchmarks.common import median_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="t12", help="t6, t12, t30, t33")
    parser.add_argument("--la", type=int, default=350)
    parser.add_argument("--lb", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep-heap", action="store_true", help="data.allocator.keep_freed_memory() first")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    if args.keep_heap:
        from data.allocator import keep_freed_memory

        if not keep_freed_memory():
            raise SystemExit("--keep-heap needs glibc")
    from teacher_cache.teachers.esm_runner import ARCHITECTURES, EsmTeacher, load_teacher, write_random_esm2

    layers, dim, heads = ARCHITECTURES[args.arch]
    rng = np.random.default_rng(0)
    residues = np.array(list("LAGVSERTIDPKQNFYMHWC"))
    pair = ("".join(rng.choice(residues, args.la)), "".join(rng.choice(residues, args.lb)))
    linker = "G" * 25
    with tempfile.TemporaryDirectory() as tmp:
        path = write_random_esm2(tmp, layers, dim, heads, name=f"esm2_{args.arch}_random")
        teacher = load_teacher(str(path))
        bf16_model = load_teacher(str(path))
    bf16 = EsmTeacher(bf16_model.model, bf16_model.alphabet, bf16_model.info, torch.device("cpu"), torch.bfloat16)
    tokens = teacher._tokens([pair[0] + linker + pair[1]])
    model = teacher.model

    def timed(call) -> float:
        return median_seconds(call, repeats=args.repeats, warmup=1)

    with torch.no_grad():
        rows = {
            "fair-esm forward": timed(lambda: model(tokens)),
            "fair-esm return_contacts": timed(lambda: model(tokens, return_contacts=True)),
            "ours fp32": timed(lambda: teacher.pair_maps([pair], linker, [-1])),
            "ours bf16": timed(lambda: bf16.pair_maps([pair], linker, [-1])),
        }
    full, half = teacher.pair_maps([pair], linker, [-1])[0], bf16.pair_maps([pair], linker, [-1])[0]
    print(f"RANDOM-WEIGHT ESM-2 {args.arch}, one pair of {tokens.shape[1]} tokens, {args.threads} thread(s), "
          f"allocator: {'heap kept' if args.keep_heap else 'glibc default'}, median of {args.repeats}")
    reference = rows["fair-esm return_contacts"]
    print(f"{'':<26} {'seconds':>8} {'vs return_contacts':>19}")
    for name, seconds in rows.items():
        print(f"{name:<26} {seconds:8.3f} {reference / seconds:18.2f}x")
    print(f"ours bf16 vs fp32: contact max |diff| {np.abs(full[0] - half[0]).max():.2e}, attention "
          f"{np.abs(full[1] - half[1]).max():.2e}")


if __name__ == "__main__":
    main()
