"""Exact search equals numpy brute force: same ids, scores within 1e-5, for every distance."""

from __future__ import annotations

import numpy as np
import pytest

import ferrovec


def brute_force(
    metric: str, base: np.ndarray, q: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    b = base.astype(np.float64)
    qq = q.astype(np.float64)
    if metric == "cosine":
        s = (b / np.linalg.norm(b, axis=1, keepdims=True)) @ (qq / np.linalg.norm(qq))
        order = np.argsort(-s, kind="stable")
    elif metric == "dot":
        s = b @ qq
        order = np.argsort(-s, kind="stable")
    elif metric == "euclid":
        s = np.sqrt(((b - qq) ** 2).sum(axis=1))
        order = np.argsort(s, kind="stable")
    else:
        s = np.abs(b - qq).sum(axis=1)
        order = np.argsort(s, kind="stable")
    return order[:k], s[order[:k]]


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclid", "manhattan"])
def test_exact_search_matches_numpy(tmp_path, metric):
    rng = np.random.default_rng(42)
    n, dim = 5000, 48
    base = rng.uniform(-1, 1, (n, dim)).astype(np.float32)
    queries = rng.uniform(-1, 1, (25, dim)).astype(np.float32)
    with ferrovec.open(tmp_path / "s") as db:
        col = db.create_collection("c", dim=dim, distance=metric)
        # Half sealed in a segment, half in memory and the log.
        col.upsert(list(range(2500)), base[:2500])
        col.flush()
        col.upsert(list(range(2500, n)), base[2500:])
        batch = col.search_batch(queries, k=10, with_payload=False)
        for qi, q in enumerate(queries):
            want_ids, want_scores = brute_force(metric, base, q, 10)
            hits = col.search(q, k=10, with_payload=False)
            assert [h.id for h in hits] == want_ids.tolist()
            np.testing.assert_allclose([h.score for h in hits], want_scores, atol=1e-5, rtol=1e-5)
            assert [h.id for h in batch[qi]] == want_ids.tolist()
            np.testing.assert_allclose(
                [h.score for h in batch[qi]], want_scores, atol=1e-5, rtol=1e-5
            )
