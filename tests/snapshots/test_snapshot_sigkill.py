"""SIGKILL during snapshots, backups and restores: the store still opens with every
acknowledged write, every snapshot or backup listed as complete verifies, and a collection
being replaced is either the old one or the new one, whole."""

from __future__ import annotations

import random

import numpy as np
import pytest

import ferrovec
from tests.conftest import kill_at_random, unit_rows

# Real processes killed at random moments, many times: marked for `make test-fast`.
pytestmark = pytest.mark.slow

# The child writes batches of 200 and, after each acknowledged one, takes a snapshot or a
# backup (every third one full), until it is killed.
WRITER = """
import sys, numpy as np, ferrovec
kind, path, dest = sys.argv[1], sys.argv[2], sys.argv[3]
db = ferrovec.open(path, durability="fsync")
col = db.create_collection("c", dim=32, exist_ok=True)
rng = np.random.default_rng(int(sys.argv[4]))
b = col.count() // 200
while True:
    v = rng.standard_normal((200, 32)).astype(np.float32)
    col.upsert(list(range(b * 200, b * 200 + 200)), v, [{"b": b}] * 200)
    print(b, flush=True)
    b += 1
    if kind == "snapshot":
        db.create_snapshot("c")
    else:
        db.backup(dest, incremental=b % 3 != 1)
"""


def kill_writer(kind: str, store, dest, seed: int) -> None:
    """Run WRITER, SIGKILL it at random, and check every acknowledged batch is in the store."""
    rnd = random.Random(seed)
    acked = kill_at_random(WRITER, kind, str(store), str(dest), str(seed), rnd=rnd, delay=1.5)
    with ferrovec.open(store) as db:
        got = {r.id for r in db.collection("c").scroll(limit=10**6)[0]}
    assert set(range((max(acked) + 1) * 200)) <= got


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_while_snapshotting(tmp_path, seed):
    store = tmp_path / "s"
    kill_writer("snapshot", store, tmp_path / "unused", seed)
    with ferrovec.open(store) as db:
        snaps = db.list_snapshots()
        for s in snaps:  # every listed snapshot is whole
            assert db.verify_snapshot(s.name).sha256 == s.sha256
        names = {p.name for p in (store / "snapshots").iterdir()}
        # Whatever the kill left half-written is not listed (and is cleaned up next time).
        assert {f"{s.name}.fvsnap" for s in snaps} <= names
        db.create_snapshot("c")
        left = {p.name for p in (store / "snapshots").iterdir()}
        assert not [n for n in left if n[0] == "."]
        # Every archive left has its sidecar (an orphan archive is removed, not kept).
        archives = {n for n in left if n.endswith(".fvsnap")}
        assert {f"{a}.json" for a in archives} <= left


# The child restores (snapshot or backup) over an existing collection, then waits to be killed.
RESTORER = """
import sys, time, ferrovec
print(0, flush=True)
if sys.argv[1] == "snapshot":
    ferrovec.restore_snapshot(sys.argv[2], sys.argv[3], collection="c", replace=True)
else:
    ferrovec.restore_backup(sys.argv[2], sys.argv[3], collection="c", replace=True)
print(1, flush=True)
time.sleep(60)  # be killed, whenever that comes
"""
# 100,000 x 128 restores in about 0.2 s here: most kills land inside the restore.
N_NEW, N_OLD = 100_000, 300


def fill(path, n: int, seed: int) -> ferrovec.Database:
    db = ferrovec.open(path)
    col = db.create_collection("c", dim=128)
    col.upsert(list(range(n)), unit_rows(np.random.default_rng(seed), n, 128))
    return db


@pytest.mark.parametrize(
    ("kind", "seed"), [("snapshot", s) for s in (1, 2, 3, 4)] + [("backup", s) for s in (1, 2, 3)]
)
def test_sigkill_while_restoring(tmp_path, kind, seed):
    with fill(tmp_path / "src", N_NEW, 0) as db:
        if kind == "snapshot":
            source = str(db.create_snapshot("c").path)
        else:
            db.backup(tmp_path / "backups")
            source = str(tmp_path / "backups")
    target = tmp_path / "t"
    fill(target, N_OLD, 1).close()
    kill_at_random(RESTORER, kind, source, str(target), rnd=random.Random(seed), delay=0.3)
    with ferrovec.open(target) as db:
        assert db.list_collections() == ["c"]
        assert db.collection("c").count() in (N_OLD, N_NEW)
        assert not [p for p in (target / "collections").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_during_backups(tmp_path, seed):
    dest = tmp_path / "b"
    kill_writer("backup", tmp_path / "s", dest, seed)
    for b in ferrovec.list_backups(dest):  # every listed backup is whole
        ferrovec.verify_backup(dest, b["id"])
