"""Four threads search while another upserts: no error, and every result is consistent. This
also proves the GIL is released: the threads make progress together."""

from __future__ import annotations

import threading

import numpy as np

from tests.conftest import unit_rows

DIM = 32


def test_concurrent_search_and_upsert(db):
    rng = np.random.default_rng(3)
    col = db.create_collection("c", dim=DIM)
    anchors = unit_rows(rng, 50, DIM)
    anchor_ids = [f"anchor-{i}" for i in range(50)]
    col.upsert(anchor_ids, anchors, [{"anchor": i} for i in range(50)])
    col.upsert(list(range(2000)), unit_rows(rng, 2000, DIM))
    errors: list[BaseException] = []
    stop = threading.Event()
    searches = [0] * 4

    def writer():
        try:
            wrng = np.random.default_rng(4)
            for b in range(60):
                ids = list(range(2000 + b * 50, 2000 + b * 50 + 50))
                col.upsert(ids, unit_rows(wrng, 50, DIM))
                if b % 10 == 9:
                    col.delete(ids[:10])
                if b == 30:
                    col.flush()
        except BaseException as e:
            errors.append(e)
        finally:
            stop.set()

    def reader(t):
        try:
            rrng = np.random.default_rng(10 + t)
            while not stop.is_set() or searches[t] < 20:
                i = int(rrng.integers(50))
                hits = col.search(anchors[i], k=10)
                # The anchor is its own nearest neighbour, whatever the writer is doing.
                assert hits[0].id == anchor_ids[i]
                assert hits[0].payload == {"anchor": i}
                assert abs(hits[0].score - 1.0) < 1e-5
                scores = [h.score for h in hits]
                assert scores == sorted(scores, reverse=True)
                assert len({h.id for h in hits}) == 10
                searches[t] += 1
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader, args=(t,)) for t in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert all(s >= 20 for s in searches)
    assert col.count() == 50 + 2000 + 60 * 50 - 6 * 10
