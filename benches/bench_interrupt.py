"""How fast Ctrl-C stops each long call: a child process starts the call on a store of
300,000 x 256 points (300 MB of vectors), receives SIGINT after 0.2 s and reports the seconds
from the signal to its KeyboardInterrupt. `tests/core/test_interrupt.py` checks what the store
holds afterwards; this measures the latency.

    python benches/bench_interrupt.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import ferrovec

N, DIM = 300_000, 256
CALLS = [
    "optimize",
    "upsert",
    "search_batch",
    "snapshot",
    "backup",
    "restore_snapshot",
    "restore_backup",
]

CHILD = """
import json, signal, sys, time, numpy as np, ferrovec
root, what = sys.argv[1], sys.argv[2]
db = ferrovec.open(root + "/store")
col = db.collection("big")
slow = lambda done, total: time.sleep(0.005)
rows = np.ones((1_000_000, 256), dtype=np.float32) if what == "upsert" else None
queries = np.random.default_rng(1).standard_normal((20_000, 256), dtype=np.float32)
archive = db.list_snapshots()[0].path if what == "restore_snapshot" else None
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
at = None
def on_sigint(signum, frame):
    global at
    at = time.perf_counter()
    raise KeyboardInterrupt
signal.signal(signal.SIGINT, on_sigint)
print("ready", flush=True)
try:
    work()
    print(json.dumps({"outcome": "finished"}))
except KeyboardInterrupt:
    print(json.dumps({"outcome": "interrupted", "latency_s": time.perf_counter() - at}))
db.close()
"""


def build(root: Path) -> None:
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


def run(root: Path, what: str) -> dict:
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), what],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert p.stdout is not None
    if p.stdout.readline().strip() != "ready":
        raise RuntimeError(p.communicate()[1])
    time.sleep(0.2)
    os.kill(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=300)
    if p.returncode != 0:
        raise RuntimeError(err)
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root)
        print("| call | interrupted | latency p50 (ms) | latency max (ms) |")
        print("|---|---|---|---|")
        for what in CALLS:
            reports = [run(root, what) for _ in range(args.rounds)]
            lat = [r["latency_s"] * 1e3 for r in reports if r["outcome"] == "interrupted"]
            p50 = f"{statistics.median(lat):.0f}" if lat else "-"
            worst = f"{max(lat):.0f}" if lat else "-"
            print(f"| {what} | {len(lat)}/{len(reports)} | {p50} | {worst} |", flush=True)


if __name__ == "__main__":
    main()
