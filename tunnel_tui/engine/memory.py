"""Hand freed heap memory back to the OS once a burst of traffic is over.

Bulk transfers allocate many short-lived 64–256 KiB buffers (socket reads, SSH
packets). glibc's malloc raises its mmap threshold after the first such buffer is
freed, so later ones come from the heap, and the freed heap stays in the process:
an agent that carried a few GB sat at ~64 MiB RSS instead of ~48 (docs/PERF-WORK.md).
`malloc_trim(0)` returns it. Called when the tunnels go quiet after traffic, never
on the data path. A no-op where there is no glibc (macOS, musl).
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

_Trim = Callable[[int], int]


def _load_trim() -> _Trim | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _load_trim()


def release_free_memory() -> bool:
    """True when freed memory could be handed back (glibc), False otherwise."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
