"""`ferrovec repair` and `ferrovec reindex` on real files: a store written by a child process
that dies without closing, then damaged byte by byte (a graph, a segment's vectors, a record in
the middle of the log, a torn tail). Repair keeps every intact record and point, rebuilds what
is derived, moves what is damaged aside, says what was lost, and changes nothing on a healthy
store."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ferrovec
from tests.conftest import child
from tests.durability.test_torn_log import record_spans

WRITE = """
import os, sys, numpy as np, ferrovec
db = ferrovec.open(sys.argv[1])
c = db.create_collection("c", dim=8, distance="dot", hnsw={"full_scan_threshold": 100})
rng = np.random.default_rng(0)
for s in (0, 1000):
    c.upsert(list(range(s, s + 1000)), rng.standard_normal((1000, 8), dtype=np.float32),
             [{"g": i % 5} for i in range(s, s + 1000)])
    c.flush()
c.create_payload_index("g", "integer")
c.optimize()
d = db.create_collection("d", dim=8, distance="dot", hnsw={"full_scan_threshold": 100})
d.upsert(list(range(500)), rng.standard_normal((500, 8), dtype=np.float32))
d.optimize()
d.upsert(list(range(500, 600)), rng.standard_normal((100, 8), dtype=np.float32))
d.flush()
for b in range(4):  # four log records after c's checkpoint
    c.upsert(list(range(5000 + b * 10, 5010 + b * 10)), np.full((10, 8), b + 1, dtype=np.float32))
os._exit(0)  # no close: the records stay in the log
"""


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("repair") / "store"
    p = child(WRITE, str(path))
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    return path


def copy(written: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "store"
    shutil.copytree(written, dest)
    return dest


def digests(store: Path) -> dict[str, str]:
    # LOCK holds the pid of whoever last took the store's lock; every open writes it.
    return {
        str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.rglob("*"))
        if p.is_file() and p.name != "LOCK"
    }


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def segments(store: Path, col: str, ext: str) -> list[Path]:
    return sorted((store / "collections" / col / "segments").glob(f"*.{ext}"))


def wal(store: Path, col: str) -> Path:
    (f,) = sorted((store / "collections" / col / "wal").glob("*.wal"))
    return f


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ferrovec", *args], capture_output=True, text=True, timeout=300
    )


def test_repair_of_a_healthy_store_changes_nothing(written: Path, tmp_path: Path) -> None:
    store = copy(written, tmp_path)
    before = digests(store)
    out = run_cli("repair", str(store))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "c: no damage, nothing changed" in out.stdout
    assert digests(store) == before
    assert not (store / "damaged").exists()


def test_repair_salvages_the_log_rebuilds_indexes_and_reports_lost_points(
    written: Path, tmp_path: Path
) -> None:
    store = copy(written, tmp_path)
    flip(segments(store, "c", "hnsw")[0], 200)  # derived: rebuilt
    lost_segment = segments(store, "d", "vec")[-1]  # the 100 points 500..599: lost
    flip(lost_segment, 100)
    log = wal(store, "c")
    start, end = record_spans(log.read_bytes())[1]  # the second of four records
    flip(log, (start + end) // 2)
    assert run_cli("check", str(store)).returncode == 1
    with pytest.raises(ferrovec.CorruptionError):
        with ferrovec.open(store) as db:
            db.collection("c").count()

    out = run_cli("repair", str(store))
    assert out.returncode == 1, out.stdout + out.stderr  # something was lost: exit 1
    text = out.stdout
    assert "rebuilt from its rows" in text
    assert "LOST: record 4" in text  # checkpoint at 2: the log holds records 3 to 6
    assert "LOST: segment" in text and "100 points" in text and "ids 500, 501" in text
    assert "kept aside" in text
    assert run_cli("check", str(store)).returncode == 0

    with ferrovec.open(store) as db:
        c, d = db.collection("c"), db.collection("d")
        # c: 2,000 sealed points and 3 of the 4 logged batches (the damaged one lost).
        assert c.count() == 2030
        kept = {r.id for r in c.get(list(range(5000, 5040)))}
        assert kept == set(range(5000, 5010)) | set(range(5020, 5040))
        assert c.info()["indexed_points"] == 2030
        hits = c.search(
            np.full(8, 1.0, dtype=np.float32),
            k=3,
            filter={"must": [{"key": "g", "match": {"value": 2}}]},
        )
        assert len(hits) == 3 and all(h.payload["g"] == 2 for h in hits)
        assert d.count() == 500 and d.get([500]) == []
        c.verify()
        d.verify()
    aside = list((store / "damaged").rglob("*"))
    assert any(p.name == lost_segment.name for p in aside)
    assert any(p.suffix == ".wal" for p in aside)


def test_repair_cuts_a_torn_tail_and_loses_nothing_acknowledged(
    written: Path, tmp_path: Path
) -> None:
    store = copy(written, tmp_path)
    log = wal(store, "c")
    data = log.read_bytes()
    log.write_bytes(data[: record_spans(data)[-1][1] - 5])
    out = run_cli("repair", str(store))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "cut a torn tail" in out.stdout and "LOST" not in out.stdout
    with ferrovec.open(store) as db:
        assert db.collection("c").count() == 2030


def test_repair_refuses_a_store_in_use(written: Path, tmp_path: Path) -> None:
    store = copy(written, tmp_path)
    with ferrovec.open(store):
        with pytest.raises(ferrovec.StoreLockedError):
            ferrovec.repair(store)


def test_reindex_rebuilds_graphs_and_payload_indexes(written: Path, tmp_path: Path) -> None:
    store = copy(written, tmp_path)
    with ferrovec.open(store) as db:
        c = db.collection("c")
        c.flush()
        before_graphs = {p.name for p in segments(store, "c", "hnsw")}
        q = np.full(8, 1.0, dtype=np.float32)
        exact = [h.id for h in c.search(q, k=10, exact=True)]
        del c  # the store closes with its last handle (an open one would pin the old files)
    out = run_cli("reindex", str(store), "--collection", "c")
    assert out.returncode == 0, out.stderr
    assert "rebuilt and verified" in out.stdout and "1 payload index(es)" in out.stdout
    with ferrovec.open(store) as db:
        c = db.collection("c")
        after = {p.name for p in segments(store, "c", "hnsw")}
        assert after and after.isdisjoint(before_graphs)  # new segments, new graphs
        assert [h.id for h in c.search(q, k=10)] == exact
        stats = c.stats()
        assert stats["payload_indexes"][0]["points"] == c.count()
        assert c.count(filter={"must": [{"key": "g", "match": {"value": 1}}]}) == 400
    bad = run_cli("reindex", str(store), "--collection", "nope")
    assert bad.returncode == 1 and "does not exist" in bad.stderr
