"""Train/valid/test splits of a pairs table: by pair (random), by protein content, or by precomputed groups
(e.g. homology clusters from `data.homology`).

Protein-disjoint splits assign whole groups of proteins (identical sequences under any id are one protein; or
homology groups) to a part; a pair belongs to a part when both its proteins do. Groups linked by pairs form
connected components, and whole components are assigned first (seeded random order; test, then valid, then
train), so a sparse set -- a few dozen real pairs -- loses no pair. Only when the components are too large for
the targets (a dense set: one giant component) is the largest one split by groups: there, since a pair survives
only when both of its proteins land in one part, a part that should hold a fraction f of the pairs receives
groups carrying a share proportional to sqrt(f) of the pair endpoints, and pairs that straddle two parts are
dropped and counted. A part left without positives or without negatives is warned about (log and stats).
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from data.atomic import atomic_path, check_outputs, write_text_atomic
from data.errors import UserError
from data.graphs import connected_components
from data.keys import sequence_key
from data.pairs import SPLIT_NAMES, Pair, write_pairs

SPLIT_METHODS = ("random", "protein", "homology")
log = logging.getLogger(__name__)


@dataclass
class SplitResult:
    pairs: list[Pair]  # kept pairs with .split set
    dropped: int = 0  # pairs that straddled two parts
    stats: dict = field(default_factory=dict)


def _fractions(valid_frac: float, test_frac: float) -> dict[str, float]:
    if valid_frac < 0 or test_frac <= 0 or valid_frac + test_frac >= 1:
        raise UserError(f"need 0 < test fraction, 0 <= valid fraction and valid + test < 1 "
                        f"(got valid {valid_frac}, test {test_frac})")
    return {"train": 1.0 - valid_frac - test_frac, "valid": valid_frac, "test": test_frac}


def split_stats(pairs: list[Pair], dropped: int = 0, groups: dict[str, str] | None = None) -> dict:
    """Counts per part: pairs, positives, positive rate, proteins (and groups when given); plus dropped pairs."""
    stats: dict = {"dropped_straddling": dropped, "kept": len(pairs)}
    for part in SPLIT_NAMES:
        members = [p for p in pairs if p.split == part]
        labelled = [p.label for p in members if p.label is not None]
        proteins = {sequence_key(s) for p in members for s in (p.seq_a, p.seq_b)}
        entry = {"pairs": len(members), "positives": int(sum(labelled)),
                 "positive_rate": round(sum(labelled) / len(labelled), 4) if labelled else None,
                 "proteins": len(proteins)}
        if groups is not None:
            entry["groups"] = len({groups[k] for k in proteins})
        stats[part] = entry
    return stats


def assign_splits(pairs: list[Pair], by: str = "protein", valid_frac: float = 0.1, test_frac: float = 0.1,
                  seed: int = 0, groups: dict[str, str] | None = None) -> SplitResult:
    """Give every pair a part (`train|valid|test`).

    by: "random" (pairs shuffled; proteins shared between parts), "protein" (each distinct sequence is a group),
    or "homology" (`groups` maps each sequence key to a cluster id; see data.homology.cluster_sequences).
    """
    fractions = _fractions(valid_frac, test_frac)
    rng = np.random.default_rng(seed)
    if by == "random":
        order = rng.permutation(len(pairs))
        n_test = int(round(test_frac * len(pairs)))
        n_valid = int(round(valid_frac * len(pairs)))
        parts = np.empty(len(pairs), dtype=object)
        parts[order[:n_test]] = "test"
        parts[order[n_test:n_test + n_valid]] = "valid"
        parts[order[n_test + n_valid:]] = "train"
        kept = [replace(p, split=str(part)) for p, part in zip(pairs, parts)]
        stats = split_stats(kept)
        warn_missing_classes(stats, fractions)
        return SplitResult(kept, 0, stats)
    if by == "protein":
        groups = {sequence_key(s): sequence_key(s) for p in pairs for s in (p.seq_a, p.seq_b)}
    elif by == "homology":
        if groups is None:
            raise ValueError("a homology split needs `groups` (sequence key -> cluster id)")
    else:
        raise UserError(f"unknown split method {by!r} (one of {', '.join(SPLIT_METHODS)})")

    def group_of(sequence: str) -> str:
        key = sequence_key(sequence)
        if key not in groups:
            raise ValueError(f"sequence {key[:12]}… has no group")
        return groups[key]

    pair_groups = [(group_of(p.seq_a), group_of(p.seq_b)) for p in pairs]
    names = sorted({g for ends in pair_groups for g in ends})
    assigned = _assign_components(pair_groups, names, fractions, rng)
    kept: list[Pair] = []
    dropped = 0
    for pair, (group_a, group_b) in zip(pairs, pair_groups):
        part_a, part_b = assigned[group_a], assigned[group_b]
        if part_a != part_b:
            dropped += 1
            continue
        kept.append(replace(pair, split=part_a))
    if not any(p.split == "test" for p in kept) or not any(p.split == "train" for p in kept):
        raise UserError(f"the {by} split left an empty train or test part ({len(pairs)} pairs, "
                        f"{len(names)} groups): use more pairs or other fractions")
    stats = split_stats(kept, dropped, groups)
    warn_missing_classes(stats, fractions)
    return SplitResult(kept, dropped, stats)


def _components(pair_groups: list[tuple[str, str]], names: list[str]) -> dict[str, str]:
    """Connected components of the graph whose nodes are groups and whose edges are pairs: group -> root."""
    return connected_components(names, pair_groups)


def _closer(filled: float, size: int, target: float) -> bool:
    """Whether adding `size` pairs brings a part that is still short of `target` closer to it."""
    return filled < target and abs(filled + size - target) <= abs(target - filled)


def _assign_components(pair_groups: list[tuple[str, str]], names: list[str], fractions: dict[str, float],
                       rng: np.random.Generator) -> dict[str, str]:
    """Part of every group. Whole connected components of pairs go to one part (test, then valid, then train, in a
    seeded random order of components), so no pair of them straddles two parts. When components are too large for
    that (a dense graph: one giant component), the parts still short of their target take groups of the largest
    component, filled by endpoint weight (a share proportional to sqrt(f) of its pair endpoints), and the pairs
    of that component that straddle two parts are dropped."""
    component = _components(pair_groups, names)
    sizes = Counter(component[group_a] for group_a, _ in pair_groups)
    roots = sorted(sizes)
    total = len(pair_groups)
    targets = {part: fraction * total for part, fraction in fractions.items()}
    filled = {part: 0.0 for part in fractions}
    part_of_root: dict[str, str] = {}
    for index in rng.permutation(len(roots)):
        name = roots[index]
        part = next((p for p in ("test", "valid") if _closer(filled[p], sizes[name], targets[p])), "train")
        part_of_root[name] = part
        filled[part] += sizes[name]
    short = [p for p in ("test", "valid") if targets[p] > 0 and filled[p] < 0.5 * targets[p]]
    assigned = {name: part_of_root[component[name]] for name in names}
    if not short:
        return assigned
    # Split the largest component of the training part by groups, to fill the parts that are short.
    train_roots = [r for r in roots if part_of_root[r] == "train"]
    if not train_roots:
        return assigned
    largest = max(train_roots, key=lambda r: (sizes[r], r))
    inside = [ends for ends in pair_groups if component[ends[0]] == largest]
    members = sorted({g for ends in inside for g in ends})
    weight = Counter(g for ends in inside for g in ends)
    want = {p: (max(targets[p] - filled[p], 0.0) if p in short else 0.0) for p in ("test", "valid")}
    want["train"] = max(len(inside) - want["test"] - want["valid"], 1.0)
    share = {part: np.sqrt(max(value, 0.0) / len(inside)) for part, value in want.items()}
    total_share = sum(share.values())
    total_weight = sum(weight.values())
    group_targets = {part: share[part] / total_share * total_weight for part in share}
    group_filled = {part: 0.0 for part in share}
    for index in rng.permutation(len(members)):  # fill test, then valid, then train, in random group order
        name = members[index]
        part = next((p for p in ("test", "valid") if group_filled[p] < group_targets[p]), "train")
        assigned[name] = part
        group_filled[part] += weight[name]
    return assigned


def warn_missing_classes(stats: dict, fractions: dict[str, float] | None = None) -> list[str]:
    """Warn (log, and stats["warnings"]) about a part that lacks a class or is empty though asked for."""
    warnings = []
    for part in SPLIT_NAMES:
        entry = stats.get(part) or {}
        n, positives = entry.get("pairs", 0), entry.get("positives", 0)
        if n == 0:
            if fractions is None or fractions.get(part, 0) > 0:
                warnings.append(f"the {part} part is empty")
            continue
        if entry.get("positive_rate") is None:
            continue  # unlabelled pairs
        if positives == 0:
            warnings.append(f"the {part} part has {n} pairs and no positive")
        elif positives == n:
            warnings.append(f"the {part} part has {n} pairs and no negative")
    for warning in warnings:
        log.warning("%s: its metrics (and, for valid, early stopping and the threshold) need both classes; use "
                    "more pairs, other fractions or another --seed", warning)
    if warnings:
        stats["warnings"] = warnings
    return warnings


@dataclass
class SplitConfig:
    """How `make_split` splits a pairs table; saved in the statistics beside every split it writes."""
    by: str = "protein"
    valid_frac: float = 0.1
    test_frac: float = 0.1
    seed: int = 0
    min_seq_id: float = 0.3  # homology only: MMseqs2 identity threshold
    coverage: float = 0.8  # homology only: MMseqs2 coverage of both sequences
    threads: int = 2  # homology only

    def to_dict(self) -> dict:
        return asdict(self)


def make_split(pairs: list[Pair], config: SplitConfig) -> SplitResult:
    """Split by `config.by`; for "homology", group sequences with MMseqs2 first (data.homology).

    The result's stats hold the config, per-part counts, and for homology the number and largest size of groups.
    """
    groups = None
    if config.by == "homology":
        from data.homology import HomologyConfig, cluster_sequences  # runs MMseqs2; only needed here

        homology = HomologyConfig(min_seq_id=config.min_seq_id, coverage=config.coverage, threads=config.threads)
        groups = cluster_sequences([s for p in pairs for s in (p.seq_a, p.seq_b)], homology)
    result = assign_splits(pairs, by=config.by, valid_frac=config.valid_frac, test_frac=config.test_frac,
                           seed=config.seed, groups=groups)
    result.stats["config"] = config.to_dict()
    result.stats["input_pairs"] = len(pairs)
    if groups is not None:
        sizes = Counter(groups.values())
        result.stats["homology_groups"] = len(sizes)
        result.stats["largest_group"] = max(sizes.values())
        result.stats["sequences"] = len(groups)
    return result


def split_stats_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".stats.json")


def write_split(path: str | Path, result: SplitResult) -> Path:
    """Write the split pairs (`id_a id_b label split`) and `<path>.stats.json`, each via a temporary name."""
    path = Path(path)
    stats_path = split_stats_path(path)
    with atomic_path(path) as tmp:
        write_pairs(tmp, result.pairs, with_split=True)
    write_text_atomic(stats_path, json.dumps(result.stats, indent=2) + "\n")
    return stats_path


def split_by(pairs: list[Pair], method: str, has_column: bool, source: str, valid_frac: float, test_frac: float,
             seed: int) -> tuple[list[Pair], dict]:
    """Pairs with .split set and the split statistics, by the pairs file's own column or by `assign_splits`.

    method: auto (the column when `has_column`, else protein) | column | random | protein. `source` names the
    pairs file in errors.
    """
    if method == "auto":
        method = "column" if has_column else "protein"
    if method == "column":
        if not has_column:
            raise UserError(f"{source} has no `split` column; use --split random or --split protein")
        return pairs, {"method": "column", **split_stats(pairs)}
    result = assign_splits(pairs, by=method, valid_frac=valid_frac, test_frac=test_frac, seed=seed)
    return result.pairs, {"method": method, "valid_frac": valid_frac, "test_frac": test_frac, "seed": seed,
                          **result.stats}


def stratified_subsample(pairs: list[Pair], n: int, seed: int) -> list[Pair]:
    """A seeded subsample of n pairs keeping the positive rate (each class present keeps at least one pair)."""
    if n >= len(pairs):
        return pairs
    rng = np.random.default_rng([seed, 11])
    labels = np.array([p.label for p in pairs])
    members = {value: np.flatnonzero(labels == value) for value in (0, 1) if (labels == value).any()}
    take = {value: max(1, int(round(n * len(idx) / len(pairs)))) for value, idx in members.items()}
    while sum(take.values()) > max(n, len(take)):  # rounding overshoot: trim the larger class
        largest = max(take, key=lambda v: take[v])
        take[largest] -= 1
    chosen = [int(i) for value, idx in members.items()
              for i in rng.choice(idx, size=min(take[value], len(idx)), replace=False)]
    return [pairs[i] for i in sorted(chosen)]


@dataclass
class SplitRun:
    result: SplitResult
    stats_path: Path
    pairs_read: int
    conflicts_dropped: int


def split_file(pairs_path: str | Path, fasta_path: str | Path, out: str | Path, config: SplitConfig,
               drop_conflicts: bool = False, overwrite: bool = False) -> SplitRun:
    """`split`: read a labelled pairs table and its FASTA, split it, write OUT (with a split column) and
    OUT.stats.json. An existing OUT or OUT.stats.json is refused unless `overwrite`; an input, always."""
    from data.fasta import read_fasta
    from data.pairs import read_pairs

    check_outputs({"--out": out, "statistics of --out": split_stats_path(out)},
                  {"--pairs": pairs_path, "--fasta": fasta_path}, overwrite)
    from data.pairs import ConflictError

    try:
        table = read_pairs(pairs_path, read_fasta(fasta_path), require_labels=True, drop_conflicts=drop_conflicts)
    except ConflictError as exc:
        raise UserError(f"{exc}; pass --drop-conflicts to drop every row of such pairs (they are counted and "
                        "reported)") from None
    result = make_split(table.pairs, config)
    return SplitRun(result, write_split(out, result), len(table.pairs), table.conflicts_dropped)

