"""The teacher cache: schema, writer and reader (numpy + h5py only), and the ESM-2 runner (`teacher_cache.teachers.esm_runner`,
the only module of the project that imports fair-esm; it is not imported here)."""
from teacher_cache.errors import CacheError, MissingEntryError
from teacher_cache.reader import PairMaps, ProteinEntry, TeacherCache
from teacher_cache.schema import SCHEMA_VERSION, StorageConfig
from teacher_cache.merge import merge_caches
from teacher_cache.writer import CacheBuilder

__all__ = ["CacheError", "MissingEntryError", "PairMaps", "ProteinEntry", "TeacherCache", "SCHEMA_VERSION",
           "StorageConfig", "CacheBuilder", "merge_caches"]
