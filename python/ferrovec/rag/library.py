"""The document library: ingestion (chunk, embed, store) and retrieval over one collection.

Each chunk is a point: id = UUID5 of (source, chunk number), payload = source, title, chunk
number, text, the chunk's content hash and its file's. Re-ingesting a file whose text has not
changed does nothing; a changed file's chunks are replaced (the new ones written, then the old
ones beyond them deleted), and a chunk whose text is already stored keeps its vector instead of
being embedded again.
"""

from __future__ import annotations

import hashlib
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

_NAMESPACE = uuid.UUID("3f1c5e1e-6a4b-4c1e-9d2a-5b7e0f4a9c21")
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
        """The collection, created on first use (cosine, the embedder's dimension, indexes on
        the fields ingestion and deletion filter by)."""
        if self._col is None:
            name = self.settings.collection
            if name in self.db.list_collections():
                col = self.db.collection(name)
                if col.dim != self.embedder.dim:
                    raise ferrovec.InvalidInputError(
                        f"collection {name!r} holds vectors of dimension {col.dim}, but the "
                        f"embedder {self.embedder.name} makes {self.embedder.dim}: use another "
                        "QDRANT_COLLECTION, or the embedder it was built with"
                    )
            else:
                col = self.db.create_collection(name, self.embedder.dim, "cosine", exist_ok=True)
            for key in ("source", "chunk_hash"):
                col.create_payload_index(key, "keyword")  # a no-op when it exists
            self._col = col
        return self._col

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
            col.upsert(ids, vectors, payloads)
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
                if isinstance(h, str) and r.vector is not None:
                    known[h] = np.asarray(r.vector)
        return known

    def delete_source(self, source: str) -> int:
        """Delete every chunk of `source`; how many there were."""
        return self.collection.delete(
            filter={"must": [{"key": "source", "match": {"value": source}}]}
        )

    # ----- retrieval ------------------------------------------------------------------------

    def query(
        self, text: str, top_k: int | None = None, filter: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """The chunks nearest `text`, best first: source, title, chunk, text, score."""
        vector = self.embedder.embed_queries([text])[0]
        hits = self.collection.search(
            vector,
            top_k or self.settings.top_k,
            filter=filter,
            with_payload=["source", "title", "chunk", "text"],
        )
        return [{**(h.payload or {}), "score": h.score, "id": h.id} for h in hits]

    def sources(self) -> list[str]:
        """Every source stored, sorted."""
        return sorted(str(v) for v, _ in self.collection.facet("source", limit=1 << 30))
