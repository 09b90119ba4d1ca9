"""Approximate search: recall of the HNSW index, stability across optimize() and reopen, and
writes racing the background optimizer."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import ferrovec


def mixture(n: int, dim: int, seed: int, centres: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors from a Gaussian mixture, and 200 held-out queries from the same mixture."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)

    def draw(m: int) -> np.ndarray:
        noise = rng.standard_normal((m, dim)).astype(np.float32)
        noise *= 0.9 / np.linalg.norm(noise, axis=1, keepdims=True)
        v = c[rng.integers(centres, size=m)] + noise
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    return draw(n), draw(200)


def exact_top(base: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    s = q @ base.T
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    base, queries = mixture(20_000, 64, seed=3)
    path = tmp_path_factory.mktemp("ann") / "store"
    db = ferrovec.open(path)
    col = db.create_collection("c", dim=64, hnsw={"m": 16, "ef_construct": 100})
    for s in range(0, len(base), 2000):
        col.upsert(list(range(s, s + 2000)), base[s : s + 2000])
    col.optimize()
    yield path, db, col, base, queries
    del col
    db.close()


def test_optimize_leaves_one_indexed_segment(indexed):
    _, _, col, base, _ = indexed
    info = col.info()
    assert info["points"] == len(base)
    assert [(s["kind"], s["indexed"], s["rows"]) for s in info["segments"]] == [
        ("sealed", True, len(base))
    ]
    assert info["indexed_points"] == len(base) and info["unindexed_points"] == 0
    assert info["segments"][0]["self_check_recall"] >= 0.9
    assert info["optimizer_status"] in ("idle", "indexing", "merging", "sealing")


def test_recall_at_10_is_at_least_0_95(indexed):
    _, _, col, base, queries = indexed
    truth = exact_top(base, queries, 10)
    hits = 0
    for q, t in zip(queries, truth):
        got = [h.id for h in col.search(q, k=10, with_payload=False)]
        hits += len(set(got) & set(t.tolist()))
    recall = hits / (10 * len(queries))
    assert recall >= 0.95, recall
    # A larger ef never hurts much, and exact=True is exact.
    for q, t in zip(queries[:20], truth[:20]):
        assert [h.id for h in col.search(q, k=10, exact=True)] == t.tolist()
    batch = col.search_batch(queries[:50], k=10, ef=200, with_payload=False)
    hits = sum(len({h.id for h in hs} & set(t.tolist())) for hs, t in zip(batch, truth[:50]))
    assert hits / 500 >= 0.97


def test_results_identical_after_close_and_reopen(tmp_path):
    base, queries = mixture(6000, 32, seed=5)
    cfg = {"m": 12, "ef_construct": 64, "full_scan_threshold": 1000}
    with ferrovec.open(tmp_path / "s") as db:
        col = db.create_collection("c", dim=32, hnsw=cfg)
        col.upsert(list(range(4000)), base[:4000])
        col.optimize()
        col.upsert(list(range(4000, 6000)), base[4000:])  # some rows stay unindexed
        col.delete(list(range(0, 6000, 11)))
        before = [[(h.id, h.score) for h in col.search(q, k=10)] for q in queries[:60]]
        del col
    with ferrovec.open(tmp_path / "s") as db:
        col = db.collection("c")
        after = [[(h.id, h.score) for h in col.search(q, k=10)] for q in queries[:60]]
        assert col.info()["hnsw"] == cfg
        del col
    assert after == before


def test_exact_results_identical_before_and_after_optimize(tmp_path):
    base, queries = mixture(5000, 32, seed=6)
    with ferrovec.open(tmp_path / "s") as db:
        col = db.create_collection(
            "c", dim=32, hnsw={"full_scan_threshold": 500}, optimizer={"idle_ms": 3_600_000}
        )
        for s in range(0, 5000, 1000):
            col.upsert(list(range(s, s + 1000)), base[s : s + 1000])
            col.flush()  # several unindexed segments
        col.delete(list(range(0, 5000, 7)))
        assert len(col.info()["segments"]) == 5
        before = [[(h.id, h.score) for h in col.search(q, k=15, exact=True)] for q in queries]
        col.optimize()
        info = col.info()
        assert len(info["segments"]) == 1 and info["segments"][0]["indexed"]
        after = [[(h.id, h.score) for h in col.search(q, k=15, exact=True)] for q in queries]
        assert after == before
        del col


def test_writes_racing_the_optimizer(tmp_path):
    """Upserts, deletes and searches while the background optimizer seals, indexes and merges:
    no lost or duplicated point, no deleted point returned."""
    rng = np.random.default_rng(9)
    dim = 16
    with ferrovec.open(tmp_path / "s", durability="off") as db:
        col = db.create_collection(
            "c",
            dim=dim,
            distance="dot",
            hnsw={"m": 8, "ef_construct": 40, "full_scan_threshold": 200},
            optimizer={"indexing_threshold": 300, "idle_ms": 20},
        )
        model: dict[int, np.ndarray] = {}
        gone: set[int] = set()
        errors: list[BaseException] = []
        stop = threading.Event()

        def reader(seed: int) -> None:
            r = np.random.default_rng(seed)
            try:
                while not stop.is_set():
                    dead = set(gone)
                    hits = col.search(r.standard_normal(dim).astype(np.float32), k=20)
                    ids = [h.id for h in hits]
                    assert len(ids) == len(set(ids)), "duplicate in results"
                    assert not dead & set(ids), "deleted point returned"
            except BaseException as e:
                errors.append(e)

        readers = [threading.Thread(target=reader, args=(s,)) for s in (1, 2)]
        for t in readers:
            t.start()
        next_id = 0
        for rnd in range(40):
            vecs = rng.standard_normal((100, dim)).astype(np.float32)
            ids = list(range(next_id, next_id + 100))
            next_id += 100
            col.upsert(ids, vecs)
            model.update(zip(ids, vecs))
            if rnd > 3:
                old = [i for i in range(next_id - 400, next_id - 300) if i in model][:30]
                col.delete(old[:15])
                for i in old[:15]:
                    del model[i]
                    gone.add(i)
                new = rng.standard_normal((15, dim)).astype(np.float32)
                col.upsert(old[15:], new)
                model.update(zip(old[15:], new))
            if rnd % 8 == 7:
                time.sleep(0.1)  # idle: let the optimizer index
        col.optimize(wait=False)
        deadline = time.monotonic() + 120
        while col.info()["unindexed_points"] and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for t in readers:
            t.join()
        assert not errors, errors
        info = col.info()
        assert info["unindexed_points"] == 0, info
        recs, nxt = col.scroll(limit=100_000, with_vectors=True)
        assert nxt is None
        assert [r.id for r in recs] == sorted(model)
        for r in recs:
            np.testing.assert_array_equal(r.vector, model[r.id])


def test_bad_index_settings_are_rejected(db):
    for hnsw in ({"m": 1}, {"ef_construct": 0}, {"m": 16, "typo": 3}, {"m": -2}):
        with pytest.raises(ferrovec.InvalidInputError):
            db.create_collection("c", dim=4, hnsw=hnsw)
    with pytest.raises(ferrovec.InvalidInputError, match="indexing_threshold"):
        db.create_collection("c", dim=4, optimizer={"indexing_threshold": 0})
    assert db.list_collections() == []
    col = db.create_collection("c", dim=4)
    col.upsert([1], [[1, 0, 0, 0]])
    with pytest.raises(ferrovec.InvalidInputError, match="ef"):
        col.search([1, 0, 0, 0], ef=0)


def test_thread_count_setting():
    before = ferrovec.get_num_threads()
    try:
        ferrovec.set_num_threads(1)
        assert ferrovec.get_num_threads() == 1
        db = ferrovec.open(":memory:")
        col = db.create_collection("c", dim=2, distance="dot")
        col.upsert(list(range(100)), np.ones((100, 2), dtype=np.float32))
        assert len(col.search_batch(np.ones((5, 2), dtype=np.float32), k=3)) == 5
    finally:
        ferrovec.set_num_threads(before)
    assert ferrovec.get_num_threads() == before
