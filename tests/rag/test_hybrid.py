"""Hybrid retrieval in the RAG library: every chunk gets a BM25 vector at ingest, queries fuse
dense and BM25 candidates (RETRIEVAL_MODE, FUSION, FUSION_WEIGHTS), and a collection made before
hybrid retrieval keeps answering (dense) until the next ingest rebuilds it with BM25 vectors,
a rebuild that survives SIGKILL at any moment."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ferrovec
from ferrovec.errors import InvalidInputError
from ferrovec.rag import HashEmbedder, Library, Settings
from ferrovec.rag.library import SPARSE, chunk_id
from ferrovec.rag.loaders import Document

TOPICS = {
    "fsync": "The write-ahead log is fsynced before a write is acknowledged.",
    "stemming": "Snowball stemming maps running and runs to one stem.",
    "fusion": "Reciprocal rank fusion adds one over rank plus k for each list.",
    "snapshot": "A snapshot archive holds every segment file and the manifest.",
}


def docs() -> list[Document]:
    return [Document(source=f"{k}.txt", title=k, text=t) for k, t in TOPICS.items()]


def library(path: Path, **settings: object) -> Library:
    db = ferrovec.open(path)
    return Library(db, Settings(**settings), HashEmbedder(64))  # type: ignore[arg-type]


def test_hybrid_is_the_default_and_every_mode_answers(tmp_path: Path) -> None:
    lib = library(tmp_path / "db")
    lib.ingest(docs())
    assert lib.hybrid and lib.settings.retrieval_mode == "hybrid"
    (rec,) = lib.collection.get([chunk_id("stemming.txt", 0)], with_vectors=True)
    assert rec.vector[SPARSE] == ferrovec.bm25([TOPICS["stemming"]])[0]
    # The hash embedder knows no meaning: BM25 is what finds "stems" for "stemming".
    for mode in ("hybrid", "sparse"):
        top = lib.query("how are words stemmed", 2, mode=mode)
        assert top[0]["source"] == "stemming.txt", mode
    assert len(lib.query("anything", 3, mode="dense")) == 3
    flt = {"must": [{"key": "source", "match": {"value": "fusion.txt"}}]}
    assert [h["source"] for h in lib.query("stemming", 5, flt)] == ["fusion.txt"]
    dbsf = library(tmp_path / "db2", fusion="dbsf", fusion_weights="2,1")
    dbsf.ingest(docs())
    assert dbsf.query("snapshot archive", 1)[0]["source"] == "snapshot.txt"
    with pytest.raises(InvalidInputError, match="RETRIEVAL_MODE"):
        Settings(retrieval_mode="semantic")
    with pytest.raises(InvalidInputError, match="FUSION_WEIGHTS"):
        Settings(fusion_weights="1")


def old_collection(path: Path, n: int) -> list[str]:
    """A collection as the library made it before hybrid retrieval: dense vectors only."""
    emb = HashEmbedder(64)
    db = ferrovec.open(path)
    col = db.create_collection("rag_collection", 64, "cosine")
    texts = [f"chunk {i} about {random.Random(i).choice(list(TOPICS.values()))}" for i in range(n)]
    ids = [chunk_id(f"s{i % 7}.txt", i) for i in range(n)]
    col.upsert(
        ids,
        emb.embed_passages(texts),
        [{"source": f"s{i % 7}.txt", "chunk": i, "text": t} for i, t in enumerate(texts)],
    )
    db.close()
    return ids


def test_an_old_collection_answers_dense_until_a_reingest_adds_bm25(tmp_path: Path) -> None:
    ids = old_collection(tmp_path / "db", 50)
    lib = library(tmp_path / "db")
    assert not lib.hybrid
    assert len(lib.query("fusion", 5)) == 5  # hybrid asked, dense answered
    before = {r.id: (r.payload, r.vector) for r in lib.collection.get(ids, with_vectors=True)}
    lib.ingest(docs())
    assert lib.hybrid and len(lib.collection) == 54
    after = {r.id: r for r in lib.collection.get(ids, with_vectors=True)}
    for pid, (payload, vector) in before.items():
        assert after[pid].payload == payload
        assert np.allclose(after[pid].vector[""], vector)
        assert after[pid].vector[SPARSE] == ferrovec.bm25([payload["text"]])[0]
    assert lib.query("reciprocal rank", 1, mode="sparse")[0]["source"] == "fusion.txt"
    assert "rag_collection__bm25_rebuild" not in lib.db.list_collections()


REBUILD = """
import sys
import ferrovec
from ferrovec.rag import HashEmbedder, Library, Settings
db = ferrovec.open(sys.argv[1])
lib = Library(db, Settings(), HashEmbedder(64))
lib.add_bm25(progress=lambda n: print(n, flush=True))
print("done", flush=True)
"""


@pytest.mark.slow
def test_a_rebuild_killed_at_any_moment_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db"
    ids = old_collection(path, 5000)
    rng = random.Random(7)
    for cycle in range(6):
        child = subprocess.Popen(
            [sys.executable, "-c", REBUILD, str(path)], stdout=subprocess.PIPE, text=True
        )
        time.sleep(rng.uniform(0.05, 1.5))
        child.kill()
        child.communicate()
        # Whatever state the kill left, opening the library finishes or undoes the rebuild.
        lib = library(path)
        col = lib.collection
        assert len(col) == 5000, cycle
        recs = col.get(ids[::97], with_vectors=True)
        assert len(recs) == len(ids[::97])
        if lib.hybrid:
            assert all(SPARSE in r.vector for r in recs)
            break
        lib.db.close()
    else:  # never killed late enough: finish it here
        lib.add_bm25()
        assert lib.hybrid
    assert json.dumps(lib.collection.info()["points"]) == "5000"
    assert lib.query("snapshot", 3, mode="sparse")
