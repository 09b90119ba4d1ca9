"""Qdrant's quantization_config and QuantizationSearchParams through the compatible client, and
`migrate` to qdrant-client's local mode keeping the code settings (docs/QDRANT.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient as Reference
from qdrant_client import models as m

import ferrovec
from ferrovec.errors import InvalidInputError, UnsupportedError

BINARY = m.BinaryQuantization(binary=m.BinaryQuantizationConfig(always_ram=True))
SCALAR = m.ScalarQuantization(scalar=m.ScalarQuantizationConfig(type=m.ScalarType.INT8))


def points(n: int, dim: int = 32) -> list[m.PointStruct]:
    rng = np.random.default_rng(4)
    return [m.PointStruct(id=i, vector=v.tolist()) for i, v in enumerate(rng.random((n, dim)))]


@pytest.fixture
def client(tmp_path: Path) -> ferrovec.QdrantClient:
    return ferrovec.QdrantClient(path=tmp_path / "db")


@pytest.mark.parametrize(("config", "codes"), [(BINARY, "binary"), (SCALAR, "int8")])
def test_quantization_config_chooses_the_codes_and_is_reported(
    client: ferrovec.QdrantClient, config: object, codes: str
) -> None:
    client.create_collection(
        "c",
        vectors_config=m.VectorParams(size=32, distance=m.Distance.COSINE),
        hnsw_config=m.HnswConfigDiff(full_scan_threshold=1),  # 1 KB: index from 8 points
        quantization_config=config,
    )
    client.upsert("c", points(300))
    client._col("c").optimize()  # type: ignore[attr-defined]
    reported = client.get_collection("c").config.quantization_config
    assert type(reported) is type(config)
    assert client._col("c").stats()["segments"][0]["codes"] == codes  # type: ignore[attr-defined]
    # The same setting again is accepted; another is refused, and nothing changes.
    client.update_collection("c", quantization_config=config)
    other = SCALAR if config is BINARY else BINARY
    with pytest.raises(UnsupportedError, match="create a new collection"):
        client.update_collection("c", quantization_config=other)
    assert type(client.get_collection("c").config.quantization_config) is type(config)


def test_search_params_quantization_applies(client: ferrovec.QdrantClient) -> None:
    client.create_collection(
        "c",
        vectors_config=m.VectorParams(
            size=32, distance=m.Distance.COSINE, quantization_config=BINARY
        ),
        hnsw_config=m.HnswConfigDiff(full_scan_threshold=1),
    )
    client.upsert("c", points(500))
    client._col("c").optimize()  # type: ignore[attr-defined]
    q = np.full(32, 0.5).tolist()
    exact = {
        p.id: p.score
        for p in client.query_points(
            "c", q, limit=500, search_params=m.SearchParams(exact=True)
        ).points
    }

    def search(**kw: object) -> list:
        params = m.SearchParams(quantization=m.QuantizationSearchParams(**kw))
        return client.query_points("c", q, limit=5, search_params=params).points

    estimated = search(rescore=False)
    assert any(abs(p.score - exact[p.id]) > 1e-4 for p in estimated)
    for p in search(rescore=True, oversampling=4.0) + search(ignore=True):
        assert p.score == pytest.approx(exact[p.id], abs=1e-5)
    with pytest.raises(InvalidInputError, match="oversampling"):
        search(oversampling=0.5)


def test_unsupported_quantization_is_refused_and_creates_nothing(
    client: ferrovec.QdrantClient,
) -> None:
    cases = [
        (m.VectorParams(size=4, distance=m.Distance.EUCLID), SCALAR, InvalidInputError),
        (
            m.VectorParams(size=4, distance=m.Distance.DOT),
            m.ProductQuantization(product=m.ProductQuantizationConfig(compression="x16")),
            UnsupportedError,
        ),
        (
            m.VectorParams(size=4, distance=m.Distance.DOT),
            m.BinaryQuantization(
                binary=m.BinaryQuantizationConfig(encoding=m.BinaryQuantizationEncoding.TWO_BITS)
            ),
            UnsupportedError,
        ),
    ]
    for vectors, config, error in cases:
        with pytest.raises(error):
            client.create_collection("c", vectors_config=vectors, quantization_config=config)
        assert not client.collection_exists("c")


class Recording(Reference):
    """qdrant-client's local mode (which ignores quantization), recording what a server would
    be asked to create."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.created: dict[str, object] = {}

    def create_collection(self, collection_name: str, **kwargs: object) -> bool:  # type: ignore[override]
        self.created[collection_name] = kwargs.get("quantization_config")
        return super().create_collection(collection_name, **kwargs)  # type: ignore[arg-type]


def test_migrate_keeps_the_code_settings(client: ferrovec.QdrantClient, tmp_path: Path) -> None:
    from qdrant_client.migrate import migrate

    cases = (("b", BINARY, "binary"), ("s", SCALAR, "int8"), ("plain", None, "int8"))
    for name, config, _ in cases:
        client.create_collection(
            name,
            vectors_config=m.VectorParams(size=32, distance=m.Distance.DOT),
            hnsw_config=m.HnswConfigDiff(full_scan_threshold=1),
            quantization_config=config,
        )
        client.upsert(name, points(50))
    # To a Qdrant server: what it is asked to create carries the settings.
    server = Recording()
    migrate(client, server)
    for name, config, _ in cases:
        assert server.created[name] == config
        assert server.count(name).count == 50
    # To another ferrovec store: the same codes.
    dest = ferrovec.QdrantClient(path=tmp_path / "dest")
    migrate(client, dest)
    for name, config, codes in cases:
        assert dest.get_collection(name).config.quantization_config == config
        dest._col(name).optimize()  # type: ignore[attr-defined]
        assert dest._col(name).stats()["segments"][0]["codes"] == codes  # type: ignore[attr-defined]
        assert dest.count(name).count == 50


def test_vectors_on_disk_is_kept_and_reported_as_local_mode_does(
    client: ferrovec.QdrantClient, tmp_path: Path
) -> None:
    reference = Reference(":memory:")
    for on_disk in (True, False, None):
        name = f"c{on_disk}"
        params = m.VectorParams(size=32, distance=m.Distance.COSINE, on_disk=on_disk)
        for c in (client, reference):
            c.create_collection(name, vectors_config=params)
        got = client.get_collection(name).config.params.vectors
        want = reference.get_collection(name).config.params.vectors
        assert got.on_disk == want.on_disk == on_disk  # type: ignore[union-attr]
        assert client._col(name).info()["vectors_on_disk"] is on_disk  # type: ignore[attr-defined]
    # A point's vectors are stored together: named vectors must agree.
    mixed = {
        "a": m.VectorParams(size=4, distance=m.Distance.DOT, on_disk=True),
        "b": m.VectorParams(size=4, distance=m.Distance.DOT, on_disk=False),
    }
    with pytest.raises(UnsupportedError, match="on_disk"):
        client.create_collection("mixed", vectors_config=mixed)
    assert not client.collection_exists("mixed")
    # migrate carries it.
    from qdrant_client.migrate import migrate

    dest = ferrovec.QdrantClient(path=tmp_path / "dest")
    migrate(client, dest)
    for on_disk in (True, False, None):
        assert dest._col(f"c{on_disk}").info()["vectors_on_disk"] is on_disk  # type: ignore[attr-defined]
