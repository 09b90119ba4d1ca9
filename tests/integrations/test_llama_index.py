"""LlamaIndex: ferrovec's native vector store on LlamaIndex's documented behaviour, and
llama-index-vector-stores-qdrant's QdrantVectorStore handed ferrovec's clients."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)
from llama_index.vector_stores.qdrant import QdrantVectorStore

import ferrovec
from ferrovec.integrations.llama_index import FerrovecVectorStore

DIM = 16


def nodes() -> list[TextNode]:
    rng = np.random.default_rng(3)
    out = []
    for i in range(12):
        doc = f"doc{i % 3}"
        out.append(
            TextNode(
                id_=f"00000000-0000-0000-0000-{i:012d}",
                text=f"text {i}",
                metadata={"doc": doc, "i": i, "kind": "even" if i % 2 == 0 else "odd"},
                embedding=rng.standard_normal(DIM).tolist(),
                relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc)},
            )
        )
    return out


def query(store: object, vector: list[float], k: int, filters: MetadataFilters | None = None):  # type: ignore[no-untyped-def]
    return store.query(  # type: ignore[attr-defined]
        VectorStoreQuery(query_embedding=vector, similarity_top_k=k, filters=filters)
    )


def test_native_store(tmp_path: Path) -> None:
    ns = nodes()
    store = FerrovecVectorStore(path=str(tmp_path / "db"), collection_name="li")
    assert store.add(ns) == [n.node_id for n in ns]
    res = query(store, ns[4].embedding, 3)
    assert res.ids[0] == ns[4].node_id and res.nodes[0].get_content() == "text 4"
    assert res.similarities[0] > 0.99
    evens_over_4 = MetadataFilters(
        filters=[
            MetadataFilter(key="kind", value="even"),
            MetadataFilter(key="i", value=4, operator=FilterOperator.GT),
        ],
        condition=FilterCondition.AND,
    )
    res = query(store, ns[0].embedding, 12, evens_over_4)
    assert sorted(n.metadata["i"] for n in res.nodes) == [6, 8, 10]
    either = MetadataFilters(
        filters=[
            MetadataFilter(key="i", value=[1, 2], operator=FilterOperator.IN),
            MetadataFilter(key="doc", value="doc0"),
        ],
        condition=FilterCondition.OR,
    )
    assert sorted(n.metadata["i"] for n in query(store, ns[0].embedding, 12, either).nodes) == [
        0,
        1,
        2,
        3,
        6,
        9,
    ]
    store.delete("doc1")  # by ref_doc_id
    left = query(store, ns[0].embedding, 12)
    assert sorted(n.metadata["i"] for n in left.nodes) == [0, 2, 3, 5, 6, 8, 9, 11]
    assert [n.node_id for n in store.get_nodes([ns[0].node_id])] == [ns[0].node_id]
    store.close()
    again = FerrovecVectorStore(path=str(tmp_path / "db"), collection_name="li")
    assert len(query(again, ns[0].embedding, 12).ids) == 8
    assert query(again, ns[9].embedding, 1).ids == [ns[9].node_id]


def test_llama_index_qdrant_on_ferrovec_clients(tmp_path: Path) -> None:
    ns = nodes()
    client = ferrovec.QdrantClient(path=tmp_path / "db")
    store = QdrantVectorStore(collection_name="li", client=client)
    store.add(ns)
    res = query(store, ns[4].embedding, 3)
    assert res.ids[0] == ns[4].node_id
    flt = MetadataFilters(filters=[MetadataFilter(key="kind", value="odd")])
    assert {n.metadata["kind"] for n in query(store, ns[0].embedding, 12, flt).nodes} == {"odd"}
    store.delete("doc2")
    assert client.count("li").count == 8
    client.close()

    async def run() -> None:
        aclient = ferrovec.AsyncQdrantClient(path=tmp_path / "db2")
        astore = QdrantVectorStore(collection_name="li", aclient=aclient)
        await astore.async_add(ns)
        res = await astore.aquery(
            VectorStoreQuery(query_embedding=ns[7].embedding, similarity_top_k=2)
        )
        assert res.ids[0] == ns[7].node_id
        await aclient.close()

    asyncio.run(run())
