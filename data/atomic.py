"""Writing outputs, one mechanism for every writer.

`check_outputs`: before any work starts, refuse an existing output unless the user said --overwrite, and refuse an
output that is one of the command's inputs (the same file, however it is spelled) even then.
`atomic_path` / `write_text_atomic`: a file on disk is either complete or absent: write under a temporary sibling
name, rename into place on success, remove the temporary file on failure."""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Union

from data.errors import UserError, os_error_cause

PathLike = Union[str, Path]
# Outputs and inputs by the option that names them ({"--out": path}); a plain list of paths works too. None and ""
# (an output not asked for, an optional input not given) are skipped.
Named = Union[Mapping[str, "PathLike | None"], Iterable["PathLike | None"]]


def _named(paths: Named | None) -> list[tuple[str, Path]]:
    if paths is None:
        return []
    items = paths.items() if isinstance(paths, Mapping) else ((str(p), p) for p in paths)
    return [(str(name), Path(path)) for name, path in items if path is not None and str(path) != ""]


def _where(label: str, path: Path) -> str:
    return str(path) if label in ("", str(path)) else f"{path} ({label})"


def _and_so(others: list[str]) -> str:
    return "" if not others else f", and so {'does' if len(others) == 1 else 'do'} {', '.join(others)}"


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: os.path.samefile (hard and symbolic links, any spelling) when both exist,
    else the resolved paths."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def check_outputs(outputs: Named | None, inputs: Named | None = None, overwrite: bool = False,
                  folders: Named | None = None, hint: str | None = None) -> None:
    """Refuse, with a UserError naming the path, before a command does any work:

    - an output (file) or output folder that is also one of `inputs` -- the same file under any name, through a
      hard or symbolic link -- even with `overwrite`;
    - one path given for two outputs;
    - an output file that is a folder, an output folder that is a file;
    - unless `overwrite`: an output file that exists, an output folder that exists and is not empty.

    `outputs`, `inputs` and `folders` map the option that names each path to it ({"--out": "preds.tsv"}); sidecar
    files (OUT.json) are outputs of their own. A command that extends or resumes its outputs (precompute, train
    --resume, a screen's unfinished run) passes overwrite=True there and still gets the input checks. `hint` replaces
    the advice "pass --overwrite to replace it"."""
    files, dirs, sources = _named(outputs), _named(folders), _named(inputs)
    every = files + dirs
    for label, path in every:
        for input_label, source in sources:
            if same_file(path, source):
                raise UserError(f"{_where(label, path)} is the input {_where(input_label, source)}: refusing to "
                                "write over an input, even with --overwrite; choose another path for the output")
    for position, (label, path) in enumerate(every):
        for other_label, other in every[position + 1:]:
            if same_file(path, other):
                raise UserError(f"{path} is given as both {label} and {other_label}: each output needs a path of "
                                "its own")
    for label, path in files:
        if path.is_dir():
            raise UserError(f"{_where(label, path)} is a directory; give a file name such as {path / 'out'}")
    for label, path in dirs:
        if path.exists() and not path.is_dir():
            raise UserError(f"{_where(label, path)} is a file, not a folder; give a folder name")
    if overwrite:
        return
    existing = [_where(label, path) for label, path in files if path.exists() or path.is_symlink()]
    full = [_where(label, path) for label, path in dirs if path.is_dir() and any(path.iterdir())]
    if existing:
        more = _and_so(existing[1:])
        them = "them" if more else "it"
        raise UserError(f"{existing[0]} already exists{more}: {hint or f'pass --overwrite to replace {them}'}")
    if full:
        more = _and_so(full[1:])
        them = "them" if more else "it"
        raise UserError(f"{full[0]} already exists and is not empty{more}: "
                        f"{hint or f'pass --overwrite to write into {them} (files of the same names are replaced)'}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix, so tools that infer the format from it still work);
    on leaving the block normally it replaces `path`, on an exception it is deleted."""
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, a read-only folder, no permission: the user's to mend
        cause = os_error_cause(exc)
        if cause is None:
            raise
        raise WriteError(path, cause[0]) from exc
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


class WriteError(UserError):
    """An output that could not be written (disk full, read-only folder, no permission); nothing is left of it."""

    def __init__(self, path: str | Path, cause: str):
        super().__init__(f"cannot write {path}: {cause} (nothing was written to it)")
        self.path, self.cause = Path(path), cause


def check_free_space(path: str | Path, needed_bytes: int, label: str = "", margin: float = 1.1) -> None:
    """Refuse, before a long write, an output whose estimated size (`needed_bytes`, times `margin`) exceeds the
    free space of the file system that will hold it."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # no answer: the write itself will tell
    needed = int(needed_bytes * margin)
    if needed > free:
        raise UserError(f"not enough free space for {_where(label, path)}: it needs about {_size(needed)}, and "
                        f"{folder} has {_size(free)} free; free some space or write it elsewhere")


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
