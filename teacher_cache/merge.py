"""Joining caches of one teacher (shards, resumed parts, supersets) into one file, through the public reader and
builder APIs: every entry is read back, checked and written again as `precompute` would have written it."""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Iterable

from data.atomic import check_outputs, same_file
from data.lock import remove_stale_partials
from teacher_cache.errors import CacheError
from teacher_cache.lock import CacheLock
from teacher_cache.reader import TeacherCache
from teacher_cache.schema import StorageConfig
from teacher_cache.writer import CacheBuilder


def copy_entries(cache: TeacherCache, builder: CacheBuilder) -> int:
    """Add every protein and pair of `cache` that `builder` does not hold yet; returns how many pairs were added."""
    for sequence, entry in cache.iter_proteins():
        builder.add_protein(sequence, entry.embedding, entry.residue_embedding, entry.tiled)
    added = 0
    for key_a, key_b, maps in cache.iter_pairs():
        added += builder.add_canonical_pair(key_a, key_b, maps.contact, maps.attention, maps.tiled)
    return added


def merge_caches(sources: Iterable[str | Path], out: str | Path, overwrite: bool = False,
                 storage: StorageConfig | None = None, locked: bool = False) -> Path:
    """Join caches with the same fingerprint into `out`; an entry present in several sources is taken once, from
    the first. `out` may be one of the sources (it is replaced atomically at the end).

    Holds `out`'s lock (`CacheLock`) while it writes, so a merge never interleaves with `precompute` or another
    merge of the same file; `locked` says the caller already holds it. Temporaries of dead writers of `out`
    (`OUT.partial-PID`) are removed first."""
    sources = [Path(s) for s in sources]
    if not sources:
        raise CacheError("nothing to merge: no source caches given")
    out = Path(out)
    # OUT may be one of the sources: it is then extended (its entries are kept), not written over.
    replacing_source = any(same_file(out, s) for s in sources)
    check_outputs({"OUT": out}, {f"source {s}": s for s in sources if not same_file(out, s)},
                  overwrite or replacing_source)
    with nullcontext() if locked else CacheLock(out):
        remove_stale_partials(out)
        return _merge_locked(sources, out, overwrite or replacing_source, storage)


def _merge_locked(sources: list[Path], out: Path, overwrite: bool, storage: StorageConfig | None) -> Path:
    caches = [TeacherCache.open(s) for s in sources]
    try:
        first = caches[0]
        for cache in caches[1:]:
            if cache.fingerprint != first.fingerprint:
                raise CacheError(f"cannot merge {cache.path} into {first.path}: they were built with different "
                                 f"teachers or settings (fingerprints {cache.fingerprint} vs {first.fingerprint})")
        builder = CacheBuilder(out, first.meta_for_builder(), storage or first.storage, overwrite=overwrite)
        with builder:
            for cache in caches:
                copy_entries(cache, builder)
    finally:
        for cache in caches:
            cache.close()
    return out
