"""FASTA reading and writing with validation that names the file and line of every problem."""
from __future__ import annotations

import logging
from pathlib import Path

from data.alphabet import invalid_characters
from data.errors import InputError
from data.textio import read_lines

log = logging.getLogger(__name__)


def read_fasta(path: str | Path) -> dict[str, str]:
    """Read a FASTA file into {id: sequence} in file order.

    The id is the header up to the first whitespace. Sequences are upper-cased and must use only the project
    alphabet (`data.alphabet.RESIDUES`). A repeated id is allowed only with an identical sequence.
    """
    sequences: dict[str, str] = {}
    header_line: dict[str, int] = {}
    current_id: str | None = None
    current_line = 0
    chunks: list[str] = []

    def finish() -> None:
        if current_id is None:
            return
        sequence = "".join(chunks)
        if not sequence:
            raise InputError(f"record '{current_id}' has an empty sequence", path, current_line)
        previous = sequences.get(current_id)
        if previous is not None and previous != sequence:
            raise InputError(
                f"id '{current_id}' appears twice with different sequences (first at line "
                f"{header_line[current_id]})", path, current_line)
        if previous is None:
            sequences[current_id] = sequence
            header_line[current_id] = current_line

    for number, line in read_lines(path):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(">"):
            finish()
            fields = stripped[1:].split()
            if not fields:
                raise InputError("header line without an id", path, number)
            current_id, current_line, chunks = fields[0], number, []
            continue
        if current_id is None:
            raise InputError("sequence data before the first '>' header: is this a FASTA file?", path, number)
        chunk = "".join(stripped.split()).upper()
        bad = invalid_characters(chunk)
        if bad:
            raise InputError(
                f"invalid residue character(s) {''.join(bad)!r} in record '{current_id}' "
                f"(allowed: 20 amino acids and X B Z U O)", path, number)
        chunks.append(chunk)
    finish()
    if not sequences:
        raise InputError("no FASTA records found (empty file?)", path)
    return sequences


def write_fasta(path: str | Path, sequences: dict[str, str], width: int = 0) -> None:
    """Write {id: sequence}; width 0 keeps each sequence on one line."""
    with open(path, "w", encoding="ascii") as handle:
        for name, sequence in sequences.items():
            handle.write(f">{name}\n")
            if width > 0:
                for start in range(0, len(sequence), width):
                    handle.write(sequence[start:start + width] + "\n")
            else:
                handle.write(sequence + "\n")
