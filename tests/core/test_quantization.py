"""Code kinds (int8, int4, binary, none), their rescoring, and what they refuse
(docs/SCALE.md). Real stores on disk; recall is measured against the exact scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ferrovec
from ferrovec.errors import InvalidInputError

KINDS = ["int8", "int4", "binary", "none"]
SUFFIX = {"int8": ".q8", "int4": ".q4", "binary": ".q1"}
DIM = 128


def clustered(n: int, seed: int) -> np.ndarray:
    """Unit vectors from a mixture around 100 centres, as `benches/workload.py` draws them."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).standard_normal((100, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.standard_normal((n, DIM)).astype(np.float32)
    noise *= 0.9 / np.linalg.norm(noise, axis=1, keepdims=True)
    v = centres[rng.integers(0, 100, n)] + noise
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return clustered(6000, 1), clustered(40, 2)


def build(path: Path, kind: str | dict, base: np.ndarray) -> ferrovec.Collection:
    db = ferrovec.open(path)
    col = db.create_collection("c", dim=DIM, quantization=kind, hnsw={"full_scan_threshold": 500})
    col.upsert(np.arange(len(base), dtype=np.uint64), base, [{"i": i} for i in range(len(base))])
    col.optimize(wait=True)
    return col


def recall(col: ferrovec.Collection, queries: np.ndarray, **kw: object) -> float:
    hits = 0
    for q in queries:
        want = {h.id for h in col.search(q, 10, exact=True)}
        hits += len(want & {h.id for h in col.search(q, 10, **kw)})  # type: ignore[arg-type]
    return hits / (10 * len(queries))


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_walked_rescored_and_kept_across_reopen(
    kind: str, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    base, queries = data
    col = build(tmp_path / "s", kind, base)
    seg = col.stats()["segments"][0]
    assert seg["indexed"]
    assert seg["codes"] == (None if kind == "none" else kind)
    files = sorted(p.name for p in (tmp_path / "s").rglob("*.q?"))
    assert [Path(f).suffix for f in files] == ([] if kind == "none" else [SUFFIX[kind]])
    method = "graph" if kind == "none" else f"graph on {kind} codes"
    assert [s["method"] for s in col.explain(queries[0], 10)["sources"]] == [method]
    assert recall(col, queries, ef=64) >= 0.95
    # Rescored results carry the exact scores.
    exact = {h.id: h.score for h in col.search(queries[0], 50, exact=True)}
    for h in col.search(queries[0], 10):
        assert h.score == pytest.approx(exact[h.id], abs=1e-5)
    before = [[h.id for h in col.search(q, 10)] for q in queries[:5]]
    info = col.info()["quantization"]
    assert info["codes"] == kind
    del col
    db = ferrovec.open(tmp_path / "s")
    col = db.collection("c")
    assert col.info()["quantization"] == info
    assert [[h.id for h in col.search(q, 10)] for q in queries[:5]] == before


@pytest.mark.parametrize("kind", ["int8", "int4", "binary"])
def test_search_params_override_rescoring(
    kind: str, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    base, queries = data
    col = build(tmp_path / "s", kind, base)
    q = queries[3]
    exact = {h.id: h.score for h in col.search(q, len(base), exact=True)}
    # Without rescoring the scores are the codes' estimates: close to, not equal to, exact.
    est = col.search(q, 10, quantization={"rescore": False})
    assert len(est) == 10
    assert [h.score for h in est] == sorted((h.score for h in est), reverse=True)
    err = max(abs(h.score - exact[h.id]) for h in est)
    assert 0 < err < {"int8": 0.02, "int4": 0.1, "binary": 0.5}[kind]
    # The walk on f32 (ignore) returns exact scores, and so does more oversampling.
    for params in ({"ignore": True}, {"oversampling": 10.0}):
        for h in col.search(q, 10, quantization=params):
            assert h.score == pytest.approx(exact[h.id], abs=1e-5)
    plan = col.explain(q, 10, quantization={"ignore": True})
    assert plan["sources"][0]["method"] == "graph"
    assert col.explain(q, 10, quantization={"oversampling": 6.0})["sources"][0]["rescore"] == 60
    assert col.explain(q, 10, quantization={"rescore": False})["sources"][0]["rescore"] is None
    # Filters walk the same codes.
    flt = {"must": [{"key": "i", "range": {"lt": 3000}}]}
    hits = col.search(q, 10, filter=flt)
    assert hits and all(h.id < 3000 for h in hits)
    # The universal query takes Qdrant's QuantizationSearchParams.
    via_query = col.query(
        {"query": q.tolist(), "limit": 10, "params": {"quantization": {"rescore": False}}}
    )
    assert [h.id for h in via_query] == [h.id for h in est]


def test_a_collection_sets_its_oversampling_and_rescoring(
    data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    base, queries = data
    col = build(tmp_path / "s", {"codes": "binary", "oversampling": 3.0, "rescore": False}, base)
    assert col.info()["quantization"] == {
        "codes": "binary",
        "oversampling": 3.0,
        "rescore": False,
        "always_ram": None,
    }
    plan = col.explain(queries[0], 10)["sources"][0]
    assert plan["method"] == "graph on binary codes" and plan["rescore"] is None
    assert (
        col.explain(queries[0], 10, quantization={"rescore": True})["sources"][0]["rescore"] == 30
    )


def test_the_default_is_int8_for_cosine_and_none_for_euclid(tmp_path: Path) -> None:
    db = ferrovec.open(tmp_path / "s")
    base = clustered(1000, 3)
    for distance, codes in (("cosine", "int8"), ("dot", "int8"), ("euclid", None)):
        col = db.create_collection(
            distance, dim=DIM, distance=distance, hnsw={"full_scan_threshold": 100}
        )
        col.upsert(np.arange(1000, dtype=np.uint64), base)
        col.optimize(wait=True)
        assert col.info()["quantization"] is None
        assert col.stats()["segments"][0]["codes"] == codes


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"distance": "euclid", "quantization": "int8"}, "int8 codes are for cosine and dot"),
        ({"distance": "manhattan", "quantization": "binary"}, "binary codes are for cosine"),
        ({"quantization": "int2"}, "unknown code kind"),
        ({"quantization": {"codes": "int4", "oversampling": 0.5}}, "oversampling must be"),
        ({"quantization": {"codes": "int4", "oversampling": float("nan")}}, "oversampling must be"),
        ({"quantization": {"codes": "int4", "bits": 4}}, "unknown key"),
        ({"quantization": 8}, "not a str or dict"),
    ],
)
def test_bad_quantization_is_refused_and_creates_nothing(
    kwargs: dict, message: str, tmp_path: Path
) -> None:
    db = ferrovec.open(tmp_path / "s")
    with pytest.raises(InvalidInputError, match=message):
        db.create_collection("c", dim=8, **kwargs)
    assert db.list_collections() == []


def test_named_vectors_of_mixed_distances_refuse_explicit_codes(tmp_path: Path) -> None:
    db = ferrovec.open(tmp_path / "s")
    vectors = {"text": {"dim": 4, "distance": "cosine"}, "image": {"dim": 4, "distance": "euclid"}}
    with pytest.raises(InvalidInputError, match='vector "image" uses euclid'):
        db.create_collection("c", vectors=vectors, quantization="int4")
    # Unset: the cosine vector gets int8 codes, the euclid one none.
    db.create_collection("c", vectors=vectors)


def test_bad_search_quantization_is_refused(
    data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    base, queries = data
    col = build(tmp_path / "s", "int4", base[:1000])
    for bad, message in (
        ({"oversampling": 0}, "oversampling must be"),
        ({"oversampling": 1000}, "oversampling must be"),
        ({"rescore": "yes"}, "expected a boolean"),
        ({"rescor": True}, "unknown key"),
    ):
        with pytest.raises(InvalidInputError, match=message):
            col.search(queries[0], 10, quantization=bad)
        with pytest.raises(InvalidInputError, match=message):
            col.query({"query": queries[0].tolist(), "params": {"quantization": bad}})


@pytest.mark.parametrize("kind", ["int8", "binary"])
def test_filtered_rows_of_a_segment_served_from_disk_are_scored_on_codes(
    kind: str, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    base, queries = data
    build(tmp_path / "s", kind, base)
    rare = {"must": [{"key": "i", "range": {"lt": 200}}]}  # 200 of 6,000: scored, not walked
    # Rows served from their mapping (the default below 256 MiB): scored on f32.
    with ferrovec.open(tmp_path / "s") as db:
        col = db.collection("c")
        (plan,) = col.explain(queries[0], 10, filter=rare)["sources"]
        assert plan["method"] == "exact over matching rows" and plan["rescore"] is None
        del col
    # Rows read from disk: scored on the codes, the best rescored on f32.
    with ferrovec.open(tmp_path / "s", rows_from_disk_mb=0) as db:
        col = db.collection("c")
        (plan,) = col.explain(queries[0], 10, filter=rare)["sources"]
        assert plan["method"] == f"{kind} codes over matching rows, rescored"
        assert plan["rescore"] == 10 * {"int8": 4, "binary": 32}[kind]
        hits = 0
        for q in queries:
            want = {h.id: h.score for h in col.search(q, 10, filter=rare, exact=True)}
            got = col.search(q, 10, filter=rare)
            assert len(got) == 10 and all(h.id < 200 for h in got)
            for h in got:
                if h.id in want:
                    assert h.score == pytest.approx(want[h.id], abs=1e-5)
            hits += len(want.keys() & {h.id for h in got})
        assert hits / (10 * len(queries)) >= 0.95
        # A threshold applies to the rescored scores; without rescoring, to the estimates.
        top = col.search(queries[1], 10, filter=rare, exact=True)
        cut = top[4].score
        assert [h.id for h in col.search(queries[1], 10, filter=rare, score_threshold=cut)] == [
            h.id for h in top if h.score >= cut
        ] or len(col.search(queries[1], 10, filter=rare, score_threshold=cut)) <= 5
        est = col.search(queries[1], 10, filter=rare, quantization={"rescore": False})
        assert len(est) == 10 and all(h.id < 200 for h in est)
