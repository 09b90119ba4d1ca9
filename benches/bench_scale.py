"""Scale benchmark: ferrovec with each code kind against hnswlib (and faiss HNSW where it
fits in memory) at 1M to 10M points, side by side in one run. A documented long benchmark,
not a test:

    python benches/bench_scale.py --n 1000000                      # 1M x 384, ~40 min
    python benches/bench_scale.py --n 1000000 --dim 768 --kinds int8,binary --systems hnswlib
    python benches/bench_scale.py --n 10000000 --systems hnswlib   # needs 16+ GB for hnswlib
    python benches/bench_scale.py --n 5000000 --kinds int8 --systems hnswlib \
        --efs 16,32,64,96,128,192,256,384,512,768,1024              # a longer sweep at 5M

Data (benches/workload.py's mixture: unit vectors around 1,000 centres) is drawn once into
`benches/.cache/scale-<n>-<dim>.f32` and read back in batches, so no process holds it whole:
a build's peak RSS is its own. Every build and every query round runs in a fresh process;
peak RSS is that process's VmHWM from /proc (not ru_maxrss, which survives exec). Build:
ingest in batches of 1,000 (ferrovec: with an integer payload "g" = id % 100 and its index)
plus whatever makes the data durable and indexed, M = 16, ef_construct = 100, two threads.
Query: open + first query in a fresh process on a cold page cache (the index's files dropped
from it first, with posix_fadvise(DONTNEED)); then, the files read once, a fresh process's
open + first query on the warm cache, an ef sweep on one thread, and filtered searches matching
1% and 10% of the points (ferrovec only).
Writes benches/results/scale-<n>-<dim>.{md,json}. Environment: SCALE_CACHE (the data's
directory, default benches/.cache), SCALE_RESULTS (the results', default benches/results),
SCALE_TMP (where the indexes are built, default the system's temporary directory).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ann_harness import BATCH, EF_CONSTRUCT, K, M  # noqa: E402
from bench_ann import qps_at  # noqa: E402
from measure import (  # noqa: E402
    disk_mib,
    evict_page_cache,
    reset_peak,
    rss_mib,
    timed,
    warm_page_cache,
)

# The ef sweep (--efs): at 5M and more, recall still rises past ef 384.
EFS = [16, 32, 64, 96, 128, 192, 256, 384]
N_QUERIES = 1000
KINDS = ["int8", "int4", "binary"]
# Filters: g == 0 matches 1% of the points, g < 10 matches 10%.
FILTERS = {
    "1%": ({"must": [{"key": "g", "match": {"value": 0}}]}, lambda ids: ids % 100 == 0),
    "10%": ({"must": [{"key": "g", "range": {"lt": 10}}]}, lambda ids: ids % 100 < 10),
}
FILTER_EF = 128
# Set by --memory-limit-mb: ferrovec's query processes open the store under this budget.
MEMORY_LIMIT_MB = 0


# ----- data -----------------------------------------------------------------------------------


def results_dir() -> Path:
    return Path(os.environ.get("SCALE_RESULTS", HERE / "results"))


def data_files(n: int, dim: int) -> dict[str, Path]:
    cache = Path(os.environ.get("SCALE_CACHE", HERE / ".cache"))
    cache.mkdir(parents=True, exist_ok=True)
    stem = f"scale-{n}-{dim}"
    return {
        "base": cache / f"{stem}.f32",
        "queries": cache / f"{stem}-queries.npy",
        "gt": cache / f"{stem}-gt.npy",
        "gt_filtered": cache / f"{stem}-gt-filtered.json",
    }


def make_data(n: int, dim: int) -> dict[str, Path]:
    """Draw the points in chunks straight to disk, then the exact top 10 of each query (and of
    each filtered query) by brute force over the file, chunk by chunk."""
    f = data_files(n, dim)
    if all(p.exists() for p in f.values()):
        return f
    print(f"drawing {n:,} x {dim} points and their ground truth ...", flush=True)
    rng = np.random.default_rng(42)
    centres = rng.standard_normal((1000, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = rng.dirichlet(np.full(1000, 2.0))

    def draw(m: int) -> np.ndarray:
        which = rng.choice(1000, size=m, p=weights)
        noise = rng.standard_normal((m, dim)).astype(np.float32)
        noise *= 0.9 / np.linalg.norm(noise, axis=1, keepdims=True)
        v = centres[which] + noise
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    queries = draw(N_QUERIES)
    with open(f["base"], "wb") as out:
        for s in range(0, n, 100_000):
            out.write(draw(min(100_000, n - s)).tobytes())
    masks = {name: pick for name, (_, pick) in FILTERS.items()}
    best = {
        name: (np.full((N_QUERIES, K), -np.inf), np.zeros((N_QUERIES, K), np.int64))
        for name in ["all", *masks]
    }
    for start, chunk in batches(f["base"], n, dim, 200_000):
        ids = np.arange(start, start + len(chunk))
        sims = queries @ chunk.T
        for name, (bs, bi) in best.items():
            keep = slice(None) if name == "all" else masks[name](ids)
            s, i = sims[:, keep], ids[keep]
            cs, ci = (
                np.concatenate([bs, s], axis=1),
                np.concatenate([bi, np.broadcast_to(i, s.shape)], axis=1),
            )
            top = np.argpartition(-cs, K, axis=1)[:, :K]
            rows = np.arange(N_QUERIES)[:, None]
            best[name] = (cs[rows, top], ci[rows, top])
    np.save(f["queries"], queries)
    np.save(f["gt"], best["all"][1])
    f["gt_filtered"].write_text(json.dumps({m: best[m][1].tolist() for m in masks}))
    return f


def batches(path: Path, n: int, dim: int, size: int):
    """(first id, rows) of the data file, `size` rows at a time, read (not mapped): the pages
    read count in no process's RSS."""
    with open(path, "rb") as fh:
        for s in range(0, n, size):
            m = min(size, n - s)
            yield s, np.frombuffer(fh.read(m * dim * 4), dtype=np.float32).reshape(m, dim)


def recall(got: list, gt: np.ndarray) -> float:
    return sum(len(set(map(int, g)) & set(t.tolist())) for g, t in zip(got, gt)) / (K * len(gt))


def sweep(search, set_ef, queries: np.ndarray, gt: np.ndarray) -> list[dict]:
    rows = []
    for ef in EFS:
        set_ef(ef)
        for q in queries[:50]:
            search(q)
        t0 = time.perf_counter()
        got = [search(q) for q in queries]
        dt = time.perf_counter() - t0
        rows.append({"ef": ef, "recall": recall(got, gt), "qps": len(queries) / dt})
    return rows


# ----- systems: build and query, each in a fresh process ----------------------------------------


def ferrovec_build(path: Path, f: dict, n: int, dim: int, kind: str) -> dict:
    import ferrovec

    db = ferrovec.open(path / "store", durability="fsync")
    col = db.create_collection(
        "bench",
        dim=dim,
        hnsw={"m": M, "ef_construct": EF_CONSTRUCT},
        quantization=kind,
    )
    col.create_payload_index("g", "integer")
    t0 = time.perf_counter()
    for start, chunk in batches(f["base"], n, dim, BATCH):
        ids = np.arange(start, start + len(chunk), dtype=np.uint64)
        col.upsert(ids, chunk, [{"g": int(i) % 100} for i in ids])
    t_ingest = time.perf_counter() - t0
    col.optimize(wait=True)
    info = col.info()
    out = {
        "build_s": time.perf_counter() - t0,
        "ingest_s": t_ingest,
        "segments": len(info["segments"]),
        "self_check": [s["self_check_recall"] for s in info["segments"]],
    }
    del col
    db.close()
    return out


def ferrovec_first(path: Path, queries: np.ndarray) -> tuple[Any, dict]:
    """Open the store (under --memory-limit-mb's budget, docs/SCALE.md) and answer one query
    on one thread, as an application starting up would: the collection and the figures."""
    import ferrovec

    ferrovec.set_num_threads(1)
    limit = MEMORY_LIMIT_MB or None
    col, t_open = timed(
        lambda: ferrovec.open(path / "store", memory_limit_mb=limit).collection("bench")
    )
    _, t_first = timed(lambda: col.search(queries[0], k=K, with_payload=False))
    return col, {"open_s": t_open, "first_query_s": t_first, "memory_limit_mb": limit}


def ferrovec_query(path: Path, f: dict, queries: np.ndarray, gt: np.ndarray) -> dict:
    col, first = ferrovec_first(path, queries)
    box: dict = {"ef": None}

    def one(q, **kw):
        return [h.id for h in col.search(q, k=K, ef=box["ef"], with_payload=False, **kw)]

    rows = sweep(one, lambda ef: box.update(ef=ef), queries, gt)
    # The same sweep rescoring four times as many candidates as the kind's default (at most
    # 100, Qdrant's and ferrovec's bound on oversampling).
    default = col.info()["quantization"]["oversampling"]
    more_oversampling = min(4 * default, 100)
    more = sweep(
        lambda q: one(q, quantization={"oversampling": more_oversampling}),
        lambda ef: box.update(ef=ef),
        queries,
        gt,
    )
    # The top of the sweep without rescoring: what the codes alone find.
    box["ef"] = FILTER_EF
    alone = recall([one(q, quantization={"rescore": False}) for q in queries], gt)
    filtered = {}
    gtf = json.loads(f["gt_filtered"].read_text())
    for name, (flt, _) in FILTERS.items():
        t0 = time.perf_counter()
        got = [one(q, filter=flt) for q in queries]
        dt = time.perf_counter() - t0
        filtered[name] = {"recall": recall(got, np.array(gtf[name])), "qps": len(queries) / dt}
    stats = col.stats()
    return {
        **first,
        "sweep": rows,
        "oversampling": default,
        "more_oversampling": more_oversampling,
        "sweep_more_rescored": more,
        "codes_alone_recall": alone,
        "filtered": filtered,
        "capacity": stats.get("capacity"),
    }


def hnswlib_build(path: Path, f: dict, n: int, dim: int) -> dict:
    import hnswlib

    idx = hnswlib.Index(space="ip", dim=dim)
    idx.init_index(max_elements=n, M=M, ef_construction=EF_CONSTRUCT)
    t0 = time.perf_counter()
    for start, chunk in batches(f["base"], n, dim, BATCH):
        idx.add_items(chunk, np.arange(start, start + len(chunk)), num_threads=2)
    idx.save_index(str(path / "index.bin"))
    return {"build_s": time.perf_counter() - t0}


def hnswlib_query(path: Path, f: dict, queries: np.ndarray, gt: np.ndarray) -> dict:
    import hnswlib

    idx = hnswlib.Index(space="ip", dim=queries.shape[1])
    _, t_open = timed(lambda: idx.load_index(str(path / "index.bin")))
    idx.set_num_threads(1)
    _, t_first = timed(lambda: idx.knn_query(queries[0], k=K))
    if gt is None:
        return {"open_s": t_open, "first_query_s": t_first}
    rows = sweep(lambda q: idx.knn_query(q, k=K)[0][0], idx.set_ef, queries, gt)
    return {"open_s": t_open, "first_query_s": t_first, "sweep": rows}


def faiss_build(path: Path, f: dict, n: int, dim: int) -> dict:
    import faiss

    faiss.omp_set_num_threads(2)
    idx = faiss.IndexHNSWFlat(dim, M, faiss.METRIC_INNER_PRODUCT)
    idx.hnsw.efConstruction = EF_CONSTRUCT
    t0 = time.perf_counter()
    for _, chunk in batches(f["base"], n, dim, BATCH):
        idx.add(chunk)
    faiss.write_index(idx, str(path / "index.faiss"))
    return {"build_s": time.perf_counter() - t0}


def faiss_query(path: Path, f: dict, queries: np.ndarray, gt: np.ndarray) -> dict:
    import faiss

    idx, t_open = timed(lambda: faiss.read_index(str(path / "index.faiss")))
    faiss.omp_set_num_threads(1)
    _, t_first = timed(lambda: idx.search(queries[:1], K))
    if gt is None:
        return {"open_s": t_open, "first_query_s": t_first}

    def set_ef(ef):
        idx.hnsw.efSearch = ef

    rows = sweep(lambda q: idx.search(q[None, :], K)[1][0], set_ef, queries, gt)
    return {"open_s": t_open, "first_query_s": t_first, "sweep": rows}


def child(role: str, system: str, path: Path, n: int, dim: int) -> None:
    f = data_files(n, dim)
    try:
        reset_peak()
        if role == "build":
            if system.startswith("ferrovec-"):
                out = ferrovec_build(path, f, n, dim, system.split("-", 1)[1])
            elif system == "hnswlib":
                out = hnswlib_build(path, f, n, dim)
            else:
                out = faiss_build(path, f, n, dim)
            out["disk_mib"] = disk_mib(path)
        elif role == "first":
            queries = np.load(f["queries"])
            if system.startswith("ferrovec-"):
                _, out = ferrovec_first(path, queries)
            elif system == "hnswlib":
                out = hnswlib_query(path, f, queries, None)
            else:
                out = faiss_query(path, f, queries, None)
        else:
            queries, gt = np.load(f["queries"]), np.load(f["gt"])
            if system.startswith("ferrovec-"):
                out = ferrovec_query(path, f, queries, gt)
            elif system == "hnswlib":
                out = hnswlib_query(path, f, queries, gt)
            else:
                out = faiss_query(path, f, queries, gt)
        out["peak_rss_mib"] = rss_mib("VmHWM")
    except Exception:
        out = {"error": traceback.format_exc(limit=4)}
    print("RESULT " + json.dumps(out), flush=True)


def run_child(role: str, system: str, path: Path, n: int, dim: int, timeout: float) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, __file__, "--child", role, system, str(path), "--n", str(n)]
    # The child parses the same settings into the same globals.
    cmd += ["--efs", ",".join(map(str, EFS)), "--memory-limit-mb", str(MEMORY_LIMIT_MB)]
    try:
        p = subprocess.run(
            [*cmd, "--dim", str(dim)], capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (p.stderr or p.stdout)[-800:]}


# ----- report -----------------------------------------------------------------------------------


def cold_and_warm(r: dict) -> tuple[dict, dict]:
    """A system's open + first query figures on a cold and on a warm page cache. Runs before
    the cold figure had a process of its own measured it in the sweep's process, and the warm
    one in a process after the sweep."""
    q = r.get("query", {})
    return r.get("cold", q), r.get("warm", q)


def report(n: int, dim: int, results: dict) -> str:
    lines = [
        f"# Scale benchmark: {n:,} x {dim} (cosine), k = {K}, M = {M}, "
        f"ef_construct = {EF_CONSTRUCT}",
        "",
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, one run. Every figure from a "
        "fresh process; peak RSS is that process's VmHWM. Build: batches of 1,000 read from "
        "disk, two threads, until durable and indexed. Query: one thread, query by query, "
        f"{N_QUERIES:,} queries; ferrovec rescores on f32 read with pread.",
        "",
        "## Build, open and serving memory",
        "",
        "| system | build s | build peak RSS MiB | disk MiB | segments | open ms (cold) "
        "| first query ms (cold) | open + first query ms (warm) | serving peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        b, q = r.get("build", {}), r.get("query", {})
        if "error" in b or "error" in q:
            err = (b.get("error") or q.get("error") or "?").strip().splitlines()[-1][:150]
            lines.append(f"| {name} | failed: {err} | | | | | | | |")
            continue
        cold, warm = cold_and_warm(r)
        lines.append(
            f"| {name} | {b['build_s']:.1f} | {b['peak_rss_mib']:.0f} | {b['disk_mib']:.0f} | "
            f"{b.get('segments', '')} | {cold['open_s'] * 1e3:.1f} "
            f"| {cold['first_query_s'] * 1e3:.1f} "
            f"| {(warm['open_s'] + warm['first_query_s']) * 1e3:.1f} | {q['peak_rss_mib']:.0f} |"
        )
    lines += [
        "",
        "## Recall against QPS (one thread)",
        "",
        "| system | ef | recall@10 | QPS |",
        "|---|---|---|---|",
    ]
    for name, r in results.items():
        for row in r.get("query", {}).get("sweep", []):
            lines.append(f"| {name} | {row['ef']} | {row['recall']:.4f} | {row['qps']:,.0f} |")
    lines += [
        "",
        "## Rescoring four times as many candidates, oversampling at most 100 (ferrovec)",
        "",
        "| system | oversampling | ef | recall@10 | QPS |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        q = r.get("query", {})
        for row in q.get("sweep_more_rescored", []):
            more = q.get("more_oversampling", 4 * q["oversampling"])
            lines.append(
                f"| {name} | {more:g} | {row['ef']} | {row['recall']:.4f} | {row['qps']:,.0f} |"
            )
    lines += [
        "",
        "## Filtered (ferrovec, ef 128) and codes alone",
        "",
        "| system | filter | recall@10 | QPS |",
        "|---|---|---|---|",
    ]
    for name, r in results.items():
        q = r.get("query", {})
        for fname, fr in q.get("filtered", {}).items():
            lines.append(f"| {name} | {fname} | {fr['recall']:.4f} | {fr['qps']:,.0f} |")
        if "codes_alone_recall" in q:
            lines.append(
                f"| {name} | none, no rescoring (ef 128) | {q['codes_alone_recall']:.4f} | |"
            )
    lines += ["", "## Ratios", ""]
    peer = results.get("hnswlib", {})
    ps, pb = peer.get("query", {}).get("sweep"), peer.get("build", {})
    for name, r in results.items():
        if not name.startswith("ferrovec-") or "error" in r.get("query", {"error": 1}):
            continue
        fv, fb = r["query"]["sweep"], r.get("build", {})
        # The frontier of both sweeps: what the kind reaches with either oversampling.
        fv = fv + r["query"].get("sweep_more_rescored", [])
        parts = [f"- {name}:"]
        best = max(x["recall"] for x in fv)
        levels = {0.95: "", 0.99: ""}
        if ps:
            # Where neither reaches 0.95 (5M and more): compare at the best recall both reach.
            shared = int(min(best, max(x["recall"] for x in ps)) * 100) / 100
            if shared < 0.95:
                levels[shared] = ", the best both reach,"
        for level, label in levels.items():
            a, b = qps_at(fv, level), qps_at(ps, level) if ps else None
            if a and b:
                parts.append(
                    f"QPS at recall {level}{label} {a / b:.2f}x hnswlib ({a:,.0f} vs {b:,.0f});"
                )
            elif a is None:
                parts.append(f"recall {level} not reached (best {best:.3f});")
        if pb.get("build_s") and fb.get("build_s"):
            parts.append(
                f"build time {fb['build_s'] / pb['build_s']:.2f}x, build peak RSS "
                f"{fb['peak_rss_mib'] / pb['peak_rss_mib']:.2f}x hnswlib's;"
            )
        q = r["query"]
        need = (q.get("capacity") or {}).get("resident_need_bytes")
        parts.append(
            f"serving RSS {q['peak_rss_mib']:.0f} MiB"
            + (f" (resident need {need / 2**20:.0f} MiB)" if need else "")
            + (f" under memory_limit_mb {q['memory_limit_mb']}" if q.get("memory_limit_mb") else "")
            + ";"
        )
        cold, warm = cold_and_warm(r)
        parts.append(
            f"open + first query {(cold['open_s'] + cold['first_query_s']) * 1e3:.1f} ms cold, "
            f"{(warm['open_s'] + warm['first_query_s']) * 1e3:.1f} ms warm"
        )
        lines.append(" ".join(parts))
    text = "\n".join(lines) + "\n"
    out = results_dir()
    out.mkdir(parents=True, exist_ok=True)
    (out / f"scale-{n}-{dim}.md").write_text(text)
    (out / f"scale-{n}-{dim}.json").write_text(json.dumps(results, indent=1))
    return text


def parse_efs(text: str) -> list[int]:
    try:
        efs = sorted({int(e) for e in text.split(",") if e.strip()})
    except ValueError:
        efs = []
    if not efs or efs[0] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: positive integers, comma-separated")
    return efs


def main() -> None:
    global MEMORY_LIMIT_MB, EFS
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--kinds", default=",".join(KINDS), help="ferrovec code kinds to build")
    ap.add_argument("--systems", default="hnswlib,faiss-hnsw", help="peers")
    ap.add_argument("--child", nargs=3, metavar=("ROLE", "SYSTEM", "PATH"))
    ap.add_argument("--timeout", type=float, default=6 * 3600)
    ap.add_argument("--keep", action="store_true", help="keep the other systems' last results")
    ap.add_argument(
        "--memory-limit-mb",
        type=int,
        default=0,
        help="serve ferrovec under this memory_limit_mb (its peak RSS is reported beside it)",
    )
    ap.add_argument(
        "--efs",
        type=parse_efs,
        default=EFS,
        help="the ef values of the sweep, comma-separated",
    )
    args = ap.parse_args()
    MEMORY_LIMIT_MB = args.memory_limit_mb
    EFS = args.efs
    if args.child:
        child(args.child[0], args.child[1], Path(args.child[2]), args.n, args.dim)
        return
    make_data(args.n, args.dim)
    names = [f"ferrovec-{k}" for k in args.kinds.split(",") if k] + [
        s for s in args.systems.split(",") if s
    ]
    if "faiss-hnsw" in names and args.n * args.dim * 4 * 1.3 > 20 * 2**30:
        print("faiss-hnsw: skipped, it would not fit in memory")
        names.remove("faiss-hnsw")
    results: dict = {}
    previous = results_dir() / f"scale-{args.n}-{args.dim}.json"
    if args.keep and previous.exists():
        # A run of some systems updates their rows and keeps the others' from the last run.
        results = {k: v for k, v in json.loads(previous.read_text()).items() if k not in names}
    for name in names:
        d = Path(tempfile.mkdtemp(prefix=f"scale-{name}-", dir=os.environ.get("SCALE_TMP")))
        try:
            print(f"{name}: build ...", flush=True)
            b = run_child("build", name, d, args.n, args.dim, args.timeout)
            results[name] = {"build": b}
            print(f"{name}: build {b}", flush=True)
            if "error" not in b:
                # Open + first query on a cold page cache, in a process of its own; then the
                # files are read once, so the sweep measures serving from a warm cache (as a
                # peer that loads its whole index at open does), and its process's own open
                # and first query are the warm figures.
                evict_page_cache(d)
                c = run_child("first", name, d, args.n, args.dim, args.timeout)
                results[name]["cold"] = c
                print(f"{name}: cold open + first query {c}", flush=True)
                warm_page_cache(d)
                q = run_child("query", name, d, args.n, args.dim, args.timeout)
                results[name]["query"] = q
                print(f"{name}: query {json.dumps(q)[:400]}", flush=True)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        report(args.n, args.dim, results)
    print(report(args.n, args.dim, results))


if __name__ == "__main__":
    main()
