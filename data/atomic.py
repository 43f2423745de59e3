"""Writing outputs so that a file on disk is either complete or absent: write under a temporary sibling name,
rename into place on success, remove the temporary file on failure. One mechanism for every writer."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix, so tools that infer the format from it still work);
    on leaving the block normally it replaces `path`, on an exception it is deleted."""
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
