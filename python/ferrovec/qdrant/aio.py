"""`AsyncQdrantClient`: qdrant-client's async API over an embedded ferrovec store.

Every method of :class:`~ferrovec.qdrant.QdrantClient` is here as a coroutine of the same name
and parameters. The work runs on a small pool of worker threads; the core releases the GIL
while it searches, writes and fsyncs, so the event loop keeps running meanwhile (measured by
``tests/qdrant/test_async.py``: a ticker coroutine keeps ticking during a 100k upsert and a
1,000-query batch).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from ferrovec.qdrant.client import QdrantClient

# Methods that are not I/O: no need to leave the event loop for them.
_LOCAL = {"closed", "database"}


class AsyncQdrantClient:
    """qdrant-client's ``AsyncQdrantClient`` for an embedded ferrovec store:
    ``AsyncQdrantClient(path="./data")`` or ``AsyncQdrantClient(":memory:")``."""

    def __init__(self, *args: Any, max_workers: int = 4, **kwargs: Any) -> None:
        self._sync = QdrantClient(*args, **kwargs)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ferrovec")

    @property
    def closed(self) -> bool:
        return self._sync.closed

    @property
    def sync_client(self) -> QdrantClient:
        """The synchronous client under this one (same store)."""
        return self._sync

    async def close(self, **kwargs: Any) -> None:
        await self._run(self._sync.close)
        self._pool.shutdown(wait=False)

    async def __aenter__(self) -> AsyncQdrantClient:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        fn = getattr(QdrantClient, name, None)
        if name.startswith("_") or name in _LOCAL or not inspect.isfunction(fn):
            raise AttributeError(f"AsyncQdrantClient has no attribute {name!r}")
        bound = getattr(self._sync, name)

        @functools.wraps(fn)
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._run(bound, *args, **kwargs)

        return call
