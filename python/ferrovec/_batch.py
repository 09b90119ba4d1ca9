"""Batch helpers shared by the compatibility layers (Qdrant client, LangChain, LlamaIndex)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ferrovec._native import Collection
from ferrovec.errors import InvalidInputError


def take(
    ids: list[Any], vectors: Any, payloads: list[Any] | None, keep: list[int]
) -> tuple[list[Any], Any, list[Any] | None]:
    """The rows at positions `keep` of a batch (ids, vectors, optional payloads); `vectors` is
    one matrix, or a dict of one matrix (dense) or list (sparse) per vector name."""
    kept_payloads = None if payloads is None else [payloads[i] for i in keep]
    if isinstance(vectors, Mapping):
        kept = {
            n: [v[i] for i in keep] if isinstance(v, list) else np.asarray(v, np.float32)[keep]
            for n, v in vectors.items()
        }
        return [ids[i] for i in keep], kept, kept_payloads
    return [ids[i] for i in keep], np.asarray(vectors, dtype=np.float32)[keep], kept_payloads


def last_wins(
    ids: list[Any], vectors: Any, payloads: list[Any] | None
) -> tuple[list[Any], Any, list[Any] | None]:
    """The batch with each id once, keeping its last vector and payload: the rule of Qdrant,
    LangChain and LlamaIndex (ferrovec's native upsert refuses a repeated id instead)."""
    last = {pid: i for i, pid in enumerate(ids)}
    if len(last) == len(ids):
        return ids, vectors, payloads
    return take(ids, vectors, payloads, sorted(last.values()))


def scroll_all(
    col: Collection,
    filter: dict[str, Any] | None = None,
    *,
    with_payload: Any = True,
    with_vectors: bool = False,
) -> list[Any]:
    """Every record of `col` (matching `filter`), page by page, in id order."""
    out: list[Any] = []
    offset = None
    while True:
        page, offset = col.scroll(
            1000, offset, filter=filter, with_payload=with_payload, with_vectors=with_vectors
        )
        out += page
        if offset is None:
            return out


def unnamed_distance(col: Collection) -> str:
    """The distance of a collection of one unnamed vector, which the native framework adapters
    use; a collection of named vectors is refused with a way forward."""
    if col.distance is None:
        raise InvalidInputError(
            f"collection {col.name!r} holds named vectors; the native adapters use collections "
            "of one unnamed vector (for named vectors, use the framework's Qdrant vector store "
            "with ferrovec.QdrantClient and its vector name setting)"
        )
    return col.distance
