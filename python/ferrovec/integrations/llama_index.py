"""A LlamaIndex vector store on a ferrovec collection.

>>> from llama_index.core import StorageContext, VectorStoreIndex              # doctest: +SKIP
>>> from ferrovec.integrations.llama_index import FerrovecVectorStore
>>> store = FerrovecVectorStore(path="./data", collection_name="docs")         # doctest: +SKIP
>>> index = VectorStoreIndex.from_documents(                                    # doctest: +SKIP
...     docs, storage_context=StorageContext.from_defaults(vector_store=store))

Nodes are stored with LlamaIndex's own serialisation (``node_to_metadata_dict``): metadata keys
at the top of the payload, so ``MetadataFilters`` map onto ferrovec's filters directly (indexes
created with ``store.collection.create_payload_index`` speed them up).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

import ferrovec
from ferrovec._batch import last_wins, scroll_all, unnamed_distance
from ferrovec.errors import UnsupportedError


def _condition(f: MetadataFilter) -> dict[str, Any]:
    """One LlamaIndex filter as a Qdrant JSON condition."""
    key, value, op = f.key, f.value, f.operator
    if op == FilterOperator.EQ:
        return {"key": key, "match": {"value": value}}
    if op == FilterOperator.NE:
        return {"must_not": [{"key": key, "match": {"value": value}}]}
    if op in (FilterOperator.GT, FilterOperator.GTE, FilterOperator.LT, FilterOperator.LTE):
        bound = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}[op.value]
        return {"key": key, "range": {bound: value}}
    if op in (FilterOperator.IN, FilterOperator.ANY):
        return {"key": key, "match": {"any": list(value)}}  # type: ignore[arg-type]
    if op == FilterOperator.NIN:
        return {"key": key, "match": {"except": list(value)}}  # type: ignore[arg-type]
    if op == FilterOperator.ALL:
        return {"must": [{"key": key, "match": {"value": v}} for v in value]}  # type: ignore[union-attr]
    if op == FilterOperator.CONTAINS:
        return {"key": key, "match": {"value": value}}  # an array at `key` holding `value`
    if op == FilterOperator.TEXT_MATCH:
        return {"key": key, "match": {"text": value}}
    if op == FilterOperator.IS_EMPTY:
        return {"is_empty": {"key": key}}
    raise UnsupportedError(f"LlamaIndex filter operator {op} is not supported")


def to_filter(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """LlamaIndex's MetadataFilters (nested, with AND / OR / NOT) as a Qdrant JSON filter."""
    if filters is None or not filters.filters:
        return None
    conds = [
        to_filter(f) if isinstance(f, MetadataFilters) else _condition(f) for f in filters.filters
    ]
    cond = filters.condition or FilterCondition.AND
    if cond == FilterCondition.AND:
        return {"must": conds}
    if cond == FilterCondition.OR:
        return {"should": conds}
    return {"must_not": conds}


class FerrovecVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store on a ferrovec collection, created on the first ``add`` with
    the embeddings' dimension. ``path=":memory:"`` keeps it in memory."""

    stores_text: bool = True
    flat_metadata: bool = False
    collection_name: str = "llama_index"
    distance: str = "cosine"

    _db: Any = PrivateAttr()
    _col: Any = PrivateAttr(default=None)

    def __init__(
        self,
        path: str = ":memory:",
        collection_name: str = "llama_index",
        distance: str = "cosine",
        database: ferrovec.Database | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(  # type: ignore[call-arg]
            collection_name=collection_name, distance=distance, **kwargs
        )
        self._db = database or ferrovec.open(path)
        if collection_name in self._db.list_collections():
            self._col = self._db.collection(collection_name)
            unnamed_distance(self._col)

    @classmethod
    def class_name(cls) -> str:
        return "FerrovecVectorStore"

    @property
    def client(self) -> Any:
        return self._db

    @property
    def collection(self) -> ferrovec.Collection | None:
        return self._col  # type: ignore[no-any-return]

    def close(self) -> None:
        self._db.close()

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        if not nodes:
            return []
        vectors = np.asarray([n.get_embedding() for n in nodes], dtype=np.float32)
        if self._col is None:
            self._col = self._db.create_collection(
                self.collection_name, vectors.shape[1], self.distance, exist_ok=True
            )
        ids = [n.node_id for n in nodes]
        payloads = [
            node_to_metadata_dict(n, remove_text=False, flat_metadata=self.flat_metadata)
            for n in nodes
        ]
        self._col.upsert(*last_wins(ids, vectors, payloads))
        return ids

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the document ``ref_doc_id``."""
        if self._col is not None:
            self._col.delete(
                filter={"must": [{"key": "ref_doc_id", "match": {"value": ref_doc_id}}]}
            )

    def delete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        if self._col is None or (node_ids is None and filters is None):
            return
        conds: list[Any] = []
        flt = to_filter(filters)
        if flt is not None:
            conds.append(flt)
        if node_ids is not None:
            conds.append({"has_id": list(node_ids)})
        self._col.delete(filter={"must": conds})

    def clear(self) -> None:
        if self._col is not None:
            self._db.drop_collection(self.collection_name)
            self._col = None

    def get_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        if self._col is None:
            return []
        flt = to_filter(filters)
        if node_ids is not None:
            recs = self._col.get(node_ids, with_vectors=True)
            if flt is not None:
                keep = {r.id for r in scroll_all(self._col, flt, with_payload=False)}
                recs = [r for r in recs if r.id in keep]
        else:
            recs = scroll_all(self._col, flt, with_vectors=True)
        return [self._node(r) for r in recs]

    @staticmethod
    def _node(point: Any) -> BaseNode:
        node = metadata_dict_to_node(point.payload or {})
        if getattr(point, "vector", None) is not None:
            node.embedding = [float(x) for x in point.vector]
        return node

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        if self._col is None or query.query_embedding is None:
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        conds = []
        flt = to_filter(query.filters)
        if flt is not None:
            conds.append(flt)
        if query.doc_ids:
            conds.append({"key": "ref_doc_id", "match": {"any": list(query.doc_ids)}})
        if query.node_ids:
            conds.append({"has_id": list(query.node_ids)})
        hits = self._col.search(
            np.asarray(query.query_embedding, dtype=np.float32),
            query.similarity_top_k,
            filter={"must": conds} if conds else None,
            ef=kwargs.get("ef"),
        )
        return VectorStoreQueryResult(
            nodes=[self._node(h) for h in hits],
            similarities=[float(h.score) for h in hits],
            ids=[str(h.id) for h in hits],
        )


def bm25_sparse_doc_fn(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
    """BM25 document vectors computed by ferrovec's core, as llama-index's
    ``QdrantVectorStore(enable_hybrid=True, sparse_doc_fn=...)`` takes them (no fastembed, no
    model download). Pair with :func:`bm25_sparse_query_fn`, and give the collection's sparse
    vector the IDF modifier (``sparse_config=SparseVectorParams(modifier=Modifier.IDF)``)."""
    vectors = ferrovec.bm25(list(texts))
    return [v.indices for v in vectors], [v.values for v in vectors]


def bm25_sparse_query_fn(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
    """BM25 query vectors (each distinct token weighs 1) for ``sparse_query_fn=...``."""
    vectors = ferrovec.bm25(list(texts), query=True)
    return [v.indices for v in vectors], [v.values for v in vectors]
