"""The student's training recipe, chosen on validation only: one knob at a time from a base recipe, on the yeast
protein split with published negatives (benchmarks/yeast.py writes the split), labels only, the whole training
part. The test part is removed from the pairs file the runs see, so no run here can read it; the yeast grid
(`python -m benchmarks.yeast --student-n-train ...`) touches it once per final configuration.

Every run validates on the whole valid part (per-epoch early stopping and the reported figure alike). Rows go to
--csv as they finish; a re-run skips variants already there (same name and student code), so a killed search
resumes. Two runs go at once, each on one torch thread (--jobs).

    python -m benchmarks.yeast                       # once: writes bench_out/yeast/protein_published/split.tsv
    python -m benchmarks.yeast_recipe
"""
from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

from benchmarks.common import ROOT, machine, read_csv, student_code, write_csv
from benchmarks.yeast import SETTINGS, YEAST

RESULTS = ROOT / "docs" / "results" / "yeast_recipe.csv"
COLUMNS = ["variant", "changes", "valid_aupr", "valid_auroc", "valid_chance", "best_epoch", "epochs_run",
           "train_pairs", "seconds", "student_code", "machine", "note"]

# The base recipe, and each variant as the fields it changes (TrainConfig fields; model.X for ModelConfig fields).
# The base came out of short probes on the same split and valid part: standardising the pooled features helped the
# two-layer CNN, which still overfitted after epoch 1, and one layer of kernel 1 (a learnt residue composition) did
# better still. The rows "two layers 64" and "no pool norm" make the same comparisons with this search's settings.
BASE = {"model.channels": (32,), "model.kernel_sizes": (1,), "model.embed_dim": 32, "model.pool": "mean+length",
        "model.pool_norm": True, "max_len": 256, "epochs": 6, "patience": 2}
VARIANTS = {
    "base": {},
    "no pool norm": {"model.pool_norm": False},
    "pool mean": {"model.pool": "mean"},
    "pool max+mean+length": {"model.pool": "max+mean+length"},
    "kernel 5": {"model.kernel_sizes": (5,)},
    "kernel 9": {"model.kernel_sizes": (9,)},
    "two layers 64": {"model.channels": (64, 64), "model.kernel_sizes": (5, 5), "model.pool": "max+mean+length"},
    "width 64": {"model.channels": (64,)},
    "lr 3e-3": {"lr": 3e-3},
    "weight decay 0.1": {"weight_decay": 0.1},
    "dropout 0.3": {"model.dropout": 0.3},
    "no class weighting": {"balance_classes": False},
    "crop 512": {"max_len": 512},
    "head features": {"model.head": "features"},
    # issue 15, second round: the residue composition itself beside the mean, from the chosen "kernel 5" recipe
    "kernel 5 + composition": {"model.kernel_sizes": (5,), "model.pool": "mean+length+composition"},
    # third round: a learnt weighting of the residues beside the plain mean
    "kernel 5 + attention": {"model.kernel_sizes": (5,), "model.pool": "mean+attention+length"},
    # fourth round: |a - b| beside the sum and product of the pooled proteins; a smaller step for the whole part
    "kernel 5 + difference": {"model.kernel_sizes": (5,), "model.pair_terms": "sum+product+difference"},
    "kernel 5 + lr 3e-4": {"model.kernel_sizes": (5,), "lr": 3e-4},
}


def without_test(split_path: Path, out: Path) -> Path:
    """The split file with its test rows removed (written once)."""
    if not out.exists():
        with open(split_path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        column = lines[0].split("\t").index("split")
        kept = [lines[0]] + [line for line in lines[1:] if line.split("\t")[column] != "test"]
        partial = out.with_name(out.name + ".partial")
        partial.write_text("\n".join(kept) + "\n", encoding="utf-8")
        os.replace(partial, out)
    return out


def make_config(changes: dict, pairs: Path, fasta: Path, out: Path, seed: int):
    from student.config import ModelConfig, TrainConfig

    settings = {**BASE, **changes}
    model = ModelConfig(**{k[6:]: v for k, v in settings.items() if k.startswith("model.")})
    config = TrainConfig(pairs=str(pairs), fasta=str(fasta), out=str(out), split="column", seed=seed, device="cpu",
                         overwrite=True, model=model)
    return replace(config, **{k: v for k, v in settings.items() if not k.startswith("model.")})


def run_variant(name: str, changes: dict, pairs: str, fasta: str, work: str, seed: int, threads: int) -> dict:
    import torch

    from data.allocator import keep_freed_memory
    from student.trainer import train

    torch.set_num_threads(threads)
    keep_freed_memory()
    config = make_config(changes, Path(pairs), Path(fasta), Path(work) / name.replace(" ", "_"), seed)
    started = time.perf_counter()
    metrics = train(config, progress=False)
    valid = metrics["valid"]
    return {"variant": name, "changes": "; ".join(f"{k}={v}" for k, v in changes.items()) or "(base)",
            "valid_aupr": f"{valid['aupr']:.4f}", "valid_auroc": f"{valid['auroc']:.4f}",
            "valid_chance": f"{valid['positive_rate']:.4f}", "best_epoch": metrics["best_epoch"],
            "epochs_run": metrics["epochs_run"], "train_pairs": metrics["train_pairs"],
            "seconds": f"{time.perf_counter() - started:.0f}", "student_code": student_code(),
            "machine": f"{machine()['cpu_model']} ({os.cpu_count()} cores)",
            "note": f"{Path(pairs).parent.name}, seed {seed}, labels only, torch threads {threads}, "
                    "runs at once: {jobs}; base: " + "; ".join(f"{k}={v}" for k, v in BASE.items())}


def baseline_rows(pairs: Path, fasta: Path) -> list[dict]:
    """The trivial baselines fit on the whole training part and scored on the valid part: the bar in valid terms."""
    from data.fasta import read_fasta
    from data.pairs import read_pairs
    from student.evaluation.baselines import evaluate_baselines

    table = read_pairs(pairs, read_fasta(fasta), require_labels=True).pairs
    started = time.perf_counter()
    scores = evaluate_baselines([p for p in table if p.split == "train"], [p for p in table if p.split == "valid"])
    seconds = time.perf_counter() - started
    return [{"variant": f"baseline {name}", "changes": "", "valid_aupr": f"{m['aupr']:.4f}",
             "valid_auroc": f"{m['auroc']:.4f}", "valid_chance": f"{m['chance_aupr']:.4f}", "best_epoch": "",
             "epochs_run": "", "train_pairs": m["n_train"], "seconds": f"{seconds:.1f}", "student_code": "-",
             "machine": f"{machine()['cpu_model']} ({os.cpu_count()} cores)",
             "note": "fit on the whole training part, scored on the valid part"} for name, m in scores.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(YEAST), help="folder with seqs.fasta")
    parser.add_argument("--work", default=str(ROOT / "bench_out" / "yeast"), help="benchmarks.yeast's --work")
    parser.add_argument("--csv", default=str(RESULTS))
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names of VARIANTS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (one torch thread each)")
    parser.add_argument("--setting", default="protein/published", choices=SETTINGS[1:],
                        help="whose valid part chooses (the search of docs/evaluation.md used protein/published; "
                             "another setting needs its own --csv)")
    args = parser.parse_args()
    if args.setting != "protein/published" and Path(args.csv) == RESULTS:
        parser.error(f"--setting {args.setting} needs its own --csv (the default holds protein/published rows)")
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown} (known: {', '.join(VARIANTS)})")
    split = Path(args.work) / args.setting.replace("/", "_") / "split.tsv"
    if not split.exists():
        parser.error(f"{split} is missing: run `python -m benchmarks.yeast` first")
    pairs = without_test(split, split.with_name("split_without_test.tsv"))
    rows = read_csv(Path(args.csv))
    if not any(row["variant"].startswith("baseline") for row in rows):
        rows += baseline_rows(pairs, Path(args.data) / "seqs.fasta")
        write_csv(Path(args.csv), rows, COLUMNS)
    code = student_code()
    done = {row["variant"] for row in rows if row["student_code"] == code}
    todo = [n for n in names if n not in done]
    work = Path(args.work) / ("recipe" if args.setting == "protein/published" else f"recipe_{split.parent.name}")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run_variant, n, VARIANTS[n], str(pairs), str(Path(args.data) / "seqs.fasta"),
                               str(work), args.seed, 1): n for n in todo}
        for future in futures:
            row = future.result()
            row["note"] = row["note"].replace("{jobs}", str(args.jobs))
            rows = [r for r in rows if not (r["variant"] == row["variant"] and r["student_code"] == code)] + [row]
            write_csv(Path(args.csv), rows, COLUMNS)
            print(f"{row['variant']:>20}: valid AUPR {row['valid_aupr']} AUROC {row['valid_auroc']} "
                  f"(best epoch {row['best_epoch']} of {row['epochs_run']}, {row['seconds']} s)", flush=True)


if __name__ == "__main__":
    main()
