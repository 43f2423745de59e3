"""Negative pairs for a set of positives.

random: pairs drawn uniformly among all FASTA proteins. With real positives this lets a per-protein score
("is this protein an interactor at all") separate the classes without looking at the pair.

degree-balanced: negatives drawn among the proteins of the positives so that each protein has `ratio` times as
many negatives as positives; a protein's frequency then carries no label. Configuration-model style: every
protein gets `ratio * degree` stubs, the stubs are shuffled and paired, and invalid pairs (a known positive in
either orientation, a repeat, a self-pair unless the positives hold self-pairs) are re-drawn; stubs left at the end
are placed by swapping them into already drawn negatives, which keeps every protein's count exact. What still
cannot be placed is reported as the deviation from exact balance.

Proteins are keyed by sequence content, so a positive named under other ids is still never drawn as a negative.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from data.atomic import atomic_path, check_outputs, write_text_atomic
from data.errors import UserError
from data.keys import canonical_pair, sequence_key
from data.pairs import Pair, write_pairs

STRATEGIES = ("random", "degree-balanced")


@dataclass
class NegativesConfig:
    ratio: float = 10.0  # negatives per positive
    strategy: str = "degree-balanced"
    seed: int = 0
    max_rounds: int = 200  # reshuffle rounds for the stubs still unpaired
    repair_patience: int = 2000  # repair moves without fewer leftover stubs before giving up
    repair_scan: int = 500  # random drawn negatives examined per repair move

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class NegativesResult:
    pairs: list[Pair]  # positives (label 1) then negatives (label 0)
    stats: dict = field(default_factory=dict)


def _pair_key(key_a: str, key_b: str) -> tuple[str, str]:
    first, second, _ = canonical_pair(key_a, key_b)
    return first, second


def _integer_targets(degrees: dict[str, int], ratio: float) -> dict[str, int]:
    """ratio * degree per protein, rounded so that the total is the rounded total (largest remainders)."""
    keys = sorted(degrees)
    exact = np.array([ratio * degrees[k] for k in keys])
    base = np.floor(exact).astype(int)
    missing = int(round(exact.sum())) - int(base.sum())
    if missing > 0:
        order = np.argsort(-(exact - base), kind="stable")
        base[order[:missing]] += 1
    return dict(zip(keys, base.tolist()))


def _balance_stats(counts: Counter, degrees: dict[str, int], ratio: float) -> dict:
    """Relative deviation of each protein's negatives from ratio x its positives (rounding included)."""
    deviations = [abs(counts.get(k, 0) - ratio * d) / (ratio * d) for k, d in degrees.items() if d > 0]
    return {"max_relative_deviation": round(float(max(deviations, default=0.0)), 6),
            "mean_relative_deviation": round(float(np.mean(deviations)) if deviations else 0.0, 6),
            "proteins_off_target": int(sum(d > 1e-9 for d in deviations))}


def _degree_balanced(degrees: dict[str, int], forbidden: set[tuple[str, str]], allow_self: bool,
                     config: NegativesConfig, rng: np.random.Generator) -> tuple[list[tuple[str, str]], dict]:
    targets = _integer_targets(degrees, config.ratio)
    # A protein cannot have more negatives than it has allowed partners; cap those stubs up front.
    partners: Counter = Counter()
    for first, second in forbidden:
        partners[first] += 1
        partners[second] += first != second
    stub_counts = {k: min(t, len(targets) - 1 + allow_self - partners[k]) for k, t in targets.items()}
    stubs = np.array([k for k in sorted(stub_counts) for _ in range(stub_counts[k])], dtype=object)
    if len(stubs) % 2:
        stubs = stubs[:-1]  # an odd stub count cannot be paired; shows up in the deviation
    chosen: list[tuple[str, str]] = []
    taken: set[tuple[str, str]] = set()

    def valid(a: str, b: str) -> bool:
        return (allow_self or a != b) and _pair_key(a, b) not in forbidden and _pair_key(a, b) not in taken

    # 1. random pairing of shuffled stubs, re-drawing the rejected ones
    pending = list(stubs)
    for _ in range(config.max_rounds):
        if len(pending) < 2:
            break
        order = rng.permutation(len(pending))
        shuffled = [pending[i] for i in order]
        pending = []
        for i in range(0, len(shuffled) - 1, 2):
            a, b = shuffled[i], shuffled[i + 1]
            if valid(a, b):
                chosen.append((a, b))
                taken.add(_pair_key(a, b))
            else:
                pending += [a, b]
        if len(shuffled) % 2:
            pending.append(shuffled[-1])
        if len(pending) == len(shuffled):  # no progress: leave the rest to the swaps
            break
    # 2. repair: a leftover stub a either pairs with another leftover stub, or takes the place of y in a drawn
    # negative (x, y), and y becomes the leftover (an alternating-path walk: counts stay exact while it moves)
    best, stale = len(pending), 0
    while len(pending) >= 2 and chosen and stale < config.repair_patience:
        stale += 1
        a = pending.pop(int(rng.integers(len(pending))))
        partner = next((j for j in rng.permutation(len(pending)) if valid(a, pending[j])), None)
        if partner is not None:
            b = pending.pop(int(partner))
            chosen.append((a, b))
            taken.add(_pair_key(a, b))
        else:
            for index in rng.integers(len(chosen), size=config.repair_scan):
                x, y = chosen[index]
                if rng.random() < 0.5:
                    x, y = y, x
                if valid(a, x):
                    taken.discard(_pair_key(x, y))
                    chosen[index] = (a, x)
                    taken.add(_pair_key(a, x))
                    pending.append(y)
                    break
            else:
                pending.append(a)
        if len(pending) < best:
            best, stale = len(pending), 0
    counts: Counter = Counter()
    for a, b in chosen:
        counts[a] += 1
        counts[b] += 1
    stats = {"target_negatives": int(sum(targets.values()) // 2), "unplaced_stubs": len(pending),
             "stubs_beyond_partners": int(sum(targets.values()) - sum(stub_counts.values())),
             **_balance_stats(counts, degrees, config.ratio)}
    return chosen, stats


def _uniform(keys: list[str], n: int, forbidden: set[tuple[str, str]], allow_self: bool,
             rng: np.random.Generator) -> list[tuple[str, str]]:
    possible = len(keys) * (len(keys) - 1) // 2 + (len(keys) if allow_self else 0) - len(forbidden)
    if n > possible:
        raise UserError(f"cannot draw {n} distinct negatives among {len(keys)} proteins "
                        f"(at most {possible} pairs are not positives): lower the ratio")
    chosen: list[tuple[str, str]] = []
    taken: set[tuple[str, str]] = set()
    while len(chosen) < n:
        batch = rng.integers(len(keys), size=(2 * (n - len(chosen)) + 16, 2))
        for i, j in batch:
            a, b = keys[i], keys[j]
            key = _pair_key(a, b)
            if (a == b and not allow_self) or key in forbidden or key in taken:
                continue
            chosen.append((a, b))
            taken.add(key)
            if len(chosen) == n:
                break
    return chosen


def sample_negatives(positives: list[Pair], sequences: dict[str, str],
                     config: NegativesConfig | None = None) -> NegativesResult:
    """Positives (label 1) plus sampled negatives (label 0); deterministic for a given seed."""
    config = config or NegativesConfig()
    if config.strategy not in STRATEGIES:
        raise UserError(f"unknown negative strategy {config.strategy!r} (one of {', '.join(STRATEGIES)})")
    if config.ratio <= 0:
        raise UserError(f"the negative ratio must be positive (got {config.ratio})")
    ignored = [p for p in positives if p.label == 0]
    positives = [p for p in positives if p.label != 0]
    if not positives:
        raise UserError("no positive pairs (label 1 or no label) to draw negatives for")
    rng = np.random.default_rng(config.seed)

    # One id per sequence: the first id that names it among the positives, else in the FASTA.
    id_of: dict[str, str] = {}
    for pair in positives:
        for name, seq in ((pair.id_a, pair.seq_a), (pair.id_b, pair.seq_b)):
            id_of.setdefault(sequence_key(seq), name)
    seq_of = {sequence_key(p.seq_a): p.seq_a for p in positives} | {sequence_key(p.seq_b): p.seq_b for p in positives}
    for name, seq in sequences.items():
        key = sequence_key(seq)
        id_of.setdefault(key, name)
        seq_of.setdefault(key, seq)

    forbidden = {p.key for p in positives}
    allow_self = any(p.seq_a == p.seq_b for p in positives)
    degrees: Counter = Counter()
    for pair in positives:
        degrees[sequence_key(pair.seq_a)] += 1
        degrees[sequence_key(pair.seq_b)] += 1

    n_wanted = int(round(config.ratio * len(positives)))
    if config.strategy == "degree-balanced":
        drawn, balance = _degree_balanced(dict(degrees), forbidden, allow_self, config, rng)
    else:
        drawn = _uniform(sorted(seq_of), n_wanted, forbidden, allow_self, rng)
        balance = {"target_negatives": n_wanted, "unplaced_stubs": 0}
        counts: Counter = Counter(k for pair in drawn for k in pair)
        balance |= _balance_stats(counts, dict(degrees), config.ratio)
    negatives = [Pair(id_of[a], id_of[b], seq_of[a], seq_of[b], 0) for a, b in drawn]
    pairs = [Pair(p.id_a, p.id_b, p.seq_a, p.seq_b, 1) for p in positives] + negatives
    stats = {"strategy": config.strategy, "ratio": config.ratio, "seed": config.seed,
             "positives": len(positives), "negatives": len(negatives), "ignored_label_0": len(ignored),
             "proteins_in_positives": len(degrees),
             "proteins_in_negatives": len({k for pair in drawn for k in pair}),
             "self_pairs_allowed": allow_self, **balance, "config": config.to_dict()}
    return NegativesResult(pairs, stats)


def negatives_stats_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".stats.json")


def write_negatives(path: str | Path, result: NegativesResult) -> Path:
    """Write `id_a id_b label` and `<path>.stats.json`, each via a temporary name; returns the stats path."""
    path = Path(path)
    stats_path = negatives_stats_path(path)
    with atomic_path(path) as tmp:
        write_pairs(tmp, result.pairs)
    write_text_atomic(stats_path, json.dumps(result.stats, indent=2) + "\n")
    return stats_path


def negatives_file(pairs_path: str | Path, fasta_path: str | Path, out: str | Path,
                   config: NegativesConfig, overwrite: bool = False) -> tuple[NegativesResult, Path]:
    """`negatives`: read the positives and the FASTA, draw negatives, write OUT and OUT.stats.json. An existing
    OUT or OUT.stats.json is refused unless `overwrite`; an input, always."""
    from data.fasta import read_fasta
    from data.pairs import read_pairs

    check_outputs({"--out": out, "statistics of --out": negatives_stats_path(out)},
                  {"--pairs": pairs_path, "--fasta": fasta_path}, overwrite)
    sequences = read_fasta(fasta_path)
    result = sample_negatives(read_pairs(pairs_path, sequences).pairs, sequences, config)
    return result, write_negatives(out, result)

