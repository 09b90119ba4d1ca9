"""LangChain: ferrovec's native FerrovecVectorStore passes LangChain's standard vector-store
suite (sync and async), and langchain-qdrant's QdrantVectorStore works unchanged when handed
ferrovec's QdrantClient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import VectorStore
from langchain_qdrant import QdrantVectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests
from qdrant_client import models as m

import ferrovec
from ferrovec.integrations.langchain import FerrovecVectorStore


class TestFerrovecVectorStore(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self, tmp_path: Path) -> Iterator[VectorStore]:  # type: ignore[override]
        db = ferrovec.open(tmp_path / "db")
        yield FerrovecVectorStore(self.get_embeddings(), database=db)
        db.close()


def docs() -> list[Document]:
    return [
        Document(page_content="the cat sat on the mat", metadata={"animal": "cat", "n": 1}),
        Document(page_content="dogs chase cats", metadata={"animal": "dog", "n": 2}),
        Document(page_content="a bird in the hand", metadata={"animal": "bird", "n": 3}),
        Document(page_content="the dog barked", metadata={"animal": "dog", "n": 4}),
    ]


def test_native_store_filters_mmr_and_reopen(tmp_path: Path) -> None:
    emb = DeterministicFakeEmbedding(size=32)
    store = FerrovecVectorStore.from_texts(
        [d.page_content for d in docs()],
        emb,
        [d.metadata for d in docs()],
        ids=["a", "b", "c", "d"],
        path=str(tmp_path / "db"),
    )
    hits = store.similarity_search_with_score("the dog barked", k=2)
    assert hits[0][0].page_content == "the dog barked" and hits[0][1] == pytest.approx(1.0)
    only_dogs = store.similarity_search("the cat sat on the mat", k=4, filter={"animal": "dog"})
    assert sorted(d.id for d in only_dogs) == ["b", "d"]
    qfilter = {"must": [{"key": "metadata.n", "range": {"gte": 3}}]}
    assert sorted(d.id for d in store.similarity_search("x", k=4, filter=qfilter)) == ["c", "d"]
    mmr = store.max_marginal_relevance_search("the dog barked", k=2, fetch_k=4)
    assert mmr[0].id == "d" and len({d.id for d in mmr}) == 2
    store.delete(["a"])
    assert store.get_by_ids(["a", "b"]) == [
        Document(id="b", page_content="dogs chase cats", metadata={"animal": "dog", "n": 2})
    ]
    store._db.close()  # type: ignore[union-attr]
    again = FerrovecVectorStore(emb, path=str(tmp_path / "db"))
    assert sorted(d.id for d in again.similarity_search("x", k=10)) == ["b", "c", "d"]


def test_langchain_qdrant_on_ferrovec_client(tmp_path: Path) -> None:
    emb = DeterministicFakeEmbedding(size=32)
    client = ferrovec.QdrantClient(path=tmp_path / "db")
    client.create_collection(
        "lc", vectors_config=m.VectorParams(size=32, distance=m.Distance.COSINE)
    )
    store = QdrantVectorStore(client=client, collection_name="lc", embedding=emb)
    ids = store.add_documents(docs())
    assert len(ids) == 4 and client.count("lc").count == 4
    top = store.similarity_search_with_score("dogs chase cats", k=1)
    assert top[0][0].page_content == "dogs chase cats" and top[0][1] == pytest.approx(1.0)
    assert top[0][0].metadata["animal"] == "dog"
    flt = m.Filter(must=[m.FieldCondition(key="metadata.animal", match=m.MatchValue(value="dog"))])
    found = store.similarity_search("a bird in the hand", k=4, filter=flt)
    assert {d.metadata["n"] for d in found} == {2, 4}
    mmr = store.max_marginal_relevance_search("the dog barked", k=2, fetch_k=4)
    assert mmr[0].page_content == "the dog barked" and len(mmr) == 2
    assert store.delete([ids[0]])
    assert client.count("lc").count == 3
    assert [d.page_content for d in store.get_by_ids(ids[1:2])] == ["dogs chase cats"]


def test_langchain_qdrant_with_a_named_vector(tmp_path: Path) -> None:
    """With `vector_name=`, langchain-qdrant writes points as {name: vector} to a collection of
    named vectors and queries with using=name; it survives a reopen."""
    emb = DeterministicFakeEmbedding(size=16)
    client = ferrovec.QdrantClient(path=tmp_path / "db")
    client.create_collection(
        "named",
        vectors_config={
            "text": m.VectorParams(size=16, distance=m.Distance.COSINE),
        },
    )
    store = QdrantVectorStore(
        client=client, collection_name="named", embedding=emb, vector_name="text"
    )
    ids = store.add_documents(docs())
    params = client.get_collection("named").config.params.vectors
    assert isinstance(params, dict) and params["text"].size == 16
    top = store.similarity_search_with_score("the dog barked", k=2)
    assert top[0][0].page_content == "the dog barked" and top[0][1] == pytest.approx(1.0)
    mmr = store.max_marginal_relevance_search("a bird in the hand", k=2, fetch_k=4)
    assert mmr[0].page_content == "a bird in the hand"
    assert store.delete([ids[0]])
    client.close()
    again = ferrovec.QdrantClient(path=tmp_path / "db")
    store = QdrantVectorStore(
        client=again, collection_name="named", embedding=emb, vector_name="text"
    )
    assert store.similarity_search("dogs chase cats", k=1)[0].page_content == "dogs chase cats"
    assert again.count("named").count == 3
    record = again.retrieve("named", [ids[1]], with_vectors=True)
    assert set(record[0].vector) == {"text"}  # type: ignore[arg-type]
    again.close()
