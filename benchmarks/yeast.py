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
scored on the whole test part. The student (CE only: no teacher cache, alpha_map = beta_sem = 0; every other
setting is `train`'s default, student.config) runs on the --student-* grid, validating on the whole valid part.
Rows go to --csv as they finish (a re-run skips rows already there, so a killed run resumes); each student row
carries `student_code`, a fingerprint of student/ and data/ (benchmarks.common.student_code), so rows of another
student stay beside the new ones. Rows written before the column existed read as the old student.

With --cache CACHE.h5 (a teacher cache of the yeast pairs, e.g. from `precompute` with a real ESM-2), each student
row is trained three ways on the same splits, subsamples and seeds: CE only, CE + map (alpha-map) and CE + map +
semantic (alpha-map, beta-sem), `train`'s defaults otherwise; the `teacher` column names the cache's model, and a
cache of a random-weight ESM-2 says "random teacher" there. Pairs the cache lacks are left out of every part, for
the baselines as well (counted in the log and the rows' note), so a cache of a subset runs as it is.

Before splitting, the published table is cleaned: 5 rows labelled 0 repeat a positive pair by sequence content
(ids differ); they are dropped (and counted), as are exact content duplicates.

    python -m benchmarks.yeast                                    # baselines, full grid
    python -m benchmarks.yeast --student-n-train 500,2000,all --student-seeds 0,1,2
    python -m benchmarks.yeast --cache yeast_esm2_t33.h5 --student-n-train 500,2000,all   # the real experiment
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, SHARED_DATA, read_csv, student_code, write_csv
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
           "train_pairs", "epochs", "seconds", "machine", "student_code", "teacher", "note"]
SETTINGS = ("random/published", "protein/published", "homology/published", "protein/degree-balanced",
            "homology/degree-balanced")
KEY = ("dataset", "split", "negatives", "model", "n_train", "seed", "student_code", "teacher")
OLD_STUDENT = "old student (max pool, 3 epochs; before student_code)"  # rows written before the column
NOT_A_STUDENT = "-"  # student_code of a baseline row
# (model name, uses the teacher's maps, uses its embeddings) of each student trained with --cache
STUDENTS = (("student_ce", False, False), ("student_ce_map", True, False), ("student_ce_map_sem", True, True))


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
    rows = read_csv(path)
    for row in rows:
        if not row.get("student_code"):
            row["student_code"] = OLD_STUDENT if row["model"].startswith("student") else NOT_A_STUDENT
        row["teacher"] = row.get("teacher") or ""
    return rows


def write_rows(path: Path, rows: list[dict]) -> None:
    write_csv(path, rows, COLUMNS)


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


class Teacher:
    """What --cache adds: the cache, its label for the `teacher` column, and each setting's split restricted to
    the pairs it holds (worked out once per split: the baselines and the students both ask)."""

    def __init__(self, path: str | None):
        self.path = path
        self.label, self.fingerprint = "", ""
        self._restricted: dict[Path, tuple[Path, str]] = {}
        if path:
            from teacher_cache import TeacherCache

            with TeacherCache.open(path) as cache:
                info = cache.info()
                self.fingerprint = cache.fingerprint
            self.label = str(info["model"] or info["teacher"] or Path(path).name)
            if info["random_weights"]:
                self.label += " (random teacher)"

    def restrict(self, path: Path, sequences: dict[str, str]) -> tuple[Path, str]:
        """(split file, note): the split itself without a cache, else a copy without the pairs the cache lacks."""
        if not self.path:
            return path, ""
        if path in self._restricted:
            return self._restricted[path]
        from teacher_cache import TeacherCache

        pairs = read_pairs(path, sequences, require_labels=True).pairs
        with TeacherCache.open(self.path) as cache:
            kept = [p for p in pairs if cache.has_pair(p.seq_a, p.seq_b)]
        out = path.with_name(f"split_in_cache_{self.fingerprint[:12]}.tsv")
        if not out.exists():
            partial = out.with_name(out.name + ".partial")
            write_pairs(partial, kept, with_split=True)
            os.replace(partial, out)
        note = f"restricted to the {len(kept)} of {len(pairs)} pairs that {Path(self.path).name} holds"
        print(f"{path.parent.name}: {note}")
        self._restricted[path] = out, note
        return out, note


def joined(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def run_baselines(args, paths: dict[str, Path], sequences: dict[str, str], results: Results,
                  teacher: Teacher) -> None:
    for setting in args.settings:
        path, restricted = teacher.restrict(paths[setting], sequences)
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
                                 "machine": machine(), "student_code": NOT_A_STUDENT, "teacher": teacher.label,
                                 "note": joined("fit on the training subsample only", restricted)})
        print(f"baselines done: {setting}")


def student_split(path: Path, fasta: Path, n_valid: int) -> Path:
    """The split with its valid part cut to a stratified n_valid pairs (0: the split as it is). Validation only
    picks the best epoch and the threshold; train and test parts are those the baselines see."""
    if not n_valid:
        return path
    out = path.with_name(f"{path.stem}_valid{n_valid}.tsv")
    if out.exists():
        return out
    pairs = read_pairs(path, read_fasta(fasta), require_labels=True).pairs
    valid = [p for p in pairs if p.split == "valid"]
    keep = set(stratified_subsample(valid, n_valid, 0))
    partial = out.with_name(out.name + ".partial")
    write_pairs(partial, [p for p in pairs if p.split != "valid" or p in keep], with_split=True)
    os.replace(partial, out)
    return out


def student_config(args, pairs_path: Path, out: Path, n_train: int | None, seed: int, teacher: Teacher,
                   with_map: bool, with_sem: bool):
    """`train`'s defaults, but for what this grid sets: inputs, split column, subsample, seed, losses."""
    from student.config import TrainConfig

    defaults = TrainConfig()
    changes = {"epochs": args.student_epochs} if args.student_epochs else {}
    return TrainConfig(pairs=str(pairs_path), fasta=str(Path(args.data) / "seqs.fasta"),
                       cache=teacher.path if with_map or with_sem else None, out=str(out),
                       alpha_map=defaults.alpha_map if with_map else 0.0,
                       beta_sem=defaults.beta_sem if with_sem else 0.0, split="column", n_train=n_train, seed=seed,
                       device=args.device, overwrite=True, **changes)


def run_student(args, paths: dict[str, Path], sequences: dict[str, str], results: Results, teacher: Teacher) -> None:
    import torch

    from student.trainer import train

    from data.allocator import keep_freed_memory

    torch.set_num_threads(args.threads)
    heap_kept = keep_freed_memory()  # as `cli.py train` runs; changes speed, not results
    code = student_code()
    students = STUDENTS if teacher.path else STUDENTS[:1]
    for setting in args.student_settings:
        split, negatives = setting.split("/")
        restricted_path, restricted = teacher.restrict(paths[setting], sequences)
        pairs_path = student_split(restricted_path, Path(args.data) / "seqs.fasta", args.student_valid)
        for n_train in n_train_values(args.student_n_train):
            for seed in [int(s) for s in args.student_seeds.split(",")]:
                for model, with_map, with_sem in students:
                    key = {"dataset": "dscript-yeast", "split": split, "negatives": negatives, "model": model,
                           "n_train": n_train or "all", "seed": seed, "student_code": code,
                           "teacher": teacher.label}
                    if results.has(**key):
                        continue
                    out = Path(args.work) / setting.replace("/", "_") / f"{model}_n{n_train or 'all'}_s{seed}"
                    config = student_config(args, pairs_path, out, n_train, seed, teacher, with_map, with_sem)
                    started = time.perf_counter()
                    metrics = train(config, progress=False)
                    seconds = time.perf_counter() - started
                    test = metrics["test"]
                    valid = ("whole valid part" if not args.student_valid else
                             f"valid subsample {args.student_valid}") + " (early stopping/threshold only)"
                    map_term = f"CE + {config.alpha_map} x map ({config.map_loss}" + (
                        f", top {config.map_top_target} cells" if config.map_top_target else "") + ")"
                    losses = {"student_ce": "CE only, no teacher cache", "student_ce_map": map_term,
                              "student_ce_map_sem": f"{map_term} + {config.beta_sem} x semantic"}[model]
                    results.add({**key, "aupr": f"{test['aupr']:.4f}", "auroc": f"{test['auroc']:.4f}",
                                 "chance_aupr": f"{test['positive_rate']:.4f}",
                                 "n_test": test.get("n", ""), "train_pairs": metrics["train_pairs"],
                                 "epochs": f"{metrics['epochs_run']} (best {metrics['best_epoch']})",
                                 "seconds": f"{seconds:.0f}", "machine": machine(),
                                 "note": joined(f"{losses}, train's defaults (head {config.model.head}, pool "
                                                f"{config.model.pool}, max-len {config.max_len})",
                                                f"torch threads {args.threads}", valid, restricted,
                                                "heap kept" if heap_kept else "")})
                    print(f"{model} {setting} n_train {n_train or 'all'} seed {seed}: test AUPR {test['aupr']:.3f} "
                          f"AUROC {test['auroc']:.3f} ({seconds:.0f} s)", flush=True)


def summary(results: Results) -> None:
    from rich.console import Console
    from rich.table import Table

    groups: dict[tuple, list[dict]] = {}
    code = student_code()
    for row in results.rows:
        if row.get("dataset") != "dscript-yeast":
            continue
        model = row["model"]
        if row["student_code"] not in (NOT_A_STUDENT, code):
            model += " (old)" if row["student_code"] == OLD_STUDENT else f" (code {row['student_code']})"
        if row["teacher"]:
            model += f" / {row['teacher']}"
        groups.setdefault((row["split"], row["negatives"], str(row["n_train"]), model), []).append(row)
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
    parser.add_argument("--student-epochs", type=int, default=0, help="0: train's default (early stopping)")
    parser.add_argument("--student-valid", type=int, default=0,
                        help="valid pairs the student validates on (a stratified subsample; 0: the whole part)")
    parser.add_argument("--cache", help="teacher cache of the yeast pairs: also trains CE + map and CE + map + sem")
    parser.add_argument("--device", default="cpu", help="the student's device (auto, cpu, cuda, cuda:N)")
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
        teacher = Teacher(args.cache)
        sequences = read_fasta(Path(args.data) / "seqs.fasta")
        describe_published(args, sequences)
        paths = build_settings(args, sequences)
        if not args.no_baselines:
            run_baselines(args, paths, sequences, results, teacher)
        if args.student_n_train:
            run_student(args, paths, sequences, results, teacher)
    summary(results)


if __name__ == "__main__":
    main()
