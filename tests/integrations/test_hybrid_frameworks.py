"""The frameworks' hybrid modes on ferrovec's clients, with ferrovec's BM25 (computed by the
core, no model download): langchain-qdrant's RetrievalMode.SPARSE and HYBRID (its dense
vector named "", its sparse one "langchain-sparse") and llama-index's
QdrantVectorStore(enable_hybrid=True), each run unchanged on ferrovec.QdrantClient and on
qdrant-client's local mode, which must return the same documents in the same order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_qdrant import QdrantVectorStore as LangChainQdrant
from langchain_qdrant import RetrievalMode
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode
from llama_index.vector_stores.qdrant import QdrantVectorStore as LlamaQdrant
from qdrant_client import QdrantClient as Reference
from qdrant_client import models as m

import ferrovec
from ferrovec.integrations.langchain import BM25SparseEmbeddings
from ferrovec.integrations.llama_index import bm25_sparse_doc_fn, bm25_sparse_query_fn

TEXTS = [
    "The stemmer reduces running, runs and ran to a common stem.",
    "Write-ahead logs make a database survive power loss and crashes.",
    "Reciprocal rank fusion merges ranked lists from several retrievers.",
    "The inverted index maps every term to the documents containing it.",
    "Cats sleep most of the day and hunt at night.",
    "Tokenizers split text into words before stemming and stop-word removal.",
    "A checkpoint writes segments so the log can be truncated.",
    "Dense embeddings capture meaning; sparse BM25 vectors capture exact terms.",
]
QUERIES = ["how does stemming work", "crash recovery with a log", "fusion of ranked lists"]


def documents() -> list[Document]:
    return [Document(page_content=t, metadata={"n": i}) for i, t in enumerate(TEXTS)]


def langchain_store(client: object, mode: RetrievalMode, emb: object) -> LangChainQdrant:
    """The collection as langchain-qdrant's from_texts makes it (dense "" and/or sparse
    "langchain-sparse" with the IDF modifier), and the store on it."""
    dense = {"": m.VectorParams(size=16, distance=m.Distance.COSINE)}
    client.create_collection(  # type: ignore[attr-defined]
        "lc",
        vectors_config=dense if mode == RetrievalMode.HYBRID else {},
        sparse_vectors_config={"langchain-sparse": m.SparseVectorParams(modifier=m.Modifier.IDF)},
    )
    return LangChainQdrant(
        client=client,  # type: ignore[arg-type]
        collection_name="lc",
        embedding=emb if mode == RetrievalMode.HYBRID else None,  # type: ignore[arg-type]
        retrieval_mode=mode,
        sparse_embedding=BM25SparseEmbeddings(),
    )


@pytest.mark.parametrize("mode", [RetrievalMode.SPARSE, RetrievalMode.HYBRID])
def test_langchain_qdrant_sparse_and_hybrid(mode: RetrievalMode, tmp_path: Path) -> None:
    emb = DeterministicFakeEmbedding(size=16)
    found = {}
    for name, client in (
        ("ferrovec", ferrovec.QdrantClient(path=tmp_path / "db")),
        ("local", Reference(":memory:")),
    ):
        store = langchain_store(client, mode, emb)
        store.add_documents(
            documents(), ids=[f"00000000-0000-0000-0000-{i:012d}" for i in range(len(TEXTS))]
        )
        found[name] = [
            [(d.metadata["n"], round(s, 4)) for d, s in store.similarity_search_with_score(q, 4)]
            for q in QUERIES
        ]
        if name == "ferrovec":
            info = client.get_collection("lc")
            assert "langchain-sparse" in info.config.params.sparse_vectors
    assert found["ferrovec"] == found["local"]
    # BM25 finds each query's document first (the dense half is a fake embedding).
    if mode == RetrievalMode.SPARSE:
        assert [hits[0][0] for hits in found["ferrovec"]] == [0, 1, 2]


def test_langchain_hybrid_survives_a_reopen(tmp_path: Path) -> None:
    emb = DeterministicFakeEmbedding(size=16)
    client = ferrovec.QdrantClient(path=tmp_path / "db")
    store = langchain_store(client, RetrievalMode.HYBRID, emb)
    store.add_documents(documents())
    before = [d.page_content for d in store.similarity_search("stemming and tokenizers", 3)]
    client.close()
    again = ferrovec.QdrantClient(path=tmp_path / "db")
    store = LangChainQdrant(
        client=again,
        collection_name="lc",
        embedding=emb,
        retrieval_mode=RetrievalMode.HYBRID,
        sparse_embedding=BM25SparseEmbeddings(),
    )
    assert [d.page_content for d in store.similarity_search("stemming and tokenizers", 3)] == before
    again.close()


def llama_nodes() -> list[TextNode]:
    emb = DeterministicFakeEmbedding(size=16)
    return [
        TextNode(
            id_=f"00000000-0000-0000-0000-{i:012d}",
            text=t,
            metadata={"n": i},
            embedding=emb.embed_query(t),
        )
        for i, t in enumerate(TEXTS)
    ]


def llama_store(client: object = None, aclient: object = None) -> LlamaQdrant:
    return LlamaQdrant(
        collection_name="li",
        client=client,
        aclient=aclient,
        enable_hybrid=True,
        sparse_doc_fn=bm25_sparse_doc_fn,
        sparse_query_fn=bm25_sparse_query_fn,
        sparse_config=m.SparseVectorParams(modifier=m.Modifier.IDF),
    )


def llama_queries() -> list[VectorStoreQuery]:
    emb = DeterministicFakeEmbedding(size=16)
    out = []
    for q in QUERIES:
        for mode in (VectorStoreQueryMode.HYBRID, VectorStoreQueryMode.SPARSE):
            out.append(
                VectorStoreQuery(
                    query_embedding=emb.embed_query(q),
                    query_str=q,
                    similarity_top_k=3,
                    sparse_top_k=4,
                    mode=mode,
                )
            )
    return out


# llama-index creates payload indexes, which local mode warns it ignores.
@pytest.mark.filterwarnings("ignore:Payload indexes have no effect")
def test_llama_index_enable_hybrid(tmp_path: Path) -> None:
    found = {}
    for name, client in (
        ("ferrovec", ferrovec.QdrantClient(path=tmp_path / "db")),
        ("local", Reference(":memory:")),
    ):
        store = llama_store(client=client)
        store.add(llama_nodes())
        found[name] = [
            [(n.metadata["n"], round(s, 4)) for n, s in zip(r.nodes, r.similarities)]
            for r in (store.query(q) for q in llama_queries())
        ]
    assert found["ferrovec"] == found["local"]
    sparse_tops = [hits[0][0] for hits in found["ferrovec"][1::2]]
    assert sparse_tops == [0, 1, 2]


def test_llama_index_enable_hybrid_async(tmp_path: Path) -> None:
    async def run() -> list[int]:
        aclient = ferrovec.AsyncQdrantClient(path=tmp_path / "db")
        store = llama_store(aclient=aclient)
        await store.async_add(llama_nodes())
        tops = []
        for q in llama_queries()[1::2]:
            r = await store.aquery(q)
            tops.append(r.nodes[0].metadata["n"])
        await aclient.close()
        return tops

    assert asyncio.run(run()) == [0, 1, 2]
