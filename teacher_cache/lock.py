"""An exclusive lock beside a cache file, so two writers never interleave (precompute, cache merge, the synthetic
and structure teachers). Released by the OS on kill -9; the mechanism is `data.lock.FileLock`."""
from __future__ import annotations

from data.lock import FileLock
from teacher_cache.errors import CacheError


class CacheLock(FileLock):
    error = CacheError
