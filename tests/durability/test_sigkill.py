"""A child process upserts batches and prints each acknowledged batch number; we SIGKILL it at
random moments. After reopening, every acknowledged batch is present and whole, and no batch is
half applied. Every durability mode promises to survive a process crash (power loss is the
fault-injection suite's job)."""

from __future__ import annotations

import random

import numpy as np
import pytest

import ferrovec
from tests.conftest import kill_at_random

# Real processes killed at random moments, many times: marked for `make test-fast`.
pytestmark = pytest.mark.slow

BATCH = 10
DIM = 16

WRITER = """
import sys, numpy as np, ferrovec
path, mode, start, busy = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
db = ferrovec.open(path, durability=mode, fsync_interval_ms=5)
# With busy, tiny thresholds keep the optimizer sealing, indexing and merging all the time.
col = db.create_collection(
    "c", dim=16, distance="dot", exist_ok=True,
    hnsw={"m": 8, "ef_construct": 32, "full_scan_threshold": 50} if busy else None,
    optimizer={"indexing_threshold": 60, "idle_ms": 1} if busy else None,
)
b = start
while True:
    if busy and b % 5 == 4:
        col.optimize(wait=False)
    rng = np.random.default_rng(b)
    ids = list(range(b * 10, b * 10 + 10))
    payloads = [{"batch": b, "i": i} for i in range(10)]
    col.upsert(ids, rng.standard_normal((10, 16), dtype=np.float32), payloads)
    print(b, flush=True)
    if b % 7 == 6:
        col.flush()  # checkpoints happen inside the kill window too
    b += 1
"""


def expected_vectors(b: int) -> np.ndarray:
    return np.random.default_rng(b).standard_normal((BATCH, DIM), dtype=np.float32)


def check_store(path, acknowledged: int) -> int:
    """Assert every batch up to `acknowledged` is whole and no batch is partial; return the
    highest batch present."""
    with ferrovec.open(path) as db:
        col = db.collection("c")
        recs, _ = col.scroll(limit=1_000_000, with_vectors=True)
        by_batch: dict[int, list] = {}
        for r in recs:
            by_batch.setdefault(r.payload["batch"], []).append(r)
        for b, rs in by_batch.items():
            assert len(rs) == BATCH, f"batch {b} half applied: {len(rs)} points"
            want = expected_vectors(b)
            for r in rs:
                assert r.id == b * BATCH + r.payload["i"]
                np.testing.assert_array_equal(r.vector, want[r.payload["i"]])
        highest = max(by_batch, default=-1)
        assert sorted(by_batch) == list(range(highest + 1)), "a gap in the batches"
        assert highest >= acknowledged, f"acknowledged batch {acknowledged} lost (have {highest})"
        del col
    return highest


@pytest.mark.parametrize(
    ("mode", "cycles", "busy"),
    [("fsync", 20, False), ("interval", 8, False), ("off", 8, False), ("fsync", 20, True)],
    ids=["fsync", "interval", "off", "fsync-while-optimizing"],
)
def test_sigkill_loses_no_acknowledged_batch(tmp_path, mode, cycles, busy):
    path = str(tmp_path / "store")
    rnd = random.Random(1234)
    next_batch = 0
    acknowledged = -1
    for _cycle in range(cycles):
        lines = kill_at_random(
            WRITER,
            path,
            mode,
            str(next_batch),
            "1" if busy else "0",
            rnd=rnd,
            delay=0.6 if busy else 0.3,
        )
        acknowledged = max(acknowledged, lines[-1])
        highest = check_store(path, acknowledged)
        next_batch = highest + 1
    assert acknowledged > cycles  # the children made progress
    if busy:
        with ferrovec.open(path) as db:
            info = db.collection("c").info()
            assert any(seg["indexed"] for seg in info["segments"]), info
