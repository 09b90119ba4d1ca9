"""A LangChain vector store on a ferrovec collection, without the Qdrant layer in between.

>>> from ferrovec.integrations.langchain import FerrovecVectorStore
>>> store = FerrovecVectorStore.from_texts(texts, embeddings, path="./data")   # doctest: +SKIP
>>> store.similarity_search("question", k=4, filter={"source": "a.pdf"})       # doctest: +SKIP

Embeddings go to the core as one float32 numpy array per batch. Each point's payload is
``{"page_content": text, "metadata": {...}}``. A ``filter`` is either a dict of metadata values
that must all match (``{"source": "a.pdf", "page": 3}``) or a Qdrant filter (a dict with
``must``/``should``/``must_not``, or a ``qdrant_client.models.Filter``) over the payload, where
metadata keys are spelled ``metadata.<key>``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, Callable

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

import ferrovec
from ferrovec._batch import last_wins, unnamed_distance

try:  # langchain-qdrant's interface of sparse embeddings, when it is installed
    from langchain_qdrant import SparseEmbeddings
    from langchain_qdrant import SparseVector as _LangChainSparse
except ImportError:  # pragma: no cover - langchain-qdrant is a test dependency
    SparseEmbeddings = object  # type: ignore[assignment,misc]
    _LangChainSparse = None  # type: ignore[assignment,misc]

CONTENT = "page_content"
METADATA = "metadata"


def _filter(filter: Any) -> Any:
    """A LangChain-style metadata dict as a Qdrant filter; a Qdrant filter as it is."""
    if filter is None:
        return None
    if isinstance(filter, dict) and not (
        {"must", "should", "must_not", "min_should"} & set(filter)
    ):
        return {
            "must": [{"key": f"{METADATA}.{k}", "match": {"value": v}} for k, v in filter.items()]
        }
    return filter


class FerrovecVectorStore(VectorStore):
    """A LangChain ``VectorStore`` on a ferrovec collection.

    Pass an open ``collection``, or a ``path`` (``":memory:"`` for none) and
    ``collection_name``: the collection is created on the first write, with the embeddings'
    dimension and ``distance`` ("cosine", "dot", "euclid" or "manhattan").
    """

    def __init__(
        self,
        embedding: Embeddings,
        *,
        collection: ferrovec.Collection | None = None,
        path: str | None = None,
        collection_name: str = "langchain",
        distance: str = "cosine",
        database: ferrovec.Database | None = None,
    ) -> None:
        self._embedding = embedding
        self._distance = distance
        self._name = collection_name
        self._col = collection
        if collection is not None:
            self._db = database
            self._distance = unnamed_distance(collection)
        else:
            self._db = database or ferrovec.open(path or ":memory:")
            if collection_name in self._db.list_collections():
                self._col = self._db.collection(collection_name)
                self._distance = unnamed_distance(self._col)

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    @property
    def collection(self) -> ferrovec.Collection | None:
        """The ferrovec collection (None until the first write created it)."""
        return self._col

    def _collection(self, dim: int) -> ferrovec.Collection:
        if self._col is None:
            assert self._db is not None
            self._col = self._db.create_collection(
                self._name,
                dim,
                self._distance,  # type: ignore[arg-type]
                exist_ok=True,
            )
        return self._col

    # ----- writes ------------------------------------------------------------------------------

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        batch_size: int = 1024,
        **kwargs: Any,
    ) -> list[str]:
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            raise ferrovec.InvalidInputError(
                f"got {len(texts)} texts but {len(metadatas)} metadatas"
            )
        if ids is not None and len(ids) != len(texts):
            raise ferrovec.InvalidInputError(f"got {len(texts)} texts but {len(ids)} ids")
        out_ids = [str(i) for i in ids] if ids is not None else []
        out_ids += [str(uuid.uuid4()) for _ in range(len(texts) - len(out_ids))]
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            vectors = np.asarray(self._embedding.embed_documents(chunk), dtype=np.float32)
            payloads = [
                {CONTENT: t, METADATA: (metadatas[start + i] if metadatas else None) or {}}
                for i, t in enumerate(chunk)
            ]
            self._upsert(out_ids[start : start + batch_size], vectors, payloads)
        return out_ids

    def _upsert(self, ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        if not ids:
            return
        ids, vectors, kept = last_wins(ids, vectors, payloads)
        self._collection(vectors.shape[1]).upsert(ids, vectors, kept)

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        ids = kwargs.pop("ids", None)
        if ids is None and any(d.id for d in documents):
            ids = [d.id or str(uuid.uuid4()) for d in documents]
        return self.add_texts(
            [d.page_content for d in documents],
            [d.metadata for d in documents],
            ids=ids,
            **kwargs,
        )

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete by id (ids that do not exist are ignored); ``ids=None`` deletes nothing."""
        if ids is None or self._col is None:
            return True
        self._col.delete(list(dict.fromkeys(ids)))
        return True

    # ----- reads -------------------------------------------------------------------------------

    @staticmethod
    def _document(point: Any) -> Document:
        payload = point.payload or {}
        return Document(
            id=str(point.id),
            page_content=payload.get(CONTENT, ""),
            metadata=payload.get(METADATA) or {},
        )

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        if self._col is None:
            return []
        return [self._document(r) for r in self._col.get(list(ids))]

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        if self._col is None:
            return []
        hits = self._col.search(
            np.asarray(embedding, dtype=np.float32),
            k,
            filter=_filter(filter),
            score_threshold=kwargs.get("score_threshold"),
            ef=kwargs.get("ef"),
            exact=kwargs.get("exact", False),
        )
        return [(self._document(h), float(h.score)) for h in hits]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[Document]:
        pairs = self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)
        return [d for d, _ in pairs]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        vector = self._embedding.embed_query(query)
        return self.similarity_search_with_score_by_vector(vector, k, filter, **kwargs)

    def similarity_search(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Any = None,
        **kwargs: Any,
    ) -> list[Document]:
        if self._col is None:
            return []
        hits = self._col.search(
            np.asarray(embedding, dtype=np.float32),
            fetch_k,
            filter=_filter(filter),
            with_vectors=True,
        )
        if not hits:
            return []
        candidates: Any = np.asarray([h.vector for h in hits], dtype=np.float32)
        chosen = maximal_marginal_relevance(
            np.asarray(embedding, dtype=np.float32),
            candidates,
            lambda_mult=lambda_mult,
            k=k,
        )
        return [self._document(hits[i]) for i in chosen]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Any = None,
        **kwargs: Any,
    ) -> list[Document]:
        vector = self._embedding.embed_query(query)
        return self.max_marginal_relevance_search_by_vector(
            vector, k, fetch_k, lambda_mult, filter, **kwargs
        )

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        # ferrovec's scores: cosine and dot similarity (higher is better), euclid and manhattan
        # distances (lower is better).
        if self._distance == "cosine":
            return lambda s: (1.0 + s) / 2.0
        if self._distance == "dot":
            return lambda s: s
        if self._distance == "euclid":
            return self._euclidean_relevance_score_fn
        return lambda d: 1.0 / (1.0 + d)

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        path: str | None = None,
        collection_name: str = "langchain",
        distance: str = "cosine",
        **kwargs: Any,
    ) -> FerrovecVectorStore:
        store = cls(embedding, path=path, collection_name=collection_name, distance=distance)
        store.add_texts(texts, metadatas, ids=ids)
        return store


class BM25SparseEmbeddings(SparseEmbeddings):
    """BM25 sparse embeddings computed by ferrovec's core (Qdrant's ``qdrant/bm25``: NLTK
    stop words, Snowball stemming, murmur3 token ids; no model download), for
    langchain-qdrant's ``RetrievalMode.SPARSE`` and ``HYBRID``::

        QdrantVectorStore.from_texts(texts, embeddings, client=..., collection_name="docs",
            retrieval_mode=RetrievalMode.HYBRID, sparse_embedding=BM25SparseEmbeddings(),
            sparse_vector_params={"modifier": models.Modifier.IDF})

    Queries weigh each distinct token 1: give the sparse vector the IDF modifier, as above,
    so that rare terms count more. ``options``: ``k``, ``b``, ``avg_len``, ``language``.
    """

    def __init__(self, **options: Any) -> None:
        self.options = options

    def _convert(self, vectors: list[ferrovec.SparseVector]) -> list[Any]:
        if _LangChainSparse is None:
            return vectors
        return [_LangChainSparse(indices=v.indices, values=v.values) for v in vectors]

    def embed_documents(self, texts: list[str]) -> list[Any]:
        return self._convert(ferrovec.bm25(list(texts), options=self.options))

    def embed_query(self, text: str) -> Any:
        return self._convert(ferrovec.bm25([text], query=True, options=self.options))[0]
