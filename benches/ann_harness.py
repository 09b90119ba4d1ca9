"""How every system of the ANN benchmarks is timed, shared by `bench_ann.py` (ferrovec and the
libraries) and `bench_ann_stores.py` (the stores): the settings, and the query sweep."""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
from measure import timed

DIM, K, M, EF_CONSTRUCT, BATCH = 384, 10, 16, 100, 1000
_DEFAULT_EFS = "16,24,32,48,64,96,128,192,256"
EFS = [int(x) for x in os.environ.get("FERROVEC_BENCH_EFS", _DEFAULT_EFS).split(",")]
TIME_LIMIT_S = 60.0  # per timed loop; slow systems are cut short and marked (n=...)


def groups(ids: np.ndarray) -> list[dict]:
    return [{"doc": int(i), "group": f"g{int(i) % 20}"} for i in ids]


def sweep_single(search, queries: np.ndarray, gt: np.ndarray) -> dict:
    """Query by query on one thread: QPS, p50 latency, recall@10."""
    for q in queries[:50]:
        search(q)
    lat, hits, done = [], 0, 0
    start = time.perf_counter()
    for q, t in zip(queries, gt):
        t0 = time.perf_counter()
        got = search(q)
        lat.append(time.perf_counter() - t0)
        hits += len(set(int(x) for x in got) & set(t.tolist()))
        done += 1
        if time.perf_counter() - start > TIME_LIMIT_S:
            break
    total = time.perf_counter() - start
    return {
        "qps": done / total,
        "p50_ms": statistics.median(lat) * 1e3,
        "recall": hits / (K * done),
        "n": done,
    }


def query_result(t_import, t_open, one, batch, set_ef, queries, gt, efs=None) -> dict:
    """Time the first query, then sweep ef (`set_ef(ef)` before each step): query by query on
    one thread with `one(q)`, and a two-thread batch with `batch(qs)`; both return ids."""
    _, t_first = timed(lambda: one(queries[0]))
    rows = []
    for ef in EFS if efs is None else efs:
        set_ef(ef)
        r = sweep_single(one, queries, gt)
        b = timed_batch(batch, queries, gt)
        rows.append({"ef": "default" if ef is None else ef, **r, "batch2_qps": b["qps"]})
    return {"import_s": t_import, "open_s": t_open, "first_query_s": t_first, "sweep": rows}


def timed_batch(batch, queries: np.ndarray, gt: np.ndarray) -> dict:
    batch(queries[:50])
    t0 = time.perf_counter()
    got = batch(queries)
    dt = time.perf_counter() - t0
    hits = sum(len(set(int(x) for x in g) & set(t.tolist())) for g, t in zip(got, gt))
    return {"qps": len(queries) / dt, "recall": hits / (K * len(queries))}
