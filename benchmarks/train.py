"""Stage-two training throughput: targets read from the HDF5 teacher cache vs preloaded in RAM vs a teacher run
online at every step.

Three loops over the same pairs, same student (default ModelConfig), same batches:
  cache      PairDataset reading each batch's maps from the HDF5 cache (the real training path)
  preloaded  the same with every map and embedding read into memory first
  online     the teacher (a small ESM-2 of the real architecture with RANDOM weights, via teacher_cache.teachers.esm_runner)
             computes each batch's maps at every step, then the same student step
and prints pairs/s, cache_overhead = cache time / preloaded time - 1, online_teacher_ratio = online time / cache
time, and the projected time of one training epoch over --project-pairs pairs of these lengths.

Protein lengths are drawn from --fasta (default: the D-SCRIPT yeast set in ../shared when present) or, without it,
from a log-normal with the yeast set's median (314) and spread. Training crops to --max-len as `train` does.

The cache and preloaded loops run --rounds times each, in alternating order, and their steps are summed.

    python -m benchmarks.train --json benchmarks/out/train.json
    python -m benchmarks.train --keep-heap --json benchmarks/out/train_keep.json   # the allocator `train` uses
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import SHARED_DATA, load_average, peak_rss_mb, write_result
from data.alphabet import RESIDUES
from data.pairs import Pair
from student.config import ModelConfig, TrainConfig
from student.dataset import LengthBucketSampler, PairDataset, batch_sizes, collate_pairs
from student.losses import total_loss
from student.model import StudentModel
from teacher_cache import CacheBuilder, TeacherCache

TEACHER_CHUNK = 2  # pairs per teacher forward in the online loop
DEFAULT_FASTA = SHARED_DATA / "dscript-yeast" / "seqs.fasta"


def draw_lengths(rng: np.random.Generator, n: int, fasta: Path | None) -> np.ndarray:
    if fasta is not None and fasta.exists():
        from data.fasta import read_fasta

        pool = np.array([len(s) for s in read_fasta(fasta).values()])
        return rng.choice(pool, size=n)
    return np.clip(rng.lognormal(np.log(314), 0.55, size=n), 30, 800).astype(int)


def make_pairs(rng: np.random.Generator, n_pairs: int, fasta: Path | None) -> list[Pair]:
    lengths = draw_lengths(rng, 2 * n_pairs, fasta)
    letters = np.array(list(RESIDUES[:20]))
    seqs = ["".join(rng.choice(letters, size=int(n))) for n in lengths]
    return [Pair(f"a{i}", f"b{i}", seqs[2 * i], seqs[2 * i + 1], int(i % 2), "train") for i in range(n_pairs)]


def write_cache(path: Path, pairs: list[Pair], embedding_dim: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    meta = dict(teacher="synthetic", model="benchmark-random", embedding_dim=embedding_dim, random_weights=True,
                settings={"generator": "benchmarks/train.py", "seed": seed})
    with CacheBuilder(path, meta) as builder:
        for p in pairs:
            shape = (len(p.seq_a), len(p.seq_b))
            builder.add_pair(p.seq_a, p.seq_b, rng.random(shape, dtype=np.float32) ** 4,
                             rng.random(shape, dtype=np.float32))
            for seq in (p.seq_a, p.seq_b):
                if not builder.has_protein(seq):
                    builder.add_protein(seq, rng.standard_normal(embedding_dim))


def decode(tokens: np.ndarray) -> str:
    return "".join(RESIDUES[t - 1] for t in tokens)


def student_step(model, optimizer, batch, config: TrainConfig) -> None:
    outputs = model(batch["tokens_a"], batch["mask_a"], batch["tokens_b"], batch["mask_b"])
    loss, _ = total_loss(outputs, batch, 1.0, config.alpha_map, config.beta_sem, config.map_loss, config.map_norm,
                         map_top_target=config.map_top_target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
    optimizer.step()


def timed_loop(dataset: PairDataset, config: TrainConfig, model_config: ModelConfig, steps: int,
               teacher=None) -> dict:
    """Seconds and pairs of `steps` training steps (after one untimed warm-up step)."""
    torch.manual_seed(0)
    model = StudentModel(model_config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    sampler = LengthBucketSampler(batch_sizes(dataset.lengths, config.max_len), config.batch_size, True, 0)
    batches = sampler.batches()
    needed = steps + 1
    batches = (batches * (needed // len(batches) + 1))[:needed]
    seconds, pairs, teacher_seconds, fetch_seconds = 0.0, 0, 0.0, 0.0
    for number, indices in enumerate(batches):
        started = time.perf_counter()
        items = [dataset[i] for i in indices]
        fetch_seconds += time.perf_counter() - started if number else 0.0
        if teacher is not None:  # replace the cached maps by the teacher's, computed now on the cropped sequences
            t0 = time.perf_counter()
            crops = [(decode(it["tokens_a"]), decode(it["tokens_b"])) for it in items]
            maps, embeddings = [], []
            for start in range(0, len(crops), TEACHER_CHUNK):  # bounded memory: attention is (B, heads, T, T)
                chunk = crops[start:start + TEACHER_CHUNK]
                maps.extend(teacher.pair_maps(chunk, "G" * 25, [-1]))
                embeddings.extend(teacher.residue_embeddings([seq for crop in chunk for seq in crop]))
            for it, (contact, _), emb_a, emb_b in zip(items, maps, embeddings[0::2], embeddings[1::2]):
                it["target"], it["emb_a"], it["emb_b"] = contact, emb_a.mean(0), emb_b.mean(0)
            teacher_seconds += time.perf_counter() - t0 if number else 0.0
        batch = collate_pairs(items)
        student_step(model, optimizer, batch, config)
        if number:  # the first step warms up allocators and kernels
            seconds += time.perf_counter() - started
            pairs += len(indices)
    return {"seconds": seconds, "pairs": pairs, "pairs_per_s": pairs / seconds, "steps": steps,
            "teacher_seconds": teacher_seconds, "fetch_seconds": fetch_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-pairs", type=int, default=96, help="pairs in the benchmark cache")
    parser.add_argument("--steps", type=int, default=18, help="timed training steps per loop and round")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of the cache and preloaded loops, in alternating order (ABBA...), summed")
    parser.add_argument("--online-steps", type=int, default=1, help="timed steps of the online-teacher loop")
    parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size)
    parser.add_argument("--max-len", type=int, default=TrainConfig().max_len)
    parser.add_argument("--teacher-arch", default="t6", help="random ESM-2 architecture of the online teacher "
                        "(teacher_cache.teachers.esm_runner.ARCHITECTURES); 'none' skips the online loop")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fasta", type=Path, default=DEFAULT_FASTA, help="lengths drawn from this FASTA")
    parser.add_argument("--project-pairs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--keep-heap", action="store_true",
                        help="data.allocator.keep_freed_memory() first, as `cli.py train` does")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.keep_heap:
        from data.allocator import keep_freed_memory

        if not keep_freed_memory():
            raise SystemExit("--keep-heap needs glibc")
    rng = np.random.default_rng(args.seed)
    pairs = make_pairs(rng, args.n_pairs, args.fasta)
    config = TrainConfig(batch_size=args.batch_size, max_len=args.max_len)
    embedding_dim = 320
    model_config = ModelConfig(semantic_dim=embedding_dim, map_bias_init=-2.0)
    load_start = load_average()
    results: dict = {"allocator": "heap kept" if args.keep_heap else "glibc default",
                     "n_pairs": args.n_pairs, "rounds": args.rounds,
                     "batch_size": args.batch_size,
                     "max_len": args.max_len, "model": model_config.to_dict(),
                     "lengths_from": str(args.fasta) if args.fasta and args.fasta.exists() else "lognormal(314)",
                     "mean_length": float(np.mean([len(p.seq_a) for p in pairs] + [len(p.seq_b) for p in pairs]))}
    with tempfile.TemporaryDirectory() as tmp:
        cache_path = Path(tmp) / "bench.h5"
        write_cache(cache_path, pairs, embedding_dim, args.seed)
        cache = TeacherCache.open(cache_path)
        common = dict(with_embeddings=True, max_len=args.max_len, random_crop=True, seed=args.seed)
        from_cache = PairDataset(pairs, cache, "contact", preload=False, **common)
        preloaded = PairDataset(pairs, cache, "contact", preload=True, **common)
        # Alternating order (cache, preloaded, preloaded, cache, ...) so neither loop always runs on a warmer machine.
        loops = {"cache": from_cache, "preloaded": preloaded}
        for round_number in range(args.rounds):
            for name in (("cache", "preloaded") if round_number % 2 == 0 else ("preloaded", "cache")):
                run = timed_loop(loops[name], config, model_config, args.steps)
                if name in results:
                    for field in ("seconds", "pairs", "steps", "fetch_seconds", "teacher_seconds"):
                        results[name][field] += run[field]
                    results[name]["pairs_per_s"] = results[name]["pairs"] / results[name]["seconds"]
                else:
                    results[name] = run
        if args.teacher_arch != "none":
            from teacher_cache.teachers.esm_runner import ARCHITECTURES, load_teacher, write_random_esm2

            layers, dim, heads = ARCHITECTURES[args.teacher_arch]
            model_path = write_random_esm2(Path(tmp) / "esm", num_layers=layers, embed_dim=dim,
                                           attention_heads=heads)
            teacher = load_teacher(str(model_path), device="cpu", precision="fp32")
            model_config_online = ModelConfig(semantic_dim=dim, map_bias_init=-2.0)
            results["online"] = timed_loop(preloaded, config, model_config_online, args.online_steps, teacher)
            results["online"]["teacher"] = f"random-weight ESM-2 {args.teacher_arch} ({layers} layers, {dim} dim)"
        cache.close()
    per_pair = {name: results[name]["seconds"] / results[name]["pairs"] for name in ("cache", "preloaded", "online")
                if name in results}
    results["cache_overhead"] = per_pair["cache"] / per_pair["preloaded"] - 1.0
    if "online" in per_pair:
        results["online_teacher_ratio"] = per_pair["online"] / per_pair["cache"]
    results["projected_epoch_seconds"] = {name: value * args.project_pairs for name, value in per_pair.items()}
    results["project_pairs"] = args.project_pairs
    results["peak_rss_mb"] = peak_rss_mb()

    print(f"{'loop':<10} {'pairs':>6} {'seconds':>9} {'fetch s':>8} {'teacher s':>9} {'pairs/s':>8} "
          f"{'epoch of ' + str(args.project_pairs):>16}")
    for name in per_pair:
        r = results[name]
        print(f"{name:<10} {r['pairs']:>6} {r['seconds']:>9.2f} {r['fetch_seconds']:>8.2f} "
              f"{r['teacher_seconds']:>9.2f} {r['pairs_per_s']:>8.2f} "
              f"{results['projected_epoch_seconds'][name] / 60:>13.1f} min")
    print(f"cache_overhead = cache / preloaded - 1 = {results['cache_overhead']:+.3f}")
    if "online_teacher_ratio" in results:
        print(f"online_teacher_ratio = online / cache = {results['online_teacher_ratio']:.2f} "
              f"({results['online']['teacher']}; RANDOM weights, real architecture)")
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, torch threads {args.threads}; allocator: "
          f"{results['allocator']}; peak RSS {results['peak_rss_mb']:.0f} MB; load average {load_start} -> "
          f"{load_average()} (other processes share these cores)")
    if args.json:
        write_result(args.json, results)


if __name__ == "__main__":
    main()
