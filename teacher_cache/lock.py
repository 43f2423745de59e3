"""An exclusive lock beside a cache file, so two writers never interleave. Released by the OS on kill -9."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from teacher_cache.errors import CacheError


class CacheLock:
    def __init__(self, cache_path: str | Path):
        self.path = Path(f"{cache_path}.lock")
        self._fd: int | None = None

    def __enter__(self) -> "CacheLock":
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as exc:
            raise CacheError(f"cannot create lock file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CacheError(
                f"{self.path.with_suffix('')} is being written by another process (lock {self.path} is held); "
                "wait for it to finish or write to another file") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
            try:
                self.path.unlink()
            except OSError:
                pass
