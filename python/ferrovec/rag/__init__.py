"""ferrovec's RAG backend: ingestion with offline embeddings, retrieval, and a FastAPI service.

Needs the `rag` extra (``pip install "ferrovec[rag]"``); ``import ferrovec`` alone never imports
it, FastAPI or a model.
"""

from __future__ import annotations

from ferrovec.rag.chunking import split
from ferrovec.rag.embed import Embedder, HashEmbedder, make_embedder
from ferrovec.rag.ingest import IngestReport
from ferrovec.rag.library import Library
from ferrovec.rag.loaders import Document
from ferrovec.rag.settings import Settings

__all__ = [
    "Document",
    "Embedder",
    "HashEmbedder",
    "IngestReport",
    "Library",
    "Settings",
    "make_embedder",
    "split",
]
