"""Ctrl-C during a long call. A child process starts one long call on a store of 300,000
points (300 MB of vectors) and receives a real SIGINT soon after: the call must end with
KeyboardInterrupt before it could have finished, the next call in that process must work, and
after the child exits the store must hold exactly what it held before (or, for a write that
got past its last safe point, all of it): nothing half-applied, no leftover files.

`benches/bench_interrupt.py` measures how long each call takes to stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ferrovec

# Real processes interrupted, many times: marked for `make test-fast`.
pytestmark = pytest.mark.slow

N, DIM = 300_000, 256
# Calls that cannot finish in this time here (each takes seconds uninterrupted).
SIGNAL_AFTER_S = 0.2

CHILD = """
import json, sys, time, numpy as np, ferrovec

root, what = sys.argv[1], sys.argv[2]
db = ferrovec.open(root + "/store")
col = db.collection("big")
slow = lambda done, total: time.sleep(0.005)  # a progress callback that does some work
work = {
    "optimize": lambda: col.optimize(),
    "upsert": lambda: col.upsert(np.arange(10**9, 10**9 + len(rows)), rows),
    "search_batch": lambda: col.search_batch(queries, k=10),
    "snapshot": lambda: db.create_snapshot("big"),
    "backup": lambda: db.backup(root + "/backups-new", progress=slow),
    "restore_snapshot": lambda: ferrovec.restore_snapshot(
        archive, root + "/target", collection="big", replace=True),
    "restore_backup": lambda: ferrovec.restore_backup(
        root + "/backups", root + "/target", collection="big", replace=True, progress=slow),
}[what]
rng = np.random.default_rng(1)
rows = np.ones((1_000_000, 256), dtype=np.float32) if what == "upsert" else None
queries = rng.standard_normal((20_000, 256), dtype=np.float32)
archive = db.list_snapshots()[0].path if what == "restore_snapshot" else None
print("ready", flush=True)
try:
    work()
    outcome = "finished"
except KeyboardInterrupt:
    outcome = "interrupted"
# The next call works, write included.
col.upsert([10**12], np.ones((1, 256), dtype=np.float32))
hits = col.search(np.ones(256, dtype=np.float32), k=1)
print(json.dumps({"outcome": outcome, "count": col.count(), "hit": hits[0].id}), flush=True)
db.close()
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A store with 300,000 unindexed points, a snapshot and a backup of it, and a second store
    (the restore target) holding five points in a collection of the same name."""
    root = tmp_path_factory.mktemp("interrupt")
    rng = np.random.default_rng(0)
    with ferrovec.open(root / "store") as db:
        col = db.create_collection(
            "big", dim=DIM, optimizer={"indexing_threshold": 10**9, "idle_ms": 10**9}
        )
        for start in range(0, N, 50_000):
            col.upsert(np.arange(start, start + 50_000), rng.random((50_000, DIM), np.float32))
        col.flush()
        db.create_snapshot("big")
        db.backup(root / "backups")
    with ferrovec.open(root / "target") as db:
        db.create_collection("big", dim=DIM).upsert(np.arange(5), np.ones((5, DIM), np.float32))
    return root


def state(root: Path) -> dict:
    """What a later process finds: counts, snapshots, backups, and files left behind."""
    out: dict = {}
    with ferrovec.open(root / "store") as db:
        col = db.collection("big")
        col.verify()
        out["count"] = col.count()
        out["snapshots"] = [s.name for s in db.list_snapshots()]
    with ferrovec.open(root / "target") as db:
        out["target"] = db.collection("big").count()
    new = root / "backups-new"
    out["new_backups"] = len(ferrovec.list_backups(new)) if new.exists() else 0
    out["leftovers"] = sorted(
        str(p.relative_to(root))
        for p in root.rglob(".*")
        if p.name.endswith(".partial") or ".staging" in p.name or ".restoring" in p.name
    )
    return out


@pytest.mark.parametrize(
    "what",
    [
        "optimize",
        "upsert",
        "search_batch",
        "snapshot",
        "backup",
        "restore_snapshot",
        "restore_backup",
    ],
)
def test_ctrl_c_stops_a_long_call_and_leaves_the_store_consistent(root: Path, what: str) -> None:
    before = state(root)
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), what],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "ready", p.stderr.read() if p.stderr else ""
    time.sleep(SIGNAL_AFTER_S)
    os.kill(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["outcome"] == "interrupted", report
    assert report["hit"] == 10**12  # the next write and search worked

    after = state(root)
    assert after["leftovers"] == [], after["leftovers"]
    assert after["snapshots"] == before["snapshots"]
    assert after["new_backups"] == before["new_backups"] == 0
    assert after["target"] == before["target"]
    # Nothing but the small write that followed (an upsert past its last safe point is whole).
    grown = after["count"] - before["count"] - (0 if before["count"] > N else 1)
    if what == "upsert":
        assert grown in (0, 1_000_000), grown
    else:
        assert grown == 0, grown
