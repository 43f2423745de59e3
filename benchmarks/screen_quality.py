"""Are the screen's top pairs real interactions? Recall of the coarse pass and enrichment of known positives, on
the real D-SCRIPT yeast data (../shared/data/dscript-yeast; never copied into the repository).

1. Split the yeast pairs by protein (data.splits.assign_splits, by="protein", valid 0.1, test 0.1, seed 0; conflicting
   rows dropped) and train a label-only student (default ModelConfig) on a seeded stratified 5,000-pair subsample of
   the training part (TrainConfig n_train=5000, split="column", few epochs). `--checkpoint` reuses a student trained
   this way (the split is recomputed, deterministic, to know which proteins it saw).
2. Screen a seeded SUBSET of the proteome (`--proteins N` records drawn from the FASTA with `--seed`) exactly, and in
   coarse mode at each `--rescore-fractions` (and each `--coarse` factor/precision); recall of the exact top-1000
   and top-10,000 (by id pair) under each coarse setting, with wall time and pairs/s of every run.
3. Enrichment of known positives (every label-1 pair of pairs.tsv, conflicts dropped, matched by sequence content
   in either orientation) in the exact top K (100, 1,000, 10,000) against the base rate (positives among all screened
   pairs of the subset), apart for pairs with at least one protein the student trained on ("seen": a protein of the
   5,000 training pairs) and pairs with none ("new"); beside it a label-free reference that ranks the same pairs by
   the product of the two proteins' degrees among the training positives (ties: by the sum, then seeded random).

    python -m benchmarks.screen_quality --json docs/results/screen_quality.json
"""
from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks.common import SHARED_DATA, load_average, write_result
from data.fasta import read_fasta, write_fasta
from data.keys import sequence_key
from data.pairs import read_pairs, write_pairs
from data.splits import assign_splits, stratified_subsample

YEAST = SHARED_DATA / "dscript-yeast"
KS = (100, 1000, 10000)


def train_student(pairs, fasta: str, work: Path, n_train: int, epochs: int, patience: int, threads: int,
                  seed: int) -> tuple[str, dict, float]:
    import torch

    from student.config import ModelConfig, TrainConfig
    from student.trainer import train

    torch.set_num_threads(threads)
    split_path = work / "pairs_split.tsv"
    write_pairs(split_path, pairs, with_split=True)
    config = TrainConfig(pairs=str(split_path), fasta=fasta, out=str(work / "student"), split="column",
                         n_train=n_train, epochs=epochs, patience=patience, seed=seed, device="cpu",
                         overwrite=True, model=ModelConfig())
    start = time.perf_counter()
    metrics = train(config)
    seconds = time.perf_counter() - start
    return str(work / "student" / "best.pt"), metrics, seconds


def read_ids(path: Path) -> list[tuple[str, str]]:
    return [tuple(line.split("\t")[:2]) for line in path.read_text().splitlines()[1:]]


def recall(found: list[tuple[str, str]], truth: list[tuple[str, str]], top: int) -> float:
    """Share of the reference's top rows (by id pair) among the same number of top rows found."""
    return round(len(set(found[:top]) & set(truth[:top])) / max(1, len(truth[:top])), 4)


def screen(checkpoint: str, fasta: Path, out: Path, threads: int, exact: bool, fraction: float = 0.02,
           factor: int = 4, precision: str = "float32") -> dict:
    from student.screening.screen import ScreenConfig, run_screen

    config = ScreenConfig(checkpoint=checkpoint, fasta=str(fasta), out=str(out), top=10000, device="cpu",
                          threads=threads, exact=exact, exact_below=0, rescore_fraction=fraction, coarse_factor=factor,
                          coarse_precision=precision, overwrite=True)
    start = time.perf_counter()
    summary = run_screen(config)
    seconds = time.perf_counter() - start
    return {"mode": summary.mode, "seconds": round(seconds, 1), "pairs": summary.pairs_total,
            "pairs_per_s": round(summary.pairs_total / seconds, 1), "pairs_rescored": summary.pairs_exact,
            "load_average_1min_after": load_average()}


def enrichment(ranked_keys: list[tuple[str, str]], positives: set, seen: set, base: dict) -> dict:
    """Counts of positives in the top K of `ranked_keys` (canonical sequence-key pairs), overall and per group."""
    out = {}
    for k in KS:
        top = ranked_keys[:k]
        entry = {"k": len(top)}
        for group in ("all", "seen", "new"):
            members = [key for key in top if group == "all" or ((key[0] in seen or key[1] in seen) == (group == "seen"))]
            hits = sum(key in positives for key in members)
            rate = hits / len(members) if members else None
            entry[group] = {"pairs": len(members), "positives": hits,
                            "rate": None if rate is None else round(rate, 6),
                            "enrichment": None if rate is None or not base[group]["rate"]
                            else round(rate / base[group]["rate"], 2)}
        out[str(k)] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(YEAST))
    parser.add_argument("--proteins", type=int, default=1500, help="Proteins of the seeded FASTA subset screened.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rescore-fractions", default="0.005,0.01,0.02,0.05")
    parser.add_argument("--coarse", default="4/float32",
                        help="coarse settings FACTOR/PRECISION, comma-separated, each run at every rescore fraction "
                             "(e.g. 4/float32,4/bfloat16,6/bfloat16)")
    parser.add_argument("--checkpoint", help="Reuse a student trained on this split (else one is trained).")
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", help="Keep the working files (split, student, screens) here.")
    parser.add_argument("--json", help="Write the results here (benchmarks.common.write_result).")
    args = parser.parse_args()
    data = Path(args.data)
    fasta = str(data / "seqs.fasta")
    records = read_fasta(fasta)
    table = read_pairs(data / "pairs.tsv", records, require_labels=True, drop_conflicts=True)
    split = assign_splits(table.pairs, by="protein", valid_frac=0.1, test_frac=0.1, seed=args.seed)
    train_part = [p for p in split.pairs if p.split == "train"]
    trained_on = stratified_subsample(train_part, args.n_train, args.seed)  # what TrainConfig(n_train) draws
    seen = {sequence_key(s) for p in trained_on for s in (p.seq_a, p.seq_b)}
    degree = Counter(sequence_key(s) for p in trained_on if p.label == 1 for s in (p.seq_a, p.seq_b))
    positives = {p.key for p in table.pairs if p.label == 1}

    with tempfile.TemporaryDirectory(prefix="screen-quality-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        result: dict = {"data": str(data), "pairs_read": len(table.pairs), "conflicts_dropped": table.conflicts_dropped,
                        "split": {"by": "protein", "valid_frac": 0.1, "test_frac": 0.1, "seed": args.seed,
                                  "stats": split.stats, "train_pairs": len(train_part),
                                  "trained_on_pairs": len(trained_on),
                                  "trained_on_positives": sum(p.label for p in trained_on),
                                  "trained_on_proteins": len(seen)}}
        if args.checkpoint:
            checkpoint = args.checkpoint
            result["student"] = {"checkpoint": checkpoint, "trained_here": False}
        else:
            checkpoint, metrics, seconds = train_student(split.pairs, fasta, work, args.n_train, args.epochs,
                                                         args.patience, args.threads, args.seed)
            result["student"] = {"trained_here": True, "model": "default ModelConfig(), label-only (no teacher cache)",
                                 "n_train": args.n_train, "epochs": args.epochs, "patience": args.patience,
                                 "train_seconds": round(seconds, 1),
                                 "metrics": {k: v for k, v in metrics.items() if k in ("valid", "test", "best_epoch")}}
            print(f"trained in {seconds:.0f} s: {result['student']['metrics']}")

        rng = np.random.default_rng([args.seed, 22])
        ids = list(records)
        chosen = sorted(rng.choice(len(ids), size=min(args.proteins, len(ids)), replace=False).tolist())
        subset = {ids[i]: records[ids[i]] for i in chosen}
        subset_fasta = work / "subset.fasta"
        write_fasta(subset_fasta, subset)
        keys = sorted({sequence_key(s) for s in subset.values()})
        result["subset"] = {"note": f"a seeded SUBSET of the proteome: {len(subset)} of {len(records)} FASTA records "
                                    f"(seed {args.seed}), {len(keys)} distinct sequences",
                            "records": len(subset), "distinct_sequences": len(keys)}

        runs: dict = {}
        runs["exact"] = screen(checkpoint, subset_fasta, work / "exact.tsv", args.threads, exact=True)
        print(f"exact: {runs['exact']}")
        truth = read_ids(work / "exact.tsv")
        for setting in args.coarse.split(","):
            factor, precision = setting.split("/")
            for fraction in [float(f) for f in args.rescore_fractions.split(",")]:
                out = work / f"coarse-{factor}-{precision}-{fraction}.tsv"
                entry = screen(checkpoint, subset_fasta, out, args.threads, exact=False, fraction=fraction,
                               factor=int(factor), precision=precision)
                found = read_ids(out)
                for top in (1000, 10000):
                    entry[f"recall_top{top}"] = recall(found, truth, top)
                # the default setting keeps the old key, so earlier result files read alike
                name = f"coarse {fraction}" if setting == "4/float32" else f"coarse {fraction} factor {setting}"
                runs[name] = entry
                print(f"{name}: {entry}")
        result["screens"] = runs

        # base rates over every screened pair of the subset (distinct sequences, self-pairs included, as screened)
        in_subset = set(keys)
        n = len(keys)
        n_new = sum(k not in seen for k in keys)
        pos_subset = [key for key in positives if key[0] in in_subset and key[1] in in_subset]
        pairs_all = n * (n + 1) // 2
        pairs_new = n_new * (n_new + 1) // 2
        base = {}
        for group, pairs_in in (("all", pairs_all), ("seen", pairs_all - pairs_new), ("new", pairs_new)):
            hits = sum(1 for key in pos_subset if group == "all"
                       or ((key[0] in seen or key[1] in seen) == (group == "seen")))
            base[group] = {"pairs": pairs_in, "positives": hits, "rate": round(hits / pairs_in, 8) if pairs_in else None}
        result["base_rate"] = base
        result["subset"]["seen_proteins"] = n - n_new

        def key_of(id_a: str, id_b: str) -> tuple[str, str]:
            a, b = sequence_key(subset[id_a]), sequence_key(subset[id_b])
            return (a, b) if a <= b else (b, a)

        student_keys = [key_of(a, b) for a, b in truth]
        result["student_enrichment"] = enrichment(student_keys, positives, seen, base)

        # label-free reference: degree product in the training positives (ties by sum, then seeded random)
        deg = np.array([degree.get(k, 0) for k in keys], dtype=np.int64)
        rows, cols = np.triu_indices(n)
        product, total = deg[rows] * deg[cols], deg[rows] + deg[cols]
        noise = np.random.default_rng([args.seed, 23]).random(len(rows))
        order = np.lexsort((noise, -total, -product))[:max(KS)]
        reference_keys = [(keys[i], keys[j]) for i, j in zip(rows[order].tolist(), cols[order].tolist())]
        result["degree_reference"] = enrichment(reference_keys, positives, seen, base)
        result["degree_reference"]["note"] = ("rank by deg(a)*deg(b) in the student's training positives; ties by "
                                              "the sum, then seeded random (pairs of two new proteins all tie at 0)")
    print_table(result)
    if args.json:
        write_result(args.json, result)


def print_table(result: dict) -> None:
    print(result["subset"]["note"])
    for name, entry in result["screens"].items():
        recall = " ".join(f"recall@{t} {entry[f'recall_top{t}']}" for t in (1000, 10000) if f"recall_top{t}" in entry)
        print(f"{name:14} {entry['seconds']:>8} s {entry['pairs_per_s']:>10} pairs/s rescored {entry['pairs_rescored']:>9} {recall}")
    base = result["base_rate"]
    print("base rate: " + ", ".join(f"{g} {base[g]['positives']}/{base[g]['pairs']}" for g in base))
    for name in ("student_enrichment", "degree_reference"):
        for k in map(str, KS):
            e = result[name][k]
            print(f"{name:19} top {k:>6}: " + "  ".join(
                f"{g} {e[g]['positives']}/{e[g]['pairs']} (x{e[g]['enrichment']})" for g in ("all", "seen", "new")))


if __name__ == "__main__":
    main()
