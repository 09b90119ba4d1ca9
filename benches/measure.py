"""Measurement helpers shared by the benchmark scripts (Linux /proc figures)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


def rss_mib(field: str = "VmRSS") -> float:
    """A figure of /proc/self/status in MiB: VmRSS (now) or VmHWM (peak since start or since
    the last reset_peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets the peak (VmHWM) to the current RSS."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def disk_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def warm_page_cache(path: Path) -> None:
    """Read every file under `path` once, so that open and first-query figures are warm-cache
    ones for every system alike (other runs in between may have evicted them)."""
    for f in path.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                while fh.read(16 << 20):
                    pass


def evict_page_cache(path: Path) -> None:
    """Drop every file under `path` from the page cache (posix_fadvise DONTNEED, which needs
    no privileges; the files are clean once written and synced), so the next open reads them
    from disk: a cold-cache figure."""
    for f in path.rglob("*"):
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Call `fn`; return its result and the seconds it took."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0
