"""`QdrantClient`: qdrant-client's API over an embedded ferrovec store.

Switching a qdrant-client application to ferrovec takes one import and one constructor line::

    from ferrovec import QdrantClient          # was: from qdrant_client import QdrantClient
    client = QdrantClient(path="./data")       # or QdrantClient(":memory:")

Method names, parameters and result types are those of qdrant-client 1.x. Where qdrant-client
is more lenient than ferrovec's native API, this layer follows qdrant-client: UUIDs in any
spelling, duplicate ids in one batch (the last wins), zero vectors under cosine (score 0).
Parameters that only mean something to a Qdrant server (``consistency``, ``wait``, ``timeout``,
``shard_key_selector``, ``ordering``, sharding and replication settings) are accepted and ignored;
see ``docs/QDRANT.md``. Anything that would change results and is not supported raises
:class:`ferrovec.UnsupportedError`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import numpy as np

import ferrovec._native as native
from ferrovec._batch import last_wins, take
from ferrovec.errors import (
    CollectionNotFoundError,
    CorruptionError,
    InvalidInputError,
    PointNotFoundError,
    UnsupportedError,
)
from ferrovec.qdrant import convert as cv

out = cv.out

# Qdrant's collection-name rules (the server refuses these characters).
_BAD_NAME_CHARS = set('<>:"/\\|?*\0')
_ALIASES_FILE = "qdrant_aliases.json"
_INDEX_TYPES = {"keyword", "integer", "float", "bool", "datetime", "uuid", "geo", "text"}

Progress = Callable[[int, int], object]
_U64_END = 2**64


def _check_limit(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidInputError(f"{name} value {value!r} is invalid. Must be {minimum} or larger.")


class QdrantClient:
    """qdrant-client's ``QdrantClient`` for an embedded ferrovec store.

    ``QdrantClient(":memory:")`` keeps everything in memory; ``QdrantClient(path="./data")`` opens
    (or creates) a persistent store there, with the write-ahead log fsynced on every write
    (``durability`` as in :func:`ferrovec.open`). A URL or host is refused: to reach a Qdrant
    server, use qdrant-client itself.
    """

    def __init__(
        self,
        location: str | None = None,
        url: str | None = None,
        port: int | None = 6333,
        grpc_port: int = 6334,
        prefer_grpc: bool = False,
        https: bool | None = None,
        api_key: str | None = None,
        prefix: str | None = None,
        timeout: int | None = None,
        host: str | None = None,
        path: str | os.PathLike[str] | None = None,
        force_disable_check_same_thread: bool = False,
        *,
        durability: str = "fsync",
        **kwargs: Any,
    ) -> None:
        if url is not None or host is not None or (location not in (None, ":memory:")):
            raise UnsupportedError(
                "ferrovec's QdrantClient is embedded: pass path=... or ':memory:'. To talk to a "
                "Qdrant server, use qdrant_client.QdrantClient."
            )
        if location == ":memory:" and path is not None:
            raise InvalidInputError("pass either ':memory:' or path=..., not both")
        self._path = None if path is None else Path(path)
        target = ":memory:" if self._path is None else str(self._path)
        self._db = native.open(target, durability=durability)  # type: ignore[arg-type]
        self._lock = threading.RLock()
        try:
            self._aliases: dict[str, str] = self._load_aliases()
        except BaseException:
            self._db.close()
            raise

    # ----- lifecycle ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._db.closed

    def close(self, **kwargs: Any) -> None:
        """Close the store (pending writes are made durable first). Idempotent."""
        self._db.close()

    def __enter__(self) -> QdrantClient:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    @property
    def database(self) -> native.Database:
        """The native :class:`ferrovec.Database` under this client (for the native API)."""
        return self._db

    # ----- collections -------------------------------------------------------------------------

    def _name(self, collection_name: str) -> str:
        return self._aliases.get(collection_name, collection_name)

    def _col(self, collection_name: str) -> native.Collection:
        return self._db.collection(self._name(collection_name))

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
        if sparse_vectors_config:
            raise UnsupportedError("sparse vectors are not supported yet (a later issue)")
        if init_from is not None:
            raise UnsupportedError("init_from is not supported; use qdrant_client.migrate")
        specs = cv.vector_params(vectors_config)
        per_vector = [cv.dump(h) for _, _, _, h in specs if h is not None]
        if any(h != per_vector[0] for h in per_vector):
            raise UnsupportedError(
                "named vectors with different hnsw_config are not supported: ferrovec indexes "
                "all vectors of a collection with the same settings"
            )
        # Thresholds in kilobytes of vectors (Qdrant) are converted by the bytes of a point.
        size = sum(s for _, s, _, _ in specs)
        hnsw = self._hnsw(per_vector[0] if per_vector else hnsw_config, size)
        optimizer = self._optimizer(optimizers_config, size)
        with self._lock:
            if collection_name in self._aliases:
                raise InvalidInputError(f"Alias {collection_name} already exists")
            # CollectionExistsError (a ValueError) if it exists.
            if specs[0][0] == "":
                self._db.create_collection(
                    collection_name,
                    specs[0][1],
                    specs[0][2],  # type: ignore[arg-type]
                    hnsw=hnsw or None,
                    optimizer=optimizer or None,
                )
            else:
                self._db.create_collection(
                    collection_name,
                    vectors={n: {"dim": s, "distance": cast(Any, d)} for n, s, d, _ in specs},
                    hnsw=hnsw or None,
                    optimizer=optimizer or None,
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
        """Only settings without effect in an embedded store may be passed; changing the
        index or vector settings of an existing collection is not supported yet."""
        self._col(collection_name)  # raises if missing
        for name, value in (
            ("vectors_config", vectors_config),
            ("hnsw_config", hnsw_config),
            ("quantization_config", quantization_config),
            ("sparse_vectors_config", sparse_vectors_config),
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
        size = sum(v["dim"] for v in specs.values())  # bytes of a point / 4, for thresholds
        params = {
            name: out.VectorParams(
                size=v["dim"], distance=out.Distance(cv.NATIVE_TO_DISTANCE[v["distance"]])
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
                    vectors=params[""] if "" in params else params,
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
                quantization_config=None,
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

    # ----- aliases -----------------------------------------------------------------------------

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

    # ----- writes ------------------------------------------------------------------------------

    def _write(
        self,
        col: native.Collection,
        ids: list[int | str],
        vectors: Any,
        payloads: list[Any] | None,
        when: tuple[dict[str, Any] | None, str] | None = None,
    ) -> None:
        """Upsert with qdrant-client's rules: a repeated id in one batch is written once, with
        its last vector and payload; zero vectors are taken under cosine. `when`: the
        (update_filter, update_mode) of a conditional upsert."""
        if not ids:
            return
        ids, vectors, payloads = last_wins(ids, vectors, payloads)
        if when is None:
            _upsert(col, ids, vectors, payloads)
            return
        with self._lock:  # the check and the write, as one step for this client
            keep = self._conditional(col, ids, *when)
            if len(keep) < len(ids):
                ids, vectors, payloads = take(ids, vectors, payloads, keep)
            if ids:
                _upsert(col, ids, vectors, payloads)

    @staticmethod
    def _conditional(
        col: native.Collection, ids: list[int | str], flt: dict[str, Any] | None, mode: str
    ) -> list[int]:
        """Positions in `ids` that a conditional upsert writes, by Qdrant's rules: an existing
        point only if it matches `flt` (and the mode is not insert_only), a new one unless the
        mode is update_only."""
        existing = _existing(col, ids)
        updatable = existing if flt is None else _existing(col, list(existing), flt)
        keep = []
        for n, pid in enumerate(ids):
            if pid in existing:
                if mode != "insert_only" and pid in updatable:
                    keep.append(n)
            elif mode != "update_only":
                keep.append(n)
        return keep

    def _points(
        self, points: Any, dims: dict[str, int] | None, as_array: bool = False
    ) -> tuple[list[int | str], Any, list[Any] | None]:
        """(ids, vectors, payloads) of a list of PointStruct (or dicts) or a Batch; the vectors
        as one float32 array if `as_array`. For a collection of named vectors (`dims`: their
        sizes), the vectors are a dict of one array per name."""
        if dims is not None:
            return self._named_points(points, dims)
        if not isinstance(points, (list, tuple)) and cv.field(points, "ids") is not None:
            ids = [cv.point_id(i) for i in cv.field(points, "ids")]
            vectors = cv.dense_vector(cv.field(points, "vectors"), "Batch.vectors")
            payloads = cv.field(points, "payloads")
            if payloads is not None:
                payloads = list(payloads)
            if isinstance(vectors, np.ndarray):
                return ids, vectors, payloads
            return ids, [cv.dense_vector(v, "Batch.vectors") for v in vectors], payloads
        ids, vectors, payloads = [], [], []
        for i, p in enumerate(points):
            ids.append(cv.point_id(cv.field(p, "id")))
            vectors.append(cv.dense_vector(cv.field(p, "vector"), f"points[{i}].vector"))
            payloads.append(cv.field(p, "payload"))
        if as_array:
            try:
                return ids, native._as_matrix(vectors), payloads
            except ValueError:
                pass  # ragged or odd input: the upsert names the bad row
        return ids, vectors, payloads

    @staticmethod
    def _named_points(
        points: Any, dims: dict[str, int]
    ) -> tuple[list[int | str], dict[str, Any], list[Any] | None]:
        names = list(dims)
        if not isinstance(points, (list, tuple)) and cv.field(points, "ids") is not None:
            ids = [cv.point_id(i) for i in cv.field(points, "ids")]
            if not ids:
                return ids, {}, None
            given = cv.named_vectors(cv.field(points, "vectors"), names, "Batch.vectors")
            payloads = cv.field(points, "payloads")
            if payloads is not None:
                payloads = list(payloads)
            vectors = {n: native._as_matrix(v) for n, v in given.items()}
            return ids, vectors, payloads
        ids, per_point, plain_payloads = [], [], []
        for i, p in enumerate(points):
            ids.append(cv.point_id(cv.field(p, "id")))
            per_point.append(cv.named_vectors(cv.field(p, "vector"), names, f"points[{i}].vector"))
            plain_payloads.append(cv.field(p, "payload"))
        return ids, cv.by_name(per_point, dims), plain_payloads

    def upsert(
        self,
        collection_name: str,
        points: Any,
        wait: bool = True,
        ordering: Any = None,
        shard_key_selector: Any = None,
        update_filter: Any = None,
        update_mode: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Insert or replace points (a list of PointStruct, or a Batch). Writes are durable
        when this returns, whatever ``wait`` says. ``update_filter``: existing points are
        replaced only if they match it; ``update_mode``: "upsert" (default), "insert_only"
        or "update_only"."""
        col = self._col(collection_name)
        when = _condition(update_filter, update_mode)
        ids, vectors, payloads = self._points(points, _dims(col))
        if not ids:
            raise InvalidInputError("Empty update request")
        self._write(col, ids, vectors, payloads, when)
        return cv.update_result()

    def upload_points(
        self,
        collection_name: str,
        points: Iterable[Any],
        batch_size: int = 64,
        parallel: int = 1,
        method: str | None = None,
        max_retries: int = 3,
        wait: bool = False,
        shard_key_selector: Any = None,
        update_filter: Any = None,
        update_mode: Any = None,
        progress: Progress | bool | None = None,
        **kwargs: Any,
    ) -> None:
        """Upsert points from an iterable in batches of ``batch_size`` (``update_filter`` and
        ``update_mode`` as in :meth:`upsert`). ``progress``: a callback ``(done, total_or_0)``
        or ``True`` for a bar on stderr."""
        col = self._col(collection_name)
        when = _condition(update_filter, update_mode)
        report = _progress(progress, 0)
        dims = _dims(col)
        batch: list[Any] = []
        done = 0
        with _Writer(self._write, col, when) as writer:
            for p in points:
                batch.append(p)
                if len(batch) >= max(1, batch_size):
                    writer.submit(*self._points(batch, dims, as_array=True))
                    done += len(batch)
                    batch = []
                    report(done)
            if batch:
                writer.submit(*self._points(batch, dims, as_array=True))
                done += len(batch)
        report(done, final=True)

    def upload_records(self, collection_name: str, records: Iterable[Any], **kwargs: Any) -> None:
        """The older name of :meth:`upload_points` (Records have the same fields)."""
        self.upload_points(collection_name, records, **kwargs)

    def upload_collection(
        self,
        collection_name: str,
        vectors: Any,
        payload: Iterable[Any] | None = None,
        ids: Iterable[Any] | None = None,
        batch_size: int = 64,
        parallel: int = 1,
        method: str | None = None,
        max_retries: int = 3,
        wait: bool = False,
        shard_key_selector: Any = None,
        update_filter: Any = None,
        update_mode: Any = None,
        progress: Progress | bool | None = None,
        **kwargs: Any,
    ) -> None:
        """Upsert vectors (a 2-D numpy array is passed to the core without copies, a batch at a
        time), with optional payloads and ids (random UUIDs when ``ids`` is None);
        ``update_filter`` and ``update_mode`` as in :meth:`upsert`."""
        col = self._col(collection_name)
        when = _condition(update_filter, update_mode)
        batch_size = max(1, batch_size)
        dims = _dims(col)
        rows: Iterable[Any]
        if isinstance(vectors, Mapping) and dims is None:
            vectors = cv.dense_vector(vectors, "vectors")  # {"": vectors}
        if isinstance(vectors, Mapping):
            # Named vectors, one array (or list) per name: cut into batches of a dict each.
            given = cv.named_vectors(vectors, list(dims or {}), "vectors")
            arrays = {n: np.asarray(v, dtype=np.float32) for n, v in given.items()}
            total = min(len(a) for a in arrays.values())
            if any(len(a) != total for a in arrays.values()):
                raise InvalidInputError("the named vectors hold different numbers of points")
            rows = (
                {n: a[i : i + batch_size] for n, a in arrays.items()}
                for i in range(0, total, batch_size)
            )
            chunked = True
        elif isinstance(vectors, np.ndarray):
            total = len(vectors)
            rows = (vectors[i : i + batch_size] for i in range(0, total, batch_size))
            chunked = True
        else:
            total = len(vectors) if hasattr(vectors, "__len__") else 0
            rows, chunked = vectors, False
        ids_it = iter(ids) if ids is not None else None
        pay_it = iter(payload) if payload is not None else None
        report = _progress(progress, total)
        done = 0

        def take(n: int) -> tuple[list[int | str], list[Any] | None]:
            if ids_it is None:
                bid: list[int | str] = [str(uuid.uuid4()) for _ in range(n)]
            else:
                # Plain unsigned ints as they are; anything else through the full check.
                bid = [
                    x if type(x) is int and 0 <= x < _U64_END else cv.point_id(x)
                    for x in itertools.islice(ids_it, n)
                ]
            bpay = None if pay_it is None else list(itertools.islice(pay_it, n))
            if len(bid) < n or (bpay is not None and len(bpay) < n):
                raise StopIteration
            return bid, bpay

        try:
            if chunked:
                # Array blocks need no conversion to overlap with: each is written at once, in
                # this thread (handing it to a writer thread measured 30% slower).
                for block in rows:
                    named_block = isinstance(block, dict)
                    n = len(next(iter(block.values()))) if named_block else len(block)
                    bid, bpay = take(n)
                    self._write(col, bid, block, bpay, when)
                    done += n
                    report(done)
            else:
                with _Writer(self._write, col, when) as writer:
                    buf: list[Any] = []

                    def rows_of(buf: list[Any]) -> Any:
                        return native._as_matrix(buf) if dims is None else cv.by_name(buf, dims)

                    for v in rows:
                        if dims is None:
                            buf.append(cv.dense_vector(v, "vectors"))
                        else:
                            buf.append(cv.named_vectors(v, list(dims), "vectors"))
                        if len(buf) >= batch_size:
                            bid, bpay = take(len(buf))
                            writer.submit(bid, rows_of(buf), bpay)
                            done += len(buf)
                            buf = []
                            report(done)
                    if buf:
                        bid, bpay = take(len(buf))
                        writer.submit(bid, rows_of(buf), bpay)
                        done += len(buf)
        except StopIteration:
            raise InvalidInputError(
                "ids or payload ran out before vectors (they must be as long)"
            ) from None
        report(done, final=True)

    def delete(
        self,
        collection_name: str,
        points_selector: Any,
        wait: bool = True,
        ordering: Any = None,
        shard_key_selector: Any = None,
        **kwargs: Any,
    ) -> Any:
        col = self._col(collection_name)
        ids, flt = cv.selector(points_selector)
        if ids == []:
            raise InvalidInputError("Empty update request")
        if ids is not None:
            col.delete(list(dict.fromkeys(ids)))
        else:
            col.delete(filter=flt)
        return cv.update_result()

    def set_payload(
        self,
        collection_name: str,
        payload: Mapping[str, Any],
        points: Any,
        key: str | None = None,
        wait: bool = True,
        ordering: Any = None,
        shard_key_selector: Any = None,
        **kwargs: Any,
    ) -> Any:
        # As on a Qdrant server, a None value removes its key; `key` is a path to the object
        # the keys are set in (`a.b`, `a[].b`, `a[0]`).
        self._payload_op(
            collection_name, points, "set_payload", cv.dump(payload), null_removes=True, key=key
        )
        return cv.update_result()

    def overwrite_payload(
        self, collection_name: str, payload: Mapping[str, Any], points: Any, **kwargs: Any
    ) -> Any:
        self._payload_op(collection_name, points, "overwrite_payload", cv.dump(payload))
        return cv.update_result()

    def delete_payload(
        self, collection_name: str, keys: Sequence[str], points: Any, **kwargs: Any
    ) -> Any:
        self._payload_op(collection_name, points, "delete_payload", list(keys))
        return cv.update_result()

    def clear_payload(self, collection_name: str, points_selector: Any, **kwargs: Any) -> Any:
        self._payload_op(collection_name, points_selector, "clear_payload")
        return cv.update_result()

    def _payload_op(
        self, collection_name: str, points: Any, op: str, *args: Any, **options: Any
    ) -> None:
        """A payload operation with Qdrant's rule for ids: the points that exist are updated,
        then PointNotFoundError names the first that does not (as the server answers 404)."""
        col = self._col(collection_name)
        ids, flt = cv.selector(points)
        if ids is None:
            getattr(col, op)(*args, filter=flt, **options)
            return
        if not ids:
            raise InvalidInputError("Empty update request")
        with self._lock:
            found = _existing(col, ids)
            present = [i for i in ids if i in found]
            if present:
                getattr(col, op)(*args, list(dict.fromkeys(present)), **options)
        missing = [i for i in ids if i not in found]
        if missing:
            raise PointNotFoundError(f"No point with id {missing[0]} found")

    def update_vectors(
        self,
        collection_name: str,
        points: Sequence[Any],
        wait: bool = True,
        ordering: Any = None,
        shard_key_selector: Any = None,
        update_filter: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Replace the vectors of existing points (those matching ``update_filter``, if given),
        keeping their payloads and the named vectors not given (one logged write in the core
        per set of names given). As on a Qdrant server, the points that exist are updated,
        then PointNotFoundError names the first that does not."""
        col = self._col(collection_name)
        dims = _dims(col)
        ids_asked = [cv.point_id(cv.field(p, "id")) for p in points]
        given: list[Any] = [
            cv.dense_vector(cv.field(p, "vector"), f"points[{i}].vector")
            if dims is None
            else cv.named_vectors(cv.field(p, "vector"), list(dims), f"points[{i}].vector")
            for i, p in enumerate(points)
        ]
        flt = cv.filter_dict(update_filter)
        # A repeated id: applied in order, so the last vector (of each name) wins.
        merged: dict[int | str, Any] = {}
        for pid, vec in zip(ids_asked, given):
            if dims is None:
                merged[pid] = vec
            else:
                merged.setdefault(pid, {}).update(vec)
        found = _existing(col, list(merged))
        keep = [pid for pid in merged if pid in found]
        if flt is not None:
            # Only the points that match; the core writes the rest in one logged step.
            matching = _existing(col, keep, flt)
            keep = [pid for pid in keep if pid in matching]
        if dims is None:
            if keep:
                col.update_vectors(
                    keep, native._as_matrix([merged[pid] for pid in keep]), allow_zero=True
                )
        else:
            groups: dict[tuple[str, ...], list[int | str]] = {}
            for pid in keep:
                groups.setdefault(tuple(sorted(merged[pid])), []).append(pid)
            for key, pids in groups.items():
                if not key:
                    continue  # no vectors given: nothing to change
                col.update_vectors(
                    pids,
                    {k: native._as_matrix([merged[pid][k] for pid in pids]) for k in key},
                    allow_zero=True,
                )
        missing = [i for i in ids_asked if i not in found]
        if missing:
            raise PointNotFoundError(f"No point with id {missing[0]} found")
        return cv.update_result()

    def delete_vectors(
        self,
        collection_name: str,
        vectors: Sequence[str],
        points: Any,
        wait: bool = True,
        ordering: Any = None,
        shard_key_selector: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Remove the named vectors ``vectors`` from the points (ids or a filter): they keep
        their payloads and other vectors, and searches of those vectors no longer find them."""
        names = [str(v) for v in vectors]
        self._payload_op(collection_name, points, "delete_vectors", names)
        return cv.update_result()

    def batch_update_points(
        self, collection_name: str, update_operations: Sequence[Any], **kwargs: Any
    ) -> list[Any]:
        """Apply the operations in order (each is atomic on its own, as on a Qdrant server)."""
        results = []
        for op in update_operations:
            results.append(self._apply_operation(collection_name, op))
        return results

    def _apply_operation(self, collection_name: str, op: Any) -> Any:
        def part(name: str) -> Any:
            return cv.field(op, name)

        if part("upsert") is not None:
            return self.upsert(collection_name, cv.field(part("upsert"), "points"))
        if part("delete") is not None:
            return self.delete(collection_name, part("delete"))
        if part("set_payload") is not None:
            sp = part("set_payload")
            return self.set_payload(
                collection_name,
                cv.field(sp, "payload"),
                _payload_points(sp),
                key=cv.field(sp, "key"),
            )
        if part("overwrite_payload") is not None:
            sp = part("overwrite_payload")
            return self.overwrite_payload(
                collection_name, cv.field(sp, "payload"), _payload_points(sp)
            )
        if part("delete_payload") is not None:
            dp = part("delete_payload")
            return self.delete_payload(collection_name, cv.field(dp, "keys"), _payload_points(dp))
        if part("clear_payload") is not None:
            return self.clear_payload(collection_name, part("clear_payload"))
        if part("update_vectors") is not None:
            return self.update_vectors(collection_name, cv.field(part("update_vectors"), "points"))
        if part("delete_vectors") is not None:
            dv = part("delete_vectors")
            return self.delete_vectors(
                collection_name, list(cv.field(dv, "vector") or []), _payload_points(dv)
            )
        raise InvalidInputError(f"unknown update operation {op!r}")

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

    # ----- reads -------------------------------------------------------------------------------

    def retrieve(
        self,
        collection_name: str,
        ids: Sequence[Any],
        with_payload: Any = True,
        with_vectors: Any = False,
        **kwargs: Any,
    ) -> list[Any]:
        col = self._col(collection_name)
        sel = cv.payload_selector(with_payload)
        wanted = [i for i in (cv.lookup_id(x) for x in ids) if i is not None]
        vsel = cv.vector_selector(with_vectors)
        recs = col.get(wanted, with_payload=sel, with_vectors=bool(vsel))
        return [cv.record(r, vsel) for r in recs]

    def scroll(
        self,
        collection_name: str,
        scroll_filter: Any = None,
        limit: int = 10,
        order_by: Any = None,
        offset: Any = None,
        with_payload: Any = True,
        with_vectors: Any = False,
        **kwargs: Any,
    ) -> tuple[list[Any], Any]:
        _check_limit("limit", limit, 1)
        col = self._col(collection_name)
        sel = cv.payload_selector(with_payload)
        if order_by is not None and offset is not None:
            raise InvalidInputError(
                "Offset is not supported in conjunction with `order_by` scroll parameter"
            )
        vsel = cv.vector_selector(with_vectors)
        start = None if offset is None else cv.lookup_id(offset)
        if offset is not None and start is None:
            return [], None  # an offset that is no valid id finds nothing, as in local mode
        recs, nxt = col.scroll(
            limit,
            start,
            filter=cv.filter_dict(scroll_filter),
            order_by=cv.dump(order_by),
            with_payload=sel,
            with_vectors=bool(vsel),
        )
        return [cv.record(r, vsel) for r in recs], nxt

    def count(
        self, collection_name: str, count_filter: Any = None, exact: bool = True, **kwargs: Any
    ) -> Any:
        col = self._col(collection_name)
        flt = cv.filter_dict(count_filter)
        return cv.make(out.CountResult, count=col.count(filter=flt) if flt else len(col))

    def facet(
        self,
        collection_name: str,
        key: str,
        facet_filter: Any = None,
        limit: int = 10,
        exact: bool = False,
        **kwargs: Any,
    ) -> Any:
        _check_limit("limit", limit, 1)
        col = self._col(collection_name)
        hits = col.facet(key, filter=cv.filter_dict(facet_filter), limit=limit)
        return out.FacetResponse(hits=[out.FacetValueHit(value=v, count=c) for v, c in hits])

    # ----- search ------------------------------------------------------------------------------

    def _query_vector(
        self, col: native.Collection, query: Any, using: str | None
    ) -> tuple[Any, list[int | str]]:
        """The vector a query asks for (of the vector `using`), and the ids it mentions (which
        are not results)."""
        if isinstance(query, (int, np.integer, str, uuid.UUID)) and not isinstance(query, bool):
            pid = cv.point_id(query)
            recs = col.get([pid], with_payload=False, with_vectors=True)
            if not recs:
                raise InvalidInputError(f"No point with id {pid} found")
            vector = recs[0].vector
            if (col.dim is None) != (using is not None) or (
                using is not None and using not in col.vectors
            ):
                raise InvalidInputError(
                    f"Dense vector {using or ''} is not found in the collection"
                )
            if isinstance(vector, Mapping):
                vector = vector.get(using)  # type: ignore[arg-type]
            if vector is None:  # this point has no such vector (delete_vectors, or left out)
                raise InvalidInputError(f"Vector with name {using or ''} for point {pid} not found")
            return vector, [pid]
        if isinstance(query, np.ndarray):
            return query, []
        if isinstance(query, (list, tuple)):
            return query, []
        nearest = cv.field(query, "nearest")
        if nearest is not None:
            return self._query_vector(col, nearest, using)
        if isinstance(query, Mapping) and set(query) == {""}:
            return query[""], []
        if hasattr(query, "indices") or (isinstance(query, Mapping) and "indices" in query):
            raise UnsupportedError("sparse vectors are not supported yet (a later issue)")
        raise UnsupportedError(
            f"query of type {type(query).__name__} is not supported yet: pass a vector, a point "
            "id or NearestQuery (recommend, discover, fusion and formula queries come later)"
        )

    def _search(
        self,
        collection_name: str,
        query: Any,
        query_filter: Any,
        search_params: Any,
        limit: int,
        offset: int | None,
        with_payload: Any,
        with_vectors: Any,
        score_threshold: float | None,
        using: str | None = None,
    ) -> list[Any]:
        _check_limit("limit", limit, 1)
        if offset is not None:
            _check_limit("offset", offset, 0)
        col = self._col(collection_name)
        vector, mentioned = self._query_vector(col, query, using)
        mmr = cv.field(query, "mmr") if not isinstance(query, (list, np.ndarray)) else None
        if mmr is not None:
            return self._search_mmr(
                col,
                vector,
                mmr,
                cv.exclude_ids(cv.filter_dict(query_filter), mentioned),
                search_params,
                limit,
                offset or 0,
                with_payload,
                with_vectors,
                score_threshold,
                using,
            )
        sel = cv.payload_selector(with_payload)
        vsel = cv.vector_selector(with_vectors)
        hits = col.search(
            vector,  # a list or an array: the native call reads either
            limit,
            filter=cv.exclude_ids(cv.filter_dict(query_filter), mentioned),
            score_threshold=score_threshold,
            offset=offset or 0,
            with_payload=sel,
            with_vectors=bool(vsel),
            ef=cv.field(search_params, "hnsw_ef"),
            exact=bool(cv.field(search_params, "exact", False)),
            allow_zero=True,
            using=using,
        )
        return cv.scored_points(_beyond(hits, col, score_threshold, using), vsel)

    def _search_mmr(
        self,
        col: native.Collection,
        vector: Any,
        mmr: Any,
        flt: dict[str, Any] | None,
        search_params: Any,
        limit: int,
        offset: int,
        with_payload: Any,
        with_vectors: Any,
        score_threshold: float | None,
        using: str | None,
    ) -> list[Any]:
        """Maximal marginal relevance, as Qdrant's ``NearestQuery(mmr=Mmr(diversity,
        candidates_limit))``: from the ``candidates_limit`` nearest points, pick greedily the one
        maximising ``(1 - diversity) * sim(query) - diversity * max sim(picked)``; the scores
        returned are the similarities to the query."""
        diversity = cv.field(mmr, "diversity")
        diversity = 0.5 if diversity is None else float(diversity)
        if not 0.0 <= diversity <= 1.0:
            raise InvalidInputError(f"MMR diversity must be between 0 and 1, got {diversity}")
        candidates = cv.field(mmr, "candidates_limit") or limit
        sel = cv.payload_selector(with_payload)
        hits = col.search(
            np.asarray(vector, dtype=np.float32),
            candidates,
            filter=flt,
            score_threshold=score_threshold,
            with_payload=sel,
            with_vectors=True,
            ef=cv.field(search_params, "hnsw_ef"),
            exact=bool(cv.field(search_params, "exact", False)),
            allow_zero=True,
            using=using,
        )
        hits = _beyond(hits, col, score_threshold, using)
        if not hits:
            return []
        distance = _distance(col, using)
        vecs = np.asarray(
            [h.vector if using is None else cast("dict[str, Any]", h.vector)[using] for h in hits],
            dtype=np.float64,
        )
        if distance in ("cosine", "dot"):
            pair = vecs @ vecs.T
        elif distance == "euclid":
            # Qdrant compares squared distances inside MMR (its internal euclid score).
            pair = -((vecs[:, None, :] - vecs[None, :, :]) ** 2).sum(-1)
        else:
            pair = -np.abs(vecs[:, None, :] - vecs[None, :, :]).sum(-1)
        relevance = np.array([h.score for h in hits], dtype=np.float64)
        if distance == "euclid":
            relevance = -(relevance**2)
        elif distance == "manhattan":
            relevance = -relevance  # scores are distances there: lower is more relevant
        picked = [int(np.argmax(relevance))]
        pending = [i for i in range(len(hits)) if i != picked[0]]
        want = limit + offset
        while pending and len(picked) < want:
            closest = pair[np.ix_(pending, picked)].max(axis=1)
            mmr_score = (1.0 - diversity) * relevance[pending] - diversity * closest
            picked.append(pending.pop(int(np.argmax(mmr_score))))
        vsel = cv.vector_selector(with_vectors)
        return cv.scored_points([hits[i] for i in picked[offset:]], vsel)

    def query_points(
        self,
        collection_name: str,
        query: Any = None,
        using: str | None = None,
        prefetch: Any = None,
        query_filter: Any = None,
        search_params: Any = None,
        limit: int = 10,
        offset: int | None = None,
        with_payload: Any = True,
        with_vectors: Any = False,
        score_threshold: float | None = None,
        lookup_from: Any = None,
        consistency: Any = None,
        shard_key_selector: Any = None,
        timeout: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Nearest points to ``query``: a vector, a point id (that point itself is left out) or
        a NearestQuery; ``using`` names the vector searched."""
        if prefetch:
            raise UnsupportedError("prefetch (hybrid queries) is not supported yet (a later issue)")
        if lookup_from is not None:
            raise UnsupportedError("lookup_from is not supported yet")
        if query is None:
            raise UnsupportedError("query=None (scroll-like queries) is not supported; use scroll")
        points = self._search(
            collection_name,
            query,
            query_filter,
            search_params,
            limit,
            offset,
            with_payload,
            with_vectors,
            score_threshold,
            cv.using_of(using),
        )
        return cv.make(out.QueryResponse, points=points)

    def query_batch_points(
        self, collection_name: str, requests: Sequence[Any], **kwargs: Any
    ) -> list[Any]:
        """Several queries; those that are plain vectors with the same parameters run as one
        native batch on the core's threads."""
        col = self._col(collection_name)
        reqs = list(requests)
        plain = all(
            isinstance(cv.field(r, "query"), (list, np.ndarray))
            and not cv.field(r, "prefetch")
            and cv.field(r, "lookup_from") is None
            for r in reqs
        )
        keys = {
            json.dumps(
                [
                    cv.dump(cv.field(r, k))
                    for k in (
                        "filter",
                        "params",
                        "limit",
                        "offset",
                        "with_payload",
                        "with_vector",
                        "using",
                    )
                ]
                + [cv.field(r, "score_threshold")],
                sort_keys=True,
                default=str,
            )
            for r in reqs
        }
        if reqs and plain and len(keys) == 1:
            r = reqs[0]
            limit = cv.field(r, "limit") or 10
            _check_limit("limit", limit, 1)
            # A QueryRequest's with_payload=None means no payload (query_points' default is True).
            sel = cv.payload_selector(_or_false(cv.field(r, "with_payload")))
            params = cv.field(r, "params")
            offset = cv.field(r, "offset") or 0
            using = cv.using_of(cv.field(r, "using"))
            vsel = cv.vector_selector(cv.field(r, "with_vector"))
            batch = col.search_batch(
                np.asarray([cv.field(x, "query") for x in reqs], dtype=np.float32),
                limit + offset,
                filter=cv.filter_dict(cv.field(r, "filter")),
                score_threshold=cv.field(r, "score_threshold"),
                with_payload=sel,
                with_vectors=bool(vsel),
                ef=cv.field(params, "hnsw_ef"),
                exact=bool(cv.field(params, "exact", False)),
                allow_zero=True,
                using=using,
            )
            threshold = cv.field(r, "score_threshold")
            return [
                cv.make(
                    out.QueryResponse,
                    points=cv.scored_points(_beyond(hits[offset:], col, threshold, using), vsel),
                )
                for hits in batch
            ]
        return [
            self.query_points(
                collection_name,
                query=cv.field(r, "query"),
                using=cv.field(r, "using"),
                prefetch=cv.field(r, "prefetch"),
                query_filter=cv.field(r, "filter"),
                search_params=cv.field(r, "params"),
                limit=cv.field(r, "limit") or 10,
                offset=cv.field(r, "offset"),
                with_payload=_or_false(cv.field(r, "with_payload")),
                with_vectors=_or_false(cv.field(r, "with_vector")),
                score_threshold=cv.field(r, "score_threshold"),
                lookup_from=cv.field(r, "lookup_from"),
            )
            for r in reqs
        ]

    def query_points_groups(
        self,
        collection_name: str,
        group_by: str,
        query: Any = None,
        using: str | None = None,
        prefetch: Any = None,
        query_filter: Any = None,
        search_params: Any = None,
        limit: int = 10,
        group_size: int = 3,
        with_payload: Any = True,
        with_vectors: Any = False,
        score_threshold: float | None = None,
        with_lookup: Any = None,
        lookup_from: Any = None,
        **kwargs: Any,
    ) -> Any:
        """The best ``limit`` groups of points sharing the payload value at ``group_by`` (a
        string or integer; a point with an array there joins each of its values' groups), each
        with its best ``group_size`` points, groups ordered by their best point."""
        if prefetch or with_lookup is not None or lookup_from is not None:
            raise UnsupportedError("prefetch, with_lookup and lookup_from are not supported yet")
        _check_limit("limit", limit, 1)
        _check_limit("group_size", group_size, 1)
        col = self._col(collection_name)
        total = len(col)
        k = max(limit * group_size * 4, 64)
        while True:
            hits = self._search(
                collection_name,
                query,
                query_filter,
                search_params,
                min(k, max(total, 1)),
                None,
                True,
                with_vectors,
                score_threshold,
                cv.using_of(using),
            )
            groups: dict[Any, list[Any]] = {}
            for h in hits:
                for value in _group_values(h.payload, group_by):
                    members = groups.setdefault(value, [])
                    if len(members) < group_size:
                        members.append(h)
            full = sum(1 for m in groups.values() if len(m) >= group_size)
            if full >= limit or len(hits) < k or k >= total:
                break
            k *= 4
        chosen = list(groups.items())[:limit]
        # Grouping needed whole payloads; the hits carry what `with_payload` asks for.
        sel = cv.payload_selector(with_payload)
        if sel is not True:
            wanted = list({h.id: None for _, members in chosen for h in members})
            payloads = {r.id: r.payload for r in col.get(wanted, with_payload=sel)}
            for _, members in chosen:
                for h in members:
                    h.payload = payloads.get(h.id)
        return out.GroupsResult(
            groups=[out.PointGroup(id=value, hits=members) for value, members in chosen]
        )

    # ----- the older calls that recent qdrant-client releases removed --------------------------

    def search(
        self,
        collection_name: str,
        query_vector: Any,
        query_filter: Any = None,
        search_params: Any = None,
        limit: int = 10,
        offset: int | None = None,
        with_payload: Any = True,
        with_vectors: Any = False,
        score_threshold: float | None = None,
        append_payload: bool = True,
        consistency: Any = None,
        shard_key_selector: Any = None,
        timeout: int | None = None,
        **kwargs: Any,
    ) -> list[Any]:
        """qdrant-client's removed ``search``: ``query_vector`` is a vector, a
        ``(name, vector)`` pair or a NamedVector."""
        using = None
        if isinstance(query_vector, tuple) and len(query_vector) == 2:
            using = cv.using_of(query_vector[0])
            query_vector = query_vector[1]
        elif (
            cv.field(query_vector, "name") is not None
            and cv.field(query_vector, "vector") is not None
        ):
            using = cv.using_of(cv.field(query_vector, "name"))
            query_vector = cv.field(query_vector, "vector")
        if not isinstance(query_vector, (list, np.ndarray)):
            raise InvalidInputError("query_vector must be a vector")
        return self._search(
            collection_name,
            query_vector,
            query_filter,
            search_params,
            limit,
            offset,
            with_payload,
            with_vectors,
            score_threshold,
            using,
        )

    def search_batch(
        self, collection_name: str, requests: Sequence[Any], **kwargs: Any
    ) -> list[list[Any]]:
        return [
            self.search(
                collection_name,
                cv.field(r, "vector"),
                query_filter=cv.field(r, "filter"),
                search_params=cv.field(r, "params"),
                limit=cv.field(r, "limit") or 10,
                offset=cv.field(r, "offset"),
                with_payload=_or_false(cv.field(r, "with_payload")),
                with_vectors=_or_false(cv.field(r, "with_vector")),
                score_threshold=cv.field(r, "score_threshold"),
            )
            for r in requests
        ]

    def recommend(
        self,
        collection_name: str,
        positive: Sequence[Any] | None = None,
        negative: Sequence[Any] | None = None,
        query_filter: Any = None,
        search_params: Any = None,
        limit: int = 10,
        offset: int = 0,
        with_payload: Any = True,
        with_vectors: Any = False,
        score_threshold: float | None = None,
        using: str | None = None,
        lookup_from: Any = None,
        strategy: Any = None,
        **kwargs: Any,
    ) -> list[Any]:
        """qdrant-client's removed ``recommend`` with Qdrant's default ``average_vector``
        strategy: search near ``mean(pos) + (mean(pos) - mean(neg))``, leaving out the points
        given by id."""
        using = cv.using_of(using)
        if lookup_from is not None:
            raise UnsupportedError("lookup_from is not supported yet")
        if strategy not in (None, "average_vector") and cv.dump(strategy) != "average_vector":
            raise UnsupportedError(f"recommend strategy {strategy!r} is not supported yet")
        if not positive:
            raise InvalidInputError("recommend needs at least one positive example")
        col = self._col(collection_name)
        pos: list[Any] = []
        neg: list[Any] = []
        mentioned: list[int | str] = []
        for examples, into in ((positive, pos), (negative or [], neg)):
            for e in examples:
                vec, ids = self._query_vector(col, e, using)
                into.append(np.asarray(vec, dtype=np.float64))
                mentioned += ids
        mean_pos = np.mean(pos, axis=0)
        vector = mean_pos + mean_pos - np.mean(neg, axis=0) if neg else mean_pos
        flt = cv.exclude_ids(cv.filter_dict(query_filter), mentioned)
        return self._search(
            collection_name,
            vector,
            flt,
            search_params,
            limit,
            offset,
            with_payload,
            with_vectors,
            score_threshold,
            using,
        )

    # ----- snapshots ---------------------------------------------------------------------------

    def _snapshot_dir(self) -> str:
        if self._path is None:
            raise UnsupportedError("snapshots need a persistent store (QdrantClient(path=...))")
        return str(self._path / "snapshots")

    @staticmethod
    def _snapshot(info: native.SnapshotInfo) -> Any:
        return out.SnapshotDescription(
            name=Path(info.path).name,
            creation_time=info.created_at.rstrip("Z").split("+")[0],
            size=info.size_bytes,
            checksum=info.sha256,
        )

    def create_snapshot(self, collection_name: str, wait: bool = True, **kwargs: Any) -> Any:
        """A snapshot archive of one collection (see ``docs/DURABILITY.md``)."""
        name = self._name(collection_name)
        self._col(name)
        info = self._db.create_snapshot(name, dest=self._snapshot_dir())
        return self._snapshot(info)

    def list_snapshots(self, collection_name: str, **kwargs: Any) -> list[Any]:
        name = self._name(collection_name)
        self._col(name)
        return [
            self._snapshot(s)
            for s in self._db.list_snapshots(dest=self._snapshot_dir())
            if list(s.collections) == [name]
        ]

    def delete_snapshot(
        self, collection_name: str, snapshot_name: str, wait: bool = True, **kwargs: Any
    ) -> bool:
        self._db.delete_snapshot(snapshot_name.removesuffix(".fvsnap"), dest=self._snapshot_dir())
        return True

    def recover_snapshot(
        self,
        collection_name: str,
        location: str,
        api_key: str | None = None,
        checksum: str | None = None,
        priority: Any = None,
        wait: bool = True,
        **kwargs: Any,
    ) -> bool:
        """Replace (or create) ``collection_name`` from a snapshot archive: a path, a
        ``file://`` URL (no downloads in an embedded store) or the name of one of this store's
        snapshots. ``checksum``, if given, is the archive's SHA-256 and must match."""
        if "://" in location and not location.startswith("file://"):
            raise UnsupportedError("recover_snapshot takes a local path or file:// URL")
        own = Path(self._snapshot_dir()) / location  # also checks that the store is on disk
        archive = location
        if "/" not in location and own.is_file():
            archive = str(own)
        info = native.verify_snapshot(archive)
        if checksum is not None and checksum != info.sha256:
            raise InvalidInputError(
                f"snapshot checksum {info.sha256} does not match the expected {checksum}"
            )
        name = self._name(collection_name)
        if list(info.collections) != [name]:
            raise UnsupportedError(
                f"{archive} holds the collection(s) {sorted(info.collections)}; recovering a "
                f"snapshot under another name ({name!r}) is not supported yet"
            )
        native.restore_snapshot(archive, str(self._path), collection=name, replace=True)
        return True


def _existing(
    col: native.Collection, ids: list[Any], flt: dict[str, Any] | None = None
) -> set[Any]:
    """Those of `ids` that are points of `col` (and match `flt`, if given)."""
    if not ids:
        return set()
    if flt is None:
        return {r.id for r in col.get(ids, with_payload=False)}
    match = {"must": [flt, {"has_id": list(ids)}]}
    return {r.id for r in col.scroll(len(ids), filter=match, with_payload=False)[0]}


def _or_false(selector: Any) -> Any:
    """A request object's with_payload / with_vector: unset (None) means none, unlike the
    keyword arguments of query_points and search, whose default is the payload."""
    return False if selector is None else selector


def _condition(update_filter: Any, update_mode: Any) -> tuple[dict[str, Any] | None, str] | None:
    """A conditional upsert's (filter, mode), or None for a plain one."""
    mode = cv.dump(update_mode) or "upsert"
    if mode not in ("upsert", "insert_only", "update_only"):
        raise InvalidInputError(f"unknown update_mode {update_mode!r}")
    if update_filter is None and mode == "upsert":
        return None
    return cv.filter_dict(update_filter), mode


def _aliases_digest(aliases: dict[str, str]) -> str:
    canonical = json.dumps(aliases, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class _Writer:
    """Writes an upload's batches on one background thread while the caller converts the
    next: the core releases the GIL while it writes and fsyncs, so the two overlap. Batches
    are written in order, one at a time; the first error stops the upload and is raised (the
    batches before it are written, as with qdrant-client's uploads)."""

    def __init__(
        self,
        write: Callable[..., None],
        col: native.Collection,
        when: tuple[dict[str, Any] | None, str] | None = None,
    ) -> None:
        self._write = write
        self._col = col
        self._when = when
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ferrovec-upload")
        self._pending: Future[None] | None = None

    def submit(self, *batch: Any) -> None:
        self._wait()
        self._pending = self._pool.submit(self._write, self._col, *batch, self._when)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._wait()
        finally:
            self._pool.shutdown(wait=True)


def _upsert(
    col: native.Collection, ids: list[int | str], vectors: Any, payloads: list[Any] | None
) -> None:
    """The native upsert, payloads as given; if it refuses the batch and payloads may hold
    values the native API does not take (dates, UUIDs, models: qdrant-client turns them into
    JSON), once more with the payloads in Qdrant's JSON shape (`cv.dump`). Plain JSON payloads,
    the usual case, so skip a walk in Python; the native upsert changes nothing when it
    refuses, so the retry is safe."""
    try:
        col.upsert(ids, vectors, payloads, allow_zero=True)
    except InvalidInputError:
        if payloads is None:
            raise
        col.upsert(ids, vectors, [cv.dump(p) for p in payloads], allow_zero=True)


def _dims(col: native.Collection) -> dict[str, int] | None:
    """The sizes of a collection's named vectors by name; None for one unnamed vector."""
    if col.dim is not None:
        return None
    return {name: int(spec["dim"]) for name, spec in col.vectors.items()}


def _distance(col: native.Collection, using: str | None) -> str:
    """The native distance of the vector `using` (None: the unnamed one)."""
    if using is None:
        return col.distance or ""
    return str(col.vectors[using]["distance"])


def _beyond(
    hits: list[Any], col: native.Collection, threshold: float | None, using: str | None = None
) -> list[Any]:
    """Hits strictly better than `threshold`, as qdrant-client takes it (the core keeps a score
    equal to the threshold too); hits are sorted, so those equal to it are at the end."""
    if threshold is None:
        return hits
    if _distance(col, using) in ("euclid", "manhattan"):
        return [h for h in hits if h.score < threshold]
    return [h for h in hits if h.score > threshold]


def _payload_points(op: Any) -> Any:
    """The selector of a SetPayload/DeletePayload operation (ids in `points` or `filter`)."""
    ids = cv.field(op, "points")
    if ids is not None:
        return list(ids)
    return cv.field(op, "filter")


def _group_values(payload: dict[str, Any] | None, key: str) -> list[Any]:
    value: Any = payload
    for part in key.split("."):
        if not isinstance(value, dict):
            return []
        value = value.get(part)
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, (str, int)) and not isinstance(v, bool)]


def _progress(progress: Progress | bool | None, total: int) -> Callable[..., None]:
    """A reporter for long uploads: a callback, or ``True`` for a line on stderr."""
    if not progress:
        return lambda done, final=False: None
    if callable(progress):
        cb = progress

        def call(done: int, final: bool = False) -> None:
            cb(done, total)

        return call
    import sys

    started = datetime.now(timezone.utc)

    def bar(done: int, final: bool = False) -> None:
        secs = max((datetime.now(timezone.utc) - started).total_seconds(), 1e-9)
        of = f"/{total:,}" if total else ""
        end = "\n" if final else "\r"
        sys.stderr.write(f"uploaded {done:,}{of} points ({done / secs:,.0f}/s){end}")
        sys.stderr.flush()

    return bar
