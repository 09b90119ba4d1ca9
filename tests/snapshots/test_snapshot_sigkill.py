"""SIGKILL during snapshots and restores: the store still opens with every acknowledged write,
every snapshot listed as complete verifies, and a collection being replaced is either the old
one or the new one, whole."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest

import ferrovec
from tests.conftest import kill_at_random, unit_rows

SNAPSHOTTER = """
import sys, numpy as np, ferrovec
db = ferrovec.open(sys.argv[1], durability="fsync")
col = db.create_collection("c", dim=32, exist_ok=True)
rng = np.random.default_rng(int(sys.argv[2]))
b = col.count() // 200
while True:
    v = rng.standard_normal((200, 32)).astype(np.float32)
    col.upsert(list(range(b * 200, b * 200 + 200)), v, [{"b": b}] * 200)
    print(b, flush=True)
    b += 1
    db.create_snapshot("c")
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_while_snapshotting(tmp_path, seed):
    store = tmp_path / "s"
    rnd = random.Random(seed)
    acked = kill_at_random(SNAPSHOTTER, str(store), str(seed), rnd=rnd, delay=1.5)
    with ferrovec.open(store) as db:
        col = db.collection("c")
        got = {r.id for r in col.scroll(limit=10**6)[0]}
        assert set(range((max(acked) + 1) * 200)) <= got
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
        del col


RESTORER = """
import sys, time, ferrovec
print(0, flush=True)
ferrovec.restore_snapshot(sys.argv[1], sys.argv[2], collection="c", replace=True)
print(1, flush=True)
time.sleep(60)  # be killed, whenever that comes
"""


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_sigkill_while_restoring(tmp_path, seed):
    src = tmp_path / "src"
    # 100,000 x 128 restores in about 0.2 s here: most kills land inside the restore.
    n_new, n_old = 100_000, 300
    with ferrovec.open(src) as db:
        col = db.create_collection("c", dim=128)
        col.upsert(list(range(n_new)), unit_rows(np.random.default_rng(0), n_new, 128))
        snap = db.create_snapshot("c")
        del col
    target = tmp_path / "t"
    with ferrovec.open(target) as db:
        col = db.create_collection("c", dim=128)
        col.upsert(list(range(n_old)), unit_rows(np.random.default_rng(1), n_old, 128))
        del col
    rnd = random.Random(seed)
    kill_at_random(RESTORER, str(snap.path), str(target), rnd=rnd, delay=0.3)
    with ferrovec.open(target) as db:
        assert db.list_collections() == ["c"]
        assert db.collection("c").count() in (n_old, n_new)
        assert not [p for p in (target / "collections").iterdir() if p.name.startswith(".")]
    shutil.rmtree(tmp_path / "src")


BACKUP_RESTORER = """
import sys, time, ferrovec
print(0, flush=True)
ferrovec.restore_backup(sys.argv[1], sys.argv[2], collection="c", replace=True)
print(1, flush=True)
time.sleep(60)  # be killed, whenever that comes
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_while_restoring_a_backup(tmp_path, seed):
    src, dest = tmp_path / "src", tmp_path / "backups"
    n_new, n_old = 100_000, 300
    with ferrovec.open(src) as db:
        col = db.create_collection("c", dim=128)
        col.upsert(list(range(n_new)), unit_rows(np.random.default_rng(0), n_new, 128))
        db.backup(dest)
        del col
    target = tmp_path / "t"
    with ferrovec.open(target) as db:
        col = db.create_collection("c", dim=128)
        col.upsert(list(range(n_old)), unit_rows(np.random.default_rng(1), n_old, 128))
        del col
    kill_at_random(BACKUP_RESTORER, str(dest), str(target), rnd=random.Random(seed), delay=0.3)
    with ferrovec.open(target) as db:
        assert db.list_collections() == ["c"]
        assert db.collection("c").count() in (n_old, n_new)
        assert not [p for p in (target / "collections").iterdir() if p.name.startswith(".")]
