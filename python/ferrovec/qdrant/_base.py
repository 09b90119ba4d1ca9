"""What every part of :class:`~ferrovec.qdrant.QdrantClient` stands on: the store it wraps,
alias resolution, and the small helpers several parts use."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import ferrovec._native as native
from ferrovec.errors import (
    InvalidInputError,
)
from ferrovec.qdrant import convert as cv

out = cv.out


class _Base:
    """The state every part of the client shares (set by ``QdrantClient.__init__``)."""

    _db: native.Database
    _lock: threading.RLock
    _aliases: dict[str, str]
    _path: Path | None

    def _name(self, collection_name: str) -> str:
        return self._aliases.get(collection_name, collection_name)

    def _col(self, collection_name: str) -> native.Collection:
        return self._db.collection(self._name(collection_name))


def _check_limit(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidInputError(f"{name} value {value!r} is invalid. Must be {minimum} or larger.")


def _dims(col: native.Collection) -> dict[str, int] | None:
    """The sizes of a collection's named dense vectors by name (`""`: its unnamed one beside
    sparse vectors); None for a collection of one unnamed vector only."""
    if col.dim is not None:
        return None
    return {name: int(spec["dim"]) for name, spec in col.vectors.items()}


def _sparse(col: native.Collection) -> list[str]:
    """The names of a collection's sparse vectors."""
    return list(col.sparse_vectors)


def _distance(col: native.Collection, using: str | None) -> str:
    """The native distance of the vector `using` (None: the unnamed one)."""
    if using is None:
        return col.distance or ""
    return str(col.vectors[using]["distance"])


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
