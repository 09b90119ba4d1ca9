"""Collections, their configuration and aliases, and payload indexes."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any, cast

from ferrovec.errors import (
    CollectionNotFoundError,
    CorruptionError,
    InvalidInputError,
    UnsupportedError,
)
from ferrovec.qdrant import convert as cv
from ferrovec.qdrant._base import _Base

out = cv.out

# Qdrant's collection-name rules (the server refuses these characters).
_BAD_NAME_CHARS = set('<>:"/\\|?*\0')
_ALIASES_FILE = "qdrant_aliases.json"
_INDEX_TYPES = {"keyword", "integer", "float", "bool", "datetime", "uuid", "geo", "text"}


class _Collections(_Base):
    def collection_exists(self, collection_name: str, **kwargs: Any) -> bool:
        return self._name(collection_name) in self._db.list_collections()

    def get_collections(self, **kwargs: Any) -> Any:
        return out.CollectionsResponse(
            collections=[out.CollectionDescription(name=n) for n in self._db.list_collections()]
        )

    def create_collection(
        self,
        collection_name: str,
        vectors_config: Any = None,
        sparse_vectors_config: Any = None,
        shard_number: int | None = None,
        sharding_method: Any = None,
        replication_factor: int | None = None,
        write_consistency_factor: int | None = None,
        on_disk_payload: bool | None = None,
        hnsw_config: Any = None,
        optimizers_config: Any = None,
        wal_config: Any = None,
        quantization_config: Any = None,
        init_from: Any = None,
        timeout: int | None = None,
        strict_mode_config: Any = None,
        metadata: Any = None,
        **kwargs: Any,
    ) -> bool:
        """Create a collection. ``hnsw_config.full_scan_threshold`` is in kilobytes of vectors,
        as in Qdrant, and converted to ferrovec's count of points."""
        if not collection_name or set(collection_name) & _BAD_NAME_CHARS:
            raise InvalidInputError(f"Collection name {collection_name!r} is not valid")
        if init_from is not None:
            raise UnsupportedError("init_from is not supported; use qdrant_client.migrate")
        sparse = _sparse_params(sparse_vectors_config)
        specs = cv.vector_params(vectors_config, allow_none=bool(sparse))
        on_disk = cv.vectors_on_disk(vectors_config)
        clash = [n for n, *_ in specs if n in sparse]
        if clash:
            raise InvalidInputError(f"vector name {clash[0]!r} is both dense and sparse")
        per_vector = [cv.dump(h) for _, _, _, h in specs if h is not None]
        if any(h != per_vector[0] for h in per_vector):
            raise UnsupportedError(
                "named vectors with different hnsw_config are not supported: ferrovec indexes "
                "all vectors of a collection with the same settings"
            )
        quantization = _quantization(quantization_config)
        per_vector_q = [
            _quantization(cv.field(v, "quantization_config"))
            for v in (
                vectors_config.values()
                if isinstance(vectors_config, dict)
                else [vectors_config]
                if vectors_config is not None
                else []
            )
        ]
        for q in per_vector_q:
            if q is not None:
                if (quantization is not None and q != quantization) or any(
                    o != q for o in per_vector_q
                ):
                    raise UnsupportedError(
                        "vectors with different quantization_config are not supported: ferrovec "
                        "walks every vector of a collection on the same kind of codes"
                    )
                quantization = q
        # Thresholds in kilobytes of vectors (Qdrant) are converted by the bytes of a point.
        size = max(1, sum(s for _, s, _, _ in specs))
        hnsw = self._hnsw(per_vector[0] if per_vector else hnsw_config, size)
        optimizer = self._optimizer(optimizers_config, size)
        with self._lock:
            if collection_name in self._aliases:
                raise InvalidInputError(f"Alias {collection_name} already exists")
            # CollectionExistsError (a ValueError) if it exists.
            if specs and specs[0][0] == "":
                self._db.create_collection(
                    collection_name,
                    specs[0][1],
                    specs[0][2],  # type: ignore[arg-type]
                    sparse=cast(Any, sparse) or None,
                    hnsw=hnsw or None,
                    optimizer=optimizer or None,
                    quantization=cast(Any, quantization),
                    vectors_on_disk=on_disk,
                )
            else:
                self._db.create_collection(
                    collection_name,
                    vectors={n: {"dim": s, "distance": cast(Any, d)} for n, s, d, _ in specs}
                    or None,
                    sparse=cast(Any, sparse) or None,
                    hnsw=hnsw or None,
                    optimizer=optimizer or None,
                    quantization=cast(Any, quantization),
                    vectors_on_disk=on_disk,
                )
        return True

    def recreate_collection(
        self, collection_name: str, vectors_config: Any = None, **kwargs: Any
    ) -> bool:
        self.delete_collection(collection_name)
        return self.create_collection(collection_name, vectors_config, **kwargs)

    def delete_collection(self, collection_name: str, **kwargs: Any) -> bool:
        with self._lock:
            name = self._name(collection_name)
            if name not in self._db.list_collections():
                return False
            self._db.drop_collection(name)
            if name in self._aliases.values():
                self._save_aliases({a: c for a, c in self._aliases.items() if c != name})
        return True

    def update_collection(
        self,
        collection_name: str,
        optimizers_config: Any = None,
        collection_params: Any = None,
        vectors_config: Any = None,
        hnsw_config: Any = None,
        quantization_config: Any = None,
        timeout: int | None = None,
        sparse_vectors_config: Any = None,
        strict_mode_config: Any = None,
        metadata: Any = None,
        **kwargs: Any,
    ) -> bool:
        """Only settings without effect in an embedded store may be passed, and a sparse
        vector's settings as they are; changing the index or vector settings of an existing
        collection is not supported yet."""
        col = self._col(collection_name)  # raises if missing
        if sparse_vectors_config is not None:
            current = col.sparse_vectors
            for name, spec in _sparse_params(sparse_vectors_config).items():
                if name not in current:
                    raise InvalidInputError(f"Wrong input: Not existing vector name error: {name}")
                changed = {
                    k: v for k, v in spec.items() if v is not None and current[name].get(k) != v
                }
                if changed:
                    raise UnsupportedError(
                        f"update_collection(sparse_vectors_config=...) would change {name!r} "
                        f"({sorted(changed)}): ferrovec cannot change a sparse vector's "
                        "settings in place; recreate the collection (qdrant_client.migrate "
                        "copies it)"
                    )
        if quantization_config is not None and _codes_of(
            _quantization(quantization_config), col.info()
        ) != _codes_of(col.info()["quantization"], col.info()):
            raise UnsupportedError(
                "update_collection(quantization_config=...) would change the codes of an "
                "existing collection, which ferrovec cannot do in place: create a new collection "
                "with this quantization_config and copy the points into it (see docs/SCALE.md)"
            )
        for name, value in (
            ("vectors_config", vectors_config),
            ("hnsw_config", hnsw_config),
            ("optimizers_config", optimizers_config),
        ):
            if value is not None and cv.dump(value) not in ({}, None):
                raise UnsupportedError(
                    f"update_collection({name}=...) is not supported yet: ferrovec cannot change "
                    "a collection's settings in place; recreate it"
                )
        return True

    def get_collection(self, collection_name: str, **kwargs: Any) -> Any:
        """A complete ``CollectionInfo``, with every field ``qdrant_client.migrate`` reads."""
        col = self._col(collection_name)
        info = col.info()
        hnsw = info["hnsw"]
        opt = info["optimizer"]
        specs = info["vectors"]
        size = max(1, sum(v["dim"] for v in specs.values()))  # bytes of a point / 4
        params = {
            name: out.VectorParams(
                size=v["dim"],
                distance=out.Distance(cv.NATIVE_TO_DISTANCE[v["distance"]]),
                on_disk=info["vectors_on_disk"],
            )
            for name, v in specs.items()
        }
        schema = {
            ix["key"]: out.PayloadIndexInfo(data_type=ix["type"], points=ix.get("points", 0))
            for ix in info["payload_indexes"]
        }
        status = out.CollectionStatus.GREEN
        if info["unindexed_points"] > 0 and info["points"] >= opt["indexing_threshold"]:
            status = out.CollectionStatus.YELLOW
        return out.CollectionInfo(
            status=status,
            optimizer_status=out.OptimizersStatusOneOf.OK,
            indexed_vectors_count=info["indexed_points"],
            points_count=info["points"],
            segments_count=len(info["segments"]),
            payload_schema=schema,
            config=out.CollectionConfig(
                params=out.CollectionParams(
                    vectors=params[""] if list(params) == [""] else params,
                    sparse_vectors={
                        name: out.SparseVectorParams(
                            index=None
                            if spec.get("full_scan_threshold") is None
                            and spec.get("on_disk") is None
                            else out.SparseIndexParams(
                                full_scan_threshold=spec.get("full_scan_threshold"),
                                on_disk=spec.get("on_disk"),
                            ),
                            modifier=out.Modifier(spec["modifier"]),
                        )
                        for name, spec in col.sparse_vectors.items()
                    }
                    or None,
                    shard_number=1,
                    replication_factor=1,
                    write_consistency_factor=1,
                    on_disk_payload=True,
                ),
                hnsw_config=out.HnswConfig(
                    m=hnsw["m"],
                    ef_construct=hnsw["ef_construct"],
                    # Qdrant counts kilobytes of vectors; ferrovec counts points.
                    full_scan_threshold=max(1, hnsw["full_scan_threshold"] * size * 4 // 1024),
                    max_indexing_threads=0,
                    on_disk=True,
                ),
                optimizer_config=out.OptimizersConfig(
                    deleted_threshold=0.2,
                    vacuum_min_vector_number=1000,
                    default_segment_number=0,
                    max_segment_size=opt["max_segment_points"] * size * 4 // 1024,
                    indexing_threshold=opt["indexing_threshold"] * size * 4 // 1024,
                    flush_interval_sec=5,
                    max_optimization_threads=None,
                ),
                wal_config=out.WalConfig(wal_capacity_mb=32, wal_segments_ahead=0),
                quantization_config=_quantization_out(info["quantization"]),
            ),
        )

    @staticmethod
    def _hnsw(config: Any, size: int) -> dict[str, int]:
        d = cv.dump(config) or {}
        hnsw: dict[str, int] = {}
        for key in ("m", "ef_construct"):
            if d.get(key) is not None:
                hnsw[key] = d[key]
        if d.get("full_scan_threshold") is not None:
            # Kilobytes of vectors (Qdrant) to points (ferrovec).
            hnsw["full_scan_threshold"] = max(1, d["full_scan_threshold"] * 1024 // (size * 4))
        return hnsw

    @staticmethod
    def _optimizer(config: Any, size: int) -> dict[str, int]:
        """Qdrant's optimizer thresholds, in kilobytes of vectors, as ferrovec's point counts.
        The rest (vacuum, flush and thread settings) has no counterpart and is ignored."""
        d = cv.dump(config) or {}
        opt: dict[str, int] = {}
        kb = d.get("indexing_threshold")
        if kb == 0:
            opt["indexing_threshold"] = 2**62  # Qdrant: 0 turns indexing off
        elif kb is not None:
            opt["indexing_threshold"] = max(1, kb * 1024 // (size * 4))
        if d.get("max_segment_size") is not None:
            opt["max_segment_points"] = max(1, d["max_segment_size"] * 1024 // (size * 4))
        return opt

    def _load_aliases(self) -> dict[str, str]:
        if self._path is None:
            return {}
        f = self._path / _ALIASES_FILE
        if not f.exists():
            return {}
        try:
            data = json.loads(f.read_text())
        except ValueError as e:
            raise CorruptionError(f"{f}: not a ferrovec alias file ({e})") from None
        if not isinstance(data, dict) or data.get("format") != "ferrovec.qdrant_aliases":
            raise CorruptionError(f"{f}: not a ferrovec alias file")
        if data.get("version") != 1:
            raise CorruptionError(
                f"{f}: alias file version {data.get('version')!r}; this ferrovec reads version 1"
            )
        aliases = data.get("aliases")
        if not isinstance(aliases, dict) or data.get("sha256") != _aliases_digest(aliases):
            raise CorruptionError(f"{f}: alias file checksum mismatch (damaged)")
        return {str(k): str(v) for k, v in aliases.items()}

    def _save_aliases(self, aliases: dict[str, str]) -> None:
        """Make `aliases` the client's aliases, durably first (write, fsync, rename, fsync the
        directory): if that fails, the aliases in memory stay as they were on disk."""
        if self._path is None:
            self._aliases = aliases
            return
        f = self._path / _ALIASES_FILE
        tmp = f.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            record = {
                "format": "ferrovec.qdrant_aliases",
                "version": 1,
                "aliases": aliases,
                "sha256": _aliases_digest(aliases),
            }
            json.dump(record, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, f)
        dfd = os.open(self._path, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        self._aliases = aliases

    def update_collection_aliases(
        self, change_aliases_operations: Sequence[Any], **kwargs: Any
    ) -> bool:
        """Create, delete and rename aliases; the whole list is applied or none of it."""
        with self._lock:
            aliases = dict(self._aliases)
            for op in change_aliases_operations:
                d = cv.dump(op)
                if "create_alias" in d:
                    c = d["create_alias"]
                    if c["collection_name"] not in self._db.list_collections():
                        raise CollectionNotFoundError(
                            f"Collection {c['collection_name']} not found"
                        )
                    if c["alias_name"] in self._db.list_collections():
                        raise InvalidInputError(
                            f"Alias {c['alias_name']} is the name of a collection"
                        )
                    aliases[c["alias_name"]] = c["collection_name"]
                elif "delete_alias" in d:
                    aliases.pop(d["delete_alias"]["alias_name"], None)
                elif "rename_alias" in d:
                    r = d["rename_alias"]
                    if r["old_alias_name"] not in aliases:
                        raise InvalidInputError(f"Alias {r['old_alias_name']} does not exist")
                    aliases[r["new_alias_name"]] = aliases.pop(r["old_alias_name"])
                else:
                    raise InvalidInputError(f"unknown alias operation {op!r}")
            self._save_aliases(aliases)
        return True

    def get_collection_aliases(self, collection_name: str, **kwargs: Any) -> Any:
        return out.CollectionsAliasesResponse(
            aliases=[
                out.AliasDescription(alias_name=a, collection_name=c)
                for a, c in sorted(self._aliases.items())
                if c == collection_name
            ]
        )

    def get_aliases(self, **kwargs: Any) -> Any:
        return out.CollectionsAliasesResponse(
            aliases=[
                out.AliasDescription(alias_name=a, collection_name=c)
                for a, c in sorted(self._aliases.items())
            ]
        )

    def create_payload_index(
        self,
        collection_name: str,
        field_name: str,
        field_schema: Any = None,
        field_type: Any = None,
        wait: bool = True,
        ordering: Any = None,
        **kwargs: Any,
    ) -> Any:
        schema = cv.dump(field_schema if field_schema is not None else field_type)
        kind = schema.get("type") if isinstance(schema, dict) else schema
        if kind not in _INDEX_TYPES:
            raise InvalidInputError(f"unknown payload index type {schema!r}")
        self._col(collection_name).create_payload_index(field_name, kind)
        return cv.update_result()

    def delete_payload_index(self, collection_name: str, field_name: str, **kwargs: Any) -> Any:
        self._col(collection_name).drop_payload_index(field_name)
        return cv.update_result()


def _sparse_params(config: Any) -> dict[str, dict[str, Any]]:
    """A sparse_vectors_config ({name: SparseVectorParams}) as the native API's `sparse=`."""
    if not config:
        return {}
    d = cv.dump(config)
    if not isinstance(d, dict):
        raise InvalidInputError("sparse_vectors_config must map names to SparseVectorParams")
    specs: dict[str, dict[str, Any]] = {}
    for name, params in d.items():
        params = params or {}
        index = params.get("index") or {}
        if index.get("datatype") not in (None, "float32"):
            raise UnsupportedError("sparse vectors are stored as float32 only")
        specs[str(name)] = {
            "modifier": params.get("modifier") or "none",
            "full_scan_threshold": index.get("full_scan_threshold"),
            "on_disk": index.get("on_disk"),
        }
    return specs


def _aliases_digest(aliases: dict[str, str]) -> str:
    canonical = json.dumps(aliases, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _quantization(config: Any) -> dict[str, Any] | None:
    """Qdrant's ``quantization_config`` as ferrovec's ``quantization``: scalar (int8) codes,
    binary (one bit) codes, or none (``Disabled``); product quantization is refused. ``None``
    when not given (ferrovec's default: int8 codes for cosine and dot vectors)."""
    if config is None:
        return None
    d = cv.dump(config)
    if d == "Disabled":
        return {"codes": "none", "rescore": True, "oversampling": None, "always_ram": None}
    if not isinstance(d, dict) or len(d) != 1:
        raise InvalidInputError(f"quantization_config: not a quantization config: {d!r}")
    ((kind, params),) = d.items()
    params = params or {}
    if kind == "scalar":
        if params.get("type", "int8") != "int8":
            raise InvalidInputError(f"scalar quantization type {params.get('type')!r}: only int8")
        codes = "int8"
    elif kind == "binary":
        for key in ("encoding", "query_encoding"):
            if params.get(key) not in (None, "one_bit", "default", "scalar4bits"):
                raise UnsupportedError(
                    f"binary quantization {key}={params[key]!r} is not supported: ferrovec's "
                    "binary codes are one bit per value, scored against a 4-bit query"
                )
        codes = "binary"
    elif kind == "product":
        raise UnsupportedError(
            "product quantization is not supported: use ScalarQuantization (int8 codes) or "
            "BinaryQuantization, or ferrovec's native int4 codes (docs/SCALE.md)"
        )
    else:
        raise InvalidInputError(f"quantization_config: unknown kind {kind!r}")
    return {
        "codes": codes,
        "oversampling": None,
        "rescore": True,
        "always_ram": params.get("always_ram"),
    }


def _quantization_out(q: dict[str, Any] | None) -> Any:
    """ferrovec's quantization as Qdrant's ``quantization_config`` (what ``migrate`` copies).
    int4 has no Qdrant counterpart: it is reported as scalar int8, the nearest Qdrant has."""
    if q is None or q["codes"] == "none":
        return None
    if q["codes"] == "binary":
        return out.BinaryQuantization(
            binary=out.BinaryQuantizationConfig(always_ram=q["always_ram"])
        )
    return out.ScalarQuantization(
        scalar=out.ScalarQuantizationConfig(type=out.ScalarType.INT8, always_ram=q["always_ram"])
    )


def _codes_of(q: dict[str, Any] | None, info: dict[str, Any]) -> str:
    """The codes a collection of `info`'s vectors is walked on under quantization `q`."""
    if q is not None:
        return str(q["codes"])
    dense = [v["distance"] for v in info["vectors"].values()]
    return "int8" if dense and all(d in ("cosine", "dot") for d in dense) else "none"
