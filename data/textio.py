"""Line reading shared by the FASTA and pairs readers: plain or gzip, CRLF tolerated, UTF-8 checked per line, a
UTF-8 byte-order mark (what some editors put at the start of a file) dropped."""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterator

from data.errors import InputError


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without its line ending). Gzip is detected by magic bytes."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_dir():
        raise InputError("is a directory, expected a file", path)
    with open(path, "rb") as probe:
        is_gzip = probe.read(2) == b"\x1f\x8b"
    opener = gzip.open if is_gzip else open
    try:
        with opener(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputError(f"not valid UTF-8 text ({exc.reason} at byte {exc.start})", path, number) from None
                if number == 1 and line.startswith("\ufeff"):
                    line = line[1:]  # byte-order mark
                yield number, line.rstrip("\r\n")
    except (OSError, EOFError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"cannot read ({exc})", path) from None
