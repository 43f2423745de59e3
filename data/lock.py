"""One writer at a time: an exclusive lock file `TARGET.lock` beside what is written (a cache, a run directory, a
screen's TSV), and the cleaning of what a dead writer left behind.

The lock is an `flock` on `TARGET.lock`, which the OS releases when its holder dies (kill -9 included); the file
holds the holder's process id. A lock file left by a dead process is taken over (with a log line). Only the holder
of the lock may remove `TARGET.partial-PID` temporaries of other, dead processes (`remove_stale_partials`)."""
from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from data.errors import UserError

log = logging.getLogger(__name__)


class LockedError(UserError):
    """Another live process writes the same output."""


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 64).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


class FileLock:
    """`with FileLock(target):` -- hold `TARGET.lock` exclusively, or raise `error` (LockedError by default)
    naming the target. `what` names the target in messages ("cache", "run directory", ...). `wait=True` blocks
    until the holder lets go instead of raising: for short read-modify-write sections that processes share."""

    error: type[UserError] = LockedError

    def __init__(self, target: str | Path, what: str | None = None, wait: bool = False):
        self.target = Path(target)
        self.path = Path(f"{target}.lock")
        self.what = what
        self.wait = wait
        self._fd: int | None = None

    def __enter__(self) -> "FileLock":
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as exc:
            if not self.path.parent.is_dir():
                raise self.error(f"cannot write {self.target}: directory {self.path.parent} does not exist") from None
            raise self.error(f"cannot create lock file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if self.wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            name = f"{self.what} {self.target}" if self.what else str(self.target)
            raise self.error(
                f"{name} is being written by another process ({who}; lock {self.path} is held); "
                "wait for it to finish or write to another path") from None
        try:  # the previous holder may have removed the file between our open and our flock: lock the new one
            if os.fstat(fd).st_ino != os.stat(self.path).st_ino:
                raise FileNotFoundError
        except FileNotFoundError:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            return self.__enter__()
        previous = _read_pid(fd)
        if previous is not None and previous != os.getpid() and not pid_alive(previous):
            log.warning("taking over the stale lock %s of process %d, which is no longer running", self.path,
                        previous)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            try:
                self.path.unlink()  # while still holding it: a waiting process then locks a fresh file
            except OSError:
                pass
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def partial_pid(path: Path) -> int | None:
    """The process id in a temporary name `NAME.partial-PID[.suffix]`, or None."""
    marker = path.name.rfind(".partial-")
    if marker < 0:
        return None
    digits = path.name[marker + len(".partial-"):].split(".")[0]
    return int(digits) if digits.isdigit() else None


def remove_stale_partials(target: str | Path) -> list[Path]:
    """Remove the temporaries of `target` (`TARGET.partial-PID`, `STEM.partial-PID.SUFFIX`) whose writer is dead.
    Call while holding the target's lock. Returns the removed paths."""
    target = Path(target)
    candidates = set(target.parent.glob(f"{target.name}.partial-*"))
    candidates |= set(target.parent.glob(f"{target.stem}.partial-*{target.suffix}"))
    removed = []
    for path in sorted(candidates):
        pid = partial_pid(path)
        if pid is None or pid == os.getpid() or pid_alive(pid):
            continue
        log.info("removing %s left by process %d, which is no longer running", path, pid)
        try:
            if path.is_dir():
                continue
            path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed
