"""Type stubs of the compiled module ``ferrovec._native`` (checked by mypy.stubtest in CI)."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal, TypedDict, TypeVar

import numpy as np
import numpy.typing as npt
from typing_extensions import final

__version__: str
__all__ = [
    "Collection",
    "Database",
    "Hit",
    "Record",
    "SnapshotInfo",
    "SparseVector",
    "__version__",
    "_as_matrix",
    "_matrix_address",
    "_panic_for_tests",
    "_panic_for_tests_async",
    "_shutdown",
    "backup_status",
    "bm25",
    "check",
    "cleanup_backups",
    "get_num_threads",
    "get_slow_op_ms",
    "list_backups",
    "open",
    "repair",
    "restore_backup",
    "restore_snapshot",
    "set_num_threads",
    "set_slow_op_ms",
    "spawn",
    "verify_backup",
    "verify_snapshot",
]

_PointId = int | str
_Payload = dict[str, Any]
_Ids = Sequence[_PointId] | npt.NDArray[np.integer[Any]] | Iterable[_PointId]
# a bool, keys or paths to include (`a.b`, `a[].b`), {"include": [...]} or {"exclude": [...]}
_PayloadSelector = bool | Sequence[str] | dict[str, Sequence[str]] | None
_Distance = Literal["cosine", "dot", "euclid", "manhattan"]
_Durability = Literal["fsync", "interval", "off"]
# Qdrant's JSON filter as a dict, or a qdrant_client.models.Filter (anything with model_dump).
_Filter = dict[str, Any] | Any
_IndexType = Literal["keyword", "integer", "float", "bool", "datetime", "uuid", "geo", "text"]
_OrderBy = str | dict[str, Any]

@final
class SparseVector:
    def __new__(
        cls, indices: Sequence[int] | npt.ArrayLike, values: Sequence[float] | npt.ArrayLike
    ) -> SparseVector: ...
    @property
    def indices(self) -> list[int]: ...
    @property
    def values(self) -> list[float]: ...
    def __len__(self) -> int: ...
    def __eq__(self, value: object, /) -> bool: ...

# One point's sparse vector: a SparseVector, an (indices, values) pair, a dict of them, any
# object with `indices` and `values`, or a document to embed (ferrovec.Document, or a dict
# {"text": ..., "model": "qdrant/bm25"}).
_Sparse = SparseVector | tuple[Sequence[int], Sequence[float]] | dict[str, Any] | Any
# One (n, dim) array, or for named vectors a dict of one entry per name: an array for a dense
# vector; for a sparse one a list of one _Sparse (or None) per point, or a scipy CSR matrix.
_Vectors = npt.ArrayLike | dict[str, npt.ArrayLike | Sequence[_Sparse | None] | Any]
# A point's vector: an array, or for named vectors a dict of one per name (sparse vectors as
# SparseVector).
_Vector = npt.NDArray[np.float32] | dict[str, npt.NDArray[np.float32] | SparseVector]
# Qdrant's universal query as its REST JSON (a dict), or a qdrant-client QueryRequest.
_Query = dict[str, Any] | Any

class _SparseSpec(TypedDict, total=False):
    modifier: Literal["idf", "none"]
    full_scan_threshold: int | None
    on_disk: bool | None

class _VectorSpec(TypedDict, total=False):
    dim: int
    distance: _Distance

_Progress = Callable[[int, int], object]
_T = TypeVar("_T")

_CodeKind = Literal["int8", "int4", "binary", "none"]

class _Quantization(TypedDict, total=False):
    codes: _CodeKind | None
    oversampling: float | None
    rescore: bool
    always_ram: bool | None

class _QuantizationSearch(TypedDict, total=False):
    ignore: bool
    rescore: bool | None
    oversampling: float | None

class _Retention(TypedDict):
    key: str
    max_age_seconds: int

@final
class Record:
    @property
    def id(self) -> _PointId: ...
    @property
    def payload(self) -> _Payload | None: ...
    @property
    def vector(self) -> _Vector | None: ...

@final
class Hit:
    @property
    def id(self) -> _PointId: ...
    @property
    def score(self) -> float: ...
    @property
    def payload(self) -> _Payload | None: ...
    @property
    def vector(self) -> _Vector | None: ...
    @property
    def order_value(self) -> float | None: ...

@final
class Collection:
    @property
    def name(self) -> str: ...
    @property
    def dim(self) -> int | None: ...
    @property
    def distance(self) -> str | None: ...
    @property
    def vectors(self) -> dict[str, dict[str, Any]]: ...
    @property
    def sparse_vectors(self) -> dict[str, dict[str, Any]]: ...
    def query(self, request: _Query) -> list[Hit]: ...
    def query_batch(self, requests: Sequence[_Query]) -> list[list[Hit]]: ...
    def query_groups(self, request: _Query) -> list[tuple[str | int, list[Hit]]]: ...
    def upsert(
        self,
        ids: _Ids,
        vectors: _Vectors,
        payloads: Sequence[_Payload | None] | None = None,
        *,
        allow_zero: bool = False,
        json_default: Callable[[Any], Any] | None = None,
    ) -> None: ...
    def upsert_async(
        self,
        ids: _Ids,
        vectors: _Vectors,
        payloads: Sequence[_Payload | None] | None = None,
        *,
        allow_zero: bool = False,
        json_default: Callable[[Any], Any] | None = None,
    ) -> Awaitable[None]: ...
    def update_vectors(
        self, ids: _Ids, vectors: _Vectors, *, allow_zero: bool = False
    ) -> list[_PointId]: ...
    def delete_vectors(
        self, names: Sequence[str], ids: _Ids | None = None, *, filter: _Filter | None = None
    ) -> int: ...
    def get(
        self,
        ids: _Ids,
        *,
        with_payload: _PayloadSelector = None,
        with_vectors: bool = False,
    ) -> list[Record]: ...
    def delete(self, ids: _Ids | None = None, *, filter: _Filter | None = None) -> int: ...
    def count(self, *, filter: _Filter | None = None) -> int: ...
    def __len__(self) -> int: ...
    def set_payload(
        self,
        payload: _Payload,
        ids: _Ids | None = None,
        *,
        filter: _Filter | None = None,
        null_removes: bool = False,
        key: str | None = None,
    ) -> int: ...
    def overwrite_payload(
        self, payload: _Payload, ids: _Ids | None = None, *, filter: _Filter | None = None
    ) -> int: ...
    def delete_payload(
        self, keys: Sequence[str], ids: _Ids | None = None, *, filter: _Filter | None = None
    ) -> int: ...
    def clear_payload(self, ids: _Ids | None = None, *, filter: _Filter | None = None) -> int: ...
    def create_payload_index(self, key: str, type: _IndexType) -> None: ...
    def drop_payload_index(self, key: str) -> None: ...
    def set_retention(self, key: str | None, *, max_age_seconds: int | None = None) -> None: ...
    @property
    def retention(self) -> _Retention | None: ...
    def expire(self) -> int: ...
    def _set_clock(self, now: float | None) -> None: ...
    def facet(
        self, key: str, *, filter: _Filter | None = None, limit: int = 10
    ) -> list[tuple[str | int | bool, int]]: ...
    def search(
        self,
        vector: npt.ArrayLike | _Sparse,
        k: int = 10,
        *,
        filter: _Filter | None = None,
        score_threshold: float | None = None,
        offset: int = 0,
        with_payload: _PayloadSelector = None,
        with_vectors: bool = False,
        ef: int | None = None,
        exact: bool = False,
        allow_zero: bool = False,
        using: str | None = None,
        quantization: _QuantizationSearch | None = None,
    ) -> list[Hit]: ...
    def search_async(
        self,
        vector: npt.ArrayLike,
        k: int = 10,
        *,
        filter: _Filter | None = None,
        score_threshold: float | None = None,
        offset: int = 0,
        with_payload: _PayloadSelector = None,
        with_vectors: bool = False,
        ef: int | None = None,
        exact: bool = False,
        allow_zero: bool = False,
        using: str | None = None,
        quantization: _QuantizationSearch | None = None,
    ) -> Awaitable[list[Hit]]: ...
    def search_batch(
        self,
        vectors: npt.ArrayLike,
        k: int = 10,
        *,
        filter: _Filter | None = None,
        score_threshold: float | None = None,
        with_payload: _PayloadSelector = None,
        with_vectors: bool = False,
        ef: int | None = None,
        exact: bool = False,
        allow_zero: bool = False,
        using: str | None = None,
        quantization: _QuantizationSearch | None = None,
    ) -> list[list[Hit]]: ...
    def search_batch_async(
        self,
        vectors: npt.ArrayLike,
        k: int = 10,
        *,
        filter: _Filter | None = None,
        score_threshold: float | None = None,
        with_payload: _PayloadSelector = None,
        with_vectors: bool = False,
        ef: int | None = None,
        exact: bool = False,
        allow_zero: bool = False,
        using: str | None = None,
        quantization: _QuantizationSearch | None = None,
    ) -> Awaitable[list[list[Hit]]]: ...
    def scroll(
        self,
        limit: int = 100,
        offset: _PointId | None = None,
        *,
        filter: _Filter | None = None,
        order_by: _OrderBy | None = None,
        with_payload: _PayloadSelector = None,
        with_vectors: bool = False,
    ) -> tuple[list[Record], _PointId | None]: ...
    def flush(self) -> None: ...
    def optimize(self, wait: bool = True, *, progress: bool | _Progress | None = None) -> None: ...
    def verify(self) -> None: ...
    def info(self) -> dict[str, Any]: ...
    def stats(self) -> dict[str, Any]: ...
    def reindex(self) -> None: ...
    def explain(
        self,
        vector: npt.ArrayLike,
        k: int = 10,
        *,
        filter: _Filter | None = None,
        score_threshold: float | None = None,
        offset: int = 0,
        ef: int | None = None,
        exact: bool = False,
        allow_zero: bool = False,
        using: str | None = None,
        quantization: _QuantizationSearch | None = None,
        analyze: bool = False,
    ) -> dict[str, Any]: ...
    def explain_query(self, request: Any, *, analyze: bool = False) -> dict[str, Any]: ...

@final
class Database:
    @property
    def path(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def create_collection(
        self,
        name: str,
        dim: int | None = None,
        distance: _Distance = "cosine",
        exist_ok: bool = False,
        *,
        vectors: dict[str, _VectorSpec] | None = None,
        sparse: dict[str, _SparseSpec | None] | None = None,
        hnsw: dict[str, int] | None = None,
        optimizer: dict[str, int] | None = None,
        retention: _Retention | None = None,
        quantization: _CodeKind | _Quantization | None = None,
        vectors_on_disk: bool | None = None,
    ) -> Collection: ...
    def collection(self, name: str) -> Collection: ...
    def list_collections(self) -> list[str]: ...
    def drop_collection(self, name: str) -> None: ...
    def info(self) -> list[dict[str, Any]]: ...
    def metrics(
        self, names: Sequence[str] | None = None, *, collection: str | None = None
    ) -> str: ...
    def slow_ops(
        self, limit: int = 100, *, collection: str | None = None
    ) -> list[dict[str, Any]]: ...
    def stats(self) -> list[dict[str, Any]]: ...
    def create_snapshot(
        self, collection: str | None = None, *, dest: str | os.PathLike[str] | None = None
    ) -> SnapshotInfo: ...
    def list_snapshots(self, dest: str | os.PathLike[str] | None = None) -> list[SnapshotInfo]: ...
    def delete_snapshot(self, name: str, *, dest: str | os.PathLike[str] | None = None) -> None: ...
    def verify_snapshot(
        self, name: str, *, dest: str | os.PathLike[str] | None = None
    ) -> SnapshotInfo: ...
    def set_log_archive(
        self, dir: str | os.PathLike[str] | None, *, interval_s: float = 60.0
    ) -> None: ...
    def backup(
        self,
        dest: str | os.PathLike[str],
        *,
        incremental: bool = False,
        progress: _Progress | None = None,
    ) -> dict[str, Any]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Database: ...
    def __exit__(self, *args: object) -> bool: ...

def open(
    path: str | os.PathLike[str],
    *,
    durability: _Durability = "fsync",
    fsync_interval_ms: int = 100,
    log_archive: str | os.PathLike[str] | None = None,
    archive_interval_s: float = 60.0,
    read_only: bool = False,
    slow_op_ms: int | None = None,
    rows_from_disk_mb: int = 256,
    memory_limit_mb: int | None = None,
) -> Database: ...
def set_slow_op_ms(ms: int | None) -> None: ...
def check(path: str | os.PathLike[str]) -> list[dict[str, Any]]: ...
def repair(path: str | os.PathLike[str]) -> list[dict[str, Any]]: ...
def get_slow_op_ms() -> int | None: ...

@final
class SnapshotInfo:
    @property
    def name(self) -> str: ...
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def created_at(self) -> str: ...
    @property
    def size_bytes(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def sequence(self) -> int | None: ...
    @property
    def collections(self) -> dict[str, int]: ...

def restore_snapshot(
    archive: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    collection: str | None = None,
    replace: bool = False,
) -> list[str]: ...
def verify_snapshot(archive: str | os.PathLike[str]) -> SnapshotInfo: ...
def restore_backup(
    dest: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    backup_id: str | None = None,
    collection: str | None = None,
    replace: bool = False,
    to_sequence: int | None = None,
    to_time: str | None = None,
    log_archive: str | os.PathLike[str] | None = None,
    progress: _Progress | None = None,
) -> list[str]: ...
def list_backups(dest: str | os.PathLike[str]) -> list[dict[str, Any]]: ...
def verify_backup(
    dest: str | os.PathLike[str],
    backup_id: str | None = None,
    *,
    progress: _Progress | None = None,
) -> dict[str, Any]: ...
def cleanup_backups(
    dest: str | os.PathLike[str],
    *,
    keep_last: int | None = None,
    max_age_days: float | None = None,
) -> list[str]: ...
def backup_status(dest: str | os.PathLike[str]) -> dict[str, Any]: ...
def set_num_threads(n: int) -> None: ...
def spawn(func: Callable[[], _T]) -> Awaitable[_T]: ...
def _panic_for_tests(message: str) -> None: ...
def _panic_for_tests_async(message: str) -> Awaitable[None]: ...
def get_num_threads() -> int: ...
def _matrix_address(vectors: npt.ArrayLike) -> int: ...
def _shutdown() -> None: ...
def _as_matrix(vectors: npt.ArrayLike) -> npt.NDArray[np.float32]: ...
def bm25(
    texts: Sequence[str],
    *,
    query: bool = False,
    model: str = "qdrant/bm25",
    options: dict[str, Any] | None = None,
) -> list[SparseVector]: ...
