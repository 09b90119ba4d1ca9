"""Stores written by earlier versions open, answer, take writes and pass their checksums in
this one. Each `tests/compat/v<N>/` was written once by the version whose format was N
(`make_fixture.py`, which says what it holds) and is never regenerated. When the format
changes, the fixture of the old format stays here with an upgrade path to keep it passing, and
a new fixture of the new format is added beside it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import ferrovec

HERE = Path(__file__).resolve().parent
FIXTURES = sorted(p for p in HERE.glob("v*") if (p / "expected.json").exists())


@pytest.fixture(params=FIXTURES, ids=[p.name for p in FIXTURES])
def old(request, tmp_path: Path) -> tuple[Path, dict]:
    """A copy of one fixture (opening a store may repair or checkpoint it)."""
    dst = tmp_path / request.param.name
    shutil.copytree(request.param, dst)
    return dst, json.loads((dst / "expected.json").read_text())


def test_there_is_a_fixture_of_the_current_format() -> None:
    assert any(p.name == "v8" for p in FIXTURES)
    assert any(p.name == "v7" for p in FIXTURES)
    assert any(p.name == "v6" for p in FIXTURES)
    assert any(p.name == "v5" for p in FIXTURES)


def collections(want: dict) -> list[str]:
    return want.get("collections", ["named", "plain"])


def test_an_old_store_opens_answers_and_takes_writes(old: tuple[Path, dict]) -> None:
    root, want = old
    q = np.asarray(want["query"], dtype=np.float32)
    red = {"must": [{"key": "color", "match": {"value": "red"}}]}
    with ferrovec.open(root / "store") as db:
        assert sorted(db.list_collections()) == collections(want)
        plain, named = db.collection("plain"), db.collection("named")
        # The log records after the checkpoint are replayed.
        assert plain.count() == want["plain_count"]
        assert plain.count(filter=red) == want["plain_red"]
        assert [h.id for h in plain.search(q, k=10, exact=True)] == want["plain_top10"]
        assert [h.id for h in plain.search(q, k=5, filter=red, exact=True)] == want[
            "plain_red_top5"
        ]
        assert plain.get([25])[0].payload == want["plain_25"]
        # The graph and its codes: a stored vector finds itself.
        (rec,) = plain.get([101], with_vectors=True)
        assert plain.search(rec.vector, k=1)[0].id == 101
        # Payload indexes answer ordered scrolls.
        page, _ = plain.scroll(limit=3, order_by={"key": "n", "direction": "desc"})
        assert [r.id for r in page] == [1002, 1001, 1000]
        assert named.count() == want["named_count"]
        ones = np.ones(6, np.float32)
        assert [h.id for h in named.search(ones, k=5, using="text", exact=True)] == want[
            "named_text_top5"
        ]
        zeros = np.zeros(4, np.float32)
        assert [h.id for h in named.search(zeros, k=5, using="image", exact=True)] == want[
            "named_image_top5"
        ]
        plain.verify()
        named.verify()
        # Format 5 and 6 graphs had int8 codes or none; they are read as int8 (format 7 on).
        sealed = [s for s in plain.stats()["segments"] if s["indexed"]]
        assert sealed and all(s["codes"] == "int8" for s in sealed)
        assert plain.info()["quantization"] is None
        # Before format 8 no collection chose its tier: the store's rows_from_disk_mb decides.
        assert plain.info()["vectors_on_disk"] is None
        if "hybrid_count" in want:
            check_hybrid(db.collection("hybrid"), want)
        for kind in ("int4", "binary"):
            if f"{kind}_top5" in want:
                check_coded(db.collection(kind), kind, want)
        # Writes, a checkpoint and an optimization in the new version.
        plain.upsert([5000], np.ones((1, 8), np.float32), [{"color": "red", "n": 5000}])
        plain.delete([101])
        plain.optimize()
        assert plain.count() == want["plain_count"]
    with ferrovec.open(root / "store") as db:
        plain = db.collection("plain")
        assert plain.count() == want["plain_count"]
        assert plain.search(np.ones(8, np.float32), k=1)[0].id == 5000
        assert plain.get([101]) == []
        plain.verify()


def check_coded(col: ferrovec.Collection, kind: str, want: dict) -> None:
    """A graph walked on int4 or binary codes, and the collection's settings (format 7 on)."""
    assert col.info()["quantization"] == want[f"{kind}_quantization"]
    assert col.info()["vectors_on_disk"] is want.get(f"{kind}_vectors_on_disk")  # format 8 on
    assert col.stats()["segments"][0]["codes"] == kind
    q = np.asarray(want["query32"], dtype=np.float32)
    assert [h.id for h in col.search(q, k=5)] == want[f"{kind}_top5"]
    (rec,) = col.get([7], with_vectors=True)
    assert col.search(rec.vector, k=1)[0].id == 7
    col.verify()


def check_hybrid(hybrid: ferrovec.Collection, want: dict) -> None:
    """Sparse vectors, their inverted index and their log records (format 6 on)."""
    assert hybrid.count() == want["hybrid_count"]
    hits = hybrid.search(ferrovec.Document("quick fox"), k=5, using="text")
    got = [[h.id, h.score] for h in hits]
    assert [g[0] for g in got] == [w[0] for w in want["hybrid_bm25_top5"]]
    assert np.allclose([g[1] for g in got], [w[1] for w in want["hybrid_bm25_top5"]], atol=1e-5)
    fused = hybrid.query(
        {
            "prefetch": [
                {"query": [1.0, 0.5, 0.0, -0.5], "params": {"exact": True}},
                {"query": {"text": "lazy dog", "model": "qdrant/bm25"}, "using": "text"},
            ],
            "query": {"fusion": "rrf"},
            "limit": 5,
        }
    )
    assert [h.id for h in fused] == want["hybrid_rrf_top5"]
    hybrid.verify()
    hybrid.optimize()
    assert [h.id for h in hybrid.search(ferrovec.Document("quick fox"), k=5, using="text")] == [
        w[0] for w in want["hybrid_bm25_top5"]
    ]


def test_an_old_snapshot_and_backup_restore(old: tuple[Path, dict], tmp_path: Path) -> None:
    root, want = old
    (snap,) = sorted((root / "store" / "snapshots").glob("*.fvsnap"))
    ferrovec.verify_snapshot(snap)
    assert ferrovec.restore_snapshot(snap, tmp_path / "from-snapshot") == collections(want)
    ferrovec.verify_backup(root / "backups")
    restored = ferrovec.restore_backup(root / "backups", tmp_path / "from-backup")
    assert sorted(restored) == collections(want)
    for target in ("from-snapshot", "from-backup"):
        with ferrovec.open(tmp_path / target) as db:
            # As they were before the log records the fixture wrote after them.
            assert db.collection("plain").count() == 290
            assert db.collection("named").count() == 250
            db.collection("plain").verify()
            db.collection("named").verify()
            for kind in ("int4", "binary"):
                if f"{kind}_top5" in want:
                    coded = db.collection(kind)
                    assert coded.count() == 400
                    assert coded.stats()["segments"][0]["codes"] == kind
                    coded.verify()
            if "hybrid_count" in want:
                # Before the records after the snapshot: 120 points, 108 with a sparse vector.
                hybrid = db.collection("hybrid")
                assert hybrid.count() == 120
                hybrid.verify()
                assert hybrid.search(ferrovec.Document("quick fox"), k=200, using="text")
