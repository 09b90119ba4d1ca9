"""The document library: ingestion (chunk, embed, store) and retrieval over one collection.

Each chunk is a point: id = UUID5 of (source, chunk number), payload = source, title, chunk
number, text, the chunk's content hash and its file's; vectors = the embedder's (unnamed, "")
and a BM25 sparse vector ("bm25", IDF modifier) that the core computes from the text.
Re-ingesting a file whose text has not changed does nothing; a changed file's chunks are
replaced (the new ones written, then the old ones beyond them deleted), and a chunk whose text
is already stored keeps its vector instead of being embedded again.

Retrieval is hybrid by default (`RETRIEVAL_MODE`): the dense and the BM25 candidates fused by
reciprocal rank (or DBSF) in one query of the core. A collection made before hybrid retrieval
(no "bm25" vector) is searched dense until the next ingest, which rebuilds it with BM25
vectors (`add_bm25`, resumable if interrupted).
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import ferrovec
from ferrovec._batch import scroll_all
from ferrovec.rag import chunking, loaders
from ferrovec.rag.embed import Embedder
from ferrovec.rag.settings import Settings

log = logging.getLogger("ferrovec.rag")

_NAMESPACE = uuid.UUID("3f1c5e1e-6a4b-4c1e-9d2a-5b7e0f4a9c21")
SPARSE = "bm25"
_SPARSE_CONFIG: dict[str, Any] = {SPARSE: {"modifier": "idf"}}
_INDEXED = ("source", "chunk_hash")
# Chunks embedded per call: large enough to keep every core busy, small enough for progress.
EMBED_BATCH = 64

Progress = Callable[[int], object]


@dataclass
class IngestReport:
    documents: int = 0
    unchanged: int = 0
    chunks_written: int = 0
    chunks_embedded: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0
    sources: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _dense_dim(col: ferrovec.Collection) -> int | None:
    """The dimension of a collection's unnamed dense vector."""
    spec = col.vectors.get("")
    return None if spec is None else int(spec["dim"])


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_id(source: str, number: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{source}\0{number}"))


class Library:
    """Documents in the collection `settings.collection` of `db`, embedded by `embedder`."""

    def __init__(self, db: ferrovec.Database, settings: Settings, embedder: Embedder) -> None:
        self.db = db
        self.settings = settings
        self.embedder = embedder
        self._col: ferrovec.Collection | None = None

    def reopen(self) -> None:
        """Take the collection afresh from the store (after a restore replaced it)."""
        self._col = None

    @property
    def collection(self) -> ferrovec.Collection:
        """The collection, created on first use (cosine, the embedder's dimension, BM25 sparse
        vectors, indexes on the fields ingestion and deletion filter by)."""
        if self._col is None:
            self._resume_add_bm25()
            name = self.settings.collection
            if name in self.db.list_collections():
                col = self.db.collection(name)
                dim = _dense_dim(col)
                if dim != self.embedder.dim:
                    raise ferrovec.InvalidInputError(
                        f"collection {name!r} holds vectors of dimension {dim}, but the "
                        f"embedder {self.embedder.name} makes {self.embedder.dim}: use another "
                        "QDRANT_COLLECTION, or the embedder it was built with"
                    )
            else:
                col = self._create(name)
            for key in _INDEXED:
                col.create_payload_index(key, "keyword")  # a no-op when it exists
            self._col = col
        return self._col

    @property
    def hybrid(self) -> bool:
        """The collection has BM25 vectors (made since hybrid retrieval, or rebuilt)."""
        return SPARSE in self.collection.sparse_vectors

    def _create(self, name: str) -> ferrovec.Collection:
        return self.db.create_collection(
            name, self.embedder.dim, "cosine", exist_ok=True, sparse=_SPARSE_CONFIG
        )

    # ----- adding BM25 vectors to a collection made without them ----------------------------

    def _tmp_name(self) -> str:
        return f"{self.settings.collection}__bm25_rebuild"

    def add_bm25(self, progress: Progress | None = None) -> int:
        """Rebuild the collection with a BM25 vector for every chunk (computed from its text by
        the core), keeping ids, payloads and dense vectors; returns the chunks copied. Crash
        safe: the copy is made in a second collection first, and `collection` finishes an
        interrupted rebuild (see `_resume_add_bm25`)."""
        name, tmp = self.settings.collection, self._tmp_name()
        col = self.collection
        if SPARSE in col.sparse_vectors:
            return 0
        log.info("adding BM25 vectors to collection %r (a rebuild through %r)", name, tmp)
        if tmp in self.db.list_collections():
            self.db.drop_collection(tmp)  # an unfinished copy: the original is still whole
        copied = self._copy(col, self._create(tmp), progress)
        self._col = None
        self.db.drop_collection(name)  # from here on the copy is the only, complete one
        self._resume_add_bm25(progress)
        return copied

    def _resume_add_bm25(self, progress: Progress | None = None) -> None:
        """Finish a rebuild: while the temporary copy exists without the original, or with an
        original that already has BM25 vectors (a half-made final copy), the temporary one is
        complete and is copied into place; with the original still dense-only, the copy was
        unfinished and is dropped."""
        name, tmp = self.settings.collection, self._tmp_name()
        names = self.db.list_collections()
        if tmp not in names:
            return
        if name in names and SPARSE not in self.db.collection(name).sparse_vectors:
            self.db.drop_collection(tmp)
            return
        if name in names:
            self.db.drop_collection(name)
        source = self.db.collection(tmp)
        target = self._create(name)
        for key in _INDEXED:
            target.create_payload_index(key, "keyword")
        self._copy(source, target, progress)
        target.flush()
        self.db.drop_collection(tmp)
        log.info("collection %r rebuilt with BM25 vectors", name)

    @staticmethod
    def _copy(
        source: ferrovec.Collection, target: ferrovec.Collection, progress: Progress | None
    ) -> int:
        """Every point of `source` into `target`: dense vector, payload, and the BM25 vector
        (`source`'s, or one made from the payload's text)."""
        copied = 0
        offset = None
        while True:
            page, offset = source.scroll(1000, offset, with_vectors=True)
            if page:
                dense, sparse = [], []
                for r in page:
                    v = r.vector if isinstance(r.vector, dict) else {"": r.vector}
                    dense.append(np.asarray(v[""], dtype=np.float32))
                    text = str((r.payload or {}).get("text", ""))
                    sparse.append(v.get(SPARSE) or ferrovec.Document(text))
                target.upsert(
                    [r.id for r in page],
                    {"": np.stack(dense).astype(np.float32), SPARSE: sparse},
                    [r.payload for r in page],
                )
                copied += len(page)
                if progress is not None:
                    progress(len(page))
            if offset is None:
                return copied

    # ----- ingestion ------------------------------------------------------------------------

    def ingest_paths(
        self, paths: Iterable[str | Path], progress: Progress | None = None
    ) -> IngestReport:
        """Ingest the files and folders `paths` (see `loaders.find`)."""
        docs = (loaders.load(f, source) for f, source in loaders.find(paths))
        return self.ingest(docs, progress)

    def ingest(
        self, documents: Iterable[loaders.Document], progress: Progress | None = None
    ) -> IngestReport:
        """Ingest documents; `progress(chunks)` is called as chunks are written."""
        report = IngestReport()
        started = time.perf_counter()
        for doc in documents:
            report.documents += 1
            report.sources.append(doc.source)
            self._ingest_one(doc, report, progress)
        report.seconds = time.perf_counter() - started
        return report

    def _ingest_one(
        self, doc: loaders.Document, report: IngestReport, progress: Progress | None
    ) -> None:
        if not self.hybrid:
            self.add_bm25()  # a re-ingest brings a collection from before hybrid retrieval up
        col = self.collection
        file_hash = _sha(doc.text)
        stored = self._stored(doc.source)
        if stored and all(p.get("file_hash") == file_hash for p in stored.values()):
            report.unchanged += 1
            return
        s = self.settings
        chunks = chunking.split(doc.text, s.chunk_size, s.chunk_overlap)
        hashes = [_sha(c) for c in chunks]
        known = self._known_vectors(hashes)

        def write(ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
            # The BM25 vectors are made by the core from the texts, in parallel, as it writes.
            texts = [ferrovec.Document(p["text"]) for p in payloads]
            col.upsert(ids, {"": vectors, SPARSE: texts}, payloads)
            report.chunks_written += len(ids)
            if progress is not None:
                progress(len(ids))

        # Each batch is written on a second thread while the next one is embedded (both release
        # the GIL): the store ingests as the model works.
        with ThreadPoolExecutor(1, thread_name_prefix="ferrovec-rag-write") as writer:
            pending: Future[None] | None = None
            for start in range(0, len(chunks), EMBED_BATCH):
                part = chunks[start : start + EMBED_BATCH]
                part_hashes = hashes[start : start + EMBED_BATCH]
                todo = [i for i, h in enumerate(part_hashes) if h not in known]
                if todo:
                    fresh = self.embedder.embed_passages([part[i] for i in todo])
                    for i, v in zip(todo, fresh):
                        known[part_hashes[i]] = v
                    report.chunks_embedded += len(todo)
                vectors = np.stack([known[h] for h in part_hashes]).astype(np.float32)
                ids = [chunk_id(doc.source, start + i) for i in range(len(part))]
                payloads = [
                    {
                        "source": doc.source,
                        "title": doc.title,
                        "chunk": start + i,
                        "text": text,
                        "chunk_hash": part_hashes[i],
                        "file_hash": file_hash,
                    }
                    for i, text in enumerate(part)
                ]
                if pending is not None:
                    pending.result()  # in order, and the first error stops the document
                pending = writer.submit(write, ids, vectors, payloads)
            if pending is not None:
                pending.result()
        # The old chunks beyond the new ones (a file that shrank).
        new_ids = {chunk_id(doc.source, i) for i in range(len(chunks))}
        stale = [pid for pid in stored if pid not in new_ids]
        if stale:
            report.chunks_removed += col.delete(stale)

    def _stored(self, source: str) -> dict[str, dict[str, Any]]:
        """The stored chunks of `source`: id -> payload (hashes only)."""
        flt = {"must": [{"key": "source", "match": {"value": source}}]}
        recs = scroll_all(self.collection, flt, with_payload=["file_hash", "chunk_hash"])
        return {str(r.id): r.payload or {} for r in recs}

    def _known_vectors(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors already stored for chunks of these texts (by content hash): not embedded
        again."""
        known: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), 1000):
            flt = {"must": [{"key": "chunk_hash", "match": {"any": unique[start : start + 1000]}}]}
            recs = scroll_all(self.collection, flt, with_payload=["chunk_hash"], with_vectors=True)
            for r in recs:
                h = (r.payload or {}).get("chunk_hash")
                v = r.vector.get("") if isinstance(r.vector, dict) else r.vector
                if isinstance(h, str) and v is not None:
                    known[h] = np.asarray(v)
        return known

    def delete_source(self, source: str) -> int:
        """Delete every chunk of `source`; how many there were."""
        return self.collection.delete(
            filter={"must": [{"key": "source", "match": {"value": source}}]}
        )

    # ----- retrieval ------------------------------------------------------------------------

    def query(
        self,
        text: str,
        top_k: int | None = None,
        filter: dict[str, Any] | None = None,
        mode: str | None = None,
    ) -> list[dict[str, Any]]:
        """The chunks that best answer `text`, best first: source, title, chunk, text, score.
        `mode` (default RETRIEVAL_MODE): "hybrid" fuses the dense and the BM25 candidates,
        "dense" and "sparse" use one side; a collection without BM25 vectors answers dense."""
        s = self.settings
        mode = mode or s.retrieval_mode
        if mode not in ("hybrid", "dense", "sparse"):
            raise ferrovec.InvalidInputError(f"mode must be hybrid, dense or sparse, got {mode!r}")
        k = top_k or s.top_k
        if mode != "dense" and not self.hybrid:
            mode = "dense"  # made before hybrid retrieval: the next ingest adds BM25 vectors
        bm25 = {"text": text, "model": "qdrant/bm25"}
        request: dict[str, Any] = {
            "limit": k,
            "filter": filter,
            "with_payload": ["source", "title", "chunk", "text"],
        }
        if mode == "sparse":
            request.update(query=bm25, using=SPARSE)
        else:
            vector = self.embedder.embed_queries([text])[0].tolist()
            if mode == "dense":
                request["query"] = vector
            else:
                depth = max(s.prefetch_k, k)
                fusion: dict[str, Any] = {"fusion": "dbsf"}
                if s.fusion == "rrf":
                    fusion = {"rrf": {"weights": list(s.weights)}}
                request.update(
                    prefetch=[
                        {"query": vector, "limit": depth},
                        {"query": bm25, "using": SPARSE, "limit": depth},
                    ],
                    query=fusion,
                )
        hits = self.collection.query(request)
        return [{**(h.payload or {}), "score": h.score, "id": h.id} for h in hits]

    def sources(self) -> list[str]:
        """Every source stored, sorted."""
        return sorted(str(v) for v, _ in self.collection.facet("source", limit=1 << 30))
