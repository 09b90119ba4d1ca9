"""Batch helpers shared by the compatibility layers (Qdrant client, LangChain, LlamaIndex)."""

from __future__ import annotations

from typing import Any

import numpy as np


def take(
    ids: list[Any], vectors: Any, payloads: list[Any] | None, keep: list[int]
) -> tuple[list[Any], Any, list[Any] | None]:
    """The rows at positions `keep` of a batch (ids, vectors, optional payloads)."""
    kept_payloads = None if payloads is None else [payloads[i] for i in keep]
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
