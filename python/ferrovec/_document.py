"""`ferrovec.Document`: a text the core turns into a sparse vector (BM25), wherever a sparse
vector is taken."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BM25 = "qdrant/bm25"


@dataclass(frozen=True)
class Document:
    """A text to embed in the core, as Qdrant's ``models.Document``: ``model`` is
    ``"qdrant/bm25"`` (the one model the core runs: tokenize, drop stop words, stem, weigh
    with BM25); ``options`` tune it (``k``, ``b``, ``avg_len``, ``language``)."""

    text: str
    model: str = BM25
    options: dict[str, Any] = field(default_factory=dict)
