"""The pair space of a screen and how it is cut into blocks and shards. Pure numpy: no model, no IO.

Proteins are keyed by sequence: ids that share a sequence are one protein, scored once and reported under every
id. The distinct sequences of a set are sorted by length and cut into groups of similar length under a token
budget; a block is a tile (row group x column group) of the pair space, scored as one batched product, and a
shard is a contiguous run of blocks, balanced by the padded map cells they cost.

Self mode (one set) scores each unordered pair once: tiles with row group <= column group, and in a diagonal
tile only i <= j. Bipartite mode (two sets) scores the product, rows from set A, columns from set B.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.errors import UserError
from data.keys import sequence_key


@dataclass
class ProteinSet:
    """Distinct sequences of one FASTA, sorted by (length, sequence key), with the ids naming each."""

    sequences: list[str]
    ids: list[list[str]]  # ids of each distinct sequence, sorted as strings
    lengths: np.ndarray  # (n,) int64

    def __len__(self) -> int:
        return len(self.sequences)

    @classmethod
    def from_fasta(cls, records: dict[str, str]) -> "ProteinSet":
        by_sequence: dict[str, list[str]] = {}
        for name, sequence in records.items():
            by_sequence.setdefault(sequence, []).append(name)
        ordered = sorted(by_sequence, key=lambda s: (len(s), sequence_key(s)))
        return cls(ordered, [sorted(by_sequence[s]) for s in ordered],
                   np.array([len(s) for s in ordered], dtype=np.int64))


def length_groups(lengths: np.ndarray, token_budget: int) -> list[tuple[int, int]]:
    """Cut length-sorted proteins into contiguous [start, stop) groups whose padded size n * max_len stays within
    `token_budget` (a protein longer than the budget forms a group of its own)."""
    groups: list[tuple[int, int]] = []
    start = 0
    for index in range(1, len(lengths) + 1):
        if index == len(lengths) or (index + 1 - start) * int(lengths[index]) > token_budget:
            groups.append((start, index))
            start = index
    return groups


@dataclass(frozen=True)
class Block:
    index: int  # position in the plan's block list
    rows: tuple[int, int]  # [start, stop) in the row set
    cols: tuple[int, int]  # [start, stop) in the column set
    diagonal: bool  # self mode, rows == cols: only i <= j is scored
    pairs: int  # pairs scored in this block
    cells: int  # padded map cells of the block (its cost)


class ScreenPlan:
    """Every pair to score, as blocks.

    Pairs are named by (row index, column index) into the row and column `ProteinSet`s; in self mode both are
    the same set and row <= column. A pair is scored only if it yields at least one reported id pair (see
    `rows_of`): with `no_self`, a sequence paired with itself counts only when two different ids name it.
    """

    def __init__(self, set_a: ProteinSet, set_b: ProteinSet | None = None, no_self: bool = False,
                 token_budget: int = 4096):
        self.set_a = set_a
        self.set_b = set_b if set_b is not None else set_a
        self.bipartite = set_b is not None
        self.no_self = no_self
        self.token_budget = int(token_budget)
        self.row_groups = length_groups(self.set_a.lengths, token_budget)
        self.col_groups = length_groups(self.set_b.lengths, token_budget) if self.bipartite else self.row_groups
        # ranks of every id in string order: the tie-break of equal scores, shared by screen and merge
        all_ids = sorted({i for ids in self.set_a.ids + self.set_b.ids for i in ids})
        self.id_rank = {name: rank for rank, name in enumerate(all_ids)}
        self.n_ids = len(all_ids)
        excluded = sorted(self._excluded_pairs())
        self._excluded_rows = np.array([e[0] for e in excluded], dtype=np.int64)
        self._excluded_cols = np.array([e[1] for e in excluded], dtype=np.int64)
        self._first_a = self._first_rank(self.set_a)
        self._first_b = self._first_rank(self.set_b) if self.bipartite else self._first_a
        self._shared = self._shared_first_ids() if self.bipartite and no_self else set()
        self.blocks = self._make_blocks()
        self.total_pairs = sum(b.pairs for b in self.blocks)

    # -- which pairs exist ------------------------------------------------------------------------------------
    def _excluded_pairs(self) -> set[tuple[int, int]]:
        """(row, col) pairs with no reportable id pair: with no_self, a sequence with itself named by one id."""
        if not self.no_self:
            return set()
        if not self.bipartite:
            return {(i, i) for i, ids in enumerate(self.set_a.ids) if len(ids) < 2}
        index_b = {s: j for j, s in enumerate(self.set_b.sequences)}
        excluded = set()
        for i, sequence in enumerate(self.set_a.sequences):
            j = index_b.get(sequence)
            if j is not None and len(self.set_a.ids[i]) == 1 and self.set_a.ids[i] == self.set_b.ids[j]:
                excluded.add((i, j))
        return excluded

    def block_pairs(self, block: Block) -> tuple[np.ndarray, np.ndarray]:
        """Local (row, col) offsets within the block of the pairs it scores, row-major."""
        n_rows, n_cols = block.rows[1] - block.rows[0], block.cols[1] - block.cols[0]
        keep = np.ones((n_rows, n_cols), dtype=bool)
        if block.diagonal:
            keep = np.triu(keep)
        inside = self._excluded_in(block.rows, block.cols)
        keep[self._excluded_rows[inside] - block.rows[0], self._excluded_cols[inside] - block.cols[0]] = False
        rows, cols = np.nonzero(keep)
        return rows, cols

    def _excluded_in(self, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
        return ((self._excluded_rows >= rows[0]) & (self._excluded_rows < rows[1])
                & (self._excluded_cols >= cols[0]) & (self._excluded_cols < cols[1]))

    def _make_blocks(self) -> list[Block]:
        blocks: list[Block] = []
        for gi, rows in enumerate(self.row_groups):
            for gj, cols in enumerate(self.col_groups):
                if not self.bipartite and gj < gi:
                    continue
                diagonal = not self.bipartite and gi == gj
                n_rows, n_cols = rows[1] - rows[0], cols[1] - cols[0]
                pairs = n_rows * (n_rows + 1) // 2 if diagonal else n_rows * n_cols
                pairs -= int(self._excluded_in(rows, cols).sum())
                cells = n_rows * int(self.set_a.lengths[rows[1] - 1]) * n_cols * int(self.set_b.lengths[cols[1] - 1])
                if pairs > 0:
                    blocks.append(Block(len(blocks), rows, cols, diagonal, pairs, cells))
        return blocks

    # -- shards -----------------------------------------------------------------------------------------------
    def shard_blocks(self, shard: int, n_shards: int) -> list[Block]:
        """The contiguous run of blocks of shard `shard` (0-based) of `n_shards`, balanced by block cells."""
        if n_shards < 1 or not 0 <= shard < n_shards:
            raise UserError(f"shard {shard + 1}/{n_shards} does not exist (shards are numbered 1..N)")
        cells = np.array([b.cells for b in self.blocks], dtype=np.float64)
        midpoints = (np.cumsum(cells) - cells / 2) / max(cells.sum(), 1.0)
        owner = np.minimum((midpoints * n_shards).astype(np.int64), n_shards - 1)
        return [b for b, o in zip(self.blocks, owner) if o == shard]

    # -- ids and tie-breaks -----------------------------------------------------------------------------------
    def rows_of(self, i: int, j: int) -> list[tuple[str, str, bool]]:
        """Reported (id_a, id_b, swapped) rows of the scored pair (i, j); swapped: id_a names sequence j.

        Self mode orients each row so that id_a <= id_b as strings; bipartite rows keep id_a from set A."""
        ids_i, ids_j = self.set_a.ids[i], self.set_b.ids[j]
        out: list[tuple[str, str, bool]] = []
        if self.bipartite:
            return [(x, y, False) for x in ids_i for y in ids_j if not (self.no_self and x == y)]
        if i == j:
            for a, x in enumerate(ids_i):
                for y in ids_i[a if not self.no_self else a + 1:]:
                    out.append((x, y, False))
            return out
        for x in ids_i:
            for y in ids_j:
                out.append((x, y, False) if x <= y else (y, x, True))
        return out

    def tie_keys(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """int64 key of each pair's first reported row, rank(id_a) * n_ids + rank(id_b): among equal scores the
        pair with the smaller key ranks first, the order a sort of the reported rows by (id_a, id_b) gives."""
        ra, rb = self._first_a[rows], self._first_b[cols]
        if not self.bipartite:
            ra, rb = np.minimum(ra, rb), np.maximum(ra, rb)
        keys = ra * self.n_ids + rb
        if not self.bipartite:
            special = rows == cols
        else:  # with no_self, pairs whose first ids coincide lose their first row
            shared = np.array([i * len(self.set_b) + j for i, j in self._shared], dtype=np.int64)
            special = np.isin(rows.astype(np.int64) * len(self.set_b) + cols, shared)
        for index in np.nonzero(special)[0]:
            first = min(self.rows_of(int(rows[index]), int(cols[index])))
            keys[index] = self.id_rank[first[0]] * self.n_ids + self.id_rank[first[1]]
        return keys

    def _first_rank(self, protein_set: ProteinSet) -> np.ndarray:
        """Rank of the first (smallest) id of each distinct sequence."""
        return np.array([self.id_rank[ids[0]] for ids in protein_set.ids], dtype=np.int64)

    def _shared_first_ids(self) -> set[tuple[int, int]]:
        """Bipartite pairs whose first ids are one id (with no_self their first row is excluded)."""
        index_b = {s: j for j, s in enumerate(self.set_b.sequences)}
        shared = set()
        for i, sequence in enumerate(self.set_a.sequences):
            j = index_b.get(sequence)
            if j is not None and self.set_a.ids[i][0] == self.set_b.ids[j][0]:
                shared.add((i, j))
        return shared


def parse_shard(text: str | None) -> tuple[int, int]:
    """'i/N' (0-based like `precompute --shard` and Slurm's `--array=0-(N-1)`) -> (i, N); None -> (0, 1)."""
    if text is None:
        return 0, 1
    try:
        shard, total = (int(part) for part in text.split("/"))
    except ValueError:
        raise UserError(f"--shard {text!r}: expected i/N, e.g. 3/16 (shards are numbered 0..N-1)") from None
    if total < 1 or not 0 <= shard < total:
        raise UserError(f"--shard {text!r}: need 0 <= i < N")
    return shard, total
