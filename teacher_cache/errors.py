"""Cache exceptions. `MissingEntryError` is also a KeyError, so `cache.pair(...)` behaves like a mapping lookup."""
from __future__ import annotations

from data.errors import UserError


class CacheError(UserError):
    """A cache file that cannot be used: not a cache, another schema, corrupted, incompatible, locked."""


class MissingEntryError(CacheError, KeyError):
    """A pair or protein that the cache does not hold. The message names what is missing."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else "missing cache entry"
