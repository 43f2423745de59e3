"""Docking Benchmark 5.5 (bound complexes): real inter-chain contacts against teacher and student maps.

Needs ../shared/data/db55 (not shipped with the project). Three parts, each printing a table and replacing its own
rows of docs/results/db55.csv:

  contacts  re-derive every complex's residues and contacts with data.structure and compare them with the
            benchmark table (lengths, contact counts); build the structure-teacher cache of the 154 single-chain
            pairs and score it with evaluate-maps (the ceiling: true maps against themselves).
  teacher   write a RANDOM-weight ESM-2 of the real t6 (8M) architecture, run `precompute` on the 154 pairs, and
            score its contact maps with evaluate-maps. Expected at chance; the same commands report ESM-2's real
            inter-chain precision once real weights are given (--model esm2_t6_8M_UR50D or a local .pt).
  student   positives = the single-chain complexes; negatives = degree-balanced shuffled partners among the same
            proteins (ratio --neg-ratio), each with an all-zero map target; homology split (MMseqs2 single-linkage
            groups, data.homology); per seed a new split, negative draw and initialisation; CE only vs CE + map
            (structure teacher, BCE, mass-normalised); test AUPR beside chance and trivial baselines, and the
            student's top-L/5 map precision on the held-out positive complexes beside their contact density.

    python -m benchmarks.db55 contacts
    python -m benchmarks.db55 teacher [--model PATH_OR_HUB_NAME]
    python -m benchmarks.db55 student --seeds 0,1,2 --epochs 30
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, SHARED_DATA, read_csv, write_csv
from data.fasta import read_fasta
from data.keys import canonical_pair, sequence_key
from data.pairs import read_pairs, write_pairs
from data.structure import contact_map, read_side
from student.evaluation.evaluate_maps import EvaluateMapsConfig, evaluate_maps

DB55 = SHARED_DATA / "db55"
RESULTS = ROOT / "docs" / "results" / "db55.csv"
COLUMNS = ["part", "model", "seed", "metric", "value", "chance", "n", "note"]


def complexes_table() -> list[dict]:
    with open(DB55 / "complexes.tsv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def write_manifest(path: Path, rows: list[dict]) -> Path:
    """Manifest of single-chain complexes with ids ID_r / ID_l (the names of seqs.fasta)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("id_a\tid_b\tstructure_a\tstructure_b\tchains_a\tchains_b\n")
        for row in rows:
            name = row["complex"]
            handle.write(f"{name}_r\t{name}_l\t{DB55 / 'structures' / f'{name}_r_b.pdb.gz'}\t"
                         f"{DB55 / 'structures' / f'{name}_l_b.pdb.gz'}\t{row['receptor_chains']}\t"
                         f"{row['ligand_chains']}\n")
    return path


def single_chain_rows() -> list[dict]:
    return [row for row in complexes_table() if row["single_chain_pair"] == "1"]


def save_rows(part: str, rows: list[dict]) -> None:
    """Replace this part's rows of docs/results/db55.csv (for the student part: the rows of the same model and
    seed, so a run with another head or fewer seeds keeps the other rows beside it)."""
    runs = {(row["model"], str(row["seed"])) for row in rows}
    kept = [row for row in read_csv(RESULTS)
            if row["part"] != part or (part == "student" and (row["model"], row["seed"]) not in runs)]
    write_csv(RESULTS, [{name: _fmt(row.get(name, "")) for name in COLUMNS} for row in kept + rows], COLUMNS)


def _fmt(value) -> str:
    if isinstance(value, float):
        return "" if not np.isfinite(value) else f"{value:.4f}"
    return str(value)


def map_rows(part: str, model: str, seed, evaluation, note: str = "") -> list[dict]:
    out = []
    for metric in ("precision_top_l5", "precision_top10", "aupr", "interface_recall"):
        entry = evaluation.summary.get(metric) or {}
        if entry:
            out.append({"part": part, "model": model, "seed": seed, "metric": f"map_{metric}",
                        "value": entry["mean"], "chance": entry["chance_mean"], "n": entry["n"], "note": note})
    return out


def print_rows(title: str, rows: list[dict]) -> None:
    print(f"\n## {title}")
    print(f"{'model':<52} {'seed':>4} {'metric':<28} {'value':>8} {'chance':>8} {'n':>5}")
    for row in rows:
        chance = row.get("chance", "")
        print(f"{row['model']:<52} {str(row['seed']):>4} {row['metric']:<28} {_fmt(row['value']):>8} "
              f"{_fmt(chance) if chance != '' else '':>8} {str(row['n']):>5}")


# -- part 1: contacts ---------------------------------------------------------------------------------------
def part_contacts(work: Path) -> list[dict]:
    started = time.perf_counter()
    table = complexes_table()
    mismatches = []
    for row in table:
        name = row["complex"]
        side_r = read_side(DB55 / "structures" / f"{name}_r_b.pdb.gz", list(row["receptor_chains"]))
        side_l = read_side(DB55 / "structures" / f"{name}_l_b.pdb.gz", list(row["ligand_chains"]))
        found = (len(side_r.sequence), len(side_l.sequence), int(contact_map(side_r.coords, side_l.coords).sum()))
        expected = (int(row["len_receptor"]), int(row["len_ligand"]), int(row["n_contacts"]))
        if found != expected:
            mismatches.append(f"{name}: {found} vs {expected}")
    sequences = read_fasta(DB55 / "seqs.fasta")
    seq_mismatch = 0
    for row in single_chain_rows():
        name = row["complex"]
        for side, chains in (("r", row["receptor_chains"]), ("l", row["ligand_chains"])):
            found = read_side(DB55 / "structures" / f"{name}_{side}_b.pdb.gz", [chains]).sequence
            seq_mismatch += found != sequences[f"{name}_{side}"]
    print(f"re-derived {len(table)} complexes in {time.perf_counter() - started:.1f} s: {len(mismatches)} differ from "
          f"complexes.tsv (lengths, contact count); {seq_mismatch} single-chain sequences differ from seqs.fasta")
    for line in mismatches[:20]:
        print("  ", line)

    from teacher_cache.teachers.structure import StructureCacheConfig, build_structure_cache

    manifest = write_manifest(work / "single_chain.tsv", single_chain_rows())
    report = build_structure_cache(StructureCacheConfig(structures=str(manifest), out=str(work / "structure.h5"),
                                                        fasta=str(DB55 / "seqs.fasta"), overwrite=True))
    print(f"structure cache: {report.pairs} sequence pairs from {report.complexes} complexes "
          f"({report.merged_duplicates} repeated pair united: 1OYV/BOYV), {report.contacts} contact cells")
    evaluation = evaluate_maps(EvaluateMapsConfig(structures=str(manifest), cache=str(work / "structure.h5"),
                                                  fasta=str(DB55 / "seqs.fasta"),
                                                  out=str(work / "structure_per_complex.tsv"), overwrite=True))
    rows = [{"part": "contacts", "model": "re-derived vs complexes.tsv", "seed": "", "metric": "complexes_matching",
             "value": len(table) - len(mismatches), "chance": "", "n": len(table),
             "note": "lengths and CB<8A contact counts"},
            {"part": "contacts", "model": "re-derived vs seqs.fasta", "seed": "", "metric": "sequences_matching",
             "value": 2 * len(single_chain_rows()) - seq_mismatch, "chance": "", "n": 2 * len(single_chain_rows()),
             "note": ""}]
    rows += map_rows("contacts", "structure teacher (true maps)", "", evaluation,
                     "ceiling; 1OYV/BOYV share one united map; P@L/5 < 1 where contacts < L/5")
    return rows


# -- part 2: teacher ----------------------------------------------------------------------------------------
def part_teacher(work: Path, model: str | None) -> list[dict]:
    from teacher_cache.teachers.config import PrecomputeConfig
    from teacher_cache.teachers.precompute import run_precompute

    random_model = model is None
    if random_model:
        from teacher_cache.teachers.esm_runner import ARCHITECTURES, write_random_esm2

        layers, dim, heads = ARCHITECTURES["t6"]
        model = str(write_random_esm2(work / "esm_random", num_layers=layers, embed_dim=dim,
                                      attention_heads=heads, seed=0, name="esm2_t6_8M_random"))
    pairs_path = work / "single_chain_pairs.tsv"
    pairs_path.write_text("id_a\tid_b\tlabel\n" + "".join(f"{r['complex']}_r\t{r['complex']}_l\t1\n"
                                                         for r in single_chain_rows()))
    out = work / ("teacher_random_t6.h5" if random_model else "teacher.h5")
    config = PrecomputeConfig(pairs=str(pairs_path), fasta=str(DB55 / "seqs.fasta"), model=model, out=str(out),
                              overwrite=True)
    started = time.perf_counter()
    result = run_precompute(config)
    print(f"precompute: {result.pairs_computed} pairs computed, {result.pairs_cached} cached, "
          f"{time.perf_counter() - started:.1f} s, random weights: {result.random_weights}")
    manifest = write_manifest(work / "single_chain.tsv", single_chain_rows())
    label = "ESM-2 t6 8M, RANDOM weights (random teacher)" if result.random_weights else f"ESM-2 {model}"
    rows = []
    for map_name in ("contact", "attention"):
        evaluation = evaluate_maps(EvaluateMapsConfig(structures=str(manifest), cache=str(out), map_name=map_name,
                                                      fasta=str(DB55 / "seqs.fasta"),
                                                      out=str(work / f"teacher_{map_name}_per_complex.tsv"),
                                                      overwrite=True))
        rows += map_rows("teacher", f"{label} {map_name}", "", evaluation,
                         "expected at chance" if result.random_weights else "")
    return rows


# -- part 3: student ----------------------------------------------------------------------------------------
def complex_components(positives: list, groups: dict[str, str]) -> dict[str, str]:
    """{sequence key: cluster}: homology groups joined through the complexes that pair them (union-find)."""
    parent = {group: group for group in set(groups.values())}

    def find(group: str) -> str:
        while parent[group] != group:
            parent[group] = parent[parent[group]]
            group = parent[group]
        return group

    for pair in positives:
        root_a, root_b = find(groups[sequence_key(pair.seq_a)]), find(groups[sequence_key(pair.seq_b)])
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
    return {key: find(group) for key, group in groups.items()}


def split_complexes(positives: list, components: dict[str, str], seed: int, valid_frac: float = 0.15,
                    test_frac: float = 0.25) -> list:
    """Whole complex clusters to test, then valid, in random order until each holds its fraction of the complexes;
    the rest (and any cluster larger than half the test target, e.g. the 35 protease/inhibitor complexes) train."""
    members: dict[str, list] = {}
    for pair in positives:
        members.setdefault(components[sequence_key(pair.seq_a)], []).append(pair)
    names = sorted(members)
    order = np.random.default_rng(seed).permutation(len(names))
    targets = {"test": test_frac * len(positives), "valid": valid_frac * len(positives)}
    filled = {"test": 0, "valid": 0}
    out = []
    for index in order:
        cluster = members[names[index]]
        part = "train"
        if len(cluster) <= targets["test"] / 2:
            part = next((p for p in ("test", "valid") if filled[p] + len(cluster) <= targets[p] + 1), "train")
        if part != "train":
            filled[part] += len(cluster)
        out += [replace(pair, split=part) for pair in cluster]
    return out


def head_suffix(pool: str, pool_norm: bool) -> str:
    """What the student rows' labels add for a head other than the first one run here (max pool, no norm)."""
    return "" if (pool, pool_norm) == ("max", False) else f" [pool {pool}{', norm' if pool_norm else ''}]"


def part_student(work: Path, seeds: list[int], epochs: int, neg_ratio: float, threads: int, pool: str,
                 pool_norm: bool) -> list[dict]:
    import torch

    from data.homology import cluster_sequences
    from data.negatives import NegativesConfig, sample_negatives
    from student.evaluation.baselines import evaluate_baselines
    from student.config import ModelConfig, TrainConfig
    from student.trainer import train
    from teacher_cache.teachers.structure import StructureCacheConfig, build_structure_cache

    torch.set_num_threads(threads)
    sequences = read_fasta(DB55 / "seqs.fasta")
    fasta = str(DB55 / "seqs.fasta")
    positives = read_pairs(DB55 / "pairs.tsv", sequences).pairs  # 1OYV/BOYV: one sequence pair, kept once
    groups_path = work / "homology_groups.json"
    if groups_path.exists():
        groups = json.loads(groups_path.read_text())
    else:
        groups = cluster_sequences(list(sequences.values()))
        groups_path.write_text(json.dumps(groups))
    print(f"{len(positives)} positive sequence pairs, {len(set(sequences.values()))} distinct sequences, "
          f"{len(set(groups.values()))} homology groups (MMseqs2, 30% identity, 80% coverage, single linkage)")
    components = complex_components(positives, groups)
    print(f"{len(set(components.values()))} complex clusters (complexes linked by a shared homology group); "
          f"largest holds {max(Counter(components[sequence_key(p.seq_a)] for p in positives).values())} complexes")
    manifest = write_manifest(work / "single_chain.tsv", single_chain_rows())
    complex_rows = {canonical_pair(sequence_key(sequences[f"{r['complex']}_r"]),
                                   sequence_key(sequences[f"{r['complex']}_l"]))[:2]: r for r in single_chain_rows()}
    model_config = ModelConfig(embed_dim=32, channels=(64, 64), kernel_sizes=(5, 5), hidden=32, pool=pool,
                               pool_norm=pool_norm)
    suffix = head_suffix(pool, pool_norm)
    rows: list[dict] = []
    for seed in seeds:
        run_dir = work / f"seed{seed}"
        run_dir.mkdir(parents=True, exist_ok=True)
        # Whole complex clusters go to one part, then negatives are drawn inside each part: no protein and no
        # homolog of a test protein is seen in training, and no pair straddles two parts.
        split_positives = split_complexes(positives, components, seed)
        all_pairs = []
        for part in ("train", "valid", "test"):
            part_positives = [p for p in split_positives if p.split == part]
            part_sequences = {p.id_a: p.seq_a for p in part_positives} | {p.id_b: p.seq_b for p in part_positives}
            drawn = sample_negatives(part_positives, part_sequences,
                                     NegativesConfig(ratio=neg_ratio, seed=seed)).pairs
            all_pairs += [replace(p, split=part) for p in drawn]
        pairs_path = run_dir / "pairs.tsv"
        write_pairs(pairs_path, all_pairs, with_split=True)
        counts = {part: (sum(p.split == part and p.label == 1 for p in all_pairs),
                         sum(p.split == part and p.label == 0 for p in all_pairs)) for part in ("train", "valid", "test")}
        test_pos = [p for p in all_pairs if p.split == "test" and p.label == 1]
        print(f"seed {seed}: (positives, negatives) per part {counts}")
        cache = run_dir / "structure.h5"
        build_structure_cache(StructureCacheConfig(structures=str(manifest), out=str(cache), fasta=fasta,
                                                   negatives=str(pairs_path), overwrite=True))
        test_manifest = write_manifest(run_dir / "test_complexes.tsv",
                                       [r for key, r in complex_rows.items() if key in {p.key for p in test_pos}])
        train_part = [p for p in all_pairs if p.split == "train"]
        test_part = [p for p in all_pairs if p.split == "test"]
        for name, baseline in evaluate_baselines(train_part, test_part).items():
            rows.append({"part": "student", "model": f"baseline {name}", "seed": seed, "metric": "test_aupr",
                         "value": baseline["aupr"], "chance": baseline["chance_aupr"], "n": baseline["n_test"]})
        for label, cache_path, alpha in (("student CE only", None, 0.0), ("student CE + map (structure)", cache, 1.0)):
            label += suffix
            out = run_dir / (("ce" if cache_path is None else "ce_map") + suffix.replace(" ", "_").replace(",", ""))
            config = TrainConfig(pairs=str(pairs_path), fasta=fasta, cache=str(cache_path) if cache_path else None,
                                 out=str(out), split="column", alpha_map=alpha, beta_sem=0.0, map_loss="bce",
                                 map_norm="mass", map_top_target=0, epochs=epochs, patience=max(5, epochs // 3),
                                 seed=seed, device="cpu", overwrite=True, model=model_config)
            started = time.perf_counter()
            result = train(config)
            test = result["test"]
            print(f"  {label}: test AUPR {test['aupr']:.3f} (chance {test['positive_rate']:.3f}), best epoch "
                  f"{result['best_epoch']}/{result['epochs_run']}, {time.perf_counter() - started:.0f} s")
            rows.append({"part": "student", "model": label, "seed": seed, "metric": "test_aupr",
                         "value": test["aupr"], "chance": test["positive_rate"], "n": test["n"]})
            evaluation = evaluate_maps(EvaluateMapsConfig(structures=str(test_manifest),
                                                          checkpoint=str(out / "best.pt"), fasta=fasta))
            rows += map_rows("student", label, seed, evaluation, "held-out positive complexes")
    return rows


def summarise_student(rows: list[dict]) -> None:
    """Mean and spread over seeds of each (model, metric)."""
    print("\n## student: mean ± std over seeds (min .. max)")
    keys = sorted({(r["model"], r["metric"]) for r in rows if r["part"] == "student"})
    for model, metric in keys:
        values = np.array([float(r["value"]) for r in rows if (r["model"], r["metric"]) == (model, metric)])
        chance = np.array([float(r["chance"]) for r in rows if (r["model"], r["metric"]) == (model, metric)])
        print(f"{model:<52} {metric:<28} {values.mean():.3f} ± {values.std():.3f} ({values.min():.3f} .. "
              f"{values.max():.3f}), chance {chance.mean():.3f}, seeds {len(values)}")
    suffixes = sorted({r["model"][len("student CE only"):] for r in rows if r["model"].startswith("student CE only")})
    for suffix in suffixes:
        ce, ce_map = "student CE only" + suffix, "student CE + map (structure)" + suffix
        print(f"\n## student{suffix}: CE + map minus CE only, paired by seed (same split, negatives and initial seed)")
        for metric in sorted({r["metric"] for r in rows if r["model"] == ce}):
            by_seed = {}
            for r in rows:
                if r["metric"] == metric and r["model"] in (ce, ce_map):
                    by_seed.setdefault(r["seed"], {})[r["model"]] = float(r["value"])
            diffs = np.array([v[ce_map] - v[ce] for v in by_seed.values() if len(v) == 2])
            print(f"{metric:<28} mean {diffs.mean():+.4f}, per seed {' '.join(f'{d:+.4f}' for d in diffs)}, "
                  f"CE + map ahead in {(diffs > 0).sum()}/{len(diffs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("contacts", "teacher", "student"))
    parser.add_argument("--work", default="/tmp/db55_bench", help="Folder for caches, runs and per-complex tables.")
    parser.add_argument("--model", default=None, help="teacher: ESM-2 hub name or .pt (default: random t6).")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--neg-ratio", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pool", default=None, help="student: the features head's pooling (default: train's)")
    parser.add_argument("--pool-norm", default=None, choices=("on", "off"),
                        help="student: standardise the pooled features (default: train's)")
    parser.add_argument("--no-save", action="store_true", help="Do not write docs/results/db55.csv.")
    args = parser.parse_args()
    if not DB55.exists():
        sys.exit(f"{DB55} not found: this benchmark needs the DB5.5 folder beside the checkout")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if args.part == "contacts":
        rows = part_contacts(work)
    elif args.part == "teacher":
        rows = part_teacher(work, args.model)
    else:
        from student.config import ModelConfig

        pool = args.pool or ModelConfig().pool
        pool_norm = ModelConfig().pool_norm if args.pool_norm is None else args.pool_norm == "on"
        rows = part_student(work, [int(s) for s in args.seeds.split(",")], args.epochs, args.neg_ratio, args.threads,
                            pool, pool_norm)
    print_rows(args.part, rows)
    if args.part == "student":
        summarise_student(rows)
    print(f"\n{args.part}: {time.perf_counter() - started:.0f} s on {os.cpu_count()} CPU cores (no GPU)")
    if not args.no_save:
        save_rows(args.part, rows)
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
