"""The teachers: programs that fill a teacher cache. `precompute` runs ESM-2 (`esm_runner`, the only module of the
project that imports fair-esm) over tiled pair windows; `structure` reads true contacts from experimental complexes;
`synthetic` writes the planted benchmark's oracle. Their option records are in `config` (no torch there)."""
