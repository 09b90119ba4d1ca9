"""One query over several large indexed segments walks them in parallel (docs/SCALE.md): the
results are those of walking them one after the other."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import ferrovec


def test_a_query_walks_large_segments_in_parallel_with_the_same_results(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    n, dim = 110_000, 16
    data = rng.standard_normal((n, dim)).astype(np.float32)
    db = ferrovec.open(tmp_path / "s")
    col = db.create_collection(
        "c",
        dim=dim,
        hnsw={"m": 8, "ef_construct": 32, "full_scan_threshold": 1000},
        optimizer={"max_segment_points": 55_000},
    )
    # Two checkpoints, two segments: the optimizer never merges past max_segment_points.
    col.upsert(np.arange(n // 2, dtype=np.uint64), data[: n // 2])
    col.flush()
    col.upsert(np.arange(n // 2, n, dtype=np.uint64), data[n // 2 :])
    col.optimize()
    sealed = [s for s in col.stats()["segments"] if s["indexed"]]
    assert len(sealed) == 2 and all(s["rows"] >= 50_000 for s in sealed)
    queries = rng.standard_normal((30, dim)).astype(np.float32)
    try:
        ferrovec.set_num_threads(2)
        assert col.explain(queries[0], 10)["parallel"]
        # A filter, or a batch (which spreads its queries instead), walks one at a time.
        assert not col.explain(queries[0], 10, filter={"must": [{"has_id": [1]}]})["parallel"]
        parallel = [[(h.id, h.score) for h in col.search(q, 10, ef=48)] for q in queries]
        ferrovec.set_num_threads(1)
        assert not col.explain(queries[0], 10)["parallel"]
        sequential = [[(h.id, h.score) for h in col.search(q, 10, ef=48)] for q in queries]
    finally:
        ferrovec.set_num_threads(0)
    assert parallel == sequential
    # Both segments contribute, and the results are those of the best of both.
    exact = [{h.id for h in col.search(q, 10, exact=True)} for q in queries]
    hits = sum(len(e & {i for i, _ in p}) for e, p in zip(exact, parallel))
    assert hits / (10 * len(queries)) > 0.9
