"""Stage one's pair pass against the device's own matrix-multiply speed: tokens/s, achieved FLOP/s, roofline fraction.

One process, one device, the same pairs (random pairs of the yeast set with A + linker + B <= --max-tokens, or
generated ones of yeast-like lengths without it; benchmarks/cache_storage.py draws them) through
  reference   fair-esm's `model(tokens, repr_layers=[last], return_contacts=True)`, float32 as its README runs it
  ours        `EsmTeacher.pair_maps_on_device` (teacher_cache.teachers.esm_runner), at --precision (auto: bf16 on CUDA)
each on length-sorted batches under --tokens-per-batch, timed after one warm-up batch, results copied to the host.

The model is a RANDOMLY INITIALISED ESM-2 of a real architecture (t33 = esm2_t33_650M: 33 layers, embed 1280, 20
heads), written in fair-esm's checkpoint format: no real weights can be downloaded here, and speed does not depend
on them.

FLOPs counted per input of T real tokens (padding excluded), per layer: 24 T E^2 for the q, k, v, output and
feed-forward matrix multiplies and 4 T^2 E for attention (scores and weighted values); the contact head adds
O(heads T^2) and is not counted. "GEMM peak" is an (n x n) @ (n x n) matrix multiply in the same dtype timed in the
same run (what this device and torch reach on a large dense multiply); --peak-tflops adds the fraction of a
datasheet figure (e.g. 989 for an H100/H200's dense bf16).

    python -m benchmarks.roofline --arch t12 --device cpu --n-pairs 8 --tokens-per-batch 1024
    python -m benchmarks.roofline --arch t33 --device cuda --n-pairs 256 --peak-tflops 989 --json roofline.json
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import cpu_model, median_seconds, write_result

LINKER = "G" * 25


def pass_flops(tokens: int, layers: int, embed_dim: int) -> float:
    """Matrix-multiply FLOPs of one ESM-2 forward pass over `tokens` real tokens (see the module docstring)."""
    return layers * (24.0 * tokens * embed_dim ** 2 + 4.0 * tokens ** 2 * embed_dim)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gemm_tflops(device: torch.device, dtype: torch.dtype, n: int, repeats: int = 5) -> float:
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    seconds = median_seconds(lambda: a @ b, repeats=repeats, warmup=1, sync=lambda: synchronize(device))
    return 2.0 * n ** 3 / seconds / 1e12


def timed_batches(batches: list[list[tuple[str, str]]], run, device: torch.device) -> tuple[float, int]:
    """Seconds for every batch after the first (a warm-up), and the peak device memory (CUDA) in bytes."""
    run(batches[0])
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    for batch in batches[1:]:
        run(batch)
    synchronize(device)
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="t12", help="random ESM-2 architecture: t6, t12, t30, t33")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="auto", help="ours: auto (fp32 on CPU, bf16 on CUDA), fp32, bf16")
    parser.add_argument("--n-pairs", type=int, default=8)
    parser.add_argument("--tokens-per-batch", type=int, default=1024)
    parser.add_argument("--max-tokens", type=int, default=1024, help="longest input drawn (A + linker + B + 2)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CPU)")
    parser.add_argument("--gemm-n", type=int, default=0, help="GEMM size (0: 2048 on CPU, 8192 on CUDA)")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="datasheet peak of --device in ours' dtype")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--keep-heap", action="store_true",
                        help="keep freed host memory in the heap for both sides (CPU: as `cli.py precompute` runs; "
                             "the reference's heap can then grow far beyond its peak, see benchmarks/precompute.py)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    from benchmarks.cache_storage import yeast_or_generated_pairs
    from data.allocator import keep_freed_memory
    from teacher_cache.teachers.esm_runner import ARCHITECTURES, batch_indices, load_teacher, to_host, write_random_esm2

    if args.keep_heap and not keep_freed_memory():
        raise SystemExit("--keep-heap needs glibc")
    layers, dim, heads = ARCHITECTURES[args.arch]
    rng = np.random.default_rng(args.seed)
    pairs, source = yeast_or_generated_pairs(args.n_pairs, rng, max_total=args.max_tokens - len(LINKER) - 2)
    lengths = [len(a) + len(LINKER) + len(b) + 2 for a, b in pairs]
    batches = [[pairs[i] for i in batch] for batch in batch_indices(lengths, args.tokens_per_batch)]
    if len(batches) < 2:
        raise SystemExit("need at least two batches (one is a warm-up): raise --n-pairs or lower --tokens-per-batch")
    timed_pairs = [pair for batch in batches[1:] for pair in batch]
    timed_tokens = sum(len(a) + len(LINKER) + len(b) + 2 for a, b in timed_pairs)
    flops = sum(pass_flops(len(a) + len(LINKER) + len(b) + 2, layers, dim) for a, b in timed_pairs)

    with tempfile.TemporaryDirectory() as tmp:
        path = write_random_esm2(tmp, layers, dim, heads, name=f"esm2_{args.arch}_random")
        teacher = load_teacher(str(path), device=args.device, precision=args.precision)
        reference_model = load_teacher(str(path), device=args.device, precision="fp32").model
    device = teacher.device

    def ours(batch):
        for contact, attention in teacher.pair_maps_on_device(batch, LINKER, [-1]):
            to_host(contact), to_host(attention)

    def reference(batch):
        tokens = teacher._tokens([a + LINKER + b for a, b in batch])
        with torch.no_grad():
            result = reference_model(tokens, repr_layers=[layers], return_contacts=True)
        contacts, attentions = result["contacts"], result["attentions"][:, layers - 1].mean(1)
        for row, (a, b) in enumerate(batch):  # the inter-chain blocks, as benchmarks/precompute.py slices them
            start = len(a) + len(LINKER)
            contacts[row, :len(a), start:start + len(b)].cpu()
            attentions[row, 1:1 + len(a), 1 + start:1 + start + len(b)].cpu()

    rows = {}
    runs = [("ours", ours, teacher.dtype)] + ([] if args.skip_reference else [("reference", reference, torch.float32)])
    for name, run, dtype in runs:
        seconds, peak = timed_batches(batches, run, device)
        rows[name] = {"seconds": seconds, "pairs_per_s": len(timed_pairs) / seconds,
                      "tokens_per_s": timed_tokens / seconds, "tflops": flops / seconds / 1e12,
                      "peak_device_mb": peak / 2 ** 20, "dtype": str(dtype).replace("torch.", "")}
    gemm_n = args.gemm_n or (8192 if device.type == "cuda" else 2048)
    gemm = {str(dtype).replace("torch.", ""): gemm_tflops(device, dtype, gemm_n) for dtype in {teacher.dtype,
                                                                                               torch.float32}}
    for row in rows.values():
        row["fraction_of_gemm"] = row["tflops"] / gemm[row["dtype"]]
        if args.peak_tflops:
            row["fraction_of_datasheet_peak"] = row["tflops"] / args.peak_tflops

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{cpu_model()}, {args.threads} threads"
    print(f"RANDOM-WEIGHT ESM-2 {args.arch} ({layers} layers, embed {dim}, {heads} heads) on {device} ({where}); "
          f"{len(timed_pairs)} timed pairs ({source}) in {len(batches) - 1} batches ({timed_tokens:,} tokens, "
          f"{flops / 1e12:.2f} TFLOP), --tokens-per-batch {args.tokens_per_batch}")
    print(f"{'':<10} {'dtype':>9} {'seconds':>8} {'pairs/s':>8} {'tokens/s':>9} {'TFLOP/s':>8} {'of GEMM':>8} "
          f"{'of peak':>8} {'peak MB':>8}")
    for name, row in rows.items():
        peak_fraction = f"{row['fraction_of_datasheet_peak']:8.1%}" if args.peak_tflops else f"{'-':>8}"
        print(f"{name:<10} {row['dtype']:>9} {row['seconds']:8.2f} {row['pairs_per_s']:8.2f} "
              f"{row['tokens_per_s']:9.0f} {row['tflops']:8.3f} {row['fraction_of_gemm']:8.1%} {peak_fraction} "
              f"{row['peak_device_mb'] if device.type == 'cuda' else float('nan'):8.0f}")
    print("GEMM peak measured here (" + ", ".join(f"{name} {value:.3f} TFLOP/s" for name, value in gemm.items())
          + f", n = {gemm_n})")
    if "reference" in rows:
        print(f"ours / reference: {rows['ours']['tokens_per_s'] / rows['reference']['tokens_per_s']:.2f}x tokens/s "
              f"(ours {rows['ours']['dtype']}, reference float32)")
    print("peak MB: CUDA max_memory_allocated during the timed batches (not measured on CPU; see "
          "benchmarks/precompute.py). Random weights: these numbers say nothing about map quality.")
    if args.json:
        write_result(args.json, {"arch": args.arch, "device": str(device), "where": where, "random_weights": True,
                                 "pairs_from": source, "timed_pairs": len(timed_pairs), "timed_tokens": timed_tokens,
                                 "flops": flops, "gemm_tflops": gemm, "gemm_n": gemm_n, "runs": rows})


if __name__ == "__main__":
    main()
