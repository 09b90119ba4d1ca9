"""qdrant-client's API over an embedded ferrovec store: :class:`QdrantClient` and
:class:`AsyncQdrantClient` (see ``docs/QDRANT.md``)."""

from __future__ import annotations

from ferrovec.qdrant.aio import AsyncQdrantClient
from ferrovec.qdrant.client import QdrantClient

__all__ = ["AsyncQdrantClient", "QdrantClient"]
