"""Each bad input gets InvalidInputError naming what is wrong, and leaves the store unchanged."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import ferrovec


def snapshot(col):
    recs, _ = col.scroll(limit=10_000, with_vectors=True)
    return [(r.id, r.payload, r.vector.tolist()) for r in recs]


@pytest.fixture
def col(db):
    c = db.create_collection("c", dim=3)
    c.upsert([1, 2, "x"], [[1, 0, 0], [0, 1, 0], [0, 0, 1]], [{"a": 1}, None, {"b": [1]}])
    return c


GOOD = [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]

BAD_UPSERTS = [
    ("wrong dimension", dict(ids=[5, 6], vectors=[[1, 2], [3, 4]]), "dimension"),
    ("NaN", dict(ids=[5, 6], vectors=[[1, 2, 3], [1, float("nan"), 3]]), "row 1"),
    ("infinity", dict(ids=[5, 6], vectors=[[1, 2, 3], [1, 2, float("inf")]]), "row 1"),
    ("f64 overflow to inf", dict(ids=[5], vectors=np.array([[1e300, 0, 0]])), "row 0|overflow"),
    ("zero vector under cosine", dict(ids=[5, 6], vectors=[[1, 2, 3], [0, 0, 0]]), "zero vector"),
    ("3-D array", dict(ids=[5, 6], vectors=np.ones((2, 3, 1))), "2-D"),
    ("1-D array", dict(ids=[5], vectors=[1.0, 2.0, 3.0]), "2-D"),
    ("ragged lists", dict(ids=[5, 6], vectors=[[1, 2, 3], [1, 2]]), "vectors"),
    ("strings as numbers", dict(ids=[5], vectors=[["a", "b", "c"]]), "vectors"),
    ("negative id", dict(ids=[5, -1], vectors=GOOD), "ids[1]"),
    ("id beyond 64 bits", dict(ids=[2**64, 6], vectors=GOOD), "ids[0]"),
    ("float id", dict(ids=[5, 6.0], vectors=GOOD), "ids[1]"),
    ("bool id", dict(ids=[True, 6], vectors=GOOD), "ids[0]"),
    ("None id", dict(ids=[5, None], vectors=GOOD), "ids[1]"),
    ("empty string id", dict(ids=[5, ""], vectors=GOOD), "ids[1]"),
    ("bare string ids", dict(ids="ab", vectors=GOOD), "sequence"),
    ("duplicate ids", dict(ids=[7, 7], vectors=GOOD), "duplicate"),
    ("fewer ids than vectors", dict(ids=[5], vectors=GOOD), "ids"),
    ("fewer payloads", dict(ids=[5, 6], vectors=GOOD, payloads=[{}]), "payloads"),
    ("payload not a dict", dict(ids=[5, 6], vectors=GOOD, payloads=[{}, [1, 2]]), "payloads[1]"),
    ("payload str", dict(ids=[5, 6], vectors=GOOD, payloads=["{}", {}]), "payloads[0]"),
    ("non-str key", dict(ids=[5, 6], vectors=GOOD, payloads=[{}, {1: "a"}]), "payloads[1]"),
    (
        "NaN in payload",
        dict(ids=[5, 6], vectors=GOOD, payloads=[{"x": float("nan")}, {}]),
        "payloads[0]",
    ),
    ("set in payload", dict(ids=[5, 6], vectors=GOOD, payloads=[{}, {"s": {1}}]), "payloads[1]"),
    (
        "huge int in payload",
        dict(ids=[5, 6], vectors=GOOD, payloads=[{}, {"n": 2**70}]),
        "payloads[1]",
    ),
]


@pytest.mark.parametrize("case", BAD_UPSERTS, ids=[c[0] for c in BAD_UPSERTS])
def test_bad_upserts_are_rejected_whole(col, case):
    _, kwargs, fragment = case
    before = snapshot(col)
    with pytest.raises(ferrovec.InvalidInputError) as info:
        col.upsert(**kwargs)
    assert any(f in str(info.value) for f in fragment.split("|")), str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ferrovec.FerrovecError)
    assert snapshot(col) == before


def test_deeply_nested_payload_is_rejected(col):
    deep: dict = {}
    cur = deep
    for _ in range(100):
        cur["d"] = {}
        cur = cur["d"]
    before = snapshot(col)
    with pytest.raises(ferrovec.InvalidInputError, match="nested"):
        col.upsert([5], [[1, 2, 3]], [deep])
    assert snapshot(col) == before


def test_limits_of_hostile_input(col):
    """Documented limits (README, "Limits"): each refused with a clear error, changing nothing."""
    before = snapshot(col)
    big = "x" * (32 << 20)  # over the 32 MiB per point once quoted as JSON
    with pytest.raises(ferrovec.InvalidInputError, match="at most 32 MiB"):
        col.upsert([5, 6], GOOD, [{}, {"text": big}])
    # Grown past the limit by a payload operation.
    col.upsert([7], [[1, 2, 3]], [{"half": "y" * (20 << 20)}])
    with pytest.raises(ferrovec.InvalidInputError, match="point 7 would be"):
        col.set_payload({"more": "z" * (20 << 20)}, [7])
    assert len(col.get([7], with_payload=True)[0].payload["half"]) == 20 << 20
    col.delete([7])
    with pytest.raises(ferrovec.InvalidInputError, match="at most 1024 bytes"):
        col.upsert(["i" * 1025], [[1, 2, 3]])
    assert snapshot(col) == before


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.search([1, 2]),
        lambda c: c.search([[1, 2, 3]]),
        lambda c: c.search([1, float("nan"), 3]),
        lambda c: c.search([0, 0, 0]),
        lambda c: c.search([1, 2, 3], k=0),
        lambda c: c.search_batch([1, 2, 3]),
        lambda c: c.search_batch([[1, 2]]),
        lambda c: c.get([-5]),
        lambda c: c.delete(["ok", 1.5]),
        lambda c: c.search([1, 2, 3], with_payload="a"),
    ],
)
def test_bad_queries(col, call):
    before = snapshot(col)
    with pytest.raises(ferrovec.InvalidInputError):
        call(col)
    assert snapshot(col) == before


@pytest.mark.parametrize("name", ["", "a b", "../up", "x/y", "é", ".dot", "a" * 129])
def test_bad_collection_names(db, name):
    with pytest.raises(ferrovec.InvalidInputError, match="collection name"):
        db.create_collection(name, dim=3)
    assert db.list_collections() == []


@pytest.mark.parametrize(
    "kwargs",
    [dict(dim=0), dict(dim=-1), dict(dim=70_000), dict(dim=3, distance="hamming")],
)
def test_bad_collection_configs(db, kwargs):
    with pytest.raises(ferrovec.InvalidInputError):
        db.create_collection("c", **kwargs)
    assert db.list_collections() == []


def test_bad_open_arguments(tmp_path):
    with pytest.raises(ferrovec.InvalidInputError, match="durability"):
        ferrovec.open(tmp_path / "s", durability="sometimes")
    with pytest.raises(ferrovec.InvalidInputError, match="interval"):
        ferrovec.open(tmp_path / "s2", durability="interval", fsync_interval_ms=0)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ferrovec.InvalidInputError, match="not a directory"):
        ferrovec.open(f)


def test_foreign_directory_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ferrovec.CorruptionError, match="not a ferrovec store"):
        ferrovec.open(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_exception_hierarchy():
    assert issubclass(ferrovec.InvalidInputError, ValueError)
    assert issubclass(ferrovec.CollectionNotFoundError, KeyError)
    assert issubclass(ferrovec.StorageError, OSError)
    for cls in (
        ferrovec.InvalidInputError,
        ferrovec.CollectionNotFoundError,
        ferrovec.CollectionExistsError,
        ferrovec.StoreLockedError,
        ferrovec.CorruptionError,
        ferrovec.StorageError,
        ferrovec.LogFailedError,
        ferrovec.ClosedError,
        ferrovec.InternalError,
    ):
        assert issubclass(cls, ferrovec.FerrovecError)
    assert str(ferrovec.CollectionNotFoundError("collection 'x' does not exist")) == (
        "collection 'x' does not exist"
    )


def test_a_panic_in_the_core_is_raised_as_internal_error(db):
    # pyo3 would raise PanicException, a BaseException that `except Exception` misses; the
    # binding boundary turns a panic into InternalError, on the sync and the async path.
    from ferrovec import _native

    col = db.create_collection("after_panic", dim=2)
    with pytest.raises(ferrovec.InternalError, match="deliberate test panic") as caught:
        _native._panic_for_tests("deliberate test panic")
    assert isinstance(caught.value, Exception)

    async def awaited() -> None:
        await _native._panic_for_tests_async("deliberate async panic")

    with pytest.raises(ferrovec.InternalError, match="deliberate async panic"):
        asyncio.run(awaited())
    # The process and its stores go on.
    col.upsert([1], np.ones((1, 2), dtype=np.float32))
    assert col.count() == 1
