"""The store's memory budget (`open(..., memory_limit_mb=...)`, docs/SCALE.md "Memory budget"):
what serving its open collections keeps resident is counted, and opening a collection or
writing new points past the limit is refused with MemoryLimitError, changing nothing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import ferrovec
from ferrovec.errors import FerrovecError, InvalidInputError, MemoryLimitError

DIM = 64
MIB = 1 << 20


def rows(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def build(path: Path, names: tuple[str, ...] = ("docs",), n: int = 20_000) -> dict[str, int]:
    """Indexed collections of `n` points each; returns each one's resident need in bytes."""
    db = ferrovec.open(path)
    needs = {}
    for i, name in enumerate(names):
        col = db.create_collection(name, dim=DIM, hnsw={"full_scan_threshold": 1_000})
        col.upsert(np.arange(n, dtype=np.uint64), rows(n, i))
        col.optimize(wait=True)
        needs[name] = col.stats()["capacity"]["resident_need_bytes"]
    db.close()
    return needs


def test_need_counts_codes_graphs_ids_and_mapped_rows(tmp_path: Path) -> None:
    need = build(tmp_path / "s")["docs"]
    db = ferrovec.open(tmp_path / "s")
    stats = db.collection("docs").stats()
    disk = stats["disk_bytes"]
    # A segment of 5 MiB of rows reads them through its mapping (below rows_from_disk_mb), so
    # they count beside its int8 codes, graph and id map.
    counted = disk["codes"] + disk["graphs"] + disk["ids"] + 20_000 * DIM * 4
    assert abs(need - counted) < 64 * 1024, (need, counted, disk)
    assert stats["memory_budget"] is None  # no limit
    db.close()
    # Reading the rows from disk takes them out of the need.
    db = ferrovec.open(tmp_path / "s", rows_from_disk_mb=0)
    from_disk = db.collection("docs").stats()["capacity"]["resident_need_bytes"]
    assert abs(need - from_disk - 20_000 * DIM * 4) < 64 * 1024
    db.close()


def test_a_collection_that_does_not_fit_is_not_opened(tmp_path: Path) -> None:
    need = build(tmp_path / "s")["docs"]
    db = ferrovec.open(tmp_path / "s", memory_limit_mb=1)
    assert db.list_collections() == ["docs"]
    with pytest.raises(MemoryLimitError) as e:
        db.collection("docs")
    assert isinstance(e.value, FerrovecError)
    assert "memory_limit_mb of 1" in str(e.value) and "docs" in str(e.value)
    assert f"{need / MIB:.0f} MiB" in str(e.value)
    db.close()
    # Enough room: it opens and serves, with the budget in its stats.
    limit = math.ceil(need / MIB) + 1
    db = ferrovec.open(tmp_path / "s", memory_limit_mb=limit)
    col = db.collection("docs")
    assert col.count() == 20_000
    assert col.search(rows(1, 0)[0], 1)[0].id == 0
    assert col.stats()["memory_budget"] == {
        "limit_bytes": limit * MIB,
        "store_need_bytes": need,
    }
    db.close()


def test_the_budget_spans_the_store_collections(tmp_path: Path) -> None:
    needs = build(tmp_path / "s", ("a", "b"))
    limit = math.ceil(max(needs.values()) * 1.5 / MIB)
    db = ferrovec.open(tmp_path / "s", memory_limit_mb=limit)
    db.collection("a")
    with pytest.raises(MemoryLimitError, match="already open keep"):
        db.collection("b")
    db.close()
    # A collection that fits alone fits in another process with no other open.
    db = ferrovec.open(tmp_path / "s", memory_limit_mb=limit)
    assert db.collection("b").count() == 20_000
    db.close()


def test_a_write_past_the_limit_is_refused_whole(tmp_path: Path) -> None:
    need = build(tmp_path / "s")["docs"]
    limit = math.ceil(need / MIB) + 1
    db = ferrovec.open(tmp_path / "s", memory_limit_mb=limit)
    col = db.collection("docs")
    new = np.arange(100_000, 130_000, dtype=np.uint64)
    with pytest.raises(MemoryLimitError, match="nothing was written") as e:
        col.upsert(new, rows(len(new), 9))
    assert "30000 new points" in str(e.value)
    assert col.count() == 20_000
    assert col.get([100_000]) == []
    # Replacing existing points adds none: accepted at the limit.
    col.upsert(np.arange(100, dtype=np.uint64), rows(100, 5), [{"v": 2}] * 100)
    assert col.get([7])[0].payload == {"v": 2}
    # A few new points fit.
    col.upsert(np.array([200_000], dtype=np.uint64), rows(1, 6))
    del col  # the store closes with its last handle
    db.close()
    # The refused batch was never logged.
    db = ferrovec.open(tmp_path / "s")
    col = db.collection("docs")
    assert col.count() == 20_001
    assert col.get([100_000, 129_999]) == []
    db.close()


def test_without_a_limit_nothing_is_refused(tmp_path: Path) -> None:
    build(tmp_path / "s")
    db = ferrovec.open(tmp_path / "s")
    col = db.collection("docs")
    new = np.arange(100_000, 130_000, dtype=np.uint64)
    col.upsert(new, rows(len(new), 9))
    assert col.count() == 50_000
    db.close()


def test_bad_limits_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(OverflowError):
        ferrovec.open(tmp_path / "s", memory_limit_mb=-1)
    with pytest.raises(TypeError):
        ferrovec.open(tmp_path / "s", memory_limit_mb="1G")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="at least 1"):
        ferrovec.open(tmp_path / "s", memory_limit_mb=0)
    assert not (tmp_path / "s").exists()


def test_an_in_memory_store_counts_its_rows() -> None:
    db = ferrovec.open(":memory:", memory_limit_mb=1)
    col = db.create_collection("m", dim=DIM)
    col.upsert(np.arange(1_000, dtype=np.uint64), rows(1_000, 1))  # 250 KiB of rows
    with pytest.raises(MemoryLimitError):
        col.upsert(np.arange(1_000, 10_000, dtype=np.uint64), rows(9_000, 2))
    assert col.count() == 1_000


def test_vectors_on_disk_chooses_the_tier_per_collection(tmp_path: Path) -> None:
    """A collection's vectors_on_disk (Qdrant's VectorParams.on_disk) decides where its indexed
    segments keep their f32 rows, over the store's rows_from_disk_mb, and is kept with it."""
    n, rare = 20_000, {"must": [{"key": "i", "range": {"lt": 200}}]}
    tiers = {"disk": True, "ram": False, "default": None}
    with ferrovec.open(tmp_path / "s") as db:
        for name, on_disk in tiers.items():
            col = db.create_collection(
                name, dim=DIM, hnsw={"full_scan_threshold": 1_000}, vectors_on_disk=on_disk
            )
            col.upsert(np.arange(n, dtype=np.uint64), rows(n, 3), [{"i": i} for i in range(n)])
            col.optimize(wait=True)
            del col
    row_bytes = n * DIM * 4

    def needs(**kw: int) -> dict[str, int]:
        with ferrovec.open(tmp_path / "s", **kw) as db:
            out = {}
            for name, on_disk in tiers.items():
                col = db.collection(name)
                assert col.info()["vectors_on_disk"] is on_disk  # kept with the collection
                (plan,) = col.explain(rows(1, 3)[0], 10, filter=rare)["sources"]
                from_disk = plan["method"] == "int8 codes over matching rows, rescored"
                out[name] = (col.stats()["capacity"]["resident_need_bytes"], from_disk)
                # Either way the rows are rescored exactly: a stored vector finds itself.
                assert col.search(rows(n, 3)[77], 1)[0].id == 77
                del col
            return out

    # The store's default (256 MiB): a 5 MiB segment keeps its rows, unless told otherwise.
    by_default = needs()
    assert [by_default[t][1] for t in tiers] == [True, False, False]
    assert abs(by_default["default"][0] - by_default["disk"][0] - row_bytes) < 64 * 1024
    # (Graphs of the same points differ a little in their upper levels.)
    assert abs(by_default["ram"][0] - by_default["default"][0]) < 64 * 1024
    # Every segment from disk for the store: the collection that keeps its rows still does.
    all_disk = needs(rows_from_disk_mb=0)
    assert [all_disk[t][1] for t in tiers] == [True, False, True]
    assert all_disk["ram"][0] == by_default["ram"][0]
    assert all_disk["disk"][0] == by_default["disk"][0]
    assert abs(all_disk["default"][0] - all_disk["disk"][0]) < 64 * 1024


def test_new_points_count_their_rows_where_they_stay_resident(tmp_path: Path) -> None:
    """Under a budget, a new point of a collection that keeps its rows resident counts its f32
    row beside its codes and graph: the same write fits one tier and not the other."""
    with ferrovec.open(tmp_path / "s") as db:
        for name, on_disk in (("disk", True), ("ram", False)):
            db.create_collection(name, dim=DIM, vectors_on_disk=on_disk)
    new = np.arange(30_000, dtype=np.uint64)  # 7.3 MiB of f32 rows; ~6.5 MiB of the rest
    for name, fits in (("disk", True), ("ram", False)):
        with ferrovec.open(tmp_path / "s", memory_limit_mb=10) as db:
            col = db.collection(name)
            if fits:
                col.upsert(new, rows(len(new), 4))
                assert col.count() == len(new)
            else:
                with pytest.raises(MemoryLimitError, match="nothing was written"):
                    col.upsert(new, rows(len(new), 4))
                assert col.count() == 0
            del col


def test_a_bad_vectors_on_disk_is_refused(tmp_path: Path) -> None:
    with ferrovec.open(tmp_path / "s") as db:
        with pytest.raises(TypeError):
            db.create_collection("c", dim=DIM, vectors_on_disk="yes")  # type: ignore[arg-type]
        assert db.list_collections() == []
