"""AsyncQdrantClient: results equal the sync client's, and the event loop keeps running while
the core works (a ticker coroutine keeps ticking during a 100k upsert and a 1,000-query batch).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import models as m

import ferrovec

N, DIM = 100_000, 128


async def ticker(stop: asyncio.Event, gaps: list[float]) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


async def while_ticking(work: asyncio.Future[object] | object) -> tuple[object, list[float]]:
    stop = asyncio.Event()
    gaps: list[float] = []
    tick = asyncio.create_task(ticker(stop, gaps))
    result = await work  # type: ignore[misc]
    stop.set()
    await tick
    return result, gaps


def test_event_loop_runs_during_upsert_and_query_batch(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((N, DIM), dtype=np.float32)
    queries = rng.standard_normal((1000, DIM), dtype=np.float32)

    async def main() -> None:
        client = ferrovec.AsyncQdrantClient(path=tmp_path / "db")
        await client.create_collection(
            "docs", vectors_config=m.VectorParams(size=DIM, distance=m.Distance.COSINE)
        )
        _, gaps = await while_ticking(
            client.upload_collection(
                "docs",
                vectors,
                ids=range(N),
                payload=({"i": i} for i in range(N)),
                batch_size=1024,
            )
        )
        # The loop was not blocked: it ticked all along (a blocked loop ticks about once).
        assert len(gaps) >= 20
        print(f"upsert {N:,}: {len(gaps)} ticks, longest gap {max(gaps) * 1000:.1f} ms")
        assert (await client.count("docs")).count == N

        exact = m.SearchParams(exact=True)  # comparable whatever the optimizer has indexed by then
        requests = [m.QueryRequest(query=q.tolist(), limit=10, params=exact) for q in queries]
        results, gaps = await while_ticking(client.query_batch_points("docs", requests))
        assert len(gaps) >= 20
        print(f"1,000-query batch: {len(gaps)} ticks, longest gap {max(gaps) * 1000:.1f} ms")
        assert isinstance(results, list) and len(results) == 1000

        # Same answers as the sync client on the same store.
        sync = client.sync_client
        for q, res in zip(queries[:20], results[:20]):
            want = sync.query_points("docs", query=q, limit=10, search_params=exact)
            assert [p.id for p in res.points] == [p.id for p in want.points]
        await client.close()

    asyncio.run(main())


def test_native_async_calls(tmp_path: Path) -> None:
    """The native API's awaitables: same answers as the sync calls, errors raised at the await,
    and the loop keeps ticking while a 1,000-query batch runs."""
    rng = np.random.default_rng(9)
    vectors = rng.standard_normal((20_000, DIM), dtype=np.float32)
    queries = rng.standard_normal((1000, DIM), dtype=np.float32)

    async def main() -> None:
        db = ferrovec.open(tmp_path / "native")
        col = db.create_collection("c", DIM, "dot")
        for i in range(0, len(vectors), 5000):
            await col.upsert_async(
                np.arange(i, i + 5000),
                vectors[i : i + 5000],
                [{"i": j} for j in range(i, i + 5000)],
            )
        assert len(col) == len(vectors)
        hits = await col.search_async(queries[0], 5, exact=True)
        assert [h.id for h in hits] == [h.id for h in col.search(queries[0], 5, exact=True)]
        batch, gaps = await while_ticking(col.search_batch_async(queries, 10, exact=True))
        assert isinstance(batch, list) and len(batch) == 1000
        assert [h.id for h in batch[7]] == [h.id for h in col.search(queries[7], 10, exact=True)]
        assert len(gaps) >= 5
        with pytest.raises(ferrovec.InvalidInputError, match="dimension"):
            await col.search_async(np.ones(DIM + 1, dtype=np.float32))
        with pytest.raises(ferrovec.InvalidInputError):
            await col.upsert_async([1], np.ones((1, DIM + 1), dtype=np.float32))
        assert len(col) == len(vectors)  # the rejected batch changed nothing
        db.close()

    asyncio.run(main())


def test_named_vectors_async(tmp_path: Path) -> None:
    """Named vectors through AsyncQdrantClient and the native awaitables: `using` picks the
    vector, results carry a dict of vectors, as with the sync calls."""
    rng = np.random.default_rng(4)
    text = rng.standard_normal((500, 16), dtype=np.float32)
    image = rng.standard_normal((500, 6), dtype=np.float32)

    async def main() -> None:
        client = ferrovec.AsyncQdrantClient(path=tmp_path / "named")
        await client.create_collection(
            "n",
            vectors_config={
                "text": m.VectorParams(size=16, distance=m.Distance.COSINE),
                "image": m.VectorParams(size=6, distance=m.Distance.MANHATTAN),
            },
        )
        await client.upload_collection("n", {"text": text, "image": image}, ids=range(500))
        res = await client.query_points("n", query=image[42], using="image", limit=3)
        assert res.points[0].id == 42 and res.points[0].score == pytest.approx(0.0, abs=1e-5)
        sync = client.sync_client.query_points("n", query=image[42], using="image", limit=3)
        assert [p.id for p in res.points] == [p.id for p in sync.points]
        col = client.sync_client.database.collection("n")
        hits = await col.search_async(text[7], 2, using="text", with_vectors=True)
        assert hits[0].id == 7 and set(hits[0].vector) == {"text", "image"}
        batch = await col.search_batch_async(image[:4], 1, using="image", exact=True)
        assert [b[0].id for b in batch] == [0, 1, 2, 3]
        await col.upsert_async([900], {"text": text[:1], "image": image[:1]})
        assert len(col) == 501
        with pytest.raises(ferrovec.InvalidInputError, match="say which one"):
            await col.search_async(text[0])
        await client.close()

    asyncio.run(main())
