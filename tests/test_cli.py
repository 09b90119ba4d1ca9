"""The `ferrovec` command line: info, verify and the demo."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import ferrovec


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ferrovec", *args], capture_output=True, text=True, timeout=300
    )


def test_info_and_verify(store_path):
    with ferrovec.open(store_path) as db:
        a = db.create_collection("alpha", dim=8, distance="dot")
        a.upsert(list(range(100)), np.ones((100, 8), dtype=np.float32))
        a.flush()
        a.upsert([100], np.ones((1, 8), dtype=np.float32))
        db.create_collection("beta", dim=3, distance="euclid")
        db.create_collection(
            "gamma", vectors={"text": {"dim": 4}, "image": {"dim": 2, "distance": "dot"}}
        )
        del a
    out = run("info", str(store_path))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    alpha = next(line for line in lines if line.startswith("alpha"))
    assert alpha.split()[:4] == ["alpha", "8", "dot", "101"]
    beta = next(line for line in lines if line.startswith("beta"))
    assert beta.split()[:4] == ["beta", "3", "euclid", "0"]
    at = next(n for n, line in enumerate(lines) if line.startswith("gamma"))
    assert lines[at].split()[:4] == ["gamma", "-", "named", "0"]
    assert [line.split() for line in lines[at + 1 : at + 3]] == [
        ["text", "4", "cosine"],
        ["image", "2", "dot"],
    ]
    out = run("verify", str(store_path))
    assert out.returncode == 0 and "alpha: ok" in out.stdout


def test_info_of_a_missing_store_is_a_clear_error(tmp_path):
    out = run("info", str(tmp_path / "nothing"))
    assert out.returncode == 1
    assert "no ferrovec store" in out.stderr
    assert not (tmp_path / "nothing").exists(), "info must not create a store"


def test_demo_runs_end_to_end(tmp_path):
    out = run("demo", "--points", "3000", "--path", str(tmp_path / "demo"))
    assert out.returncode == 0, out.stderr
    assert "same top-10 as before close: True" in out.stdout
    assert "-> OK" in out.stdout


def test_migrate_to_qdrant_local_directory(store_path, tmp_path):
    """`ferrovec migrate` hands the store to qdrant-client's migrate; the destination (here
    qdrant-client's local mode on disk, standing in for a server) holds the same points."""
    from qdrant_client import QdrantClient

    rng = np.random.default_rng(4)
    vecs = rng.standard_normal((300, 8)).astype(np.float32)
    with ferrovec.open(store_path) as db:
        col = db.create_collection("docs", dim=8, distance="cosine")
        col.upsert(list(range(300)), vecs, [{"n": i, "tag": "ab"[i % 2]} for i in range(300)])
        del col
    dest = tmp_path / "qdrant-local"
    out = run("migrate", str(store_path), str(dest), "--batch-size", "64")
    assert out.returncode == 0, out.stderr
    assert "docs: 300 points" in out.stdout
    q = QdrantClient(path=str(dest))
    try:
        recs, _ = q.scroll("docs", limit=1000, with_vectors=True)
        assert sorted(r.id for r in recs) == list(range(300))
        by_id = {r.id: r for r in recs}
        assert by_id[7].payload == {"n": 7, "tag": "b"}
        unit = vecs[7] / np.linalg.norm(vecs[7])
        assert np.allclose(by_id[7].vector, unit, atol=1e-6)
    finally:
        q.close()
    # Again without --recreate: the collection exists there, so it is refused.
    again = run("migrate", str(store_path), str(dest))
    assert again.returncode == 1 and "ferrovec migrate:" in again.stderr, again.stderr
