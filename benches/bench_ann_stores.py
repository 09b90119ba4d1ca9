"""The peers of bench_ann.py that are stores (storage layer, payloads, their own index), each
driven through its documented Python API with M=16 and ef_construct=100 where it takes them."""

from __future__ import annotations

import importlib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from ann_harness import BATCH, DIM, EF_CONSTRUCT, K, M, groups, query_result
from measure import timed


def threaded(search_one, threads: int = 2):
    """A batch for systems without one: queries spread over `threads` Python threads."""

    def run(qs: np.ndarray) -> list:
        with ThreadPoolExecutor(threads) as ex:
            return list(ex.map(search_one, qs))

    return run


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
        qe, t_import = timed(lambda: importlib.import_module("qdrant_edge"))
        shard, t_open = timed(lambda: qe.EdgeShard.load(str(path / "shard")))
        ef_box = {"ef": None}

        def one(q):
            params = qe.SearchParams(hnsw_ef=ef_box["ef"]) if ef_box["ef"] else None
            req = qe.SearchRequest(
                query=qe.Query.Nearest(q.tolist()), limit=K, params=params, with_payload=False
            )
            return [p.id for p in shard.search(req)]

        set_ef = lambda ef: ef_box.update(ef=ef)  # noqa: E731
        return query_result(t_import, t_open, one, threaded(one), set_ef, queries, gt)


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
        chromadb, t_import = timed(lambda: importlib.import_module("chromadb"))
        col, t_open = timed(
            lambda: chromadb.PersistentClient(path=str(path / "chroma")).get_collection("bench")
        )

        def one(q):
            hits = col.query(query_embeddings=[q], n_results=K, include=[])
            return [int(i) for i in hits["ids"][0]]

        # Chroma 1.5 accepts modify(configuration={"hnsw": {"ef_search": ...}}) but recall did
        # not move with it in this process, so only its default is reported.
        return query_result(
            t_import, t_open, one, threaded(one), lambda ef: None, queries, gt, [None]
        )


def lance_hnsw_index(tbl) -> None:
    """LanceDB's HNSW index (IVF partitions, scalar-quantised) with the shared M and ef."""
    tbl.create_index(
        metric="cosine",
        vector_column_name="vector",
        index_type="IVF_HNSW_SQ",
        m=M,
        ef_construction=EF_CONSTRUCT,
    )


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
        lance_hnsw_index(tbl)
        total = time.perf_counter() - t0
        return {"ingest_s": total, "upsert_s": t_ingest, "index_s": total - t_ingest}

    def query(self, path: Path, queries: np.ndarray, gt: np.ndarray) -> dict:
        lancedb, t_import = timed(lambda: importlib.import_module("lancedb"))
        tbl, t_open = timed(lambda: lancedb.connect(str(path / "lance")).open_table("bench"))
        ef_box = {"ef": None}

        def one(q):
            qb = tbl.search(q).limit(K).select(["id"])
            if ef_box["ef"]:
                qb = qb.ef(ef_box["ef"])
            return qb.to_arrow()["id"].to_pylist()

        set_ef = lambda ef: ef_box.update(ef=ef)  # noqa: E731
        return query_result(t_import, t_open, one, threaded(one), set_ef, queries, gt)


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
        pymilvus, t_import = timed(lambda: importlib.import_module("pymilvus"))

        def connect():
            client = pymilvus.MilvusClient(str(path / "milvus.db"))
            client.load_collection("bench")
            return client

        client, t_open = timed(connect)
        ef_box = {"ef": None}

        def one(q):
            params = {"params": {"ef": ef_box["ef"]}} if ef_box["ef"] else None
            res = client.search("bench", data=[q.tolist()], limit=K, search_params=params)
            return [hit["id"] for hit in res[0]]

        set_ef = lambda ef: ef_box.update(ef=ef)  # noqa: E731
        return query_result(t_import, t_open, one, threaded(one), set_ef, queries, gt, self.efs)


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
        qdrant_client, t_import = timed(lambda: importlib.import_module("qdrant_client"))
        client, t_open = timed(lambda: qdrant_client.QdrantClient(path=str(path / "q")))

        def one(q):
            return [p.id for p in client.query_points("bench", query=q.tolist(), limit=K).points]

        return query_result(
            t_import, t_open, one, threaded(one), lambda ef: None, queries, gt, [None]
        )


STORE_SYSTEMS = [QdrantEdge(), Chroma(), Lance(), Milvus(), QdrantLocal()]
