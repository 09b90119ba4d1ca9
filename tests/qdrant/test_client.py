"""ferrovec.QdrantClient on its own: what local mode cannot be compared on (snapshots, aliases
on disk, the removed search/recommend calls, server-only parameters, clear errors), against
Qdrant's documented behaviour."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient as Reference
from qdrant_client import models as m
from qdrant_client.http import models as rest

import ferrovec
from ferrovec import UnsupportedError

DIM = 4


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def client(tmp_path: Path) -> ferrovec.QdrantClient:
    c = ferrovec.QdrantClient(path=tmp_path / "db")
    c.create_collection("c", vectors_config=m.VectorParams(size=DIM, distance=m.Distance.COSINE))
    rng = np.random.default_rng(0)
    c.upsert(
        "c",
        [
            m.PointStruct(id=i, vector=v.tolist(), payload={"g": "ab"[i % 2], "i": i})
            for i, v in enumerate(unit(rng, 20))
        ],
    )
    return c


def test_result_types_are_qdrant_clients(client: ferrovec.QdrantClient) -> None:
    res = client.query_points("c", query=[1, 0, 0, 0], limit=3)
    assert isinstance(res, rest.QueryResponse) and all(
        isinstance(p, m.ScoredPoint) for p in res.points
    )
    assert isinstance(client.retrieve("c", [1])[0], m.Record)
    assert isinstance(client.count("c"), m.CountResult)
    up = client.upsert("c", [m.PointStruct(id=99, vector=[0, 0, 1, 0])])
    assert isinstance(up, m.UpdateResult) and up.status == m.UpdateStatus.COMPLETED
    assert isinstance(client.get_collections(), m.CollectionsResponse)


def test_collection_info_is_complete(client: ferrovec.QdrantClient) -> None:
    info = client.get_collection("c")
    assert isinstance(info, m.CollectionInfo)
    assert info.points_count == 20
    assert info.config.params.vectors.size == DIM
    assert info.config.params.vectors.distance == m.Distance.COSINE
    for f in ("shard_number", "replication_factor", "write_consistency_factor", "on_disk_payload"):
        assert getattr(info.config.params, f) is not None
    assert info.config.hnsw_config.m == 16
    assert info.config.optimizer_config is not None and info.config.wal_config is not None
    client.create_payload_index("c", "g", m.PayloadSchemaType.KEYWORD)
    assert client.get_collection("c").payload_schema["g"].data_type == m.PayloadSchemaType.KEYWORD
    client.delete_payload_index("c", "g")
    assert client.get_collection("c").payload_schema == {}


def test_thresholds_are_converted_from_kilobytes(tmp_path: Path) -> None:
    c = ferrovec.QdrantClient(path=tmp_path / "db")
    c.create_collection(
        "k",
        vectors_config=m.VectorParams(size=256, distance=m.Distance.DOT),
        hnsw_config=m.HnswConfigDiff(full_scan_threshold=10_000, m=8),
    )
    native = c.database.collection("k").info()
    assert native["hnsw"]["m"] == 8
    assert native["hnsw"]["full_scan_threshold"] == 10_000 * 1024 // (256 * 4)  # 10,000 points
    assert c.get_collection("k").config.hnsw_config.full_scan_threshold == 10_000
    c.create_collection(
        "o",
        vectors_config=m.VectorParams(size=256, distance=m.Distance.DOT),
        optimizers_config=m.OptimizersConfigDiff(indexing_threshold=5_000),
    )
    assert c.database.collection("o").info()["optimizer"]["indexing_threshold"] == 5_000
    assert c.get_collection("o").config.optimizer_config.indexing_threshold == 5_000


def test_langchain_style_calls(client: ferrovec.QdrantClient) -> None:
    """What langchain-qdrant's QdrantVectorStore sends: the unnamed vector as {"": v},
    using="", consistency=None, offset=0, score_threshold=None, search_params=None, and
    deletes with a plain list of ids; it reads result.status."""
    pid = str(uuid.uuid4())
    res = client.upsert(
        "c",
        [m.PointStruct(id=pid, vector={"": [0.0, 1.0, 0.0, 0.0]}, payload={"page_content": "x"})],
    )
    assert res.status == m.UpdateStatus.COMPLETED
    hits = client.query_points(
        "c",
        query=[0.0, 1.0, 0.0, 0.0],
        using="",
        query_filter=None,
        search_params=None,
        limit=1,
        offset=0,
        with_payload=True,
        with_vectors=False,
        score_threshold=None,
        consistency=None,
    ).points
    assert hits[0].id == pid and hits[0].score == pytest.approx(1.0, abs=1e-6)
    assert client.delete("c", points_selector=[pid]).status == m.UpdateStatus.COMPLETED
    assert client.retrieve("c", [pid]) == []


def test_older_search_and_recommend(client: ferrovec.QdrantClient) -> None:
    q = [0.3, -0.2, 0.9, 0.1]
    a = client.search("c", query_vector=q, limit=5, search_params=m.SearchParams(exact=True))
    b = client.query_points("c", query=q, limit=5, search_params=m.SearchParams(exact=True)).points
    assert [h.id for h in a] == [h.id for h in b]
    assert client.search("c", query_vector=("", q), limit=5)[0].id == a[0].id
    assert [r[0].id for r in client.search_batch("c", [{"vector": q, "limit": 1}])] == [a[0].id]
    # recommend (average_vector): near 2 mean(pos) - mean(neg), the examples left out.
    vecs = {r.id: np.array(r.vector) for r in client.retrieve("c", [1, 2, 3], with_vectors=True)}
    target = 2 * (vecs[1] + vecs[2]) / 2 - vecs[3]
    rec = client.recommend("c", positive=[1, 2], negative=[3], limit=4)
    assert {1, 2, 3}.isdisjoint(h.id for h in rec)
    want = client.search(
        "c", query_vector=target.tolist(), limit=7, search_params=m.SearchParams(exact=True)
    )
    assert [h.id for h in rec] == [h.id for h in want if h.id not in (1, 2, 3)][:4]


def test_query_by_point_id_leaves_that_point_out(client: ferrovec.QdrantClient) -> None:
    hits = client.query_points("c", query=5, limit=19).points
    assert 5 not in [h.id for h in hits] and len(hits) == 19


def test_aliases_persist(tmp_path: Path) -> None:
    c = ferrovec.QdrantClient(path=tmp_path / "db")
    c.create_collection("real", vectors_config=m.VectorParams(size=2, distance=m.Distance.DOT))
    c.update_collection_aliases(
        change_aliases_operations=[
            m.CreateAliasOperation(
                create_alias=m.CreateAlias(collection_name="real", alias_name="prod")
            )
        ]
    )
    c.upsert("prod", [m.PointStruct(id=1, vector=[1, 2])])
    assert c.count("real").count == 1
    c.close()
    c = ferrovec.QdrantClient(path=tmp_path / "db")
    assert [(a.alias_name, a.collection_name) for a in c.get_aliases().aliases] == [
        ("prod", "real")
    ]
    assert c.retrieve("prod", [1])[0].id == 1
    c.update_collection_aliases(
        change_aliases_operations=[
            m.RenameAliasOperation(
                rename_alias=m.RenameAlias(old_alias_name="prod", new_alias_name="live")
            )
        ]
    )
    assert [a.alias_name for a in c.get_collection_aliases("real").aliases] == ["live"]
    c.delete_collection("live")  # through the alias
    assert not c.collection_exists("real") and c.get_aliases().aliases == []


def test_snapshots(client: ferrovec.QdrantClient) -> None:
    snap = client.create_snapshot("c")
    assert [s.name for s in client.list_snapshots("c")] == [snap.name]
    assert snap.size > 0 and len(snap.checksum) == 64
    before = client.scroll("c", limit=100, with_vectors=True)[0]
    client.delete(
        "c",
        points_selector=m.FilterSelector(
            filter=m.Filter(must=[m.FieldCondition(key="g", match=m.MatchValue(value="a"))])
        ),
    )
    assert client.count("c").count == 10
    path = Path(client.database.path) / "snapshots" / snap.name
    assert path.is_file()
    with pytest.raises(ValueError, match="checksum"):
        client.recover_snapshot("c", str(path), checksum="0" * 64)
    assert client.recover_snapshot("c", f"file://{path}", checksum=snap.checksum)
    assert client.scroll("c", limit=100, with_vectors=True)[0] == before
    assert client.delete_snapshot("c", snap.name)
    assert client.list_snapshots("c") == []


def test_unsupported_requests_say_so(client: ferrovec.QdrantClient) -> None:
    with pytest.raises(UnsupportedError, match="init_from"):
        client.create_collection(
            "i", vectors_config=m.VectorParams(size=2, distance=m.Distance.DOT), init_from="c"
        )
    with pytest.raises(UnsupportedError, match="multivector"):
        client.create_collection(
            "mv",
            vectors_config=m.VectorParams(
                size=2,
                distance=m.Distance.DOT,
                multivector_config=m.MultiVectorConfig(comparator=m.MultiVectorComparator.MAX_SIM),
            ),
        )
    with pytest.raises(UnsupportedError):
        ferrovec.QdrantClient(url="http://localhost:6333")
    # A sparse query for a dense vector is bad input (as in Qdrant), not unsupported.
    with pytest.raises(ValueError, match="sparse"):
        client.query_points("c", query=m.SparseVector(indices=[1], values=[1.0]))
    with pytest.raises(UnsupportedError, match="TextQuery"):
        client.query_points("c", query=m.TextQuery(text="hello"))
    with pytest.raises(UnsupportedError, match=r"SearchParams\.idf"):
        client.query_points(
            "c",
            query=[1, 0, 0, 0],
            search_params=m.SearchParams(idf=m.IdfCorpusParams(corpus=m.Filter())),
        )
    # Documents are embedded only by BM25 in the core (no model downloads).
    with pytest.raises(ValueError, match="qdrant/bm25"):
        client.query_points("c", query=m.Document(text="hi", model="BAAI/bge-small-en"))
    assert client.count("c").count == 20  # nothing changed


def test_duplicate_ids_last_wins_and_zero_vectors(client: ferrovec.QdrantClient) -> None:
    client.upsert(
        "c",
        [
            m.PointStruct(id=500, vector=[1, 0, 0, 0], payload={"v": 1}),
            m.PointStruct(id=500, vector=[0, 1, 0, 0], payload={"v": 2}),
            m.PointStruct(id=501, vector=[0, 0, 0, 0]),
        ],
    )
    rec = client.retrieve("c", [500, 501], with_vectors=True)
    assert rec[0].payload == {"v": 2} and rec[0].vector == pytest.approx([0, 1, 0, 0])
    assert rec[1].vector == [0, 0, 0, 0]
    hit = [h for h in client.query_points("c", query=[1, 1, 1, 1], limit=100).points if h.id == 501]
    assert hit[0].score == 0


def test_works_without_qdrant_client(tmp_path: Path) -> None:
    """With qdrant-client absent, the client takes dicts and ferrovec.models and returns
    ferrovec.models."""
    code = f"""
import sys
sys.modules["qdrant_client"] = None  # importing it now fails, as if not installed
import ferrovec
from ferrovec import models as fm
import ferrovec.qdrant.models as qm
assert fm.PointStruct is qm.PointStruct  # importable where it first was
c = ferrovec.QdrantClient(path={str(tmp_path / "db")!r})
c.create_collection("c", vectors_config=fm.VectorParams(size=2, distance=fm.Distance.DOT))
c.upsert("c", [fm.PointStruct(id=1, vector=[1, 0], payload={{"a": 1}}),
              {{"id": 2, "vector": [0, 1]}}])
flt = {{"must": [{{"key": "a", "match": {{"value": 1}}}}]}}
res = c.query_points("c", query=[1, 0.1], limit=2, query_filter=flt)
assert type(res).__module__ == "ferrovec.qdrant.models", type(res)
assert [(p.id, round(p.score, 3)) for p in res.points] == [(1, 1.0)]
info = c.get_collection("c")
assert info.config.params.vectors.size == 2 and info.points_count == 2
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_migrate_to_local_mode(client: ferrovec.QdrantClient) -> None:
    from qdrant_client.migrate import migrate

    dest = Reference(":memory:")
    migrate(client, dest)
    got = dest.scroll("c", limit=100, with_vectors=True)[0]
    want = client.scroll("c", limit=100, with_vectors=True)[0]
    assert [(r.id, r.payload) for r in got] == [(r.id, r.payload) for r in want]
    assert np.allclose([r.vector for r in got], [r.vector for r in want], atol=1e-6)


def test_damaged_alias_file_is_refused(tmp_path: Path) -> None:
    c = ferrovec.QdrantClient(path=tmp_path / "db")
    c.create_collection("real", vectors_config=m.VectorParams(size=2, distance=m.Distance.DOT))
    c.update_collection_aliases(
        change_aliases_operations=[
            m.CreateAliasOperation(
                create_alias=m.CreateAlias(collection_name="real", alias_name="a")
            )
        ]
    )
    c.close()
    f = tmp_path / "db" / "qdrant_aliases.json"
    f.write_text(f.read_text().replace('"real"', '"fake"'))
    with pytest.raises(ferrovec.CorruptionError, match="checksum"):
        ferrovec.QdrantClient(path=tmp_path / "db")
    f.write_text('{"format": "ferrovec.qdrant_aliases", "version": 9}')
    with pytest.raises(ferrovec.CorruptionError, match="version 9"):
        ferrovec.QdrantClient(path=tmp_path / "db")


@pytest.fixture
def named(tmp_path: Path) -> ferrovec.QdrantClient:
    """A collection of two named vectors: "text" (cosine, 4) and "image" (euclid, 3)."""
    c = ferrovec.QdrantClient(path=tmp_path / "named")
    c.create_collection(
        "n",
        vectors_config={
            "text": m.VectorParams(size=DIM, distance=m.Distance.COSINE),
            "image": m.VectorParams(size=3, distance=m.Distance.EUCLID),
        },
    )
    rng = np.random.default_rng(3)
    c.upload_collection(
        "n",
        {"text": unit(rng, 30), "image": rng.standard_normal((30, 3))},
        payload=[{"i": i} for i in range(30)],
        ids=range(30),
        batch_size=7,
    )
    return c


def test_named_vectors_in_every_call(named: ferrovec.QdrantClient) -> None:
    c = named
    info = c.get_collection("n")
    vectors = info.config.params.vectors
    assert isinstance(vectors, dict) and vectors["image"].size == 3
    assert vectors["image"].distance == m.Distance.EUCLID and info.points_count == 30
    # Points: dicts per point, a Batch of dicts, upload_points.
    c.upsert("n", [m.PointStruct(id=100, vector={"text": [1, 0, 0, 0], "image": [9, 9, 9]})])
    c.upsert("n", m.Batch(ids=[101], vectors={"text": [[0, 1, 0, 0]], "image": [[8, 8, 8]]}))
    c.upload_points("n", [m.PointStruct(id=102, vector={"image": [7, 7, 7], "text": [0, 0, 1, 0]})])
    assert c.count("n").count == 33
    # Each query form names its vector.
    assert c.query_points("n", query=[9, 9, 9], using="image", limit=1).points[0].id == 100
    assert c.search("n", ("image", [8, 8, 8]), limit=1)[0].id == 101
    # A NamedVector (gone from qdrant-client 1.20's models) in its JSON shape.
    named_vector = {"name": "text", "vector": [0, 0, 1, 0]}
    assert c.search("n", named_vector, limit=1)[0].id == 102
    assert c.query_points("n", query=100, using="image", limit=1).points[0].id == 101
    rec = c.recommend("n", positive=[100], negative=[102], using="text", limit=1)
    assert rec[0].id not in (100, 102)
    # Vectors come back by name; with_vectors may pick some.
    got = c.retrieve("n", [100], with_vectors=True)[0].vector
    assert got == {"text": [1.0, 0.0, 0.0, 0.0], "image": [9.0, 9.0, 9.0]}
    assert c.retrieve("n", [100], with_vectors=["image"])[0].vector == {"image": [9.0, 9.0, 9.0]}
    # update_vectors replaces the vectors given, keeps the other.
    c.update_vectors("n", [m.PointVectors(id=100, vector={"image": [1, 2, 3]})])
    got = c.retrieve("n", [100], with_vectors=True)[0].vector
    assert got == {"text": [1.0, 0.0, 0.0, 0.0], "image": [1.0, 2.0, 3.0]}


def test_points_may_lack_named_vectors(named: ferrovec.QdrantClient) -> None:
    """As in Qdrant, a point may have only some of its collection's named vectors (left out, or
    removed by delete_vectors): searches of a vector never find points without it."""
    named.upsert(
        "n",
        [
            m.PointStruct(id=200, vector={"text": [1, 0, 0, 0], "image": [5, 5, 5]}),
            m.PointStruct(id=201, vector={"text": [1, 0, 0, 0]}),
            m.PointStruct(id=202, vector={}),
        ],
    )
    got = {r.id: r.vector for r in named.retrieve("n", [200, 201, 202], with_vectors=True)}
    assert got[201] == {"text": [1.0, 0.0, 0.0, 0.0]} and got[202] == {}
    image_hits = named.query_points("n", query=[5, 5, 5], using="image", limit=40).points
    assert 200 in [h.id for h in image_hits] and not {201, 202} & {h.id for h in image_hits}
    named.delete_vectors("n", ["image"], [200])
    image_hits = named.query_points("n", query=[5, 5, 5], using="image", limit=40).points
    assert 200 not in [h.id for h in image_hits] and len(image_hits) == 30
    assert named.retrieve("n", [200], with_vectors=True)[0].vector == {"text": [1.0, 0, 0, 0]}
    with pytest.raises(ValueError, match="for point 201 not found"):
        named.query_points("n", query=201, using="image")
    # Missing ids: the rest is done, then the error names the first.
    with pytest.raises(KeyError):
        named.delete_vectors("n", ["text"], [200, 999])
    assert named.retrieve("n", [200], with_vectors=True)[0].vector == {}
    assert named.count("n").count == 33  # points stay, with their payloads
    named.update_vectors("n", [m.PointVectors(id=202, vector={"image": [5, 5, 5]})])
    image_hits = named.query_points("n", query=[5, 5, 5], using="image", limit=1).points
    assert image_hits[0].id == 202
    with pytest.raises(UnsupportedError, match="hnsw_config"):
        named.create_collection(
            "h",
            vectors_config={
                "a": m.VectorParams(size=2, distance=m.Distance.DOT, hnsw_config={"m": 8}),
                "b": m.VectorParams(size=2, distance=m.Distance.DOT, hnsw_config={"m": 32}),
            },
        )
    assert not named.collection_exists("h")


def test_migrate_sparse_vectors_to_local_mode(tmp_path: Path) -> None:
    from qdrant_client.migrate import migrate

    src = ferrovec.QdrantClient(path=tmp_path / "db")
    src.create_collection(
        "h",
        vectors_config={"": m.VectorParams(size=2, distance=m.Distance.DOT)},
        sparse_vectors_config={"s": m.SparseVectorParams(modifier=m.Modifier.IDF)},
    )
    src.upsert(
        "h",
        [
            m.PointStruct(
                id=i, vector={"": [1.0, i], "s": m.SparseVector(indices=[i], values=[1.0])}
            )
            for i in range(5)
        ]
        + [m.PointStruct(id=9, vector={"s": m.Document(text="quick foxes", model="qdrant/bm25")})],
    )
    dest = Reference(":memory:")
    migrate(src, dest)
    params = dest.get_collection("h").config.params
    assert params.sparse_vectors["s"].modifier == m.Modifier.IDF  # type: ignore[index]
    got = dest.scroll("h", limit=100, with_vectors=True)[0]
    want = src.scroll("h", limit=100, with_vectors=True)[0]
    assert [(r.id, r.vector) for r in got] == [(r.id, r.vector) for r in want]
    q = m.SparseVector(indices=[3], values=[2.0])
    ours = [(p.id, round(p.score, 4)) for p in src.query_points("h", q, using="s").points]
    theirs = [(p.id, round(p.score, 4)) for p in dest.query_points("h", q, using="s").points]
    assert ours == theirs and ours[0][0] == 3


def test_migrate_named_vectors_to_local_mode(named: ferrovec.QdrantClient) -> None:
    from qdrant_client.migrate import migrate

    dest = Reference(":memory:")
    migrate(named, dest)
    assert dest.get_collection("n").config.params.vectors["image"].size == 3  # type: ignore[index]
    got = dest.scroll("n", limit=100, with_vectors=True)[0]
    want = named.scroll("n", limit=100, with_vectors=True)[0]
    assert [(r.id, r.payload) for r in got] == [(r.id, r.payload) for r in want]
    for g, w in zip(got, want):
        for name in ("text", "image"):
            assert np.allclose(g.vector[name], w.vector[name], atol=1e-6)  # type: ignore[index]
