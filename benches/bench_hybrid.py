"""Sparse (BM25) and hybrid search, side by side in one run: ferrovec, Qdrant Edge, Milvus Lite
and qdrant-client's local mode, on real text.

Data: the first `--n` chunks of ~800 characters of the man pages here (`text_corpus.py`), each
with a 384-d dense vector (ferrovec.rag's HashEmbedder: text-derived but meaning-free, which
is all a speed benchmark needs) and its BM25 vector. Queries: man-page NAME descriptions.

- ingest: chunks/s with BM25 computed where each system computes it (ferrovec in the core from
  `Document`s, on both cores; Qdrant Edge with its `Bm25` model, in Python, per text; Milvus
  with its BM25 function), durable at the end; then the index build (`optimize`); and
  ferrovec's BM25 alone (a sparse-only collection).
- sparse: `--queries` BM25 queries, top 10, one at a time on one thread, QPS and p50/p99.
- hybrid: prefetch 20 dense + 20 BM25 candidates, RRF (Qdrant's k = 2), top 10; the same.
- agreement: mean overlap of each system's top 10 with ferrovec's (Qdrant Edge computes the
  same BM25, so it should give the same results; Milvus's BM25 tokenizes differently).
qdrant-client's local mode runs at `--local-n` points (its ingest and Python scoring are slow),
against a ferrovec collection of the same points.

Usage: .venv-bench/bin/python benches/bench_hybrid.py [--n 100000] [--queries 500]
       [--systems ferrovec,qdrant-edge]   (re-run some; the others' rows come from the last run)
Writes benches/results/hybrid-<n>.md (and the rows to benches/.cache/hybrid-<n>.json).
Milvus Lite and local mode answer a few queries a second: they get `--slow-queries` and one
round.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import text_corpus  # noqa: E402

import ferrovec  # noqa: E402
from ferrovec.rag import HashEmbedder  # noqa: E402

DIM = 384
K = 10
PREFETCH = 20
BATCH = 1000


def timed_queries(
    run: Callable[[int], list[Any]], n: int
) -> tuple[dict[str, float], list[list[Any]]]:
    """Run queries 0..n-1 one at a time: QPS, p50 and p99 latency (ms), and the results."""
    lat, results = [], []
    started = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        results.append(run(i))
        lat.append(time.perf_counter() - t)
    total = time.perf_counter() - started
    lat.sort()
    return {
        "qps": n / total,
        "p50": 1000 * statistics.median(lat),
        "p99": 1000 * lat[min(n - 1, int(0.99 * n))],
    }, results


def overlap(a: list[list[Any]], b: list[list[Any]]) -> float:
    """Mean overlap of two systems' top 10 over the queries both answered."""
    return statistics.mean(len(set(x) & set(y)) / K for x, y in zip(a, b))


class Data:
    def __init__(self, n: int, n_queries: int) -> None:
        t = time.perf_counter()
        self.texts = text_corpus.chunks(n)
        emb = HashEmbedder(DIM)
        self.dense = emb.embed_passages(self.texts).astype(np.float32)
        descs = [d for _, d, _ in text_corpus.man_pages(limit=n_queries * 2)]
        self.queries = list(dict.fromkeys(descs))[:n_queries]
        self.qdense = emb.embed_queries(self.queries).astype(np.float32)
        self.qsparse = ferrovec.bm25(self.queries, query=True)
        print(
            f"data: {len(self.texts)} chunks, {len(self.queries)} queries "
            f"({time.perf_counter() - t:.0f} s)",
            flush=True,
        )


class Ferrovec:
    name = "ferrovec"

    def build(self, path: Path, data: Data, n: int) -> dict[str, float]:
        db = ferrovec.open(path / "fv")
        col = db.create_collection("c", DIM, "cosine", sparse={"bm25": {"modifier": "idf"}})
        t0 = time.perf_counter()
        for s in range(0, n, BATCH):
            e = min(s + BATCH, n)
            docs = [ferrovec.Document(t) for t in data.texts[s:e]]
            col.upsert(list(range(s, e)), {"": data.dense[s:e], "bm25": docs})
        t_ingest = time.perf_counter() - t0
        col.optimize(wait=True)
        t_index = time.perf_counter() - t0 - t_ingest
        # BM25 alone: tokenize, stem, weigh and store (durably) a sparse-only collection.
        only = db.create_collection("bm25", sparse={"bm25": {"modifier": "idf"}})
        t1 = time.perf_counter()
        for s in range(0, n, BATCH):
            e = min(s + BATCH, n)
            only.upsert(
                list(range(s, e)), {"bm25": [ferrovec.Document(t) for t in data.texts[s:e]]}
            )
        t_bm25 = time.perf_counter() - t1
        db.drop_collection("bm25")
        self.db, self.col = db, col
        return {"ingest": n / t_ingest, "index_s": t_index, "bm25_ingest": n / t_bm25}

    def sparse(self, data: Data) -> Callable[[int], list[Any]]:
        col = self.col
        return lambda i: [
            h.id for h in col.search(data.qsparse[i], K, using="bm25", with_payload=False)
        ]

    def hybrid(self, data: Data) -> Callable[[int], list[Any]]:
        col = self.col

        def run(i: int) -> list[Any]:
            q = data.qsparse[i]
            req = {
                "prefetch": [
                    {"query": data.qdense[i].tolist(), "limit": PREFETCH},
                    {
                        "query": {"indices": q.indices, "values": q.values},
                        "using": "bm25",
                        "limit": PREFETCH,
                    },
                ],
                "query": {"fusion": "rrf"},
                "limit": K,
                "with_payload": False,
            }
            return [h.id for h in col.query(req)]

        return run


class QdrantEdge:
    name = "qdrant-edge"

    def build(self, path: Path, data: Data, n: int) -> dict[str, float]:
        import qdrant_edge as qe

        self.qe = qe
        cfg = qe.EdgeConfig(
            vectors={"dense": qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine)},
            sparse_vectors={"bm25": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            max_search_threads=1,
        )
        shard = qe.EdgeShard.create(str(path / "edge"), cfg)
        bm25 = qe.Bm25()
        t0 = time.perf_counter()
        for s in range(0, n, BATCH):
            pts = [
                qe.Point(
                    id=i,
                    vector={
                        "dense": data.dense[i].tolist(),
                        "bm25": bm25.embed_document(data.texts[i]),
                    },
                )
                for i in range(s, min(s + BATCH, n))
            ]
            shard.update(qe.UpdateOperation.upsert_points(pts))
        shard.flush()
        t_ingest = time.perf_counter() - t0
        shard.optimize()
        shard.flush()
        t_index = time.perf_counter() - t0 - t_ingest
        self.shard = shard
        return {"ingest": n / t_ingest, "index_s": t_index}

    def _sv(self, data: Data, i: int) -> Any:
        q = data.qsparse[i]
        return self.qe.SparseVector(indices=q.indices, values=q.values)

    def sparse(self, data: Data) -> Callable[[int], list[Any]]:
        qe, shard = self.qe, self.shard

        def run(i: int) -> list[Any]:
            req = qe.QueryRequest(
                limit=K, query=qe.Query.Nearest(self._sv(data, i), using="bm25"), with_payload=False
            )
            return [p.id for p in shard.query(req)]

        return run

    def hybrid(self, data: Data) -> Callable[[int], list[Any]]:
        qe, shard = self.qe, self.shard

        def run(i: int) -> list[Any]:
            req = qe.QueryRequest(
                limit=K,
                prefetches=[
                    qe.Prefetch(
                        limit=PREFETCH,
                        query=qe.Query.Nearest(data.qdense[i].tolist(), using="dense"),
                    ),
                    qe.Prefetch(
                        limit=PREFETCH, query=qe.Query.Nearest(self._sv(data, i), using="bm25")
                    ),
                ],
                query=qe.Fusion.Rrf(k=2),
                with_payload=False,
            )
            return [p.id for p in shard.query(req)]

        return run


class MilvusLite:
    name = "milvus-lite"

    def build(self, path: Path, data: Data, n: int) -> dict[str, float]:
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        client = MilvusClient(str(path / "milvus.db"))
        schema = client.create_schema()
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("text", DataType.VARCHAR, max_length=4096, enable_analyzer=True)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=DIM)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["text"],
                output_field_names=["sparse"],
            )
        )
        index = client.prepare_index_params()
        index.add_index(
            "dense",
            index_type="HNSW",
            metric_type="COSINE",
            params={"M": 16, "efConstruction": 100},
        )
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection("c", schema=schema, index_params=index)
        t0 = time.perf_counter()
        for s in range(0, n, BATCH):
            rows = [
                {"id": i, "text": data.texts[i], "dense": data.dense[i].tolist()}
                for i in range(s, min(s + BATCH, n))
            ]
            client.insert("c", rows)
        client.flush("c")
        t_ingest = time.perf_counter() - t0
        client.load_collection("c")
        t_index = time.perf_counter() - t0 - t_ingest
        self.client = client
        return {"ingest": n / t_ingest, "index_s": t_index}

    def sparse(self, data: Data) -> Callable[[int], list[Any]]:
        client = self.client

        def run(i: int) -> list[Any]:
            res = client.search(
                "c",
                data=[data.queries[i]],
                anns_field="sparse",
                limit=K,
                search_params={"metric_type": "BM25"},
            )
            return [h["id"] for h in res[0]]

        return run

    def hybrid(self, data: Data) -> Callable[[int], list[Any]]:
        from pymilvus import AnnSearchRequest, RRFRanker

        client = self.client

        def run(i: int) -> list[Any]:
            reqs = [
                AnnSearchRequest(
                    [data.qdense[i].tolist()], "dense", {"metric_type": "COSINE"}, PREFETCH
                ),
                AnnSearchRequest([data.queries[i]], "sparse", {"metric_type": "BM25"}, PREFETCH),
            ]
            res = client.hybrid_search("c", reqs, RRFRanker(2), limit=K)
            return [h["id"] for h in res[0]]

        return run


class QdrantLocal:
    name = "qdrant-client-local"

    def build(self, path: Path, data: Data, n: int) -> dict[str, float]:
        from qdrant_client import QdrantClient, models

        self.m = models
        client = QdrantClient(path=str(path / "local"))
        client.create_collection(
            "c",
            vectors_config={"": models.VectorParams(size=DIM, distance=models.Distance.COSINE)},
            sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        sparse = ferrovec.bm25(data.texts[:n])
        t0 = time.perf_counter()
        for s in range(0, n, BATCH):
            pts = [
                models.PointStruct(
                    id=i,
                    vector={
                        "": data.dense[i].tolist(),
                        "bm25": models.SparseVector(
                            indices=sparse[i].indices, values=sparse[i].values
                        ),
                    },
                )
                for i in range(s, min(s + BATCH, n))
            ]
            client.upsert("c", pts)
        self.client = client
        return {"ingest": n / (time.perf_counter() - t0), "index_s": 0.0}

    def sparse(self, data: Data) -> Callable[[int], list[Any]]:
        m, client = self.m, self.client

        def run(i: int) -> list[Any]:
            q = data.qsparse[i]
            res = client.query_points(
                "c",
                query=m.SparseVector(indices=q.indices, values=q.values),
                using="bm25",
                limit=K,
                with_payload=False,
            )
            return [p.id for p in res.points]

        return run

    def hybrid(self, data: Data) -> Callable[[int], list[Any]]:
        m, client = self.m, self.client

        def run(i: int) -> list[Any]:
            q = data.qsparse[i]
            res = client.query_points(
                "c",
                prefetch=[
                    m.Prefetch(query=data.qdense[i].tolist(), limit=PREFETCH),
                    m.Prefetch(
                        query=m.SparseVector(indices=q.indices, values=q.values),
                        using="bm25",
                        limit=PREFETCH,
                    ),
                ],
                query=m.FusionQuery(fusion=m.Fusion.RRF),
                limit=K,
                with_payload=False,
            )
            return [p.id for p in res.points]

        return run


def measure(system: Any, path: Path, data: Data, n: int, nq: int, rounds: int) -> dict[str, Any]:
    row: dict[str, Any] = {"system": system.name, "n": n}
    try:
        ferrovec.set_num_threads(0)  # ingest on every core (2 here): BM25 runs in parallel
        row.update(system.build(path, data, n))
        ferrovec.set_num_threads(1)  # queries on one thread: the figures compare engines
        for kind in ("sparse", "hybrid"):
            run = getattr(system, kind)(data)
            best: dict[str, float] | None = None
            for _ in range(rounds):
                stats, results = timed_queries(run, nq)
                if best is None or stats["qps"] > best["qps"]:
                    best = stats
            row[kind] = best
            row[kind + "_results"] = results
        print(system.name, {k: v for k, v in row.items() if not k.endswith("_results")}, flush=True)
    except Exception as e:  # a peer that fails is reported, not dropped
        row["error"] = f"{type(e).__name__}: {e}"[:300]
        print(system.name, "failed:", row["error"], flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--local-n", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--local-queries", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--slow-queries", type=int, default=100)
    ap.add_argument("--systems", default="ferrovec,qdrant-edge,milvus-lite,qdrant-client-local")
    args = ap.parse_args()
    data = Data(args.n, args.queries)
    tmp = Path(tempfile.mkdtemp(prefix="bench-hybrid-"))
    cache = HERE / ".cache" / f"hybrid-{args.n}.json"
    rows = []
    wanted = args.systems.split(",")
    try:
        for cls in (Ferrovec, QdrantEdge, MilvusLite):
            if cls.name in wanted:
                slow = cls is MilvusLite
                nq = args.slow_queries if slow else args.queries
                rows.append(measure(cls(), tmp, data, args.n, nq, 1 if slow else args.rounds))
        if "qdrant-client-local" in wanted:
            small = measure(Ferrovec(), tmp / "small", data, args.local_n, args.local_queries, 1)
            small["system"] = f"ferrovec ({args.local_n:,} points)"
            rows.append(small)
            rows.append(measure(QdrantLocal(), tmp, data, args.local_n, args.local_queries, 1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if cache.exists():  # the systems not re-run keep their rows from the last run
        earlier = json.loads(cache.read_text())
        ran = {r["system"] for r in rows}
        rows += [
            r for r in earlier if r["system"] not in ran and r["system"].split(" ")[0] not in wanted
        ]
        order = ["ferrovec", "qdrant-edge", "milvus-lite"]
        rows.sort(
            key=lambda r: (
                r["n"] != args.n,
                order.index(r["system"]) if r["system"] in order else 9,
            )
        )
    cache.parent.mkdir(exist_ok=True)
    cache.write_text(json.dumps(rows))
    write(rows, args)


def write(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    ref = {r["n"]: r for r in rows if r["system"].startswith("ferrovec") and "error" not in r}
    lines = [
        f"# Sparse (BM25) and hybrid search: {args.n:,} man-page chunks, one thread",
        "",
        "384-d dense vectors (hash embedder) + BM25 (IDF), top 10; hybrid = 20 dense + 20 BM25 "
        "candidates fused by RRF (k = 2). QPS: one query at a time on one thread (best of "
        f"{args.rounds} rounds); agreement: mean overlap of the top 10 with ferrovec's at the "
        "same points. Ingest: chunks/s with BM25 computed by each system, durable.",
        "",
        "| system | points | ingest chunks/s | index s | sparse QPS | sparse p50/p99 ms "
        "| hybrid QPS | hybrid p50/p99 ms | agreement sparse / hybrid |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['system']} | {r['n']:,} | failed: {r['error']} |||||||")
            continue
        base = ref.get(r["n"])
        agree = "-"
        if base is not None and base is not r:
            agree = (
                f"{overlap(r['sparse_results'], base['sparse_results']):.3f} / "
                f"{overlap(r['hybrid_results'], base['hybrid_results']):.3f}"
            )
        s, h = r["sparse"], r["hybrid"]
        lines.append(
            f"| {r['system']} | {r['n']:,} | {r['ingest']:,.0f} | {r['index_s']:.1f} "
            f"| {s['qps']:,.0f} | {s['p50']:.2f} / {s['p99']:.2f} | {h['qps']:,.0f} "
            f"| {h['p50']:.2f} / {h['p99']:.2f} | {agree} |"
        )
    fv = ref.get(args.n)
    lines.append("")
    if fv is not None:
        lines.append(
            f"ferrovec BM25 ingest alone (tokenize, stem, weigh, store durably; a sparse-only "
            f"collection, both cores): {fv['bm25_ingest']:,.0f} chunks/s."
        )
        lines.append("")
    for r in rows:
        if fv is None or "error" in r or r is fv or r["n"] != args.n:
            continue
        lines.append(
            f"ferrovec / {r['system']}: "
            f"sparse QPS {fv['sparse']['qps'] / r['sparse']['qps']:.2f}x, "
            f"hybrid QPS {fv['hybrid']['qps'] / r['hybrid']['qps']:.2f}x, "
            f"ingest {fv['ingest'] / r['ingest']:.2f}x."
        )
    lines += [
        "",
        f"Command: `.venv-bench/bin/python benches/bench_hybrid.py --n {args.n} "
        f"--queries {args.queries}`",
    ]
    out = HERE / "results" / f"hybrid-{args.n}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
