"""What a screen keeps: scored pairs as candidate records, a bounded top-K, a hits spill file, and the TSV rows.

One order everywhere: a higher logit first, then the smaller tie key (`ScreenPlan.tie_keys`), which is the order
of the reported rows by (id_a, id_b). Because a pair's first reported row and its candidate record sort alike,
the top K rows of a union of shards equal the top K rows of one run over the same pairs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.atomic import atomic_path
from data.errors import InputError
from student.probability import probability

CANDIDATE = np.dtype([("row", "<i4"), ("col", "<i4"), ("logit", "<f4"), ("tie", "<i8")])
TSV_COLUMNS = ("id_a", "id_b", "probability", "logit", "residue_a", "residue_b", "map_probability")


def candidates(rows: np.ndarray, cols: np.ndarray, logits: np.ndarray, ties: np.ndarray) -> np.ndarray:
    out = np.empty(len(rows), dtype=CANDIDATE)
    out["row"], out["col"], out["logit"], out["tie"] = rows, cols, logits, ties
    return out


def rank_order(records: np.ndarray) -> np.ndarray:
    """Indices that sort candidate records best first (higher logit, then smaller tie key)."""
    return np.lexsort((records["tie"], -records["logit"].astype(np.float64)))


class TopK:
    """The best `k` candidate records seen so far (bounded memory: at most 2k are held between compactions)."""

    def __init__(self, k: int, records: np.ndarray | None = None):
        self.k = k
        self.records = records if records is not None else np.empty(0, dtype=CANDIDATE)

    def add(self, records: np.ndarray) -> None:
        if len(records) == 0:
            return
        if len(records) > self.k:
            records = records[rank_order(records)[: self.k]]
        self.records = np.concatenate([self.records, records])
        if len(self.records) > 2 * self.k:
            self.compact()

    def compact(self) -> None:
        self.records = self.records[rank_order(self.records)[: self.k]]

    def best(self) -> np.ndarray:
        self.compact()
        return self.records


class HitSpill:
    """Append-only file of candidate records (the --min-prob hits); `length` records count as written."""

    def __init__(self, path: Path, length: int = 0):
        self.path = path
        self.length = length
        with open(path, "ab") as handle:
            handle.truncate(length * CANDIDATE.itemsize)  # drop records written after the last checkpoint

    def add(self, records: np.ndarray) -> None:
        if len(records):
            with open(self.path, "ab") as handle:
                records.astype(CANDIDATE).tofile(handle)
            self.length += len(records)

    def sync(self) -> None:
        """Flush the records to disk (before a checkpoint counts them)."""
        with open(self.path, "ab") as handle:
            os.fsync(handle.fileno())

    def read(self) -> np.ndarray:
        if self.length == 0:
            return np.empty(0, dtype=CANDIDATE)
        return np.fromfile(self.path, dtype=CANDIDATE, count=self.length)


@dataclass
class HitRow:
    id_a: str
    id_b: str
    logit: float  # float32 value
    residue_a: int  # 1-based residue of id_a at the map's argmax
    residue_b: int
    map_probability: float  # sigmoid of the map's largest logit

    def sort_key(self) -> tuple[float, str, str]:
        return -self.logit, self.id_a, self.id_b

    def tsv(self) -> str:
        return "\t".join([self.id_a, self.id_b, f"{float(probability(self.logit)):.9g}", f"{self.logit:.9g}",
                          str(self.residue_a), str(self.residue_b), f"{self.map_probability:.6g}"])


def write_hits(path: Path, rows: list[HitRow]) -> None:
    """The TSV, written under a temporary name and renamed into place."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write("\t".join(TSV_COLUMNS) + "\n")
        for row in rows:
            handle.write(row.tsv() + "\n")


def read_hits(path: Path) -> list[HitRow]:
    """Rows of a screen TSV (as `write_hits` writes them)."""
    rows: list[HitRow] = []
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        if tuple(header) != TSV_COLUMNS:
            raise InputError(f"not a screen output (header {header[:3]}...; expected {TSV_COLUMNS[:3]}...)", path, 1)
        for number, line in enumerate(handle, start=2):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != len(TSV_COLUMNS):
                raise InputError(f"expected {len(TSV_COLUMNS)} columns, found {len(fields)}", path, number)
            try:
                rows.append(HitRow(fields[0], fields[1], float(np.float32(fields[3])), int(fields[4]),
                                   int(fields[5]), float(fields[6])))
            except ValueError as exc:
                raise InputError(f"unreadable number ({exc})", path, number) from None
    return rows
