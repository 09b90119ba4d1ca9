"""ANN benchmark: ferrovec and its peers, side by side in one run, on the same data.

    python benches/bench_ann.py                      # 100,000 points, every installed peer
    python benches/bench_ann.py --n 1000000 --systems ferrovec,hnswlib,faiss-hnsw   # long

Workload (benches/workload.py): 384-d unit vectors from a 1,000-centre Gaussian mixture, 1,000
held-out queries, exact top-10 by brute force. HNSW settings everywhere: M=16, ef_construct=100.
Every system builds in one fresh process (ingest in batches of 1,000, then whatever makes the
data durable and indexed) and is queried in another (open, first query, then a sweep of ef: one
thread query by query, and a two-thread batch). Writes benches/results/ann-<n>.{md,json,png}.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ann_harness import BATCH, DIM, EF_CONSTRUCT, K, M, groups, query_result  # noqa: E402
from measure import disk_mib, reset_peak, rss_mib, timed, warm_page_cache  # noqa: E402
from workload import ground_truth, mixture  # noqa: E402

# ----- systems: build(path, base) and query(path, queries, gt) run in fresh processes -----------


class Ferrovec:
    name = "ferrovec"

    def build(self, path: Path, base: np.ndarray) -> dict:
        import ferrovec

        db = ferrovec.open(path / "store", durability="fsync")
        col = db.create_collection(
            "bench", dim=DIM, distance="cosine", hnsw={"m": M, "ef_construct": EF_CONSTRUCT}
        )
        t0 = time.perf_counter()
        for s in range(0, len(base), BATCH):
            ids = np.arange(s, min(s + BATCH, len(base)), dtype=np.uint64)
            col.upsert(ids, base[s : s + BATCH], groups(ids))
        t_ingest = time.perf_counter() - t0
        col.optimize(wait=True)
        t_total = time.perf_counter() - t0
        info = col.info()
        del col
        db.close()
        return {
            "ingest_s": t_total,
            "upsert_s": t_ingest,
            "index_s": t_total - t_ingest,
            "self_check": info["segments"][0]["self_check_recall"],
        }

    def query(self, path: Path, queries: np.ndarray, gt: np.ndarray) -> dict:
        ferrovec, t_import = timed(lambda: importlib.import_module("ferrovec"))
        ferrovec.set_num_threads(1)
        col, t_open = timed(lambda: ferrovec.open(path / "store").collection("bench"))
        ef_box = {"ef": None}

        def one(q):
            return [h.id for h in col.search(q, k=K, ef=ef_box["ef"], with_payload=False)]

        def batch(qs):
            ferrovec.set_num_threads(2)
            try:
                hits = col.search_batch(qs, k=K, ef=ef_box["ef"], with_payload=False)
            finally:
                ferrovec.set_num_threads(1)
            return [[h.id for h in hs] for hs in hits]

        return query_result(
            t_import, t_open, one, batch, lambda ef: ef_box.update(ef=ef), queries, gt
        )


class Hnswlib:
    name = "hnswlib"

    def build(self, path: Path, base: np.ndarray) -> dict:
        import hnswlib

        idx = hnswlib.Index(space="ip", dim=DIM)
        idx.init_index(max_elements=len(base), M=M, ef_construction=EF_CONSTRUCT)
        t0 = time.perf_counter()
        for s in range(0, len(base), BATCH):
            idx.add_items(
                base[s : s + BATCH], np.arange(s, min(s + BATCH, len(base))), num_threads=2
            )
        idx.save_index(str(path / "index.bin"))
        return {"ingest_s": time.perf_counter() - t0}

    def query(self, path: Path, queries: np.ndarray, gt: np.ndarray) -> dict:
        hnswlib, t_import = timed(lambda: importlib.import_module("hnswlib"))
        idx = hnswlib.Index(space="ip", dim=DIM)
        _, t_open = timed(lambda: idx.load_index(str(path / "index.bin")))
        idx.set_num_threads(1)

        def batch(qs):
            idx.set_num_threads(2)
            try:
                return idx.knn_query(qs, k=K)[0]
            finally:
                idx.set_num_threads(1)

        return query_result(
            t_import, t_open, lambda q: idx.knn_query(q, k=K)[0][0], batch, idx.set_ef, queries, gt
        )


class FaissHnsw:
    name = "faiss-hnsw"
    efs: tuple | None = None  # None: the default sweep

    def new_index(self, faiss):
        idx = faiss.IndexHNSWFlat(DIM, M, faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efConstruction = EF_CONSTRUCT
        return idx

    def set_ef(self, idx, ef) -> None:
        idx.hnsw.efSearch = ef

    def build(self, path: Path, base: np.ndarray) -> dict:
        import faiss

        faiss.omp_set_num_threads(2)
        idx = self.new_index(faiss)
        t0 = time.perf_counter()
        for s in range(0, len(base), BATCH):
            idx.add(base[s : s + BATCH])
        faiss.write_index(idx, str(path / "index.faiss"))
        return {"ingest_s": time.perf_counter() - t0}

    def query(self, path: Path, queries: np.ndarray, gt: np.ndarray) -> dict:
        faiss, t_import = timed(lambda: importlib.import_module("faiss"))
        idx, t_open = timed(lambda: faiss.read_index(str(path / "index.faiss")))
        faiss.omp_set_num_threads(1)

        def batch(qs):
            faiss.omp_set_num_threads(2)
            try:
                return idx.search(qs, K)[1]
            finally:
                faiss.omp_set_num_threads(1)

        def one(q):
            return idx.search(q[None, :], K)[1][0]

        def set_ef(ef):
            self.set_ef(idx, ef)

        return query_result(t_import, t_open, one, batch, set_ef, queries, gt, self.efs)


class FaissFlat(FaissHnsw):
    """Exact inner-product search: the same flow with a flat index and nothing to tune."""

    name = "faiss-flat"
    efs = ("exact",)

    def new_index(self, faiss):
        return faiss.IndexFlatIP(DIM)

    def set_ef(self, idx, ef) -> None:
        pass


class Usearch:
    name = "usearch"

    def build(self, path: Path, base: np.ndarray) -> dict:
        from usearch.index import Index

        idx = Index(ndim=DIM, metric="ip", dtype="f32", connectivity=M, expansion_add=EF_CONSTRUCT)
        t0 = time.perf_counter()
        for s in range(0, len(base), BATCH):
            idx.add(np.arange(s, min(s + BATCH, len(base))), base[s : s + BATCH], threads=2)
        idx.save(str(path / "index.usearch"))
        return {"ingest_s": time.perf_counter() - t0}

    def query(self, path: Path, queries: np.ndarray, gt: np.ndarray) -> dict:
        usearch_index, t_import = timed(lambda: importlib.import_module("usearch.index"))
        idx, t_open = timed(lambda: usearch_index.Index.restore(str(path / "index.usearch")))

        def set_ef(ef):
            idx.expansion_search = ef

        return query_result(
            t_import,
            t_open,
            lambda q: idx.search(q, K, threads=1).keys,
            lambda qs: idx.search(qs, K, threads=2).keys,
            set_ef,
            queries,
            gt,
        )


SYSTEMS = {s.name: s for s in (Ferrovec(), Hnswlib(), FaissHnsw(), FaissFlat(), Usearch())}

try:  # the peers with their own storage layers live in a second file
    from bench_ann_stores import STORE_SYSTEMS

    SYSTEMS.update({s.name: s for s in STORE_SYSTEMS})
except ImportError:
    pass


# ----- orchestration --------------------------------------------------------------------------


def cached_data(n: int) -> tuple[Path, Path, Path]:
    cache = HERE / ".cache"
    cache.mkdir(exist_ok=True)
    b, q, g = (cache / f"base-{n}.npy", cache / f"queries-{n}.npy", cache / f"gt-{n}.npy")
    if not (b.exists() and q.exists() and g.exists()):
        print(f"generating {n:,} points and ground truth ...", flush=True)
        base, queries = mixture(n)
        np.save(b, base)
        np.save(q, queries)
        np.save(g, ground_truth(base, queries, K))
    return b, q, g


def child(role: str, system: str, path: str, n: int) -> None:
    b, q, g = cached_data(n)
    sys_ = SYSTEMS[system]
    out: dict
    try:
        if role == "build":
            base = np.load(b)
            reset_peak()
            before = rss_mib()
            out = sys_.build(Path(path), base)
            out["peak_rss_mib"] = rss_mib("VmHWM") - before
            out["disk_mib"] = disk_mib(Path(path))
        else:
            queries, gt = np.load(q), np.load(g)
            warm_page_cache(Path(path))
            reset_peak()
            out = sys_.query(Path(path), queries, gt)
            out["peak_rss_mib"] = rss_mib("VmHWM")
    except Exception:
        out = {"error": traceback.format_exc(limit=3)}
    print("RESULT " + json.dumps(out), flush=True)


def run_child(role: str, system: str, path: Path, n: int, timeout: float) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONUNBUFFERED="1")
    try:
        p = subprocess.run(
            [sys.executable, __file__, "--child", role, system, str(path), "--n", str(n)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (p.stderr or p.stdout)[-800:]}


def median_rounds(rounds: list[dict]) -> dict:
    """Median of each timing over query rounds (recall is the same in every round)."""
    med = {
        k: statistics.median(r[k] for r in rounds)
        for k in ("import_s", "open_s", "first_query_s", "peak_rss_mib")
    }
    sweep = []
    for i, row in enumerate(rounds[0]["sweep"]):
        rows = [r["sweep"][i] for r in rounds]
        sweep.append(
            {
                **row,
                "qps": statistics.median(x["qps"] for x in rows),
                "p50_ms": statistics.median(x["p50_ms"] for x in rows),
                "batch2_qps": statistics.median(x["batch2_qps"] for x in rows),
                "rounds": len(rows),
            }
        )
    return {**med, "sweep": sweep}


def best_qps(sweep: list[dict], recall: float) -> float | None:
    """The best QPS among the sweep points that reach `recall`."""
    ok = [r["qps"] for r in sweep if r["recall"] >= recall]
    return max(ok) if ok else None


def qps_at(sweep: list[dict], recall: float) -> float | None:
    """QPS at exactly `recall`, read off the recall-QPS frontier by linear interpolation between
    the sweep points on either side. Comparing at the first ef that reaches a level favours
    whichever system happens to land just above it; this compares at the same recall."""
    front: list[tuple[float, float]] = []
    for r in sorted(sweep, key=lambda r: -r["recall"]):
        if not front or r["qps"] > front[-1][1]:
            front.append((r["recall"], r["qps"]))
    front.reverse()  # ascending recall, descending QPS
    for (r0, q0), (r1, q1) in zip(front, front[1:]):
        if r0 <= recall <= r1:
            return q0 if r1 == r0 else q0 + (q1 - q0) * (recall - r0) / (r1 - r0)
    return best_qps(sweep, recall)


def write_report(n: int, results: dict, out_dir: Path) -> str:
    lines = [
        f"# ANN benchmark: {n:,} x {DIM} (cosine), k = {K}, M = {M}, ef_construct = {EF_CONSTRUCT}",
        "",
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, one run, systems side by side. "
        "Build: ingest in batches of 1,000 plus what makes the data durable and indexed, in a "
        "fresh process. Query: a fresh process per round (store files read once first, so the "
        "page cache is warm for every system alike), rounds interleaved across systems, "
        "figures are medians over the rounds; open = opening the store or loading the index; "
        "QPS on one thread query by query from Python, and a two-thread batch.",
        "",
        "## Build and open",
        "",
        "| system | build s | build peak RSS MiB (above data) | disk MiB | open s "
        "| first query s | query peak RSS MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        b, q = r.get("build", {}), r.get("query", {})
        if "error" in b or "error" in q:
            err = (b.get("error") or q.get("error") or "").strip().splitlines()
            lines.append(f"| {name} | failed: {err[-1][:120] if err else '?'} | | | | | |")
            continue
        lines.append(
            f"| {name} | {b['ingest_s']:.1f} | {b['peak_rss_mib']:.0f} | {b['disk_mib']:.0f} | "
            f"{q['open_s']:.4f} | {q['first_query_s']:.4f} | {q['peak_rss_mib']:.0f} |"
        )
    lines += [
        "",
        "## Recall against QPS",
        "",
        "| system | ef | recall@10 | QPS (1 thread) | p50 ms | QPS (2-thread batch) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        for row in r.get("query", {}).get("sweep", []):
            cut = f" (n={row['n']})" if row.get("n", 1000) < 1000 else ""
            lines.append(
                f"| {name} | {row['ef']} | {row['recall']:.4f} | {row['qps']:,.0f}{cut} | "
                f"{row['p50_ms']:.3f} | {row['batch2_qps']:,.0f} |"
            )
    fv = results.get("ferrovec", {}).get("query", {}).get("sweep")
    summary = ["", "## Ratios", ""]
    if fv:
        for peer, level in (
            ("hnswlib", 0.95),
            ("hnswlib", 0.99),
            ("faiss-hnsw", 0.95),
            ("usearch", 0.95),
            ("qdrant-edge", 0.99),
        ):
            ps = results.get(peer, {}).get("query", {}).get("sweep")
            a, b = qps_at(fv, level), qps_at(ps, level) if ps else None
            a1, b1 = best_qps(fv, level), best_qps(ps, level) if ps else None
            if a and b and a1 and b1:
                summary.append(
                    f"- QPS at recall@10 = {level} (interpolated): ferrovec / {peer} = "
                    f"{a / b:.2f} ({a:,.0f} vs {b:,.0f}); at the first ef reaching it: "
                    f"{a1 / b1:.2f}"
                )
        fb = results.get("ferrovec", {}).get("build", {}).get("ingest_s")
        hb = results.get("hnswlib", {}).get("build", {}).get("ingest_s")
        if fb and hb:
            summary.append(
                f"- build (ingest + index, 2 threads, log durable): ferrovec / hnswlib = "
                f"{fb / hb:.2f} ({fb:.1f} s vs {hb:.1f} s)"
            )
        o, f1 = results["ferrovec"].get("query", {}), None
        if "open_s" in o:
            f1 = (o["open_s"] + o["first_query_s"]) * 1e3
            summary.append(f"- ferrovec open + first query in a fresh process: {f1:.1f} ms")
    lines += [*summary, ""]
    text = "\n".join(lines)
    (out_dir / f"ann-{n}.md").write_text(text)
    (out_dir / f"ann-{n}.json").write_text(json.dumps(results, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 5))
        for name, r in results.items():
            sw = r.get("query", {}).get("sweep")
            if sw:
                ax.plot([x["recall"] for x in sw], [x["qps"] for x in sw], marker="o", label=name)
        ax.set_xlabel("recall@10")
        ax.set_ylabel("queries per second (1 thread)")
        ax.set_yscale("log")
        ax.set_title(f"{n:,} x {DIM}, M={M}, ef_construct={EF_CONSTRUCT}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / f"ann-{n}.png", dpi=110)
    except ImportError:
        pass
    return text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--systems", default="all")
    ap.add_argument("--child", nargs=3, metavar=("ROLE", "SYSTEM", "PATH"))
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--repeat", type=int, default=3, help="query rounds per system (medians)")
    ap.add_argument("--efs", help="comma-separated ef values to sweep (default: 16 to 256)")
    args = ap.parse_args()
    if args.efs:
        # Children (and bench_ann_stores, which imports EFS) read it from the environment.
        os.environ["FERROVEC_BENCH_EFS"] = args.efs
    if args.child:
        child(*args.child, n=args.n)
        return
    cached_data(args.n)
    names = list(SYSTEMS) if args.systems == "all" else args.systems.split(",")
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    results: dict = {}
    previous = out_dir / f"ann-{args.n}.json"
    if args.systems != "all" and previous.exists():
        # A run of some systems updates their rows and keeps the others' from the last run.
        results = json.loads(previous.read_text())
    runnable = []
    for name in names:
        if name not in SYSTEMS:
            print(f"unknown system {name}; known: {', '.join(SYSTEMS)}")
        elif getattr(SYSTEMS[name], "max_n", None) and args.n > SYSTEMS[name].max_n:
            print(f"{name}: skipped above {SYSTEMS[name].max_n:,} points (too slow)")
        else:
            runnable.append(name)
    dirs = {name: Path(tempfile.mkdtemp(prefix=f"bench-{name}-")) for name in runnable}
    try:
        for name in runnable:
            print(f"{name}: build ...", flush=True)
            results[name] = {"build": run_child("build", name, dirs[name], args.n, args.timeout)}
            if "error" in results[name]["build"]:
                print(f"{name}: build FAILED: {results[name]['build']['error']}", flush=True)
            else:
                print(f"{name}: built in {results[name]['build']['ingest_s']:.1f} s", flush=True)
        # Query rounds interleave the systems (and rotate their order), so that the machine's
        # drift falls on all of them alike; each figure is the median over the rounds.
        rounds: dict[str, list[dict]] = {
            n: [] for n in runnable if "error" not in results[n]["build"]
        }
        for rep in range(args.repeat):
            order = [n for n in rounds if rep < getattr(SYSTEMS[n], "rounds", args.repeat)]
            order = order[rep % len(order) :] + order[: rep % len(order)] if order else order
            for name in order:
                print(f"{name}: query round {rep + 1}/{args.repeat} ...", flush=True)
                q = run_child("query", name, dirs[name], args.n, args.timeout)
                if "error" in q:
                    print(f"{name}: query FAILED: {q['error']}", flush=True)
                    results[name]["query"] = q
                    rounds.pop(name)
                    continue
                rounds[name].append(q)
        for name, qs in rounds.items():
            if qs:
                results[name]["query"] = median_rounds(qs)
        write_report(args.n, results, out_dir)
    finally:
        for d in dirs.values():
            shutil.rmtree(d, ignore_errors=True)
    print(write_report(args.n, results, out_dir))


if __name__ == "__main__":
    main()
