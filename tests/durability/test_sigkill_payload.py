"""Payload operations and deletes by filter survive SIGKILL like upserts: a child runs a fixed
sequence of operations (upsert a batch, set a payload key on the previous batch by filter, delete
half of an older batch by filter), printing each operation's number once acknowledged, while
the optimizer seals and merges and a payload index is kept. After each kill the store must equal
the model after exactly the acknowledged prefix, or that prefix plus the one operation in flight."""

from __future__ import annotations

import random

import numpy as np
import pytest

import ferrovec
from tests.conftest import kill_at_random

# Real processes killed at random moments, many times: marked for `make test-fast`.
pytestmark = pytest.mark.slow

WRITER = """
import sys, numpy as np, ferrovec
path, start = sys.argv[1], int(sys.argv[2])
db = ferrovec.open(path, durability="fsync")
col = db.create_collection(
    "c", dim=4, distance="dot", exist_ok=True,
    hnsw={"m": 8, "ef_construct": 32, "full_scan_threshold": 40},
    optimizer={"indexing_threshold": 50, "idle_ms": 1},
)
col.create_payload_index("batch", "integer")
op = start
while True:
    b, kind = divmod(op, 3)
    if kind == 0:
        vs = np.random.default_rng(b).standard_normal((10, 4)).astype(np.float32)
        col.upsert(list(range(b * 10, b * 10 + 10)), vs, [{"batch": b, "i": i} for i in range(10)])
    elif kind == 1:
        col.set_payload({"seen": b}, filter={"must": {"key": "batch", "match": {"value": b - 1}}})
    else:
        col.delete(filter={"must": [{"key": "batch", "match": {"value": b - 2}},
                                    {"key": "i", "match": {"any": [0, 2, 4, 6, 8]}}]})
    print(op, flush=True)
    if op % 17 == 16:
        col.optimize(wait=False)
    op += 1
"""


def model_after(ops: int) -> dict:
    """id -> payload after the first `ops` operations."""
    m: dict = {}
    for op in range(ops):
        b, kind = divmod(op, 3)
        if kind == 0:
            for i in range(10):
                m[b * 10 + i] = {"batch": b, "i": i}
        elif kind == 1:
            for p in m.values():
                if p["batch"] == b - 1:
                    p["seen"] = b
        else:
            for pid in [k for k, p in m.items() if p["batch"] == b - 2 and p["i"] % 2 == 0]:
                del m[pid]
    return m


def store_state(path) -> dict:
    with ferrovec.open(path) as db:
        col = db.collection("c")
        recs, _ = col.scroll(limit=1_000_000, with_vectors=True)
        out = {}
        for r in recs:
            want = np.random.default_rng(r.payload["batch"]).standard_normal((10, 4))
            np.testing.assert_array_equal(r.vector, want.astype(np.float32)[r.payload["i"]])
            out[r.id] = r.payload
        # The payload index answers exactly what the payloads say.
        for b in {p["batch"] for p in out.values()}:
            n = col.count(filter={"must": {"key": "batch", "match": {"value": b}}})
            assert n == sum(1 for p in out.values() if p["batch"] == b)
        return out


@pytest.mark.parametrize("cycles", [12])
def test_sigkill_keeps_payload_ops_and_filter_deletes(tmp_path, cycles):
    path = str(tmp_path / "store")
    rnd = random.Random(99)
    applied = 0  # operations the store holds
    acknowledged = 0
    for _ in range(cycles):
        lines = kill_at_random(WRITER, path, str(applied), rnd=rnd, delay=0.5)
        acknowledged = lines[-1] + 1
        state = store_state(path)
        if state == model_after(acknowledged):
            applied = acknowledged
        else:
            assert state == model_after(acknowledged + 1), "store matches no acknowledged prefix"
            applied = acknowledged + 1
    assert acknowledged > 3 * cycles
