"""Named vectors in the native API: a point holds several vectors, each with its own dimension
and distance; searches pick one with `using`. Checked against numpy, through a checkpoint, an
index build and a reopen."""

from __future__ import annotations

import numpy as np
import pytest

import ferrovec
from ferrovec.errors import InvalidInputError

VECTORS = {"text": {"dim": 12, "distance": "cosine"}, "image": {"dim": 5, "distance": "euclid"}}


def data(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "text": rng.standard_normal((n, 12)).astype(np.float32),
        "image": rng.standard_normal((n, 5)).astype(np.float32),
    }


def top(vectors: dict[str, np.ndarray], using: str, q: np.ndarray, k: int) -> list[int]:
    v = vectors[using].astype(np.float64)
    if using == "text":
        score = (v / np.linalg.norm(v, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
        return [int(i) for i in np.argsort(-score, kind="stable")[:k]]
    return [int(i) for i in np.argsort(np.linalg.norm(v - q, axis=1), kind="stable")[:k]]


def test_named_vectors_round_trip_search_and_reopen(tmp_path):
    n = 3000
    vecs = data(n)
    db = ferrovec.open(tmp_path / "db")
    col = db.create_collection("docs", vectors=VECTORS, hnsw={"full_scan_threshold": 500})
    assert col.dim is None and col.distance is None
    assert col.vectors == VECTORS
    assert 'vectors=["text", "image"]' in repr(col)
    # The dict in any order; each array its own dtype and layout.
    col.upsert(
        list(range(n)),
        {"image": vecs["image"].astype(np.float64), "text": vecs["text"]},
        [{"i": i} for i in range(n)],
    )
    rec = col.get([7], with_vectors=True)[0]
    assert set(rec.vector) == {"text", "image"}
    np.testing.assert_allclose(rec.vector["image"], vecs["image"][7])
    t = vecs["text"][7]
    np.testing.assert_allclose(rec.vector["text"], t / np.linalg.norm(t), atol=1e-6)

    rng = np.random.default_rng(1)

    def check(exact: bool) -> float:
        hits = 0
        for using, dim in (("text", 12), ("image", 5)):
            for _ in range(10):
                q = rng.standard_normal(dim).astype(np.float32)
                want = top(vecs, using, q, 10)
                got = [h.id for h in col.search(q, 10, using=using, exact=exact)]
                if exact:
                    assert got == want, using
                hits += len(set(got) & set(want))
                batch = col.search_batch(q[None, :], 10, using=using, exact=exact)
                assert [h.id for h in batch[0]] == got
        return hits / 200

    check(exact=True)
    col.optimize()  # sealed and indexed: one graph per vector
    assert col.info()["indexed_points"] == n
    assert check(exact=False) >= 0.9
    assert col.info()["vectors"] == VECTORS

    # Replace one vector of some points: the other stays.
    new_image = rng.standard_normal((3, 5)).astype(np.float32)
    assert col.update_vectors([1, 2, 99999], {"image": new_image}) == [1, 2]
    vecs["image"][1:3] = new_image[:2]
    got = col.get([1, 2], with_vectors=True)
    for r, i in zip(got, (1, 2)):
        np.testing.assert_allclose(r.vector["image"], vecs["image"][i])
        t = vecs["text"][i]
        np.testing.assert_allclose(r.vector["text"], t / np.linalg.norm(t), atol=1e-6)
    hit = col.search(vecs["image"][2], 1, using="image", exact=True, with_vectors=True)[0]
    assert hit.id == 2 and set(hit.vector) == {"text", "image"}
    db.close()

    again = ferrovec.open(tmp_path / "db")
    col = again.collection("docs")
    assert col.vectors == VECTORS
    check(exact=True)
    again.close()


def test_named_vector_errors_change_nothing(db):
    col = db.create_collection("docs", vectors=VECTORS)
    col.upsert([1], {k: v[:1] for k, v in data(1).items()})
    bad = [
        # Vectors are finite numbers (a row of NaN leaves that point's vector out).
        (
            lambda: col.upsert([2], {"text": [[1.0] * 11 + [np.nan]], "image": np.ones((1, 5))}),
            r"component 11 is NaN",
        ),
        (
            lambda: col.upsert([2], {"text": np.ones((1, 12)), "image": [[1, 2, np.inf, 4, 5]]}),
            r"component 2 is inf",
        ),
        # Known names, right sizes, a dict.
        (lambda: col.upsert([2], {**data(1), "audio": np.ones((1, 3))}), "no vector named"),
        (
            lambda: col.upsert([2], {"text": np.ones((1, 11)), "image": np.ones((1, 5))}),
            "dimension",
        ),
        (lambda: col.upsert([2], np.ones((1, 17))), "dict of one"),
        (lambda: col.upsert([2, 3], data(1)), "got 2 ids but 1 vectors"),
        # A zero vector under cosine, in one row of the batch: the batch is refused whole.
        (
            lambda: col.upsert(
                [2, 3], {"text": np.vstack([np.ones(12), np.zeros(12)]), "image": np.ones((2, 5))}
            ),
            "zero vector",
        ),
        # Searches say which vector, of its size.
        (lambda: col.search(np.ones(12)), "say which one"),
        (lambda: col.search(np.ones(12), using="audio"), 'no vector named "audio"'),
        (lambda: col.search(np.ones(12), using="image"), 'vector "image" has dimension 5'),
        (lambda: col.search_batch(np.ones((2, 12)), using="image"), "dimension 5"),
        (lambda: col.update_vectors([1], {"audio": np.ones((1, 3))}), "no vector named"),
    ]
    for call, message in bad:
        with pytest.raises(InvalidInputError, match=message):
            call()
    assert col.count() == 1
    with pytest.raises(InvalidInputError, match="either dim"):
        db.create_collection("x", 4, vectors=VECTORS)
    with pytest.raises(InvalidInputError, match=r"given twice|cannot be combined"):
        db.create_collection("x", vectors={"": {"dim": 3}, "a": {"dim": 3}})
    with pytest.raises(InvalidInputError, match="dim"):
        db.create_collection("x", vectors={"a": {"dim": 0}})
    with pytest.raises(InvalidInputError):
        db.create_collection("x", vectors={"a": {"dim": 3, "size": 4}})
    assert "x" not in db.list_collections()
    # exist_ok returns the same collection only for the same vectors.
    assert db.create_collection("docs", vectors=VECTORS, exist_ok=True).count() == 1
    with pytest.raises(InvalidInputError, match="exists with"):
        db.create_collection("docs", vectors={"text": {"dim": 12}}, exist_ok=True)


def test_points_may_lack_named_vectors(db):
    """A point may have only some named vectors (left out of the dict, a row of NaN, or removed
    with delete_vectors); a search of one never finds points without it."""
    col = db.create_collection("docs", vectors=VECTORS)
    vecs = data(100, seed=5)
    col.upsert(list(range(100)), vecs)
    col.upsert([100], {"text": vecs["text"][:1]})  # no image
    col.upsert([101], {})  # no vectors at all
    col.upsert([102, 103], {"image": [vecs["image"][3], [np.nan] * 5]})  # no text; 103 nothing
    got = {r.id: r.vector for r in col.get([100, 101, 102, 103], with_vectors=True)}
    assert set(got[100]) == {"text"} and got[101] == {} and got[103] == {}
    assert set(got[102]) == {"image"}
    assert col.delete_vectors(["image"], [0, 1, 999]) == 2
    assert col.delete_vectors(["text"], filter={"must": [{"has_id": [2]}]}) == 1
    assert set(col.get([0], with_vectors=True)[0].vector) == {"text"}
    for exact in (True, False):
        hits = col.search(vecs["image"][0], 200, using="image", exact=exact)
        assert {h.id for h in hits} == set(range(2, 100)) | {102}
        hits = col.search(vecs["text"][2], 200, using="text", exact=exact)
        assert {h.id for h in hits} == set(range(101)) - {2}
    assert col.count() == 104
    col.update_vectors([0], {"image": vecs["image"][:1]})
    assert col.search(vecs["image"][0], 1, using="image")[0].id == 0
    with pytest.raises(InvalidInputError, match="no vector named"):
        col.delete_vectors(["audio"], [1])
    # The unnamed vector too: the point stays, its vector is None, searches skip it.
    plain = db.create_collection("plain", dim=3, distance="dot")
    plain.upsert([1, 2], np.eye(3, dtype=np.float32)[:2])
    assert plain.delete_vectors([""], [1]) == 1
    assert plain.get([1], with_vectors=True)[0].vector is None
    assert [h.id for h in plain.search(np.ones(3), 5)] == [2]
