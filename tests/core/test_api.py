"""Every call of the public API round-trips, against a real store on disk."""

from __future__ import annotations

import numpy as np
import pytest

import ferrovec
from tests.conftest import unit_rows


def test_upsert_get_count_delete_round_trip(db):
    col = db.create_collection("docs", dim=4, distance="dot")
    vecs = np.arange(12, dtype=np.float32).reshape(3, 4)
    col.upsert([1, "b", 3], vecs, [{"z": 1, "a": [1, 2]}, None, {"nested": {"k": "v"}}])
    assert col.count() == 3 and len(col) == 3
    recs = col.get([3, "b", 1, 999], with_vectors=True)
    assert [r.id for r in recs] == [3, "b", 1]  # order asked, missing left out
    assert recs[0].payload == {"nested": {"k": "v"}}
    assert recs[1].payload == {}
    assert list(recs[2].payload) == ["z", "a"]  # key order preserved
    np.testing.assert_array_equal(recs[2].vector, vecs[0])
    assert recs[2].vector.dtype == np.float32
    assert col.get([1])[0].vector is None
    assert col.get([1], with_payload=False)[0].payload is None
    assert col.get([1], with_payload=["a"])[0].payload == {"a": [1, 2]}
    assert col.delete([1, 1, 42]) == 1
    assert col.count() == 2
    assert col.get([1]) == []


def test_upsert_replaces_vector_and_payload(db):
    col = db.create_collection("c", dim=2, distance="euclid")
    col.upsert([7], [[1.0, 1.0]], [{"v": 1}])
    col.flush()  # the old version now lives in a sealed segment
    col.upsert([7], [[5.0, 5.0]], [{"v": 2}])
    rec = col.get([7], with_vectors=True)[0]
    assert rec.payload == {"v": 2}
    np.testing.assert_array_equal(rec.vector, [5.0, 5.0])
    assert col.count() == 1
    hits = col.search([1.0, 1.0], k=5)
    assert [h.id for h in hits] == [7]
    assert hits[0].score == pytest.approx(np.sqrt(32), rel=1e-6)


def test_deleted_points_are_never_returned(db):
    rng = np.random.default_rng(0)
    col = db.create_collection("c", dim=16)
    vecs = unit_rows(rng, 500, 16)
    col.upsert(list(range(500)), vecs)
    col.flush()
    col.upsert(list(range(500, 600)), unit_rows(rng, 100, 16))
    gone = list(range(0, 600, 3))
    col.delete(gone)
    gone_set = set(gone)
    for q in unit_rows(rng, 30, 16):
        hits = col.search(q, k=50)
        assert len(hits) == 50
        assert not gone_set & {h.id for h in hits}
    # Querying with a deleted point's own vector does not find it.
    assert col.search(vecs[0], k=1)[0].id != 0


def test_cosine_stores_normalised_vectors(db):
    col = db.create_collection("c", dim=3)  # cosine is the default
    col.upsert([1], [[3.0, 0.0, 4.0]])
    v = col.get([1], with_vectors=True)[0].vector
    np.testing.assert_allclose(v, [0.6, 0.0, 0.8], rtol=1e-6)
    assert col.search([0.0, 0.0, 2.0], k=1)[0].score == pytest.approx(0.8, rel=1e-6)


def test_scroll_orders_ints_then_strings_and_pages(db):
    col = db.create_collection("c", dim=2, distance="dot")
    ids = [5, "b", 1, "a", 100, "aa", 2**64 - 1]
    col.upsert(ids, np.ones((len(ids), 2), dtype=np.float32))
    seen = []
    offset = None
    while True:
        page, offset = col.scroll(limit=3, offset=offset)
        seen += [r.id for r in page]
        if offset is None:
            break
    assert seen == [1, 5, 100, 2**64 - 1, "a", "aa", "b"]
    page, nxt = col.scroll(limit=100)
    assert len(page) == 7 and nxt is None


def test_search_options(db):
    col = db.create_collection("c", dim=2, distance="dot")
    col.upsert([1, 2, 3, 4], [[4, 0], [3, 0], [2, 0], [1, 0]], [{"n": i, "x": 0} for i in range(4)])
    hits = col.search([1, 0], k=2, offset=1, with_payload=["n"], with_vectors=True)
    assert [h.id for h in hits] == [2, 3]
    assert [h.score for h in hits] == [3.0, 2.0]
    assert hits[0].payload == {"n": 1}
    np.testing.assert_array_equal(hits[0].vector, [3, 0])
    assert [h.id for h in col.search([1, 0], k=10, score_threshold=2.5)] == [1, 2]
    assert col.search([1, 0], with_payload=False)[0].payload is None
    batch = col.search_batch(np.array([[1, 0], [-1, 0]], dtype=np.float32), k=1)
    assert [[h.id for h in hs] for hs in batch] == [[1], [4]]
    assert "Hit(id=1" in repr(hits[0]) or "Hit(id=2" in repr(hits[0])


def test_collections_persist_and_drop(store_path):
    with ferrovec.open(store_path) as db:
        a = db.create_collection("a", dim=3, distance="manhattan")
        a.upsert(["x"], [[1, 2, 3]], [{"k": "v"}])
        db.create_collection("b", dim=5)
        assert db.list_collections() == ["a", "b"]
        assert db.create_collection("a", dim=3, distance="manhattan", exist_ok=True).count() == 1
        with pytest.raises(ferrovec.CollectionExistsError):
            db.create_collection("a", dim=3)
        db.drop_collection("b")
        with pytest.raises(ferrovec.CollectionNotFoundError):
            db.collection("b")
        del a
    with ferrovec.open(store_path) as db:
        assert db.list_collections() == ["a"]
        a = db.collection("a")
        assert (a.dim, a.distance, a.count()) == (3, "manhattan", 1)
        assert a.get(["x"])[0].payload == {"k": "v"}
        info = a.info()
        assert info["points"] == 1 and info["disk_bytes"] > 0


def test_dropped_collection_handle_raises(db):
    c = db.create_collection("c", dim=2)
    db.drop_collection("c")
    with pytest.raises(ferrovec.CollectionNotFoundError):
        c.count()
    with pytest.raises(KeyError):  # also a KeyError
        db.collection("c")


def test_memory_store_has_the_same_api():
    db = ferrovec.open(":memory:")
    col = db.create_collection("m", dim=2, distance="dot")
    col.upsert([1, 2], [[1, 0], [0, 1]], [{"a": 1}, {"b": 2}])
    assert col.search([1, 0], k=1)[0].id == 1
    col.flush()
    assert col.info()["disk_bytes"] == 0
    db.close()


def test_close_releases_only_the_callers_handle(store_path):
    db = ferrovec.open(store_path)
    col = db.create_collection("c", dim=2)
    db.close()
    assert db.closed
    with pytest.raises(ferrovec.ClosedError):
        db.list_collections()
    col.upsert([1], [[1.0, 0.0]])  # the collection handle keeps the store open
    assert col.count() == 1
    again = ferrovec.open(store_path)  # same process: same store, no lock error
    assert again.collection("c").count() == 1
    again.close()
    del col


def test_payload_types_round_trip(db):
    col = db.create_collection("c", dim=1, distance="dot")
    payload = {
        "s": "text é ✓",
        "i": -(2**63),
        "u": 2**64 - 1,
        "f": 1.5,
        "b": True,
        "n": None,
        "l": [1, "two", [3.0], {"four": 4}],
        "t": (1, 2),
        "np_int": np.int64(7),
        "np_float": np.float32(0.5),
    }
    col.upsert([1], [[1.0]], [payload])
    got = col.get([1])[0].payload
    assert got["t"] == [1, 2]
    assert got["np_int"] == 7 and got["np_float"] == 0.5
    assert {k: v for k, v in got.items() if k not in ("t", "np_int", "np_float")} == {
        k: v for k, v in payload.items() if k not in ("t", "np_int", "np_float")
    }
    assert type(got["b"]) is bool and type(got["i"]) is int


def test_vectors_accept_lists_and_other_dtypes(db):
    col = db.create_collection("c", dim=3, distance="dot")
    col.upsert([1], [[1, 2, 3]])  # ints in lists
    col.upsert(np.array([2], dtype=np.uint32), np.array([[1.0, 2.0, 3.0]], dtype=np.float64))
    col.upsert([3], np.asfortranarray(np.ones((1, 3), dtype=np.float32)))
    col.upsert([], [])  # an empty batch is a no-op
    assert col.count() == 3
    assert col.search(np.array([1, 0, 0], dtype=np.float64), k=3)[0].score == 1.0


def test_set_payload_null_removes(tmp_path):
    """By default a None value is stored as null; null_removes=True removes the key instead
    (Qdrant's set_payload), and that survives a reopen like any logged write."""
    with ferrovec.open(tmp_path / "db") as db:
        col = db.create_collection("c", dim=2)
        col.upsert([1, 2], np.eye(2, dtype=np.float32), [{"a": 1, "b": 2}, {"a": 1, "b": 2}])
        assert col.set_payload({"a": None}, [1]) == 1
        assert col.set_payload({"a": None, "c": 3}, [2], null_removes=True) == 1
        del col
    with ferrovec.open(tmp_path / "db") as db:
        got = {r.id: r.payload for r in db.collection("c").get([1, 2])}
    assert got == {1: {"a": None, "b": 2}, 2: {"b": 2, "c": 3}}


def test_delete_payload_paths(db):
    """Keys are paths, as in filters and in Qdrant: `a.k` removes a nested key, `arr[]`
    empties an array, a path ending in `[n]` changes nothing, a missing path is a no-op."""
    col = db.create_collection("p", dim=2)
    payload = {"a": {"k": 1, "j": 2}, "arr": [1, 2], "objs": [{"x": 1, "y": 2}], "z": 0}
    col.upsert([1], np.ones((1, 2), dtype=np.float32), [payload])
    col.delete_payload(["a.k", "arr[]", "objs[].x", "objs[0]", "missing.path"], [1])
    assert col.get([1])[0].payload == {"a": {"j": 2}, "arr": [], "objs": [{"y": 2}], "z": 0}
    with pytest.raises(ferrovec.InvalidInputError):
        col.delete_payload(["a..b"], [1])


def test_set_payload_at_a_path(db):
    """set_payload(key=path) merges into the object at the path, creating what is missing and
    replacing a value of another type in the way; `[]` reaches every element."""
    col = db.create_collection("k", dim=2)
    payload = {"meta": {"a": 1}, "objs": [{"v": 1}, {"v": 2}], "n": 5}
    col.upsert([1], np.ones((1, 2), dtype=np.float32), [payload])
    col.set_payload({"b": 2}, [1], key="meta")
    col.set_payload({"w": 0}, [1], key="objs[]")
    col.set_payload({"x": 1}, [1], key="n.deep")  # n is a number: replaced by an object
    col.set_payload({"v": None}, [1], key="objs[1]", null_removes=True)
    assert col.get([1])[0].payload == {
        "meta": {"a": 1, "b": 2},
        "objs": [{"v": 1, "w": 0}, {"w": 0}],
        "n": {"deep": {"x": 1}},
    }


def test_update_vectors_keeps_payloads(tmp_path):
    """update_vectors replaces the vectors of the points that exist, keeps their payloads as
    stored, leaves the missing ids alone, and is a logged write like any other."""
    with ferrovec.open(tmp_path / "db") as db:
        col = db.create_collection("u", dim=2, distance="dot")
        col.upsert([1, 2], np.eye(2, dtype=np.float32), [{"k": [1, {"x": None}]}, None])
        found = col.update_vectors([2, 9, 1], np.array([[3, 0], [1, 1], [0, 5]], np.float32))
        assert found == [2, 1]
        del col
    with ferrovec.open(tmp_path / "db") as db:
        recs = {r.id: r for r in db.collection("u").get([1, 2, 9], with_vectors=True)}
    assert sorted(recs) == [1, 2]
    assert recs[1].payload == {"k": [1, {"x": None}]} and recs[1].vector.tolist() == [0, 5]
    assert recs[2].payload == {} and recs[2].vector.tolist() == [3, 0]
