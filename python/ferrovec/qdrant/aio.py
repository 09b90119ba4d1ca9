"""`AsyncQdrantClient`: qdrant-client's async API over an embedded ferrovec store.

Every method of :class:`~ferrovec.qdrant.QdrantClient` is here as a coroutine of the same name
and parameters. Each call runs on a blocking thread of the core's tokio runtime
(``ferrovec._native.spawn``, through pyo3-async-runtimes); the core releases the GIL while it
searches, writes and fsyncs, so the event loop keeps running meanwhile (measured by
``tests/qdrant/test_async.py``: a ticker coroutine keeps ticking during a 100k upsert and a
1,000-query batch).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable
from typing import Any, Callable

from ferrovec._native import spawn
from ferrovec.qdrant.client import QdrantClient

# Methods that are not I/O: no need to leave the event loop for them.
_LOCAL = {"closed", "database"}


class AsyncQdrantClient:
    """qdrant-client's ``AsyncQdrantClient`` for an embedded ferrovec store:
    ``AsyncQdrantClient(path="./data")`` or ``AsyncQdrantClient(":memory:")``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._sync = QdrantClient(*args, **kwargs)

    @property
    def closed(self) -> bool:
        return self._sync.closed

    @property
    def sync_client(self) -> QdrantClient:
        """The synchronous client under this one (same store)."""
        return self._sync

    async def close(self, **kwargs: Any) -> None:
        await self._run(self._sync.close)

    async def __aenter__(self) -> AsyncQdrantClient:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await spawn(functools.partial(fn, *args, **kwargs))

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        fn = getattr(QdrantClient, name, None)
        if name.startswith("_") or name in _LOCAL or not inspect.isfunction(fn):
            raise AttributeError(f"AsyncQdrantClient has no attribute {name!r}")
        bound = getattr(self._sync, name)

        @functools.wraps(fn)
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._run(bound, *args, **kwargs)

        return call
