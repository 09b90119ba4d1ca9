"""Several processes on one store, as uvicorn workers, a notebook beside a server or an ingestion
job beside a web app have it: every process writes, every process sees what the others
acknowledged at its very next call, and nothing is lost or duplicated."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import ferrovec
from tests.conftest import REPO, child

# A process that executes one command per line of stdin and answers with one JSON line.
WORKER = """
import json, sys, numpy as np, ferrovec
path, mode = sys.argv[1], sys.argv[2]
db = ferrovec.open(path, read_only=(mode == "ro"))
col = None
def vec(ids):
    return np.array([[float(i % 97) + 1.0] * 8 for i in ids], dtype=np.float32)
for line in sys.stdin:
    cmd = json.loads(line)
    op = cmd.pop("op")
    try:
        if op == "create":
            col = db.create_collection("c", dim=8, distance="euclid", exist_ok=True)
            out = None
        else:
            col = col if col is not None else db.collection("c")
        if op == "upsert":
            col.upsert(cmd["ids"], vec(cmd["ids"]), [{"by": mode}] * len(cmd["ids"]))
            out = None
        elif op == "delete":
            out = col.delete(cmd["ids"])
        elif op == "get":
            out = sorted(r.id for r in col.get(cmd["ids"]))
        elif op == "count":
            out = col.count()
        elif op == "search":
            out = [p.id for p in col.search(vec([cmd["id"]])[0], k=3, exact=True)]
        elif op in ("flush", "optimize"):
            getattr(col, op)()
            out = None
        elif op == "info":
            out = len(col.info()["segments"])
        reply = {"ok": True, "out": out}
    except Exception as e:
        reply = {"ok": False, "error": type(e).__name__, "msg": str(e)}
    print(json.dumps(reply), flush=True)
"""


class Worker:
    def __init__(self, path, mode: str = "rw") -> None:
        self.p = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )

    def call(self, op: str, **kw):
        assert self.p.stdin is not None and self.p.stdout is not None
        self.p.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        assert line, self.p.stderr.read() if self.p.stderr else "worker died"
        reply = json.loads(line)
        return reply

    def ok(self, op: str, **kw):
        reply = self.call(op, **kw)
        assert reply["ok"], reply
        return reply["out"]

    def close(self) -> None:
        _, err = self.p.communicate(timeout=60)
        assert self.p.returncode == 0, err


def test_a_reader_sees_every_acknowledged_write_of_a_writer_at_its_next_call(store_path):
    writer, reader = Worker(store_path), Worker(store_path)
    ro = None
    try:
        writer.ok("create")
        ro = Worker(store_path, "ro")
        live: set[int] = set()
        for k in range(60):
            writer.ok("upsert", ids=[k])
            live.add(k)
            # The very next call of another process sees it: no polling, no sleep.
            assert reader.ok("get", ids=[k]) == [k]
            assert ro.ok("search", id=k)[0] % 97 == k % 97
            if k % 3 == 2:
                assert writer.ok("delete", ids=[k - 1]) == 1
                live.discard(k - 1)
                assert reader.ok("get", ids=[k - 1]) == []
                assert ro.ok("count") == len(live)
            # Checkpoints and merges by one process: the others switch manifests at their
            # next call, and the reader's own writes interleave.
            if k % 10 == 9:
                writer.ok("flush")
                reader.ok("upsert", ids=[1000 + k])
                live.add(1000 + k)
                assert writer.ok("get", ids=[1000 + k]) == [1000 + k]
            if k % 20 == 19:
                reader.ok("optimize")
                assert writer.ok("info") == ro.ok("info") == 1
            assert reader.ok("count") == writer.ok("count") == len(live)
        refused = ro.call("upsert", ids=[5000])
        assert refused["error"] == "ReadOnlyError", refused
        assert reader.ok("get", ids=[5000]) == []
    finally:
        for w in (writer, reader, ro):
            if w is not None:
                w.close()
    with ferrovec.open(store_path) as db:
        assert db.collection("c").count() == len(live)


# Each writer upserts its own ids in batches; one also checkpoints and optimizes as it goes. When
# all are done, each counts and lists every point of every writer.
DISJOINT = """
import json, sys, numpy as np, ferrovec
path, w, n, busy = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
db = ferrovec.open(path)
col = db.create_collection("c", dim=16, distance="cosine", exist_ok=True,
                           hnsw={"full_scan_threshold": 200},
                           optimizer={"indexing_threshold": 300, "idle_ms": 1})
rng = np.random.default_rng(w)
for start in range(0, n, 25):
    ids = [w * 1_000_000 + i for i in range(start, min(start + 25, n))]
    col.upsert(ids, rng.standard_normal((len(ids), 16), dtype=np.float32),
               [{"w": w, "i": i - w * 1_000_000} for i in ids])
    if busy and start % 200 == 0:
        col.flush()
print("done", flush=True)
sys.stdin.readline()  # wait until every writer is done
ids, offset = [], None
while True:
    recs, offset = col.scroll(limit=1000, offset=offset)
    ids += [r.id for r in recs]
    if offset is None:
        break
found = col.get([v * 1_000_000 + i for v in range(4) for i in range(n)])
print(json.dumps({"count": col.count(), "ids": ids, "found": len(found)}), flush=True)
"""


def test_four_processes_upserting_disjoint_ids_lose_and_duplicate_nothing(store_path):
    n = 600
    ferrovec.open(store_path).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DISJOINT, str(store_path), str(w), str(n), str(int(w == 0))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    for p in procs:
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.strip() == "done", p.stderr.read() if p.stderr else ""
    outs = [p.communicate(input="go\n", timeout=120) for p in procs]
    want = sorted(w * 1_000_000 + i for w in range(4) for i in range(n))
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        got = json.loads(out)
        assert got["count"] == 4 * n
        assert got["found"] == 4 * n
        assert sorted(got["ids"]) == want, "a point is missing or duplicated"
    with ferrovec.open(store_path) as db:
        col = db.collection("c")
        assert col.count() == 4 * n
        col.verify()
        recs = col.get([3 * 1_000_000 + 7])
        assert recs[0].payload == {"w": 3, "i": 7}


WRITE_BATCHES = """
import sys, numpy as np, ferrovec
db = ferrovec.open(sys.argv[1])
col = db.create_collection("c", dim=8, distance="dot", exist_ok=True)
b = 0
while True:
    ids = list(range(b * 10, b * 10 + 10))
    col.upsert(ids, np.full((10, 8), b, dtype=np.float32), [{"batch": b}] * 10)
    print(b, flush=True)
    b += 1
"""


def batches_of(path) -> dict[int, int]:
    with ferrovec.open(path) as db:
        recs, _ = db.collection("c").scroll(limit=10_000_000)
    per: dict[int, int] = {}
    for r in recs:
        per[r.payload["batch"]] = per.get(r.payload["batch"], 0) + 1
    return per


def test_backups_snapshots_and_info_beside_a_running_writer(store_path, tmp_path):
    """The command-line tools and a snapshot from another process work while a writer runs, and
    what they capture is consistent: whole batches, a prefix of the acknowledged ones."""
    writer = child(WRITE_BATCHES, str(store_path))
    try:
        assert writer.stdout is not None
        first = int(writer.stdout.readline())
        assert first == 0
        cli = [sys.executable, "-m", "ferrovec"]
        info = subprocess.run(
            [*cli, "info", str(store_path)], capture_output=True, text=True, cwd=REPO
        )
        assert info.returncode == 0, info.stderr
        assert info.stdout.splitlines()[2].split()[0] == "c"
        dest = tmp_path / "backups"
        for _ in range(2):
            done = subprocess.run(
                [*cli, "backup", "create", str(store_path), str(dest)],
                capture_output=True,
                text=True,
                cwd=REPO,
            )
            assert done.returncode == 0, done.stderr
        with ferrovec.open(store_path) as db:
            snap = db.create_snapshot("c", dest=tmp_path / "snaps")
    finally:
        writer.kill()
        rest, _ = writer.communicate()
    # Every batch the writer acknowledged before it was killed (after the copies were taken).
    acked = int(rest.split()[-1]) if rest.split() else first
    restored = tmp_path / "restored"
    ferrovec.restore_backup(dest, restored)
    from_snapshot = tmp_path / "from-snapshot"
    ferrovec.restore_snapshot(str(snap.path), from_snapshot)
    for path in (restored, from_snapshot):
        per = batches_of(path)
        assert per, "the copy holds nothing"
        assert set(per.values()) == {10}, "a batch was captured half"
        assert sorted(per) == list(range(len(per))), "not a prefix of the writes"
        assert max(per) <= acked + 1
    assert batches_of(store_path).keys() >= set(range(acked + 1))


def test_a_forked_child_must_open_the_store_again(store_path):
    """After fork the child inherits the parent's handle, descriptors and locks: using it would
    break the locking, so it refuses; the child's own open works."""
    code = f"""
import os, json, ferrovec
db = ferrovec.open({str(store_path)!r})
col = db.create_collection("c", dim=2, distance="dot")
col.upsert([1], [[1.0, 0.0]])
pid = os.fork()
if pid == 0:
    try:
        col.count()
        status = 1
    except ferrovec.InvalidInputError:
        with ferrovec.open({str(store_path)!r}) as mine:
            mine.collection("c").upsert([2], [[0.0, 1.0]])
            status = 0 if mine.collection("c").count() == 2 else 2
    os._exit(status)
_, status = os.waitpid(pid, 0)
print(json.dumps({{"child": os.waitstatus_to_exitcode(status), "count": col.count()}}))
"""
    p = child(code)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert json.loads(out) == {"child": 0, "count": 2}


def test_a_process_that_cannot_share_gets_store_locked_error(store_path):
    """An older ferrovec takes the store's lock exclusively; against such a holder (stood in for
    by a process holding that lock) the open fails at once with StoreLockedError naming it."""
    ferrovec.open(store_path).close()
    holder = child(
        """
import fcntl, os, sys, time
f = open(sys.argv[1], "r+")
fcntl.flock(f, fcntl.LOCK_EX)
f.truncate(0); f.write(str(os.getpid())); f.flush()
print("held", flush=True)
time.sleep(60)
""",
        str(store_path / "LOCK"),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(ferrovec.StoreLockedError) as e:
            ferrovec.open(store_path)
        assert e.value.pid == holder.pid
        assert str(holder.pid) in str(e.value)
    finally:
        holder.kill()
        holder.communicate()
    with ferrovec.open(store_path):
        pass


def test_read_only_open_of_a_missing_store_creates_nothing(tmp_path):
    with pytest.raises(ferrovec.InvalidInputError, match="no ferrovec store"):
        ferrovec.open(tmp_path / "missing", read_only=True)
    assert not (tmp_path / "missing").exists()
