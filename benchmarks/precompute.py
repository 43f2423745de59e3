"""Stage one, side by side: a fair-esm reference loop against the project's `run_precompute`, same pairs, same model.

Both compute, for every pair, the inter-chain (A x B) blocks of the contact map and of the last layer's head-averaged
attention of `BOS + A + linker + B + EOS`, and for every protein its mean final-layer embedding, and write them to
HDF5. The model is a RANDOMLY INITIALISED ESM-2 of a real architecture (t12 = esm2_t12_35M: 12 layers, embed 480,
20 heads), written in fair-esm's checkpoint format: no real weights exist here, and timings do not depend on them.

(a) reference: the way fair-esm's README and `scripts/extract.py` do it: `FastaBatchedDataset.get_batch_indices`
    under `--toks-per-batch`, `alphabet.get_batch_converter()`, `model(tokens, repr_layers=[last],
    return_contacts=True)`, blocks sliced by hand, written with h5py (one float16 gzip dataset per map).
(b) ours: `teacher_cache.teachers.precompute.run_precompute` (layer-by-layer contact head keeping only the A x B block),
    under glibc's default allocator and with freed memory kept in the heap (`keep_freed_memory`, as `cli.py
    precompute` runs it). The headline ratio compares each side as it ships; the same-allocator ratio is printed
    beside it.

Each runs in its own subprocess; peak memory is that child's ru_maxrss (os.wait4). Pairs are drawn from the yeast
set (../shared/data/dscript-yeast) and kept short enough (A + linker + B <= 1022) that neither side tiles.

    python -m benchmarks.precompute --n-pairs 12 --arch t12 --toks-per-batch 1024 --json precompute.json

Both sides get the same token budget per batch (--toks-per-batch, 1024 by default; see its help for why not 4096)
and the same torch thread count. Timings on a shared CPU are dominated by the other jobs: run it on an idle machine
and compare ratios only within one run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, SHARED_DATA, load_average, module_command, peak_rss_mb, write_result

YEAST = SHARED_DATA / "dscript-yeast"
LINKER = "G" * 25
MAX_RESIDUES = 1022  # fair-esm's usual truncation length; pairs longer than this are not drawn


# -- inputs ---------------------------------------------------------------------------------------------------------
def draw_pairs(n_pairs: int, seed: int, workdir: Path) -> tuple[Path, Path, list[tuple[str, str]]]:
    """Write seqs.fasta and pairs.tsv of n distinct yeast pairs (by content) that need no tiling."""
    from data.fasta import read_fasta, write_fasta
    from data.keys import canonical_pair, sequence_key

    rng = np.random.default_rng(seed)
    if (YEAST / "seqs.fasta").exists():
        sequences = read_fasta(YEAST / "seqs.fasta")
        rows = [line.split("\t")[:2] for line in (YEAST / "pairs.tsv").read_text().splitlines() if line.strip()]
    else:  # generated stand-ins with the yeast median length
        residues = list("LAGVSERTIDPKQNFYMHWC")
        sequences = {f"p{i}": "".join(rng.choice(residues, int(np.clip(rng.lognormal(np.log(314), 0.55), 50, 800))))
                     for i in range(2000)}
        names = list(sequences)
        rows = [[names[i], names[j]] for i, j in rng.integers(0, len(names), size=(20000, 2))]
    chosen: dict[tuple[str, str], tuple[str, str]] = {}
    for index in rng.permutation(len(rows)):
        id_a, id_b = rows[index]
        seq_a, seq_b = sequences[id_a], sequences[id_b]
        if len(seq_a) + len(LINKER) + len(seq_b) > MAX_RESIDUES:
            continue
        key = canonical_pair(sequence_key(seq_a), sequence_key(seq_b))[:2]
        chosen.setdefault(key, (id_a, id_b))
        if len(chosen) == n_pairs:
            break
    ids = sorted({name for pair in chosen.values() for name in pair})
    # One id per distinct sequence, so both sides see the same set of proteins.
    by_sequence: dict[str, str] = {}
    for name in ids:
        by_sequence.setdefault(sequences[name], name)
    pairs = [(by_sequence[sequences[a]], by_sequence[sequences[b]]) for a, b in chosen.values()]
    # run_precompute runs each pair in canonical order (the sequence whose key sorts first before the linker); list
    # them that way so both sides compute the same inputs and their maps can be compared.
    pairs = [(a, b) if not canonical_pair(sequence_key(sequences[a]), sequence_key(sequences[b]))[2] else (b, a)
             for a, b in pairs]
    fasta, table = workdir / "seqs.fasta", workdir / "pairs.tsv"
    write_fasta(fasta, {name: seq for seq, name in by_sequence.items()})
    table.write_text("id_a\tid_b\tlabel\n" + "".join(f"{a}\t{b}\t0\n" for a, b in pairs))
    return fasta, table, [(sequences[a], sequences[b]) for a, b in pairs]


def yeast_token_mix() -> float | None:
    """Protein-pass tokens per pair-pass token when the whole yeast set is precomputed (None without the set)."""
    if not (YEAST / "seqs.fasta").exists():
        return None
    from data.fasta import read_fasta

    sequences = read_fasta(YEAST / "seqs.fasta")
    rows = [line.split("\t")[:2] for line in (YEAST / "pairs.tsv").read_text().splitlines() if line.strip()]
    pairs = {tuple(sorted((sequences[a], sequences[b]))) for a, b in rows if a in sequences and b in sequences}
    proteins = {seq for pair in pairs for seq in pair}
    pair_tokens = sum(len(a) + len(LINKER) + len(b) + 2 for a, b in pairs)
    return sum(len(seq) + 2 for seq in proteins) / pair_tokens


# -- workers (each in its own process) ------------------------------------------------------------------------------
def run_reference(model_path: str, fasta: str, table: str, out: str, toks_per_batch: int) -> dict:
    """fair-esm's README / scripts/extract.py loop, extended to pairs and inter-chain blocks."""
    import argparse as _argparse

    import h5py
    import torch
    from esm.data import FastaBatchedDataset
    from esm.pretrained import load_model_and_alphabet_local

    started = time.perf_counter()
    # fair-esm's local loader calls torch.load without weights_only; torch >= 2.6 needs its config class allowed.
    with torch.serialization.safe_globals([_argparse.Namespace]):
        model, alphabet = load_model_and_alphabet_local(model_path)
    model.eval()
    last = model.num_layers
    converter = alphabet.get_batch_converter(MAX_RESIDUES)
    proteins = FastaBatchedDataset.from_file(fasta)
    sequences = dict(zip(proteins.sequence_labels, proteins.sequence_strs))
    pair_ids = [line.split("\t")[:2] for line in Path(table).read_text().splitlines()[1:] if line.strip()]
    pairs = FastaBatchedDataset([f"{a}\t{b}" for a, b in pair_ids],
                                [sequences[a] + LINKER + sequences[b] for a, b in pair_ids])
    tokens_seen = pair_tokens = 0
    model_seconds = pair_seconds = 0.0  # inside model(...) calls, the counterpart of run_precompute's compute_seconds
    with h5py.File(out, "w") as handle, torch.no_grad():
        # 1. per-protein mean embeddings, as extract.py --include mean
        loader = torch.utils.data.DataLoader(proteins, collate_fn=converter,
                                             batch_sampler=proteins.get_batch_indices(toks_per_batch,
                                                                                      extra_toks_per_seq=1))
        for labels, strs, toks in loader:
            t0 = time.perf_counter()
            result = model(toks, repr_layers=[last])
            model_seconds += time.perf_counter() - t0
            tokens_seen += sum(len(s) + 2 for s in strs)
            for i, label in enumerate(labels):
                handle.create_dataset(f"proteins/{label}", data=result["representations"][last][i, 1:len(strs[i]) + 1]
                                      .mean(0).numpy())
        # 2. pair maps: contacts and attentions of A + linker + B, blocks sliced by hand
        loader = torch.utils.data.DataLoader(pairs, collate_fn=converter,
                                             batch_sampler=pairs.get_batch_indices(toks_per_batch,
                                                                                   extra_toks_per_seq=1))
        for labels, strs, toks in loader:
            t0 = time.perf_counter()
            result = model(toks, repr_layers=[last], return_contacts=True)
            contacts = result["contacts"]  # (B, T-2, T-2), BOS/EOS removed
            attentions = result["attentions"][:, last - 1].mean(1)  # (B, T, T), last layer, heads averaged
            model_seconds += time.perf_counter() - t0
            pair_seconds += time.perf_counter() - t0
            tokens_seen += sum(len(s) + 2 for s in strs)
            pair_tokens += sum(len(s) + 2 for s in strs)
            for i, label in enumerate(labels):
                id_a, id_b = label.split("\t")
                la, lb = len(sequences[id_a]), len(sequences[id_b])
                b0 = la + len(LINKER)
                contact = contacts[i, :la, b0:b0 + lb]
                att = attentions[i, 1:1 + la, 1 + b0:1 + b0 + lb]
                att_t = attentions[i, 1 + b0:1 + b0 + lb, 1:1 + la].transpose(0, 1)
                group = handle.create_group(f"pairs/{len(handle.get('pairs', {}))}")
                group.attrs["id_a"], group.attrs["id_b"] = id_a, id_b
                for name, values in (("contact", contact), ("attention", (att + att_t) / 2)):
                    group.create_dataset(name, data=values.numpy().astype(np.float16), compression="gzip",
                                         compression_opts=4, shuffle=True)
    return {"seconds": time.perf_counter() - started, "tokens": tokens_seen, "compute_seconds": model_seconds,
            "pair_tokens": pair_tokens, "pair_seconds": pair_seconds}


def run_ours(model_path: str, fasta: str, table: str, out: str, toks_per_batch: int) -> dict:
    from teacher_cache.teachers.config import PrecomputeConfig
    from teacher_cache.teachers.precompute import run_precompute

    started = time.perf_counter()
    result = run_precompute(PrecomputeConfig(pairs=table, fasta=fasta, model=model_path, out=out, linker=LINKER,
                                             tokens_per_batch=toks_per_batch, checkpoint_seconds=1e9))
    return {"seconds": time.perf_counter() - started, "tokens": result.tokens,
            "pairs_computed": result.pairs_computed, "proteins_computed": result.proteins_computed,
            "compute_seconds": result.compute_seconds, "pair_tokens": result.pair_tokens,
            "pair_seconds": result.pair_seconds}


def worker_main(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.allocator == "reuse":
        from data.allocator import keep_freed_memory

        if not keep_freed_memory():
            raise SystemExit("--allocator reuse needs glibc")
    run = run_reference if args.worker == "reference" else run_ours
    report = run(args.model, args.fasta_path, args.table_path, args.out, args.toks_per_batch)
    report["self_maxrss_kb"] = round(peak_rss_mb() * 1024)
    print("RESULT " + json.dumps(report))


# -- driver ---------------------------------------------------------------------------------------------------------
# glibc serves allocations above its mmap threshold (32 MB at most) with fresh mmap pages and unmaps them on free, so
# every large temporary is page-faulted and zeroed anew. "reuse" is data.allocator.keep_freed_memory(), which
# `cli.py precompute` applies: freed memory stays in the heap. "ours" runs under both, so the table separates what the
# algorithm saves from what the allocator saves. The reference runs under glibc's default only unless
# --reference-reuse: with its (B, layers, heads, T, T) stack the heap fragments (at --toks-per-batch 1024 with t12 it
# grew from 7.2 GB to over 21 GB and was OOM-killed on the 24 GB machine).
ALLOCATORS = ("glibc", "reuse")


def measure(which: str, allocator: str, model: Path, fasta: Path, table: Path, workdir: Path,
            args: argparse.Namespace) -> dict:
    out = workdir / f"{which}-{allocator}.h5"
    command = module_command("precompute", "--worker", which, "--model", model, "--fasta-path", fasta,
                             "--table-path", table, "--out", out, "--toks-per-batch", args.toks_per_batch,
                             "--threads", args.threads, "--allocator", allocator)
    stdout_path, stderr_path = workdir / f"{which}-{allocator}.stdout", workdir / f"{which}-{allocator}.stderr"
    env = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    started = time.perf_counter()
    with open(stdout_path, "w") as stdout_file, open(stderr_path, "w") as stderr_file:
        child = subprocess.Popen(command, stdout=stdout_file, stderr=stderr_file, cwd=ROOT, env=env)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage (ru_maxrss in KiB on Linux)
        child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    stdout = stdout_path.read_text()
    if child.returncode != 0 or "RESULT " not in stdout:
        raise SystemExit(f"{which} ({allocator} allocator) failed (exit {child.returncode}):\n"
                         f"{stderr_path.read_text()[-3000:]}")
    report = json.loads(stdout.split("RESULT ", 1)[1])
    report["process_wall_seconds"] = wall
    report["peak_rss_mb"] = peak_rss_mb(usage)
    report["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # less sensitive than wall time to a shared CPU
    report["out_bytes"] = out.stat().st_size
    report["allocator"] = allocator
    return report


def compare_outputs(pairs: list[tuple[str, str]], workdir: Path) -> dict:
    """Largest difference between the two sides' stored maps (both float16 on disk)."""
    import h5py

    from teacher_cache import TeacherCache

    worst = {"contact": 0.0, "attention": 0.0}
    with h5py.File(workdir / "reference-glibc.h5", "r") as reference, \
            TeacherCache.open(workdir / "ours-glibc.h5") as ours:
        sequences = {}
        for line in (workdir / "seqs.fasta").read_text().split(">")[1:]:
            name, seq = line.strip().split("\n", 1)
            sequences[name] = seq.replace("\n", "")
        for key in reference["pairs"]:
            group = reference["pairs"][key]
            maps = ours.pair(sequences[group.attrs["id_a"]], sequences[group.attrs["id_b"]])
            for name in worst:
                diff = np.abs(group[name][()].astype(np.float32) - getattr(maps, name)).max()
                worst[name] = max(worst[name], float(diff))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-pairs", type=int, default=32,
                        help="pairs to compute (32 by default, not 200: on 2 shared CPU cores the t12 reference "
                             "takes minutes per few dozen pairs)")
    parser.add_argument("--arch", default="t12", help="random ESM-2 architecture: t6, t12, t30, t33")
    parser.add_argument("--toks-per-batch", type=int, default=1024,
                        help="token budget per batch, both sides (fair-esm's extract.py uses 4096; the reference's "
                             "memory grows with it: at 2048 with t12 it passed 12.4 GB and was OOM-killed on a shared "
                             "24 GB machine; at 1024 it peaks near 6.5 GB)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each worker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--order", default="reference,ours", help="which side runs first")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--reference-reuse", action="store_true",
                        help="also run the reference with freed memory kept in the heap (can exhaust memory)")
    parser.add_argument("--allocator", choices=ALLOCATORS, default="glibc", help=argparse.SUPPRESS)
    # worker mode (internal)
    parser.add_argument("--worker", choices=["reference", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--fasta-path", help=argparse.SUPPRESS)
    parser.add_argument("--table-path", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args)
        return

    from teacher_cache.teachers.esm_runner import ARCHITECTURES, write_random_esm2

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        fasta, table, pairs = draw_pairs(args.n_pairs, args.seed, workdir)
        layers, dim, heads = ARCHITECTURES[args.arch]
        model = write_random_esm2(workdir / "model", layers, dim, heads, seed=0, name=f"esm2_{args.arch}_random")
        n_proteins = len({s for pair in pairs for s in pair})
        pair_tokens = sum(len(a) + len(LINKER) + len(b) + 2 for a, b in pairs)
        print(f"{len(pairs)} pairs ({n_proteins} proteins, {pair_tokens:,} pair tokens, longest "
              f"{max(len(a) + len(b) + len(LINKER) + 2 for a, b in pairs)}), RANDOM-WEIGHT ESM-2 {args.arch} "
              f"({layers} layers, embed {dim}, {heads} heads), {args.threads} threads, toks_per_batch "
              f"{args.toks_per_batch}")
        print(f"load average before: {load_average()} (1 min) on {os.cpu_count()} CPUs")
        runs = [("reference", "glibc"), ("ours", "glibc"), ("ours", "reuse")]
        if args.reference_reuse:
            runs.append(("reference", "reuse"))
        if args.order.split(",")[0] == "ours":
            runs = [run for run in runs if run[0] == "ours"] + [run for run in runs if run[0] == "reference"]
        results: dict[str, dict[str, dict]] = {allocator: {} for allocator in ALLOCATORS}
        for which, allocator in runs:
            results[allocator][which] = report = measure(which, allocator, model, fasta, table, workdir, args)
            print(f"  {which} ({allocator} allocator): {report['seconds']:.1f} s", file=sys.stderr)
        difference = compare_outputs(pairs, workdir)
        load_after = os.getloadavg()
        print(f"load average after: {load_after[0]:.1f} (1 min), {load_after[2]:.1f} (15 min)")

    print(f"\n{'':<10} {'allocator':>9} {'seconds':>8} {'model s':>8} {'pair s':>8} {'CPU s':>8} {'pairs/s':>8} "
          f"{'tokens/s':>9} {'peak RSS MB':>12} {'file MB':>8}")
    for which, allocator in runs:
        r = results[allocator][which]
        r["pairs_per_s"] = len(pairs) / r["seconds"]
        r["tokens_per_s"] = r["tokens"] / r["seconds"]
        print(f"{which:<10} {allocator:>9} {r['seconds']:8.1f} {r['compute_seconds']:8.1f} {r['pair_seconds']:8.1f} "
              f"{r['cpu_seconds']:8.1f} {r['pairs_per_s']:8.3f} {r['tokens_per_s']:9.0f} {r['peak_rss_mb']:12.0f} "
              f"{r['out_bytes'] / 1e6:8.2f}")

    def compare(ours: dict, reference: dict) -> dict:
        return {"throughput_ratio": ours["pairs_per_s"] / reference["pairs_per_s"],
                "pair_pass_ratio": reference["pair_seconds"] / ours["pair_seconds"],
                "peak_memory_ratio": ours["peak_rss_mb"] / reference["peak_rss_mb"],
                "cpu_time_speedup": reference["cpu_seconds"] / ours["cpu_seconds"]}

    reference = results["glibc"]["reference"]
    shipped = compare(results["reuse"]["ours"], reference)  # each side as its users run it
    comparisons = {"ours reuse vs reference glibc (as each ships)": shipped,
                   "ours glibc vs reference glibc (same allocator)": compare(results["glibc"]["ours"], reference)}
    if args.reference_reuse:
        comparisons["ours reuse vs reference reuse (same allocator)"] = compare(results["reuse"]["ours"],
                                                                                 results["reuse"]["reference"])
    print(f"\nthroughput ratio (ours as `cli.py precompute` runs it / the reference as fair-esm's README runs it): "
          f"{shipped['throughput_ratio']:.2f}x   (target >= 2)")
    print(f"peak memory ratio (same two runs): {shipped['peak_memory_ratio']:.2f}x   (target <= 0.5)")
    for name, ratio in comparisons.items():
        print(f"  {name}: end to end {ratio['throughput_ratio']:.2f}x, pair passes alone "
              f"{ratio['pair_pass_ratio']:.2f}x, CPU time {ratio['cpu_time_speedup']:.2f}x, peak memory "
              f"{ratio['peak_memory_ratio']:.2f}x")
    share = {which: results["glibc"][which]["pair_seconds"] / results["glibc"][which]["compute_seconds"]
             for which in ("reference", "ours")}
    print(f"pair passes' share of model time (glibc): reference {share['reference']:.0%}, ours {share['ours']:.0%}; "
          f"the rest embeds each protein alone, the same work on both sides.")
    # This draw has ~2 new proteins per pair; a whole data set reuses each protein in many pairs. Re-weight the
    # measured per-token costs of the two kinds of pass by the whole yeast set's token mix.
    mix, projected = yeast_token_mix(), None
    if mix is not None:
        def model_seconds_at(run: dict, protein_per_pair_token: float) -> float:
            protein_tokens = run["tokens"] - run["pair_tokens"]
            protein_seconds = run["compute_seconds"] - run["pair_seconds"]
            return run["pair_seconds"] + protein_seconds / protein_tokens * protein_per_pair_token * run["pair_tokens"]

        drawn_mix = (reference["tokens"] - reference["pair_tokens"]) / reference["pair_tokens"]
        projected = model_seconds_at(reference, mix) / model_seconds_at(results["reuse"]["ours"], mix)
        print(f"protein tokens per pair token: this draw {drawn_mix:.3f}, the whole yeast set {mix:.3f} (each "
              f"protein once, each distinct pair once); at the yeast set's mix, the measured per-token costs give a "
              f"model-time ratio of {projected:.2f}x (ours heap kept / reference glibc; a projection, not a run)")
    print(f"largest difference of stored maps: contact {difference['contact']:.2e}, attention "
          f"{difference['attention']:.2e} (both stored as float16)")
    print("seconds: from before the model load to the written file, inside each worker (throughput uses these); "
          "model s: inside the forward passes (proteins and pairs); pair s: the pair passes' part of it; tokens "
          "include BOS/EOS of the protein passes and the pair passes. 'reuse': data.allocator."
          "keep_freed_memory() (glibc mallopt), which `cli.py precompute` applies. Random weights: these numbers say "
          "nothing about map quality.")
    if args.json:
        setup = {"arch": args.arch, "random_weights": True, "n_pairs": len(pairs), "n_proteins": n_proteins,
                 "pair_tokens": pair_tokens, "threads": args.threads, "toks_per_batch": args.toks_per_batch}
        write_result(args.json, {
            "setup": setup, "reference": reference, "ours": results["reuse"]["ours"], **shipped,
            "comparisons": comparisons, "runs": results, "max_map_difference": difference,
            "yeast_protein_tokens_per_pair_token": mix,
            "projected_model_time_ratio_at_yeast_mix": projected})


if __name__ == "__main__":
    main()
