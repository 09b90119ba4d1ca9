"""SIGKILL of writer processes sharing a store, at random moments, cycle after cycle, while a
reader process stays alive throughout. One writer checkpoints, optimizes and builds graphs as it
goes (holding the optimizer lease when it dies, some of the time). After every cycle:

- every batch any writer acknowledged is in the store, whole, as the live reader sees it at its
  next call (and no batch is half there);
- the reader never failed, and no segment file it had mapped was ever removed under it (it
  checks its own /proc/self/maps after every call);

and at the end the store opens cleanly and passes its checksums.

FERROVEC_MP_CYCLES sets the number of cycles (default 20; the long run uses 200)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time

import pytest

import ferrovec

# Real processes killed at random moments, many times: marked for `make test-fast`.
pytestmark = pytest.mark.slow

CYCLES = int(os.environ.get("FERROVEC_MP_CYCLES", "20"))

WRITER = """
import sys, numpy as np, ferrovec
path, cycle, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
busy = w == 0
db = ferrovec.open(path)
col = db.create_collection(
    "c", dim=16, distance="cosine", exist_ok=True,
    hnsw={"m": 8, "ef_construct": 32, "full_scan_threshold": 100},
    optimizer={"indexing_threshold": 150, "idle_ms": 1},
)
b = 0
while True:
    key = f"{cycle}-{w}-{b}"
    base = (cycle * 2 + w) * 1_000_000 + b * 10
    rng = np.random.default_rng(base)
    col.upsert(list(range(base, base + 10)), rng.standard_normal((10, 16), dtype=np.float32),
               [{"batch": key, "i": i} for i in range(10)])
    print(key, flush=True)
    if busy and b % 6 == 5:
        col.flush()
    if busy and b % 15 == 14:
        col.optimize()
    b += 1
"""

READER = """
import json, os, sys, threading, time, numpy as np, ferrovec
path = sys.argv[1]
db = ferrovec.open(path)
seg_dir = os.path.realpath(os.path.join(path, "collections", "c", "segments"))
stats = {"calls": 0, "errors": [], "removed_while_mapped": []}
lock = threading.Lock()
stop = False

def mapped_but_removed():
    with open("/proc/self/maps") as f:
        return [l.split()[-2] for l in f if seg_dir in l and l.rstrip().endswith("(deleted)")]

def loop():
    col = None
    q = np.ones(16, dtype=np.float32)
    while not stop:
        with lock:
            try:
                col = col or db.collection("c")
                col.search(q, k=5)
                col.count()
                stats["calls"] += 1
                stats["removed_while_mapped"] += mapped_but_removed()
            except ferrovec.CollectionNotFoundError:
                time.sleep(0.01)
            except Exception as e:
                stats["errors"].append(repr(e))
        time.sleep(0.001)

threading.Thread(target=loop, daemon=True).start()
for line in sys.stdin:
    with lock:
        if line.strip() == "batches":
            col = db.collection("c")
            per, offset = {}, None
            while True:
                recs, offset = col.scroll(limit=5000, offset=offset)
                for r in recs:
                    per[r.payload["batch"]] = per.get(r.payload["batch"], 0) + 1
                if offset is None:
                    break
            print(json.dumps({"batches": per, "count": col.count()}), flush=True)
        else:
            print(json.dumps(stats), flush=True)
"""


def start(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def collect(p: subprocess.Popen, into: list[str], first: threading.Event) -> None:
    """Gather what a writer prints (one acknowledged batch a line) until it dies."""
    assert p.stdout is not None
    for line in p.stdout:
        into.append(line.strip())
        first.set()


def ask(reader: subprocess.Popen, what: str) -> dict:
    assert reader.stdin is not None and reader.stdout is not None
    reader.stdin.write(what + "\n")
    reader.stdin.flush()
    line = reader.stdout.readline()
    assert line, reader.stderr.read() if reader.stderr else "reader died"
    return json.loads(line)


def test_sigkill_of_writers_loses_no_acknowledged_write_and_removes_no_file_in_use(store_path):
    rnd = random.Random(2026)
    acked: set[str] = set()
    reader = start(READER, str(store_path))
    try:
        for cycle in range(CYCLES):
            writers = [start(WRITER, str(store_path), str(cycle), str(w)) for w in range(2)]
            lines: list[list[str]] = [[], []]
            first = [threading.Event(), threading.Event()]

            readers = [
                threading.Thread(target=collect, args=(writers[k], lines[k], first[k]))
                for k in range(2)
            ]
            for t in readers:
                t.start()
            for k in range(2):
                if not first[k].wait(timeout=60):
                    writers[k].kill()
                    raise AssertionError(writers[k].communicate()[1])
            time.sleep(rnd.uniform(0.05, 0.8))
            for p in writers:
                p.kill()
            for p in writers:
                p.wait()
            # The collectors own stdout until they reach its end; only then are pipes closed
            # (communicate() here would close stdout under a collector still reading it).
            for t in readers:
                t.join()
            for p in writers:
                p.communicate()
            for k in range(2):
                acked.update(lines[k])
            seen = ask(reader, "batches")
            per = seen["batches"]
            missing = acked - per.keys()
            assert not missing, f"cycle {cycle}: acknowledged batches lost: {sorted(missing)[:5]}"
            partial = {b: n for b, n in per.items() if n != 10}
            assert not partial, f"cycle {cycle}: batches half applied: {partial}"
        stats = ask(reader, "stats")
        assert stats["calls"] > 0
        assert stats["errors"] == [], stats["errors"][:3]
        assert stats["removed_while_mapped"] == [], stats["removed_while_mapped"][:3]
    finally:
        reader.kill()
        reader.communicate()
    with ferrovec.open(store_path) as db:
        col = db.collection("c")
        col.verify()
        assert col.count() >= 10 * len(acked)
        recs, _ = col.scroll(limit=10_000_000)
        assert {r.payload["batch"] for r in recs} >= acked
