"""Snapshots: the disaster-recovery drill (snapshot, drop, restore, compare everything), a
snapshot taken while another thread writes, listing and deleting, and URL refusal. Malicious
archives are in test_malicious_archives.py, SIGKILL in test_snapshot_sigkill.py."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import ferrovec
from tests.conftest import unit_rows

DIM = 16


def fill(col, n: int = 1500, seed: int = 1) -> np.ndarray:
    """Points with int and str ids, payloads, a keyword index, a graph segment, then unsealed
    writes and deletes on top."""
    rng = np.random.default_rng(seed)
    vecs = unit_rows(rng, n, DIM)
    col.create_payload_index("tag", "keyword")
    ids: list[int | str] = [i if i % 5 else f"doc-{i}" for i in range(n)]
    pays = [{"tag": f"t{i % 7}", "n": i, "nested": {"x": [i, str(i)]}} for i in range(n)]
    col.upsert(ids[:1200], vecs[:1200], pays[:1200])
    col.optimize()
    col.upsert(ids[1200:], vecs[1200:], pays[1200:])  # still in the log
    col.delete([1, 2, 3, "doc-10"])
    col.set_payload({"late": True}, filter={"must": [{"key": "tag", "match": {"value": "t3"}}]})
    return vecs


def state(col) -> dict:
    recs, _ = col.scroll(limit=100_000, with_vectors=True)
    return {r.id: (np.asarray(r.vector, dtype=np.float32).tobytes(), r.payload) for r in recs}


def searches(col, queries: np.ndarray) -> list:
    out = []
    for q in queries:
        out.append([(h.id, h.score) for h in col.search(q, k=10)])
        flt = {"must": [{"key": "tag", "match": {"value": "t2"}}]}
        out.append([(h.id, h.score) for h in col.search(q, k=5, filter=flt)])
    return out


def index_types(col) -> list:
    return sorted((i["key"], i["type"]) for i in col.info()["payload_indexes"])


def test_drill_snapshot_drop_restore_identical(tmp_path: Path):
    store = tmp_path / "store"
    queries = unit_rows(np.random.default_rng(9), 8, DIM)
    with ferrovec.open(store) as db:
        col = db.create_collection("c", dim=DIM, hnsw={"full_scan_threshold": 500})
        fill(col)
        before = (state(col), searches(col, queries), index_types(col), col.count())
        snap = db.create_snapshot("c")
        assert snap.path.exists() and snap.path.parent == store / "snapshots"
        assert snap.size_bytes == snap.path.stat().st_size
        assert snap.sequence is not None and snap.collections == {"c": snap.sequence}
        db.drop_collection("c")
        del col
        assert [s.name for s in db.list_snapshots()] == [snap.name]  # dropping keeps it
        assert ferrovec.restore_snapshot(str(snap.path), store) == ["c"]
        col = db.collection("c")
        assert (state(col), searches(col, queries), index_types(col), col.count()) == before
        assert col.info()["segments"][0]["indexed"]  # the graph came back; no rebuild
        col.verify()
        del col
    # Into a new store, through a file:// URL, and again after reopening.
    other = tmp_path / "other"
    assert ferrovec.restore_snapshot(f"file://{snap.path}", other) == ["c"]
    with ferrovec.open(other) as db2:
        col2 = db2.collection("c")
        assert (state(col2), searches(col2, queries), index_types(col2)) == before[:3]
        del col2


def test_snapshots_and_backups_while_another_thread_writes_are_consistent(tmp_path: Path):
    batch = 50
    with ferrovec.open(tmp_path / "s") as db:
        col = db.create_collection("c", dim=DIM)
        rng = np.random.default_rng(4)
        stop = threading.Event()
        written = [0]

        def writer() -> None:
            b = 0
            while not stop.is_set() and b < 2000:
                ids = list(range(b * batch, (b + 1) * batch))
                col.upsert(ids, unit_rows(rng, batch, DIM), [{"b": b}] * batch)
                b += 1
                written[0] = b

        t = threading.Thread(target=writer)
        t.start()
        snaps, backups = [], []
        try:
            while len(snaps) < 3:
                if written[0] >= 20 * (len(snaps) + 1):
                    snaps.append(db.create_snapshot("c"))
                    # Backups freeze the same way: each also holds exactly its batches.
                    backups.append(db.backup(tmp_path / "backups", incremental=bool(backups)))
        finally:
            stop.set()
            t.join()
        assert written[0] > 60
        for i, snap in enumerate(snaps):
            target = tmp_path / f"r{i}"
            ferrovec.restore_snapshot(str(snap.path), target)
            with ferrovec.open(target) as r:
                got = {rec.id for rec in r.collection("c").scroll(limit=10**6)[0]}
            # One log record per batch: the snapshot at sequence S holds exactly S batches.
            assert got == set(range(snap.sequence * batch)), (snap.sequence, len(got))
            assert 0 < snap.sequence <= written[0]
        for i, b in enumerate(backups):
            target = tmp_path / f"b{i}"
            ferrovec.restore_backup(tmp_path / "backups", target, backup_id=b["id"])
            with ferrovec.open(target) as r:
                got = {rec.id for rec in r.collection("c").scroll(limit=10**6)[0]}
            seq = b["collections"]["c"]["sequence"]
            assert got == set(range(seq * batch)), (seq, len(got))


def test_list_delete_verify_and_dest(tmp_path: Path):
    with ferrovec.open(tmp_path / "s") as db:
        a = db.create_collection("a", dim=4)
        b = db.create_collection("b", dim=4)
        a.upsert([1], [[1, 0, 0, 0]])
        b.upsert([2], [[0, 1, 0, 0]])
        whole = db.create_snapshot()
        assert whole.sequence is None and set(whole.collections) == {"a", "b"}
        only_a = db.create_snapshot("a")
        elsewhere = db.create_snapshot("b", dest=tmp_path / "backups")
        assert elsewhere.path.parent == tmp_path / "backups"
        assert [s.name for s in db.list_snapshots()] == [whole.name, only_a.name]
        assert [s.name for s in db.list_snapshots(tmp_path / "backups")] == [elsewhere.name]
        for s in (whole, only_a):
            v = db.verify_snapshot(s.name)
            assert (v.sha256, v.size_bytes, v.collections) == (
                s.sha256,
                s.size_bytes,
                s.collections,
            )
        assert ferrovec.verify_snapshot(str(elsewhere.path)).collections == {
            "b": elsewhere.sequence
        }
        db.delete_snapshot(only_a.name)
        assert [s.name for s in db.list_snapshots()] == [whole.name]
        assert not only_a.path.exists()
        with pytest.raises(ferrovec.InvalidInputError, match="no snapshot named"):
            db.delete_snapshot(only_a.name)
        with pytest.raises(ferrovec.InvalidInputError, match="inside a collection"):
            db.create_snapshot("a", dest=tmp_path / "s" / "collections" / "a" / "snaps")
        with pytest.raises(ferrovec.CollectionNotFoundError):
            db.create_snapshot("nope")
        # A whole-store snapshot restores one collection on request; an existing one needs
        # replace=True.
        with pytest.raises(ferrovec.CollectionExistsError, match="replace"):
            ferrovec.restore_snapshot(str(whole.path), tmp_path / "s", collection="a")
        a.upsert([9], [[0, 0, 1, 0]])
        assert ferrovec.restore_snapshot(
            str(whole.path), tmp_path / "s", collection="a", replace=True
        ) == ["a"]
        with pytest.raises(ferrovec.CollectionNotFoundError):
            a.count()  # the replaced collection's handle is gone
        assert db.collection("a").count() == 1
        with pytest.raises(ferrovec.InvalidInputError, match="no collection"):
            ferrovec.restore_snapshot(str(whole.path), tmp_path / "t", collection="zzz")
        del a, b


@pytest.mark.parametrize(
    "url", ["http://example.com/x.fvsnap", "https://h/x", "s3://bucket/x", "file://relative/x"]
)
def test_snapshots_are_never_fetched(tmp_path: Path, url: str):
    with pytest.raises(ferrovec.InvalidInputError, match=r"local paths|file:///"):
        ferrovec.restore_snapshot(url, tmp_path / "s")
    assert not (tmp_path / "s").exists()
