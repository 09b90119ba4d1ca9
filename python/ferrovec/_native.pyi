"""Type stubs of the compiled module ``ferrovec._native`` (checked by mypy.stubtest in CI)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any, Literal, Optional, Union

import numpy as np
import numpy.typing as npt

__version__: str

PointId = Union[int, str]
Payload = dict[str, Any]
Ids = Union[Sequence[PointId], npt.NDArray[np.integer[Any]], Iterable[PointId]]
PayloadSelector = Union[bool, Sequence[str], None]
Distance = Literal["cosine", "dot", "euclid", "manhattan"]
Durability = Literal["fsync", "interval", "off"]

class Record:
    @property
    def id(self) -> PointId: ...
    @property
    def payload(self) -> Optional[Payload]: ...
    @property
    def vector(self) -> Optional[npt.NDArray[np.float32]]: ...

class Hit:
    @property
    def id(self) -> PointId: ...
    @property
    def score(self) -> float: ...
    @property
    def payload(self) -> Optional[Payload]: ...
    @property
    def vector(self) -> Optional[npt.NDArray[np.float32]]: ...

class Collection:
    @property
    def name(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def distance(self) -> str: ...
    def upsert(
        self,
        ids: Ids,
        vectors: npt.ArrayLike,
        payloads: Optional[Sequence[Optional[Payload]]] = None,
    ) -> None: ...
    def get(
        self,
        ids: Ids,
        *,
        with_payload: PayloadSelector = None,
        with_vectors: bool = False,
    ) -> list[Record]: ...
    def delete(self, ids: Ids) -> int: ...
    def count(self) -> int: ...
    def __len__(self) -> int: ...
    def search(
        self,
        vector: npt.ArrayLike,
        k: int = 10,
        *,
        score_threshold: Optional[float] = None,
        offset: int = 0,
        with_payload: PayloadSelector = None,
        with_vectors: bool = False,
    ) -> list[Hit]: ...
    def search_batch(
        self,
        vectors: npt.ArrayLike,
        k: int = 10,
        *,
        score_threshold: Optional[float] = None,
        with_payload: PayloadSelector = None,
        with_vectors: bool = False,
    ) -> list[list[Hit]]: ...
    def scroll(
        self,
        limit: int = 100,
        offset: Optional[PointId] = None,
        *,
        with_payload: PayloadSelector = None,
        with_vectors: bool = False,
    ) -> tuple[list[Record], Optional[PointId]]: ...
    def flush(self) -> None: ...
    def verify(self) -> None: ...
    def info(self) -> dict[str, Any]: ...

class Database:
    @property
    def path(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def create_collection(
        self, name: str, dim: int, distance: Distance = "cosine", exist_ok: bool = False
    ) -> Collection: ...
    def collection(self, name: str) -> Collection: ...
    def list_collections(self) -> list[str]: ...
    def drop_collection(self, name: str) -> None: ...
    def info(self) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Database: ...
    def __exit__(self, *args: object) -> bool: ...

def open(
    path: Union[str, os.PathLike[str]],
    *,
    durability: Durability = "fsync",
    fsync_interval_ms: int = 100,
) -> Database: ...
def _matrix_address(vectors: npt.ArrayLike) -> int: ...
