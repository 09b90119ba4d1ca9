"""Filtered search side by side: ferrovec, Qdrant Edge, chromadb, lancedb (and qdrant-client's
local mode at 20,000 points or fewer), each with its own filter syntax and a payload index where
it has one, on the clustered set of bench_ann.py.

Payload: `cat`, one keyword per point ("a" for 50% of the points, "b" 10%, "c" 1%, "d" 0.1%,
else "z", drawn at random, independent of the clusters), and `price`, uniform in [0, 100).
Filters: cat == a/b/c/d and 20 <= price < 30 (10%). Per system and filter: recall@10 against
exact ground truth over the matching points, p50 latency and QPS of one query at a time from
Python on one thread, after one warm-up pass. Builds run one after another in this process.

    .venv-bench/bin/python benches/bench_filtered.py --n 100000
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ann import BATCH, DIM, EF_CONSTRUCT, HERE, K, M, cached_data
from bench_ann_stores import lance_hnsw_index

CATS = {"a": 0.5, "b": 0.1, "c": 0.01, "d": 0.001}
N_QUERIES = 200


def make_payload(n: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    u = rng.random(n)
    cat = np.full(n, "z", dtype=object)
    edges = np.cumsum(list(CATS.values()))
    lo = 0.0
    for (name, _), hi in zip(CATS.items(), edges):
        cat[(u >= lo) & (u < hi)] = name
        lo = hi
    price = rng.uniform(0, 100, n)
    return cat, price


FILTERS = [(f"cat = {c} ({int(s * 1000) / 10:g}%)", ("cat", c)) for c, s in CATS.items()] + [
    ("20 <= price < 30 (10%)", ("price", (20.0, 30.0)))
]


def mask_of(spec, cat, price) -> np.ndarray:
    field, arg = spec
    if field == "cat":
        return cat == arg
    return (price >= arg[0]) & (price < arg[1])


class Ferrovec:
    name = "ferrovec"

    def build(self, path, base, cat, price):
        import ferrovec

        self.db = ferrovec.open(path / "fv")
        col = self.db.create_collection(
            "b", dim=DIM, distance="cosine", hnsw={"m": M, "ef_construct": EF_CONSTRUCT}
        )
        col.create_payload_index("cat", "keyword")
        col.create_payload_index("price", "float")
        for s in range(0, len(base), BATCH):
            e = min(s + BATCH, len(base))
            pays = [{"cat": cat[i], "price": float(price[i])} for i in range(s, e)]
            col.upsert(np.arange(s, e), base[s:e], pays)
        col.optimize()
        self.col = col

    def search(self, q, spec):
        field, arg = spec
        if field == "cat":
            f = {"must": [{"key": "cat", "match": {"value": arg}}]}
        else:
            f = {"must": [{"key": "price", "range": {"gte": arg[0], "lt": arg[1]}}]}
        return [h.id for h in self.col.search(q, k=K, filter=f, with_payload=False)]


class QdrantEdge:
    name = "qdrant-edge"

    def build(self, path, base, cat, price):
        import qdrant_edge as qe

        self.qe = qe
        cfg = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine),
            hnsw_config=qe.HnswIndexConfig(
                m=M, ef_construct=EF_CONSTRUCT, full_scan_threshold=10_000
            ),
        )
        shard = qe.EdgeShard.create(str(path / "shard"), cfg)
        shard.update(qe.UpdateOperation.create_field_index("cat", qe.PayloadSchemaType.Keyword))
        shard.update(qe.UpdateOperation.create_field_index("price", qe.PayloadSchemaType.Float))
        for s in range(0, len(base), BATCH):
            e = min(s + BATCH, len(base))
            pts = [
                qe.Point(
                    id=int(i),
                    vector=base[i].tolist(),
                    payload={"cat": cat[i], "price": float(price[i])},
                )
                for i in range(s, e)
            ]
            shard.update(qe.UpdateOperation.upsert_points(pts))
        shard.optimize()
        self.shard = shard

    def search(self, q, spec):
        qe = self.qe
        field, arg = spec
        if field == "cat":
            cond = qe.FieldCondition(key="cat", match=qe.MatchValue(arg))
        else:
            cond = qe.FieldCondition(key="price", range=qe.RangeFloat(gte=arg[0], lt=arg[1]))
        req = qe.SearchRequest(
            query=qe.Query.Nearest(q.tolist()),
            limit=K,
            filter=qe.Filter(must=[cond]),
            with_payload=False,
        )
        return [p.id for p in self.shard.search(req)]


class Chroma:
    name = "chromadb"

    def build(self, path, base, cat, price):
        import chromadb

        client = chromadb.PersistentClient(path=str(path / "chroma"))
        col = client.create_collection(
            "bench",
            metadata={"hnsw:space": "cosine", "hnsw:M": M, "hnsw:construction_ef": EF_CONSTRUCT},
        )
        for s in range(0, len(base), BATCH):
            e = min(s + BATCH, len(base))
            col.add(
                ids=[str(i) for i in range(s, e)],
                embeddings=base[s:e],
                metadatas=[{"cat": cat[i], "price": float(price[i])} for i in range(s, e)],
            )
        self.col = col

    def search(self, q, spec):
        field, arg = spec
        if field == "cat":
            where = {"cat": arg}
        else:
            where = {"$and": [{"price": {"$gte": arg[0]}}, {"price": {"$lt": arg[1]}}]}
        hits = self.col.query(query_embeddings=[q], n_results=K, where=where, include=[])
        return [int(i) for i in hits["ids"][0]]


class Lance:
    name = "lancedb"

    def build(self, path, base, cat, price):
        import lancedb
        import pyarrow as pa

        db = lancedb.connect(str(path / "lance"))
        tbl = None
        for s in range(0, len(base), BATCH):
            e = min(s + BATCH, len(base))
            vec = pa.FixedSizeListArray.from_arrays(pa.array(base[s:e].ravel()), DIM)
            t = pa.table(
                {
                    "id": np.arange(s, e),
                    "vector": vec,
                    "cat": list(cat[s:e]),
                    "price": price[s:e],
                }
            )
            if tbl is None:
                tbl = db.create_table("b", data=t)
            else:
                tbl.add(t)
        assert tbl is not None
        lance_hnsw_index(tbl)
        tbl.create_scalar_index("cat", index_type="BITMAP")
        tbl.create_scalar_index("price")
        self.tbl = tbl

    def search(self, q, spec):
        field, arg = spec
        where = f"cat = '{arg}'" if field == "cat" else f"price >= {arg[0]} AND price < {arg[1]}"
        qb = self.tbl.search(q).where(where, prefilter=True).limit(K).select(["id"])
        return qb.to_arrow()["id"].to_pylist()


class QdrantLocal:
    name = "qdrant-client local"
    max_n = 20_000

    def build(self, path, base, cat, price):
        from qdrant_client import QdrantClient, models

        self.models = models
        self.client = QdrantClient(path=str(path / "qlocal"))
        self.client.create_collection(
            "b", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
        )
        for s in range(0, len(base), BATCH):
            e = min(s + BATCH, len(base))
            self.client.upsert(
                "b",
                models.Batch(
                    ids=list(range(s, e)),
                    vectors=base[s:e].tolist(),
                    payloads=[{"cat": cat[i], "price": float(price[i])} for i in range(s, e)],
                ),
            )

    def search(self, q, spec):
        m = self.models
        field, arg = spec
        if field == "cat":
            cond = m.FieldCondition(key="cat", match=m.MatchValue(value=arg))
        else:
            cond = m.FieldCondition(key="price", range=m.Range(gte=arg[0], lt=arg[1]))
        res = self.client.query_points(
            "b", query=q.tolist(), query_filter=m.Filter(must=[cond]), limit=K
        )
        return [p.id for p in res.points]


SYSTEMS = [Ferrovec(), QdrantEdge(), Chroma(), Lance(), QdrantLocal()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--systems", default="all")
    args = ap.parse_args()
    base_p, q_p, _ = cached_data(args.n)
    base = np.load(base_p)
    queries = np.load(q_p)[:N_QUERIES]
    cat, price = make_payload(args.n)
    truths = {}
    for label, spec in FILTERS:
        ids = np.flatnonzero(mask_of(spec, cat, price))
        scores = queries @ base[ids].T
        top = np.argsort(-scores, axis=1)[:, :K]
        truths[label] = [set(ids[t].tolist()) for t in top]

    wanted = None if args.systems == "all" else set(args.systems.split(","))
    rows = []
    for system in SYSTEMS:
        if wanted and system.name not in wanted:
            continue
        if args.n > getattr(system, "max_n", args.n):
            continue
        tmp = Path(tempfile.mkdtemp(prefix="fvbench-"))
        try:
            t0 = time.perf_counter()
            try:
                system.build(tmp, base, cat, price)
            except Exception as e:  # a peer that fails to build is reported, not fatal
                rows.append((system.name, "build failed", f"{type(e).__name__}: {e}"[:100]))
                print(system.name, "failed:", e, flush=True)
                continue
            build_s = time.perf_counter() - t0
            print(f"{system.name}: built in {build_s:.1f} s", flush=True)
            for label, spec in FILTERS:
                for q in queries[:20]:
                    system.search(q, spec)
                lat, hits = [], 0
                for q, truth in zip(queries, truths[label]):
                    t = time.perf_counter()
                    got = system.search(q, spec)
                    lat.append(time.perf_counter() - t)
                    hits += len(truth & {int(x) for x in got}) / max(1, len(truth))
                rec = hits / len(queries)
                p50 = statistics.median(lat) * 1e3
                qps = len(lat) / sum(lat)
                rows.append((system.name, label, f"{rec:.3f}", f"{p50:.3f}", f"{qps:,.0f}"))
                print(f"  {label}: recall {rec:.3f} p50 {p50:.3f} ms", flush=True)
        finally:
            for attr in ("db", "shard"):
                obj = getattr(system, attr, None)
                if obj is not None and hasattr(obj, "close"):
                    obj.close()
            shutil.rmtree(tmp, ignore_errors=True)

    lines = [
        f"# Filtered search: {args.n:,} x {DIM} clustered (cosine), k = {K}, M = {M}, "
        f"ef_construct = {EF_CONSTRUCT}",
        "",
        f"{N_QUERIES} queries per filter, one at a time on one thread from Python, after a "
        "warm-up; payload indexes on `cat` and `price` where the system has them; recall@10 "
        "against exact search over the matching points. One run, systems one after another.",
        "",
        "| system | filter | recall@10 | p50 ms | QPS |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append("| " + " | ".join([*r, *[""] * (5 - len(r))]) + " |")
    out = HERE / "results" / f"filtered-{args.n}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
