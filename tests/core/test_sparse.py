"""Sparse vectors through the native API: every way of giving them (pairs, dicts,
SparseVector, documents, scipy CSR), search by sparse vector and by document, hybrid queries,
and bad input: each a typed error naming what is wrong, with the whole batch rejected and
nothing stored (checked after a reopen, too)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

import ferrovec
from ferrovec import Document, InvalidInputError, SparseVector


def make(path: Path) -> tuple[ferrovec.Database, ferrovec.Collection]:
    db = ferrovec.open(path)
    col = db.create_collection("c", 3, sparse={"text": {"modifier": "idf"}, "raw": None})
    rng = np.random.default_rng(0)
    col.upsert(
        [1, 2, 3],
        {
            "": rng.standard_normal((3, 3)).astype(np.float32),
            "text": [Document("red apples"), Document("green apples and pears"), None],
            "raw": [
                ([1, 5], [0.5, 2.0]),
                {"indices": [5], "values": [1.0]},
                SparseVector([2], [1]),
            ],
        },
        [{"i": 1}, {"i": 2}, {"i": 3}],
    )
    return db, col


def test_every_input_form_and_search(tmp_path: Path) -> None:
    db, col = make(tmp_path / "db")
    (rec,) = col.get([1], with_vectors=True)
    assert rec.vector["raw"] == SparseVector([1, 5], [0.5, 2.0])
    assert "text" in rec.vector and col.get([3], with_vectors=True)[0].vector.keys() == {"", "raw"}
    hits = col.search(SparseVector([5], [1.0]), 5, using="raw")
    assert [(h.id, h.score) for h in hits] == [(1, 2.0), (2, 1.0)]  # point 3 shares no index
    # A document query is BM25's: "apples" is in two documents, "red" in one (IDF).
    hits = col.search(Document("red apple"), 5, using="text")
    assert [h.id for h in hits] == [1, 2] and hits[0].score > hits[1].score > 0
    # Unsorted input is stored sorted; a CSR matrix gives one row per point.
    csr = scipy.sparse.csr_matrix(np.array([[0, 3.0, 0, 1.0], [0, 0, 0, 0]], dtype=np.float32))
    col.upsert([10, 11], {"": np.ones((2, 3), np.float32), "raw": csr})
    col.upsert([12], {"": np.ones((1, 3), np.float32), "raw": [([9, 2], [1.0, 2.0])]})
    got = {r.id: r.vector.get("raw") for r in col.get([10, 11, 12], with_vectors=True)}
    assert got == {
        10: SparseVector([1, 3], [3.0, 1.0]),
        11: SparseVector([], []),
        12: SparseVector([2, 9], [2.0, 1.0]),
    }
    fused = col.query(
        {
            "prefetch": [
                {"query": [1.0, 0.0, 0.0], "limit": 3},
                {"query": {"text": "apples", "model": "qdrant/bm25"}, "using": "text"},
            ],
            "query": {"fusion": "rrf"},
            "limit": 3,
        }
    )
    assert len(fused) == 3 and all(h.payload is not None for h in fused if h.id in (1, 2, 3))
    db.close()


def refused(col: ferrovec.Collection, vectors: dict, match: str) -> None:
    before = [(r.id, r.vector) for r in col.get([1, 2, 3, 7, 8], with_vectors=True)]
    with pytest.raises(InvalidInputError, match=match):
        col.upsert([7, 8], vectors)
    after = [(r.id, r.vector) for r in col.get([1, 2, 3, 7, 8], with_vectors=True)]
    assert len(after) == len(before) == 3  # neither point of the batch was stored


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ([([1, 1], [1.0, 2.0])], "index 1 is given twice"),
        ([([5, 2, 5], [1.0, 2.0, 3.0])], "index 5 is given twice"),
        ([([-1], [1.0])], "-1 is not in 0..=4294967295"),
        ([([2**32], [1.0])], "4294967296 is not in 0..=4294967295"),
        ([([1], [math.nan])], "not a finite number"),
        ([([1], [math.inf])], "not a finite number"),
        ([([1, 2], [1.0])], "2 indices but 1 values"),
        ([Document("x", model="bert-base")], "unknown document model"),
        ([{"indices": [1]}], "expected a sparse vector"),
    ],
)
def test_bad_sparse_input_is_refused_whole(tmp_path: Path, raw: list, match: str) -> None:
    db, col = make(tmp_path / "db")
    good = ([3], [1.0])
    refused(col, {"": np.ones((2, 3), np.float32), "raw": [good, *raw]}, match)
    db.close()
    with ferrovec.open(tmp_path / "db") as again:  # nothing reached the log either
        assert again.collection("c").count() == 3


def test_bad_queries_name_the_problem(tmp_path: Path) -> None:
    db, col = make(tmp_path / "db")
    cases = [
        ({"query": [1.0, 0.0], "using": "text"}, "dense vector was given for the sparse"),
        ({"query": {"indices": [1], "values": [1.0]}}, "sparse vector was given for the dense"),
        ({"query": {"text": "x", "model": "e5"}, "using": "text"}, "unknown document model"),
        ({"query": {"text": "x", "model": "qdrant/bm25"}}, "document was given for the dense"),
        ({"query": {"indices": [1, 1], "values": [1, 2]}, "using": "raw"}, "given twice"),
        ({"query": [1.0, 0.0, 0.0], "using": "nope"}, "no vector named"),
    ]
    deep: dict = {"query": [1.0, 0.0, 0.0]}
    for _ in range(9):
        deep = {"query": [1.0, 0.0, 0.0], "prefetch": [deep]}
    cases.append((deep, "nested deeper than 8"))
    prefetch = [{"query": [1.0, 0.0, 0.0], "limit": 3}]
    cases.append(
        (
            {"prefetch": prefetch, "query": {"formula": {"div": {"left": 1, "right": "z"}}}},
            'no value for "z"',
        )
    )
    cases.append(
        (
            {
                "prefetch": prefetch,
                "query": {
                    "formula": {"div": {"left": 1, "right": "zero"}},
                    "defaults": {"zero": 0},
                },
            },
            "division by zero",
        )
    )
    cases.append(({"prefetch": prefetch}, "a query is needed to merge the prefetches"))
    cases.append(({"query": {"fusion": "rrf"}}, "give at least one"))
    for req, match in cases:
        with pytest.raises(InvalidInputError, match=match):
            col.query(req)
    ok = col.query(
        {
            "prefetch": prefetch,
            "query": {
                "formula": {"div": {"left": 1, "right": "zero", "by_zero_default": 7}},
                "defaults": {"zero": 0},
            },
        }
    )
    assert [h.score for h in ok] == [7.0, 7.0, 7.0]
    db.close()


def test_sparse_only_collection_and_bm25_function(tmp_path: Path) -> None:
    db = ferrovec.open(tmp_path / "db")
    col = db.create_collection("s", sparse={"bm25": {"modifier": "idf"}})
    assert col.vectors == {} and col.sparse_vectors["bm25"]["modifier"] == "idf"
    texts = ["the cat sat", "cats are sitting on mats", "dogs bark"]
    col.upsert([1, 2, 3], {"bm25": [Document(t) for t in texts]})
    stored = [r.vector["bm25"] for r in col.get([1, 2, 3], with_vectors=True)]
    assert stored == ferrovec.bm25(texts)  # the same weights as the function gives
    (q,) = ferrovec.bm25(["sitting cat"], query=True)
    assert q.values == [1.0, 1.0] and q.indices == sorted(q.indices)
    assert [h.id for h in col.search(q, 3, using="bm25")] == [2, 1]
    db.close()
