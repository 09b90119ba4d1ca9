"""What the slow-operation profiler costs, side by side in one run: single-query QPS (one
thread, an indexed collection of N x 384 clustered unit vectors) and upsert throughput
(batches of 1,000, durability "off" so that fsync noise does not hide the difference), with
the profiler off, on with a threshold no call reaches (every call traced, nothing recorded),
and on recording every call (slow_op_ms=0, the ring and the `ferrovec.slow` logger).
Rounds interleave the settings so the machine's drift falls on all alike; each figure is the
median over rounds, reported as a ratio to "off".

The metrics themselves are always on; their cost is measured against the build before them
with `bench_versions.py` (see benches/README.md).

    python benches/bench_observe.py [--n 100000] [--rounds 5] [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import ferrovec

DIM = 384
SETTINGS = {"off": None, "traced": 10**9, "recording": 0}


def clustered(rng: np.random.Generator, n: int) -> np.ndarray:
    centres = rng.standard_normal((1000, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    v = centres[rng.integers(1000, size=n)] + 0.5 / np.sqrt(DIM) * rng.standard_normal(
        (n, DIM), dtype=np.float32
    )
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def qps(col: ferrovec.Collection, queries: np.ndarray, seconds: float) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        col.search(queries[done % len(queries)], k=10, with_payload=False)
        done += 1
    return done / (time.perf_counter() - start)


def upserts(col: ferrovec.Collection, rows: np.ndarray, seconds: float) -> float:
    done, start, base = 0, time.perf_counter(), 10_000_000
    while time.perf_counter() - start < seconds:
        i = done % (len(rows) - 1000)
        col.upsert(list(range(base + i, base + i + 1000)), rows[i : i + 1000])
        done += 1000
    return done / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "observe.md"))
    args = ap.parse_args()
    ferrovec.set_num_threads(1)
    rng = np.random.default_rng(0)
    data = clustered(rng, args.n)
    queries = clustered(rng, 1000)
    with tempfile.TemporaryDirectory() as tmp:
        db = ferrovec.open(Path(tmp) / "s", durability="off")
        col = db.create_collection("b", dim=DIM)
        for s in range(0, args.n, 10_000):
            col.upsert(list(range(s, min(s + 10_000, args.n))), data[s : s + 10_000])
        col.optimize()
        writes = db.create_collection("w", dim=DIM, optimizer={"indexing_threshold": 10**9})
        found: dict[str, dict[str, list[float]]] = {k: {"qps": [], "upserts": []} for k in SETTINGS}
        for _ in range(args.rounds):
            for name, ms in SETTINGS.items():
                ferrovec.set_slow_op_ms(ms)
                found[name]["qps"].append(qps(col, queries, args.seconds))
                found[name]["upserts"].append(upserts(writes, data, args.seconds))
        ferrovec.set_slow_op_ms(None)
        del col, writes  # the store closes with its last handle, before its directory goes
        db.close()
    med = {k: {m: statistics.median(v) for m, v in d.items()} for k, d in found.items()}
    lines = [
        f"# Profiler cost ({args.n:,} x {DIM}, one thread, {args.rounds} interleaved rounds)",
        "",
        "| setting | single-query QPS | / off | upserted points/s | / off |",
        "|---|---|---|---|---|",
    ]
    for k, m in med.items():
        lines.append(
            f"| {k} | {m['qps']:,.0f} | {m['qps'] / med['off']['qps']:.3f} |"
            f" {m['upserts']:,.0f} | {m['upserts'] / med['off']['upserts']:.3f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)
    Path(args.out).with_suffix(".json").write_text(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
