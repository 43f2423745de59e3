"""Keep freed memory in the process heap (glibc), so large per-layer temporaries are not page-faulted anew.

glibc serves every allocation above its mmap threshold (at most 32 MB) with fresh pages from the kernel and returns
them on free. A teacher forward pass allocates and frees tensors of tens of MB per layer (a 700-token pair's
attention for 20 heads is 39 MB), so on CPU a large share of its time goes to page faults and zeroing.
`benchmarks/precompute.py` runs both its sides under glibc's default and under this setting and prints both.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Serve large allocations from the heap and never trim it (mallopt); False where libc is not glibc.

    Process-wide and permanent: the process's resident memory stays at its peak instead of shrinking after it.
    The equivalent environment for a child process is MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<large>.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        log.debug("no glibc mallopt here; allocator left as it is")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1) == 1
    log.debug("mallopt: large allocations from the heap, no trimming: %s", applied)
    return applied
