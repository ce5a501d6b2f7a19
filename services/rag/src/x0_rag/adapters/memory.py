"""Give the memory of a dropped index back to the operating system.

Dropping a collection frees its hnswlib index (C++ ``free``), its words and its chunks'
metadata (Python objects). Freed is not returned: glibc keeps freed heap memory in its
arenas for later ``malloc`` calls (and raises its mmap threshold after a large block is
freed, so the next large blocks come from the heap too), and pymalloc returns an arena
only once every object in it is gone. A replica that deleted a big collection kept most
of its resident memory (issue 16: 0.08 of 0.15 GB came back).

:func:`release_memory` runs a full garbage collection (objects in reference cycles go
now, not at the next threshold), then glibc's ``malloc_trim(0)``, which returns the
free pages of every arena, not only the top of the main heap (glibc >= 2.8). On a libc
without it (musl, macOS) only the collection runs. It takes a few milliseconds to a
few tens (a full GC pass), so the index manager calls it after a drop, in a thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable
from functools import cache

logger = logging.getLogger(__name__)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_memory() -> bool:
    """Collect garbage, then hand free heap pages back to the OS; True if glibc did."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    return bool(trim(0))
