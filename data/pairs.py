"""Pairs tables: `id_a  id_b  [label]  [more columns]`, tab- or whitespace-separated, header optional.

A header is recognised when its first field is a known column name (id_a, protein_a, ...) or its label field is
not a number, unless its first two fields are both ids of the FASTA (then it is data). With a header, the columns `label` and `split` are found by name; without one the third column
is the label. Pairs are validated against the FASTA and de-duplicated by content (either orientation, any ids).
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from data.errors import InputError
from data.keys import canonical_pair, sequence_key
from data.textio import read_lines

log = logging.getLogger(__name__)

LABEL_COLUMN = "label"
OTHER_COLUMNS = ("split", "map_target")


class ConflictError(InputError):
    """One sequence pair given with both labels (commands that can drop such pairs add their option to the message)."""


HEADER_FIRST_FIELDS = {"id_a", "protein_a", "proteina", "protein1", "id1", "a", "query", "seq_a", "name_a"}
SPLIT_NAMES = ("train", "valid", "test")


@dataclass(frozen=True)
class Pair:
    id_a: str
    id_b: str
    seq_a: str
    seq_b: str
    label: int | None = None
    split: str | None = None
    line: int = 0
    map_target: bool = True  # False (a `map_target` column holding 0): the map loss leaves this pair's map out

    @property
    def key(self) -> tuple[str, str]:
        """Canonical content key (orientation- and id-independent)."""
        first, second, _ = canonical_pair(sequence_key(self.seq_a), sequence_key(self.seq_b))
        return first, second


@dataclass
class PairTable:
    pairs: list[Pair]
    path: str
    duplicates_dropped: int = 0
    columns: list[str] = field(default_factory=list)
    conflicts_dropped: int = 0  # rows of sequence pairs given with both labels (only with drop_conflicts)

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def has_labels(self) -> bool:
        return bool(self.pairs) and all(p.label is not None for p in self.pairs)

    @property
    def has_split(self) -> bool:
        return bool(self.pairs) and all(p.split is not None for p in self.pairs)


def _parse_label(text: str, path: Path, line: int) -> int:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"label {text!r} is not 0 or 1", path, line) from None
    if value not in (0.0, 1.0):
        raise InputError(f"label {text!r} is not 0 or 1", path, line)
    return int(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _unknown_id(name: str, sequences: dict[str, str]) -> str:
    """The message for an id that is not a FASTA id; names a header it is one field of (UniProt: sp|P12345|NAME)."""
    matches = [fasta_id for fasta_id in sequences
               if "|" in fasta_id and name in fasta_id.split("|")]
    message = f"protein id '{name}' is not in the FASTA file"
    if matches:
        shown = ", ".join(f"'{m}'" for m in matches[:3]) + (" ..." if len(matches) > 3 else "")
        message += (f"; it is one field of the FASTA header {shown} (a FASTA id is the whole first word of its "
                    f"header): use '{matches[0]}' in the pairs file, or shorten the FASTA headers to the accession")
    return message


def read_pairs(path: str | Path, sequences: dict[str, str], require_labels: bool = False,
               drop_conflicts: bool = False) -> PairTable:
    """Read and validate a pairs table against {id: sequence}; see the module docstring for the format.

    One sequence pair given with both labels (under any ids or order) is an error naming both lines, unless
    `drop_conflicts`: then every row of such a pair is dropped, counted and logged.
    """
    path = Path(path)
    pairs: list[Pair] = []
    seen: dict[tuple[str, str], Pair] = {}
    rows_per_key: Counter[tuple[str, str]] = Counter()
    conflicting: set[tuple[str, str]] = set()  # pairs given with both labels (drop_conflicts only)
    columns: list[str] = []
    label_col: int | None = None
    split_col: int | None = None
    map_col: int | None = None
    n_fields: int | None = None
    is_header_file = False

    for number, line in read_lines(path):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        fields = [f.strip() for f in fields]
        if n_fields is None:
            n_fields = len(fields)
            if n_fields < 2:
                raise InputError("expected at least two columns (id_a, id_b)", path, number)
            # A first row naming two FASTA ids is data, even when an id looks like a column name ("a").
            names_proteins = fields[0] in sequences and fields[1] in sequences
            is_header = not names_proteins and (
                fields[0].lower() in HEADER_FIRST_FIELDS or (n_fields >= 3 and not _is_number(fields[2])))
            if is_header:
                is_header_file = True
                columns = [f.lower() for f in fields]
                label_col = columns.index("label") if "label" in columns else None
                split_col = columns.index("split") if "split" in columns else None
                map_col = columns.index("map_target") if "map_target" in columns else None
                continue
            columns = ["id_a", "id_b"] + (["label"] if n_fields >= 3 else []) + [
                f"column_{i + 1}" for i in range(3, n_fields)]
            label_col = 2 if n_fields >= 3 else None
        if len(fields) != n_fields:
            raise InputError(f"expected {n_fields} columns like the first row, found {len(fields)}", path, number)
        id_a, id_b = fields[0], fields[1]
        for name in (id_a, id_b):
            if name not in sequences:
                raise InputError(_unknown_id(name, sequences), path, number)
        label = _parse_label(fields[label_col], path, number) if label_col is not None else None
        split = None
        if split_col is not None:
            split = fields[split_col].lower()
            if split not in SPLIT_NAMES:
                raise InputError(f"split {fields[split_col]!r} is not one of {', '.join(SPLIT_NAMES)}", path, number)
        map_target = True
        if map_col is not None:
            if fields[map_col] not in ("0", "1"):
                raise InputError(f"map_target {fields[map_col]!r} is not 0 or 1", path, number)
            map_target = fields[map_col] == "1"
        pair = Pair(id_a, id_b, sequences[id_a], sequences[id_b], label, split, number, map_target)
        key = pair.key
        rows_per_key[key] += 1
        earlier = seen.get(key)
        if earlier is not None:
            if earlier.label != pair.label and drop_conflicts:
                conflicting.add(key)
            elif earlier.label != pair.label:
                raise ConflictError(
                    f"pair {id_a}/{id_b} repeats the sequences of line {earlier.line} "
                    f"({earlier.id_a}/{earlier.id_b}) with a different label", path, number)
            continue
        seen[key] = pair
        pairs.append(pair)

    conflicts_dropped = sum(rows_per_key[key] for key in conflicting)
    dropped = sum(count - 1 for key, count in rows_per_key.items() if key not in conflicting)
    if conflicting:
        pairs = [p for p in pairs if p.key not in conflicting]
        log.warning("%s: dropped all %d row(s) of %d sequence pair(s) given with both labels", path,
                    conflicts_dropped, len(conflicting))
    if not pairs:
        raise InputError("no pairs found (empty file?)", path)
    if require_labels and label_col is None:
        if is_header_file:
            raise InputError(f"a label column (0/1) is required, and the header names none: it has "
                             f"{', '.join(repr(c) for c in columns)}; the label column must be named "
                             f"'{LABEL_COLUMN}' (other columns read by name: {', '.join(OTHER_COLUMNS)}), or leave "
                             "out the header and put the label in the third column", path)
        raise InputError("a label column (0/1) is required: the table has two columns (id_a id_b); add a third "
                         "column of 0/1 labels, or a header with a 'label' column", path)
    if dropped:
        log.warning("%s: dropped %d duplicate pair(s) (same two sequences, either order)", path, dropped)
    return PairTable(pairs, str(path), dropped, columns, conflicts_dropped)


def write_pairs(path: str | Path, pairs: list[Pair], with_split: bool = False) -> None:
    """Write `id_a id_b label [split] [map_target]` with a header (map_target only when a pair has it off)."""
    with_map_flag = any(not pair.map_target for pair in pairs)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("id_a\tid_b\tlabel" + ("\tsplit" if with_split else "")
                     + ("\tmap_target" if with_map_flag else "") + "\n")
        for pair in pairs:
            label = "" if pair.label is None else str(pair.label)
            row = [pair.id_a, pair.id_b, label] + ([pair.split or ""] if with_split else [])
            row += [str(int(pair.map_target))] if with_map_flag else []
            handle.write("\t".join(row) + "\n")
