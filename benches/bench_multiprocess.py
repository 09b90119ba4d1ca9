"""Several processes on one store (100k x 384, cosine, the clustered set of bench_ann.py).

In one run, interleaved (1, 2, 1, 2, ... processes; medians of the repeats):
- search: every process runs single queries on one thread for a fixed time; total QPS with one
  process against two;
- upsert: every process upserts its own batches of 100 new points (durability fsync, the
  default) into a fresh collection for a fixed time; total points/s with one writer against two;
- visibility: one process upserts a point and passes the time of the acknowledgement through a
  pipe; another calls `get` for it at once: the time from acknowledgement to that call
  returning the point (p50, p99), and the same `get` when nothing changed (the cost of the
  check every call makes);
- the peer: qdrant-client's local mode opened from a second process on the same path.

Results go to benches/results/multiprocess-<n>.md.

    .venv/bin/python benches/bench_multiprocess.py --n 100000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ann import HERE, cached_data

DIM = 384
BATCH = 100


def build(path: str, n: int) -> float:
    import ferrovec

    base = np.load(cached_data(n)[0])
    t0 = time.perf_counter()
    with ferrovec.open(path) as db:
        col = db.create_collection("c", dim=DIM, distance="cosine")
        for s in range(0, n, 10_000):
            col.upsert(list(range(s, min(s + 10_000, n))), base[s : s + 10_000])
        col.optimize()
    return time.perf_counter() - t0


def searcher(path: str, n: int, seconds: float, start: mp.Event, out: mp.Queue) -> None:
    import ferrovec

    queries = np.load(cached_data(n)[1])
    db = ferrovec.open(path)
    col = db.collection("c")
    for q in queries[:50]:
        col.search(q, k=10)  # warm-up: graph and codes in memory
    start.wait()
    done, i = 0, 0
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        col.search(queries[i % len(queries)], k=10)
        done += 1
        i += 1
    out.put(done / seconds)
    db.close()


def writer(path: str, w: int, seconds: float, start: mp.Event, out: mp.Queue) -> None:
    import ferrovec

    rng = np.random.default_rng(w)
    db = ferrovec.open(path)
    col = db.collection("w")
    start.wait()
    done, b = 0, 0
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        first = 10_000_000 * (w + 1) + b * BATCH
        col.upsert(
            list(range(first, first + BATCH)),
            rng.standard_normal((BATCH, DIM), dtype=np.float32),
        )
        done += BATCH
        b += 1
    out.put(done / seconds)
    db.close()


def run_group(target, path: str, k: int, seconds: float, extra) -> float:
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=target, args=(path, extra(i), seconds, start, out)) for i in range(k)
    ]
    for p in procs:
        p.start()
    time.sleep(3.0)  # every process open and warm
    start.set()
    total = sum(out.get(timeout=seconds + 300) for _ in procs)
    for p in procs:
        p.join()
    return total


def visibility_writer(path: str, conn, count: int) -> None:
    import ferrovec

    db = ferrovec.open(path)
    col = db.collection("c")
    v = np.ones((1, DIM), dtype=np.float32)
    for i in range(count):
        pid = 50_000_000 + i
        col.upsert([pid], v)
        conn.send((pid, time.monotonic_ns()))
        conn.recv()  # the reader has seen it
        time.sleep(0.002)
    conn.send(None)
    db.close()


def visibility(path: str, count: int) -> dict:
    import ferrovec

    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    db = ferrovec.open(path)
    col = db.collection("c")
    proc = ctx.Process(target=visibility_writer, args=(path, there, count))
    proc.start()
    seen, idle, retries = [], [], 0
    while (msg := here.recv()) is not None:
        pid, acked = msg
        while not col.get([pid]):
            retries += 1  # never expected: the next call sees every acknowledged write
        seen.append((time.monotonic_ns() - acked) / 1e3)
        t0 = time.perf_counter_ns()
        col.get([pid])  # nothing changed since: the check alone
        idle.append((time.perf_counter_ns() - t0) / 1e3)
        here.send(True)
    proc.join()
    db.close()
    q = statistics.quantiles
    return {
        "ack_to_seen_p50_us": statistics.median(seen),
        "ack_to_seen_p99_us": q(seen, n=100)[98],
        "get_unchanged_p50_us": statistics.median(idle),
        "retries": retries,
        "samples": len(seen),
    }


def qdrant_second_process(path: str, out: mp.Queue) -> None:
    from qdrant_client import QdrantClient

    try:
        QdrantClient(path=path)
        out.put("opened")
    except Exception as e:  # what it raises is the point
        out.put(f"{type(e).__name__}: {str(e).replace(path, '<path>').splitlines()[0][:200]}")


def qdrant_local(tmp: Path) -> str:
    try:
        from qdrant_client import QdrantClient, models
    except ImportError:
        return "qdrant-client not installed"
    path = str(tmp / "qdrant")
    first = QdrantClient(path=path)
    first.create_collection("c", vectors_config=models.VectorParams(size=4, distance="Cosine"))
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    p = ctx.Process(target=qdrant_second_process, args=(path, out))
    p.start()
    got = out.get(timeout=120)
    p.join()
    first.close()
    return got


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--visibility", type=int, default=500)
    args = ap.parse_args()
    import ferrovec

    with tempfile.TemporaryDirectory(dir=HERE) as tmp:
        path = str(Path(tmp) / "store")
        print(f"building {args.n:,} x {DIM} ...", flush=True)
        built = build(path, args.n)
        print(f"  {built:.1f} s", flush=True)
        search = {1: [], 2: []}
        upsert = {1: [], 2: []}
        for r in range(args.repeat):
            for k in (1, 2):
                qps = run_group(searcher, path, k, args.seconds, lambda i: args.n)
                search[k].append(qps)
                print(f"search, {k} process(es), run {r + 1}: {qps:,.0f} QPS", flush=True)
            for k in (1, 2):
                # A fresh collection per run (the search collection stays as built); no graph
                # build starts during the run, so the figure is ingestion alone.
                with ferrovec.open(path) as db:
                    if "w" in db.list_collections():
                        db.drop_collection("w")
                    db.create_collection(
                        "w", dim=DIM, distance="cosine", optimizer={"indexing_threshold": 10**8}
                    )
                pts = run_group(writer, path, k, args.seconds, lambda i: i)
                upsert[k].append(pts)
                print(f"upsert, {k} writer(s), run {r + 1}: {pts:,.0f} points/s", flush=True)
        vis = visibility(path, args.visibility)
        print(json.dumps(vis), flush=True)
        peer = qdrant_local(Path(tmp))
        print(f"qdrant-client local mode, second process: {peer}", flush=True)
    s1, s2 = statistics.median(search[1]), statistics.median(search[2])
    u1, u2 = statistics.median(upsert[1]), statistics.median(upsert[2])
    lines = [
        f"# Several processes on one store, {args.n:,} x {DIM}",
        "",
        f"ferrovec {ferrovec.__version__}; {mp.cpu_count()} cores; medians of {args.repeat} "
        f"interleaved runs of {args.seconds:.0f} s. Command: "
        f"`.venv/bin/python benches/bench_multiprocess.py --n {args.n}`",
        "",
        "| | 1 process | 2 processes | 2 / 1 |",
        "|---|---:|---:|---:|",
        f"| search, single queries, QPS (total) | {s1:,.0f} | {s2:,.0f} | {s2 / s1:.2f}x |",
        f"| upsert, batches of {BATCH}, fsync, points/s (total) | {u1:,.0f} | {u2:,.0f} "
        f"| {u2 / u1:.2f}x |",
        "",
        f"Visibility ({vis['samples']} writes): acknowledged in one process to returned by `get` "
        f"in another, p50 {vis['ack_to_seen_p50_us']:.0f} µs, p99 {vis['ack_to_seen_p99_us']:.0f}"
        f" µs (including the pipe that carries the news); found at the first call every time: "
        f"{vis['retries'] == 0}. The same `get` when nothing changed: p50 "
        f"{vis['get_unchanged_p50_us']:.1f} µs.",
        "",
        f"qdrant-client local mode, the same path opened by a second process: {peer}",
        "",
        f"Store built (ingest and graph) in {built:.0f} s.",
    ]
    out = HERE / "results" / f"multiprocess-{args.n}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
