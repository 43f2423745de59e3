"""The teacher cache format: schema, writer, reader, merge, verify and lock (numpy + h5py only; no torch, no esm).

The programs that fill a cache (ESM-2, structures, the planted benchmark's oracle) are `teacher_cache.teachers`;
nothing here imports them.
"""
from teacher_cache.errors import CacheError, MissingEntryError
from teacher_cache.merge import merge_caches
from teacher_cache.reader import PairMaps, ProteinEntry, TeacherCache
from teacher_cache.schema import SCHEMA_VERSION, StorageConfig
from teacher_cache.writer import CacheBuilder

__all__ = ["CacheError", "MissingEntryError", "PairMaps", "ProteinEntry", "TeacherCache", "SCHEMA_VERSION",
           "StorageConfig", "CacheBuilder", "merge_caches"]
