"""`QdrantClient`: qdrant-client's API over an embedded ferrovec store.

Switching a qdrant-client application to ferrovec takes one import and one constructor line::

    from ferrovec import QdrantClient          # was: from qdrant_client import QdrantClient
    client = QdrantClient(path="./data")       # or QdrantClient(":memory:")

Method names, parameters and result types are those of qdrant-client 1.x. Where qdrant-client
is more lenient than ferrovec's native API, this layer follows qdrant-client: UUIDs in any
spelling, duplicate ids in one batch (the last wins), zero vectors under cosine (score 0).
Parameters that only mean something to a Qdrant server (``consistency``, ``wait``, ``timeout``,
``shard_key_selector``, ``ordering``, sharding and replication settings) are accepted and ignored;
see ``docs/QDRANT.md``. Anything that would change results and is not supported raises
:class:`ferrovec.UnsupportedError`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import ferrovec._native as native
from ferrovec.errors import InvalidInputError, UnsupportedError
from ferrovec.qdrant._collections import _Collections
from ferrovec.qdrant._points import _Points
from ferrovec.qdrant._search import _Search
from ferrovec.qdrant._snapshots import _Snapshots


class QdrantClient(_Collections, _Points, _Search, _Snapshots):
    """qdrant-client's ``QdrantClient`` for an embedded ferrovec store.

    ``QdrantClient(":memory:")`` keeps everything in memory; ``QdrantClient(path="./data")`` opens
    (or creates) a persistent store there, with the write-ahead log fsynced on every write
    (``durability`` as in :func:`ferrovec.open`). A URL or host is refused: to reach a Qdrant
    server, use qdrant-client itself.

    The methods live by concern: collections and aliases (``_collections.py``), points and
    uploads (``_points.py``), search (``_search.py``), snapshots (``_snapshots.py``).
    """

    def __init__(
        self,
        location: str | None = None,
        url: str | None = None,
        port: int | None = 6333,
        grpc_port: int = 6334,
        prefer_grpc: bool = False,
        https: bool | None = None,
        api_key: str | None = None,
        prefix: str | None = None,
        timeout: int | None = None,
        host: str | None = None,
        path: str | os.PathLike[str] | None = None,
        force_disable_check_same_thread: bool = False,
        *,
        durability: str = "fsync",
        **kwargs: Any,
    ) -> None:
        if url is not None or host is not None or (location not in (None, ":memory:")):
            raise UnsupportedError(
                "ferrovec's QdrantClient is embedded: pass path=... or ':memory:'. To talk to a "
                "Qdrant server, use qdrant_client.QdrantClient."
            )
        if location == ":memory:" and path is not None:
            raise InvalidInputError("pass either ':memory:' or path=..., not both")
        self._path = None if path is None else Path(path)
        target = ":memory:" if self._path is None else str(self._path)
        self._db = native.open(target, durability=durability)  # type: ignore[arg-type]
        self._lock = threading.RLock()
        try:
            self._aliases: dict[str, str] = self._load_aliases()
        except BaseException:
            self._db.close()
            raise

    @property
    def closed(self) -> bool:
        return self._db.closed

    def close(self, **kwargs: Any) -> None:
        """Close the store (pending writes are made durable first). Idempotent."""
        self._db.close()

    def __enter__(self) -> QdrantClient:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    @property
    def database(self) -> native.Database:
        """The native :class:`ferrovec.Database` under this client (for the native API)."""
        return self._db
