"""D-SCRIPT's yeast pairs (../shared/data/dscript-yeast; 1:10, STRING positives, random proteome negatives) under
splits and negatives that a shortcut cannot pass, with trivial baselines beside the student.

Settings (split x negatives), each split once (split seed 0) and written to --work/<setting>/split.tsv:
  random/published          random pair split of the published pairs: shows why random splits mislead
  protein/published         protein-disjoint (by sequence content) split of the published pairs
  homology/published        MMseqs2 single-linkage groups (identity >= 0.3, coverage >= 0.8), split by group
  protein/degree-balanced   the yeast positives with degree-balanced negatives (ratio 10, seed 0)
  homology/degree-balanced
For every setting, n_train and seed: the training part is subsampled (data.splits.stratified_subsample, the
student's own subsampler, so both see the same pairs) and the baselines (student.evaluation.baselines) are fit on it and
scored on the whole test part. The student (CE only: no teacher cache, alpha_map = beta_sem = 0) runs on the
--student-* grid. Rows go to --csv as they finish (a re-run skips rows already there, so a killed run resumes).

Before splitting, the published table is cleaned: 5 rows labelled 0 repeat a positive pair by sequence content
(ids differ); they are dropped (and counted), as are exact content duplicates.

    python -m benchmarks.yeast                                    # baselines, full grid
    python -m benchmarks.yeast --student-n-train 500,2000 --student-seeds 0,1,2 --student-epochs 5
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, SHARED_DATA
from data.fasta import read_fasta
from data.homology import HomologyConfig, cluster_sequences
from data.keys import sequence_key
from data.negatives import NegativesConfig, sample_negatives, write_negatives
from data.pairs import Pair, read_pairs, write_pairs
from data.splits import assign_splits, stratified_subsample, write_split
from student.evaluation.baselines import evaluate_baselines

YEAST = SHARED_DATA / "dscript-yeast"
RESULTS = ROOT / "docs" / "results" / "yeast.csv"
COLUMNS = ["dataset", "split", "negatives", "model", "n_train", "seed", "aupr", "auroc", "chance_aupr", "n_test",
           "train_pairs", "epochs", "seconds", "machine", "note"]
SETTINGS = ("random/published", "protein/published", "homology/published", "protein/degree-balanced",
            "homology/degree-balanced")
KEY = ("dataset", "split", "negatives", "model", "n_train", "seed")


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()}-core CPU"


def clean_published(data_dir: Path, work: Path, sequences: dict[str, str]) -> tuple[Path, dict]:
    """Write the published pairs without label-0 rows that repeat a positive by content; returns (path, counts)."""
    rows = []
    with open(data_dir / "pairs.tsv", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                a, b, label = line.split()[:3]
                rows.append(Pair(a, b, sequences[a], sequences[b], int(float(label))))
    positive_keys = {p.key for p in rows if p.label == 1}
    kept = [p for p in rows if p.label == 1 or p.key not in positive_keys]
    path = work / "published.tsv"
    write_pairs(path, kept)
    return path, {"rows": len(rows), "negatives_repeating_a_positive": len(rows) - len(kept)}


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(partial, path)


class Results:
    """The CSV's rows; rows of this benchmark with the same key are replaced, others kept."""

    def __init__(self, path: Path):
        self.path = path
        self.rows = read_rows(path)

    def has(self, **key) -> bool:
        return any(all(str(row.get(k)) == str(key[k]) for k in KEY) for row in self.rows)

    def add(self, row: dict) -> None:
        self.rows = [r for r in self.rows if not all(str(r.get(k)) == str(row[k]) for k in KEY)] + [row]
        write_rows(self.path, self.rows)


def homology_groups(args, sequences: dict[str, str], work: Path) -> dict[str, str]:
    """MMseqs2 single-linkage groups of every FASTA sequence, kept in work/ for re-runs with the same thresholds."""
    homology = HomologyConfig(min_seq_id=args.min_seq_id, coverage=args.coverage, threads=args.threads)
    path = work / "homology_groups.json"
    settings = {k: v for k, v in homology.to_dict().items() if k != "threads"}
    if path.exists():
        saved = json.loads(path.read_text())
        if saved["config"] == settings:
            return saved["groups"]
    started = time.perf_counter()
    groups = cluster_sequences(sorted(set(sequences.values())), homology)
    print(f"MMseqs2 homology groups: {len(set(groups.values()))} for {len(groups)} sequences "
          f"({time.perf_counter() - started:.0f} s, {args.threads} threads)")
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"config": settings, "groups": groups}))
    os.replace(partial, path)
    return groups


def build_settings(args, sequences: dict[str, str]) -> dict[str, Path]:
    """Write every setting's split.tsv (once; reused when present) and return {setting: path}."""
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    wanted = list(dict.fromkeys(args.settings + (args.student_settings if args.student_n_train else [])))
    paths = {setting: work / setting.replace("/", "_") / "split.tsv" for setting in wanted}
    if all(path.exists() for path in paths.values()):  # splits written by an earlier run: reuse them as they are
        return paths
    published, cleaning = clean_published(Path(args.data), work, sequences)
    print(f"published pairs: {cleaning}")
    tables = {"published": read_pairs(published, sequences, require_labels=True).pairs}
    print(f"published after content de-duplication: {len(tables['published'])} pairs")
    positives = [p for p in tables["published"] if p.label == 1]
    balanced = sample_negatives(positives, sequences, NegativesConfig(ratio=10, strategy="degree-balanced", seed=0))
    write_negatives(work / "degree_balanced.tsv", balanced)
    tables["degree-balanced"] = balanced.pairs
    print(f"degree-balanced negatives: {json.dumps(balanced.stats)}")

    groups = None
    for setting, path in paths.items():
        split, negatives = setting.split("/")
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if split == "homology" and groups is None:
            groups = homology_groups(args, sequences, work)
        result = assign_splits(tables[negatives], by=split, valid_frac=args.valid_frac, test_frac=args.test_frac,
                               seed=0, groups=groups if split == "homology" else None)
        result.stats["config"] = {"by": split, "negatives": negatives, "valid_frac": args.valid_frac,
                                  "test_frac": args.test_frac, "seed": 0, "min_seq_id": args.min_seq_id,
                                  "coverage": args.coverage}
        write_split(path, result)
        print(f"{setting}: kept {len(result.pairs)}, dropped {result.dropped} straddling; "
              + ", ".join(f"{part} {result.stats[part]['pairs']} ({result.stats[part]['positive_rate']})"
                          for part in ("train", "valid", "test")))
    return paths


def n_train_values(text: str) -> list[int | None]:
    return [None if item == "all" else int(item) for item in text.split(",") if item]


def describe_published(args, sequences: dict[str, str]) -> None:
    """The shortcut in the published negatives: how many hold a protein that is in no positive."""
    with open(Path(args.data) / "pairs.tsv", encoding="utf-8") as handle:
        rows = [line.split()[:3] for line in handle if line.strip()]
    in_positive = {sequence_key(sequences[name]) for a, b, label in rows if float(label) == 1 for name in (a, b)}
    negatives = [(a, b) for a, b, label in rows if float(label) == 0]
    outside = sum(1 for a, b in negatives
                  if sequence_key(sequences[a]) not in in_positive or sequence_key(sequences[b]) not in in_positive)
    print(f"published negatives holding a protein that is in no positive: {outside} of {len(negatives)} "
          f"({100 * outside / len(negatives):.1f}%); {len(sequences)} ids name {len(set(sequences.values()))} "
          "distinct sequences")


def run_baselines(args, paths: dict[str, Path], sequences: dict[str, str], results: Results) -> None:
    for setting in args.settings:
        path = paths[setting]
        split, negatives = setting.split("/")
        pairs = read_pairs(path, sequences, require_labels=True).pairs
        train = [p for p in pairs if p.split == "train"]
        test = [p for p in pairs if p.split == "test"]
        for n_train in n_train_values(args.n_train):
            for seed in [int(s) for s in args.seeds.split(",")]:
                subsample = train if n_train is None else stratified_subsample(train, n_train, seed)
                started = time.perf_counter()
                scores = evaluate_baselines(subsample, test)
                seconds = time.perf_counter() - started
                for model, metrics in scores.items():
                    results.add({"dataset": "dscript-yeast", "split": split, "negatives": negatives,
                                 "model": model, "n_train": n_train or "all", "seed": seed,
                                 "aupr": f"{metrics['aupr']:.4f}", "auroc": f"{metrics['auroc']:.4f}",
                                 "chance_aupr": f"{metrics['chance_aupr']:.4f}", "n_test": len(test),
                                 "train_pairs": len(subsample), "epochs": "", "seconds": f"{seconds:.1f}",
                                 "machine": machine(), "note": "fit on the training subsample only"})
        print(f"baselines done: {setting}")


def student_split(path: Path, fasta: Path, n_valid: int) -> Path:
    """The split with its valid part cut to a stratified n_valid pairs (validation is the student's per-epoch cost;
    it only picks the best epoch and the threshold). Train and test parts are those the baselines see."""
    out = path.with_name(f"student_split_valid{n_valid}.tsv")
    if out.exists():
        return out
    pairs = read_pairs(path, read_fasta(fasta), require_labels=True).pairs
    valid = [p for p in pairs if p.split == "valid"]
    keep = set(stratified_subsample(valid, n_valid, 0))
    partial = out.with_name(out.name + ".partial")
    write_pairs(partial, [p for p in pairs if p.split != "valid" or p in keep], with_split=True)
    os.replace(partial, out)
    return out


def run_student(args, paths: dict[str, Path], results: Results) -> None:
    import torch

    from student.config import ModelConfig, TrainConfig
    from student.trainer import train

    from data.allocator import keep_freed_memory

    torch.set_num_threads(args.threads)
    heap_kept = keep_freed_memory()  # as `cli.py train` runs; changes speed, not results
    for setting in args.student_settings:
        split, negatives = setting.split("/")
        pairs_path = student_split(paths[setting], Path(args.data) / "seqs.fasta", args.student_valid)
        for n_train in n_train_values(args.student_n_train):
            for seed in [int(s) for s in args.student_seeds.split(",")]:
                key = {"dataset": "dscript-yeast", "split": split, "negatives": negatives, "model": "student_ce",
                       "n_train": n_train or "all", "seed": seed}
                if results.has(**key):
                    continue
                out = Path(args.work) / setting.replace("/", "_") / f"student_n{n_train or 'all'}_s{seed}"
                config = TrainConfig(pairs=str(pairs_path), fasta=str(Path(args.data) / "seqs.fasta"),
                                     cache=None, out=str(out), alpha_map=0.0, beta_sem=0.0, epochs=args.student_epochs,
                                     split="column", n_train=n_train, seed=seed, device="cpu", overwrite=True,
                                     patience=args.student_epochs, model=ModelConfig(head=args.head))
                started = time.perf_counter()
                metrics = train(config, progress=False)
                seconds = time.perf_counter() - started
                test = metrics["test"]
                results.add({**key, "aupr": f"{test['aupr']:.4f}", "auroc": f"{test['auroc']:.4f}",
                             "chance_aupr": f"{test['positive_rate']:.4f}",
                             "n_test": test.get("n", ""), "train_pairs": metrics["train_pairs"],
                             "epochs": f"{metrics['epochs_run']} (best {metrics['best_epoch']})",
                             "seconds": f"{seconds:.0f}", "machine": machine(),
                             "note": f"CE only, no teacher cache, head {args.head}, torch threads {args.threads}, "
                                     f"valid subsample {args.student_valid} (early stopping/threshold only)"
                                     + ("; heap kept" if heap_kept else "")})
                print(f"student {setting} n_train {n_train or 'all'} seed {seed}: test AUPR {test['aupr']:.3f} "
                      f"AUROC {test['auroc']:.3f} ({seconds:.0f} s)", flush=True)


def summary(results: Results) -> None:
    from rich.console import Console
    from rich.table import Table

    groups: dict[tuple, list[dict]] = {}
    for row in results.rows:
        if row.get("dataset") != "dscript-yeast":
            continue
        groups.setdefault((row["split"], row["negatives"], str(row["n_train"]), row["model"]), []).append(row)
    table = Table(title="dscript-yeast: test AUPR, mean ± sd over seeds (chance = test positive rate)")
    for column in ("split", "negatives", "n_train", "model", "seeds", "AUPR", "AUROC", "chance"):
        table.add_column(column, justify="right")
    order = {name: i for i, name in enumerate(SETTINGS)}
    for (split, negatives, n_train, model), rows in sorted(
            groups.items(), key=lambda kv: (order.get(f"{kv[0][0]}/{kv[0][1]}", 99),
                                            int(kv[0][2]) if kv[0][2].isdigit() else 10 ** 9, kv[0][3])):
        aupr = np.array([float(r["aupr"]) for r in rows])
        auroc = np.array([float(r["auroc"]) for r in rows])
        chance = rows[0]["chance_aupr"]
        table.add_row(split, negatives, n_train, model, str(len(rows)), f"{aupr.mean():.3f} ± {aupr.std():.3f}",
                      f"{auroc.mean():.3f} ± {auroc.std():.3f}", chance)
    Console(width=140).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(YEAST), help="folder with pairs.tsv and seqs.fasta")
    parser.add_argument("--work", default=str(ROOT / "bench_out" / "yeast"), help="splits and runs")
    parser.add_argument("--csv", default=str(RESULTS))
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--n-train", default="500,1000,2000,all", help="baseline grid ('all' = whole train part)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--student-settings", default="protein/published,homology/published,"
                                                      "protein/degree-balanced,homology/degree-balanced")
    parser.add_argument("--student-n-train", default="", help="e.g. 500,2000; empty: no student runs")
    parser.add_argument("--student-seeds", default="0,1,2")
    parser.add_argument("--student-epochs", type=int, default=5)
    parser.add_argument("--student-valid", type=int, default=400, help="valid pairs the student validates on")
    parser.add_argument("--head", default="both")
    parser.add_argument("--valid-frac", type=float, default=0.1)
    parser.add_argument("--test-frac", type=float, default=0.1)
    parser.add_argument("--min-seq-id", type=float, default=0.3)
    parser.add_argument("--coverage", type=float, default=0.8)
    parser.add_argument("--threads", type=int, default=1, help="MMseqs2 and torch threads")
    parser.add_argument("--no-baselines", action="store_true", help="only the student grid")
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args()
    args.settings = [s for s in args.settings.split(",") if s]
    args.student_settings = [s for s in args.student_settings.split(",") if s]
    unknown = [s for s in args.settings + args.student_settings if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings {unknown} (known: {', '.join(SETTINGS)})")

    results = Results(Path(args.csv))
    if not args.summary_only:
        sequences = read_fasta(Path(args.data) / "seqs.fasta")
        describe_published(args, sequences)
        paths = build_settings(args, sequences)
        if not args.no_baselines:
            run_baselines(args, paths, sequences, results)
        if args.student_n_train:
            run_student(args, paths, results)
    summary(results)


if __name__ == "__main__":
    main()
