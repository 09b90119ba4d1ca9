"""The caller's array is read exactly once per write. A synchronous upsert releases the GIL
while it works; a second Python thread that keeps rewriting the same numpy array meanwhile must
not make the log and the in-memory rows disagree. So a child process upserts from an array
another thread keeps changing, records what its own reads return, and is killed with SIGKILL
(no checkpoint at close: the reopened store is the log replayed). Every vector after the reopen
must equal what the child read before it died: what was checked, logged and served are the
same values, whatever the other thread did meanwhile."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import numpy as np

import ferrovec
from tests.conftest import child

ROWS = 64
DIM = 32
UPSERTS = 400

CHILD = """
import json, sys, threading, numpy as np, ferrovec
path, rows, dim, upserts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
db = ferrovec.open(path, durability="fsync")
# dot: no normalisation, so the old code read the caller's buffer in place, several times.
col = db.create_collection("c", dim=dim, distance="dot")
arr = np.zeros((rows, dim), dtype=np.float32)
stop = False

def rewrite():
    k = 0
    while not stop:
        k += 1
        for r in range(rows):
            arr[r, :] = float(k * rows + r)

t = threading.Thread(target=rewrite)
t.start()
ids = list(range(rows))
for i in range(upserts):
    col.upsert(ids, arr)
stop = True
t.join()
seen = {str(rec.id): rec.vector.tolist() for rec in col.get(ids, with_vectors=True)}
hits = {str(h.id): h.score for h in col.search(np.ones(dim, dtype=np.float32), k=rows, exact=True)}
print(json.dumps({"seen": seen, "hits": hits}), flush=True)
sys.stdin.readline()  # killed here, before any checkpoint
"""


def test_a_rewritten_array_never_makes_the_log_and_memory_disagree(tmp_path) -> None:
    path = tmp_path / "store"
    p = child(CHILD, str(path), str(ROWS), str(DIM), str(UPSERTS), stdin=subprocess.PIPE)
    assert p.stdout is not None
    line = p.stdout.readline()
    assert line, p.stderr.read() if p.stderr else "child died"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    for pipe in (p.stdin, p.stdout, p.stderr):
        if pipe is not None:
            pipe.close()
    before = json.loads(line)

    with ferrovec.open(path) as db:
        col = db.collection("c")
        assert col.count() == ROWS
        after = {
            str(r.id): r.vector.tolist() for r in col.get(list(range(ROWS)), with_vectors=True)
        }
        q = np.ones(DIM, dtype=np.float32)
        hits = {str(h.id): h.score for h in col.search(q, k=ROWS, exact=True)}
    assert after == before["seen"], "the log replayed other vectors than the process served"
    assert hits == before["hits"]
