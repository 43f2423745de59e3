"""keep_freed_memory changes the process allocator, so its effect is checked in child processes."""
from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest

from data import allocator

ROOT = Path(__file__).resolve().parents[1]
# Resident memory (MB) before and after a 200 MB array is freed.
PROBE = """
import sys
sys.path.insert(0, {root!r})
import numpy as np
from data.allocator import keep_freed_memory
def rss():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) // 1024
applied = keep_freed_memory() if {keep} else None
block = np.ones(200 * 2 ** 20, dtype=np.uint8)
held = rss()
del block
print(applied, held, rss())
"""


def _probe(keep: bool) -> tuple[str, int, int]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT), keep=keep)], capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0], int(out[1]), int(out[2])


@pytest.mark.skipif(not Path("/proc/self/status").exists() or "glibc" not in " ".join(
    __import__("platform").libc_ver()), reason="glibc on Linux only")
def test_freed_large_blocks_stay_in_the_process_only_when_asked():
    _, held, after = _probe(keep=False)
    assert after < held - 150  # glibc's default: the mmap'd block goes back to the kernel
    applied, held, after = _probe(keep=True)
    assert applied == "True"
    assert after > held - 50  # kept in the heap for the next allocation


def test_without_glibc_it_reports_false(monkeypatch):
    def no_libc(*args, **kwargs):
        raise OSError("no such library")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert allocator.keep_freed_memory() is False
