"""Foundation benchmark: ingest under each durability mode, exact search against numpy's
matrix-product search in the same run, open time in a fresh process, and peak RSS against the
raw vector bytes. Ratios, not absolute times, are what to compare: the machines are shared.

    python benches/bench_exact.py                 # 100,000 x 384 (the documented figures)
    python benches/bench_exact.py --n 20000       # quicker

Writes benches/results/exact-<n>.md and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from measure import reset_peak, rss_mib

DIM = 384
BATCH = 1000
K = 10


def data(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, DIM), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def queries(m: int) -> np.ndarray:
    return data(m, seed=2)


# ---- child roles: each runs in a fresh process and prints one JSON line ---------------------


def role_ingest(path: str, mode: str, n: int) -> dict:
    import ferrovec

    base = data(n)
    reset_peak()
    baseline = rss_mib()
    db = ferrovec.open(path, durability=mode, fsync_interval_ms=100)
    col = db.create_collection("bench", dim=DIM, distance="cosine")
    t = time.perf_counter()
    for s in range(0, n, BATCH):
        ids = list(range(s, min(s + BATCH, n)))
        col.upsert(ids, base[s : s + BATCH], [{"doc": i, "group": f"g{i % 20}"} for i in ids])
    upsert_s = time.perf_counter() - t
    t = time.perf_counter()
    del col
    db.close()
    close_s = time.perf_counter() - t
    return {
        "upsert_s": upsert_s,
        "close_s": close_s,
        "peak_rss_mib": rss_mib("VmHWM"),
        "baseline_mib": baseline,
    }


def role_open(path: str) -> dict:
    t0 = time.perf_counter()
    import ferrovec

    t_import = time.perf_counter() - t0
    q = queries(1)[0]
    t = time.perf_counter()
    db = ferrovec.open(path)
    col = db.collection("bench")
    t_open = time.perf_counter() - t
    t = time.perf_counter()
    col.search(q, k=K, exact=True)
    t_first = time.perf_counter() - t
    return {"import_s": t_import, "open_s": t_open, "first_query_s": t_first}


def role_serve(path: str) -> dict:
    """Open and answer queries as a server would; report peak RSS."""
    import ferrovec

    qs = queries(1000)
    reset_peak()
    before = rss_mib()
    db = ferrovec.open(path)
    col = db.collection("bench")
    for q in qs[:100]:
        col.search(q, k=K, exact=True)
    col.search_batch(qs, k=K, exact=True)
    return {"peak_rss_mib": rss_mib("VmHWM"), "before_open_mib": before, "points": col.count()}


def run_child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--role", *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- in-process search comparison -----------------------------------------------------------


def numpy_top_k(base: np.ndarray, q: np.ndarray) -> np.ndarray:
    s = base @ q
    idx = np.argpartition(-s, K)[:K]
    return idx[np.argsort(-s[idx])]


def numpy_top_k_batch(base: np.ndarray, qs: np.ndarray) -> np.ndarray:
    s = qs @ base.T
    idx = np.argpartition(-s, K, axis=1)[:, :K]
    rows = np.arange(len(qs))[:, None]
    order = np.argsort(-s[rows, idx], axis=1)
    return idx[rows, order]


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def search_timings(store: str, n: int) -> tuple[float, float, float, float]:
    """Median seconds: ferrovec one query, numpy one query, ferrovec batch, numpy batch."""
    import ferrovec

    base = data(n)
    qs = queries(1000)
    with ferrovec.open(store) as db:
        col = db.collection("bench")
        # Same answers first, then timings.
        for q in qs[:20]:
            assert [h.id for h in col.search(q, k=K, exact=True)] == numpy_top_k(base, q).tolist()
        it = iter(list(qs[:200]) * 10)
        fv_one = median_time(lambda: col.search(next(it), k=K, with_payload=False, exact=True), 200)
        it2 = iter(list(qs[:200]) * 10)
        np_one = median_time(lambda: numpy_top_k(base, next(it2)), 200)
        fv_batch = median_time(lambda: col.search_batch(qs, k=K, with_payload=False, exact=True), 5)
        np_batch = median_time(lambda: numpy_top_k_batch(base, qs), 5)
    return fv_one, np_one, fv_batch, np_batch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--role", nargs="+")
    args = ap.parse_args()
    if args.role:
        role, *rest = args.role
        fn = {"ingest": role_ingest, "open": role_open, "serve": role_serve}[role]
        conv = [int(x) if x.isdigit() else x for x in rest]
        print(json.dumps(fn(*conv)))
        return

    import ferrovec

    n = args.n
    raw_mib = n * DIM * 4 / 2**20
    lines = [
        f"# Exact search foundation benchmark: {n:,} x {DIM} float32, cosine",
        "",
        f"ferrovec {ferrovec.__version__}, numpy {np.__version__}, {os.cpu_count()} cores. "
        f"Raw vector bytes: {raw_mib:.1f} MiB.",
        "",
        "## Ingest (batches of 1,000 with small payloads; fresh process per mode)",
        "",
        "| durability | upsert s | points/s | close (checkpoint) s | peak RSS MiB "
        "(before opening, incl. the generated data) |",
        "|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="ferrovec-bench-") as tmp:
        store = ""
        for mode in ("fsync", "interval", "off"):
            path = str(Path(tmp) / mode)
            r = run_child("ingest", path, mode, str(n))
            lines.append(
                f"| {mode} | {r['upsert_s']:.2f} | {n / r['upsert_s']:,.0f} | {r['close_s']:.2f} "
                f"| {r['peak_rss_mib']:.0f} ({r['baseline_mib']:.0f}) |"
            )
            store = path if mode == "fsync" else store

        opens = [run_child("open", store) for _ in range(5)]
        serve = run_child("serve", store)

        fv_one, np_one, fv_batch, np_batch = search_timings(store, n)

    lines += [
        "",
        "## Exact search (same process, same data; numpy = matrix product + argpartition)",
        "",
        "| query | ferrovec | numpy | numpy time / ferrovec time |",
        "|---|---|---|---|",
        f"| one query (median of 200) | {fv_one * 1e3:.2f} ms | {np_one * 1e3:.2f} ms "
        f"| {np_one / fv_one:.2f} |",
        f"| batch of 1,000 (median of 5) | {fv_batch:.3f} s | {np_batch:.3f} s "
        f"| {np_batch / fv_batch:.2f} |",
        "",
        "## Open in a fresh process (warm page cache; median of 5)",
        "",
        "| import s | open + load collection s | first query s |",
        "|---|---|---|",
        "| {:.3f} | {:.4f} | {:.4f} |".format(
            statistics.median(o["import_s"] for o in opens),
            statistics.median(o["open_s"] for o in opens),
            statistics.median(o["first_query_s"] for o in opens),
        ),
        "",
        "## Memory while serving (fresh process: open, 100 queries, a batch of 1,000)",
        "",
        f"Peak RSS {serve['peak_rss_mib']:.0f} MiB, of which {serve['before_open_mib']:.0f} MiB "
        f"before opening (interpreter, numpy, queries); raw vectors {raw_mib:.0f} MiB; "
        f"ratio (peak - before) / raw = "
        f"{(serve['peak_rss_mib'] - serve['before_open_mib']) / raw_mib:.2f}.",
        "",
    ]
    text = "\n".join(lines)
    out = Path(__file__).parent / "results" / f"exact-{n}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
