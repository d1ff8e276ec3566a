"""The host machine: cores this process may use, and giving freed memory back to the OS.

Freed memory: glibc's malloc keeps freed memory in per-thread arenas. A whole-slide run frees and
reallocates megabyte-sized tile buffers from several threads (readers, writer,
pyramid builders) for minutes to hours, and the arenas' free space grows with the
run's length: peak RSS then grows with slide size although the data in flight do not
(benchmarks/memory_scaling.py, bicubic x2, 5k -> 40k px slide: +81 MB without trimming,
+14 MB with it). ``malloc_trim(0)`` returns the free pages of every arena; called at
most once a second it took 7 s of a 931 s run (0.8 %). dask.distributed suggests the
same for its workers' "unmanaged memory". Without glibc (macOS, Windows, musl) this is
a no-op.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _load_malloc_trim():
    try:  # the symbols already loaded into this process (libc among them on Linux)
        return ctypes.CDLL(None).malloc_trim
    except (OSError, TypeError, AttributeError):  # Windows, or a libc that is not glibc
        return None


_MALLOC_TRIM = _load_malloc_trim()
TRIM_INTERVAL_S = 1.0


def release_free_memory() -> bool:
    """Return free heap pages to the OS now; False where the C library cannot."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


class PeriodicTrim:
    """Calls :func:`release_free_memory` at most every ``interval_s``, from any thread."""

    def __init__(self, interval_s: float | None = None) -> None:
        self.interval_s = TRIM_INTERVAL_S if interval_s is None else interval_s
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self) -> None:
        if time.monotonic() - self._last < self.interval_s:
            return
        with self._lock:  # re-checked inside: another thread may have just trimmed
            if time.monotonic() - self._last < self.interval_s:
                return
            release_free_memory()
            self._last = time.monotonic()
