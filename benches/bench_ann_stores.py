"""The peers of bench_ann.py that are stores (storage layer, payloads, their own index), each
driven through its documented Python API with M=16 and ef_construct=100 where it takes them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from bench_ann import BATCH, DIM, EF_CONSTRUCT, EFS, K, M, groups, sweep_single, timed_batch


def threaded(search_one, threads: int = 2):
    """A batch for systems without one: queries spread over `threads` Python threads."""

    def run(qs: np.ndarray) -> list:
        with ThreadPoolExecutor(threads) as ex:
            return list(ex.map(search_one, qs))

    return run


def sweep(set_ef, search_one, batch, queries, gt, efs) -> list[dict]:
    rows = []
    for ef in efs:
        if ef is not None:
            set_ef(ef)
        r = sweep_single(search_one, queries, gt)
        b = timed_batch(batch, queries, gt)
        rows.append({"ef": ef if ef is not None else "default", **r, "batch2_qps": b["qps"]})
    return rows


class QdrantEdge:
    name = "qdrant-edge"

    def build(self, path: Path, base: np.ndarray) -> dict:
        import qdrant_edge as qe

        cfg = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine),
            hnsw_config=qe.HnswIndexConfig(
                m=M, ef_construct=EF_CONSTRUCT, full_scan_threshold=10_000
            ),
        )
        shard = qe.EdgeShard.create(str(path / "shard"), cfg)
        t0 = time.perf_counter()
        for s in range(0, len(base), BATCH):
            ids = np.arange(s, min(s + BATCH, len(base)))
            pts = [
                qe.Point(id=int(i), vector=base[i].tolist(), payload=p)
                for i, p in zip(ids, groups(ids))
            ]
            shard.update(qe.UpdateOperation.upsert_points(pts))
        t_ingest = time.perf_counter() - t0
        shard.optimize()
        shard.flush()
        shard.close()
        total = time.perf_counter() - t0
        return {"ingest_s": total, "upsert_s": t_ingest, "index_s": total - t_ingest}

    def query(self, path: Path, queries: np.ndarray, gt: np.ndarray) -> dict:
        t0 = time.perf_counter()
        import qdrant_edge as qe

        t_import = time.perf_counter() - t0
        t0 = time.perf_counter()
        shard = qe.EdgeShard.load(str(path / "shard"))
        t_open = time.perf_counter() - t0
        ef_box = {"ef": None}

        def one(q):
            params = qe.SearchParams(hnsw_ef=ef_box["ef"]) if ef_box["ef"] else None
            req = qe.SearchRequest(
                query=qe.Query.Nearest(q.tolist()), limit=K, params=params, with_payload=False
            )
            return [p.id for p in shard.search(req)]

        t0 = time.perf_counter()
        one(queries[0])
        t_first = time.perf_counter() - t0
        rows = sweep(lambda ef: ef_box.update(ef=ef), one, threaded(one), queries, gt, EFS)
        return {"import_s": t_import, "open_s": t_open, "first_query_s": t_first, "sweep": rows}


class Chroma:
    name = "chromadb"
    rounds = 1

    def build(self, path: Path, base: np.ndarray) -> dict:
        import chromadb

        client = chromadb.PersistentClient(path=str(path / "chroma"))
        col = client.create_collection(
            "bench",
            metadata={"hnsw:space": "cosine", "hnsw:M": M, "hnsw:construction_ef": EF_CONSTRUCT},
        )
        t0 = time.perf_counter()
        for s in range(0, len(base), BATCH):
            ids = np.arange(s, min(s + BATCH, len(base)))
            col.add(
                ids=[str(i) for i in ids], embeddings=base[s : s + BATCH], metadatas=groups(ids)
            )
        return {"ingest_s": time.perf_counter() - t0}

    def query(self, path: Path, queries: np.ndarray, gt: np.ndarray) -> dict:
        t0 = time.perf_counter()
        import chromadb

        t_import = time.perf_counter() - t0
        t0 = time.perf_counter()
        client = chromadb.PersistentClient(path=str(path / "chroma"))
        col = client.get_collection("bench")
        t_open = time.perf_counter() - t0

        def one(q):
            return [
                int(i) for i in col.query(query_embeddings=[q], n_results=K, include=[])["ids"][0]
            ]

        def set_ef(ef):
            col.modify(configuration={"hnsw": {"ef_search": ef}})

        t0 = time.perf_counter()
        one(queries[0])
        t_first = time.perf_counter() - t0
        # Chroma 1.5 accepts modify(configuration={"hnsw": {"ef_search": ...}}) but recall did
        # not move with it in this process, so only its default is reported.
        rows = sweep(set_ef, one, threaded(one), queries, gt, [None])
        return {"import_s": t_import, "open_s": t_open, "first_query_s": t_first, "sweep": rows}


class Lance:
    name = "lancedb"
    rounds = 1

    def build(self, path: Path, base: np.ndarray) -> dict:
        import lancedb
        import pyarrow as pa

        db = lancedb.connect(str(path / "lance"))
        tbl = None
        t0 = time.perf_counter()
        for s in range(0, len(base), BATCH):
            ids = np.arange(s, min(s + BATCH, len(base)))
            vec = pa.FixedSizeListArray.from_arrays(pa.array(base[s : s + BATCH].ravel()), DIM)
            t = pa.table({"id": ids, "vector": vec, "group": [f"g{i % 20}" for i in ids]})
            if tbl is None:
                tbl = db.create_table("bench", data=t)
            else:
                tbl.add(t)
        t_ingest = time.perf_counter() - t0
        tbl = db.open_table("bench")
        tbl.create_index(
            metric="cosine",
            vector_column_name="vector",
            index_type="IVF_HNSW_SQ",
            m=M,
            ef_construction=EF_CONSTRUCT,
        )
        total = time.perf_counter() - t0
        return {"ingest_s": total, "upsert_s": t_ingest, "index_s": total - t_ingest}

    def query(self, path: Path, queries: np.ndarray, gt: np.ndarray) -> dict:
        t0 = time.perf_counter()
        import lancedb

        t_import = time.perf_counter() - t0
        t0 = time.perf_counter()
        tbl = lancedb.connect(str(path / "lance")).open_table("bench")
        t_open = time.perf_counter() - t0
        ef_box = {"ef": None}

        def one(q):
            qb = tbl.search(q).limit(K).select(["id"])
            if ef_box["ef"]:
                qb = qb.ef(ef_box["ef"])
            return qb.to_arrow()["id"].to_pylist()

        t0 = time.perf_counter()
        one(queries[0])
        t_first = time.perf_counter() - t0
        rows = sweep(lambda ef: ef_box.update(ef=ef), one, threaded(one), queries, gt, EFS)
        return {"import_s": t_import, "open_s": t_open, "first_query_s": t_first, "sweep": rows}


class Milvus:
    name = "milvus-lite"
    rounds = 1  # about 100 queries per second: one round, three ef values
    efs = (16, 64, 256)

    def build(self, path: Path, base: np.ndarray) -> dict:
        from pymilvus import MilvusClient

        client = MilvusClient(str(path / "milvus.db"))
        client.create_collection("bench", dimension=DIM, metric_type="COSINE")
        t0 = time.perf_counter()
        for s in range(0, len(base), BATCH):
            ids = np.arange(s, min(s + BATCH, len(base)))
            client.insert(
                "bench", [{"id": int(i), "vector": base[i], "group": f"g{i % 20}"} for i in ids]
            )
        client.flush("bench")
        client.close()
        return {"ingest_s": time.perf_counter() - t0}

    def query(self, path: Path, queries: np.ndarray, gt: np.ndarray) -> dict:
        t0 = time.perf_counter()
        from pymilvus import MilvusClient

        t_import = time.perf_counter() - t0
        t0 = time.perf_counter()
        client = MilvusClient(str(path / "milvus.db"))
        client.load_collection("bench")
        t_open = time.perf_counter() - t0
        ef_box = {"ef": None}

        def one(q):
            params = {"params": {"ef": ef_box["ef"]}} if ef_box["ef"] else None
            res = client.search("bench", data=[q.tolist()], limit=K, search_params=params)
            return [hit["id"] for hit in res[0]]

        t0 = time.perf_counter()
        one(queries[0])
        t_first = time.perf_counter() - t0
        rows = sweep(lambda ef: ef_box.update(ef=ef), one, threaded(one), queries, gt, self.efs)
        return {"import_s": t_import, "open_s": t_open, "first_query_s": t_first, "sweep": rows}


class QdrantLocal:
    name = "qdrant-client-local"
    rounds = 1
    max_n = 20_000  # it needs about 15 minutes to ingest 100,000

    def build(self, path: Path, base: np.ndarray) -> dict:
        from qdrant_client import QdrantClient, models

        client = QdrantClient(path=str(path / "q"))
        client.create_collection(
            "bench", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
        )
        t0 = time.perf_counter()
        for s in range(0, len(base), BATCH):
            ids = np.arange(s, min(s + BATCH, len(base)))
            client.upsert(
                "bench",
                points=models.Batch(
                    ids=[int(i) for i in ids],
                    vectors=base[s : s + BATCH].tolist(),
                    payloads=groups(ids),
                ),
            )
        client.close()
        return {"ingest_s": time.perf_counter() - t0}

    def query(self, path: Path, queries: np.ndarray, gt: np.ndarray) -> dict:
        t0 = time.perf_counter()
        from qdrant_client import QdrantClient

        t_import = time.perf_counter() - t0
        t0 = time.perf_counter()
        client = QdrantClient(path=str(path / "q"))
        t_open = time.perf_counter() - t0

        def one(q):
            return [p.id for p in client.query_points("bench", query=q.tolist(), limit=K).points]

        t0 = time.perf_counter()
        one(queries[0])
        t_first = time.perf_counter() - t0
        rows = sweep(lambda ef: None, one, threaded(one), queries, gt, [None])
        return {"import_s": t_import, "open_s": t_open, "first_query_s": t_first, "sweep": rows}


STORE_SYSTEMS = [QdrantEdge(), Chroma(), Lance(), Milvus(), QdrantLocal()]
