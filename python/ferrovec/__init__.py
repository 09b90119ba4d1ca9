"""ferrovec: an embedded, persistent vector store with a Rust core.

>>> import ferrovec, numpy as np
>>> db = ferrovec.open(":memory:")
>>> col = db.create_collection("docs", dim=3)
>>> col.upsert([1, 2], np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32), [{"t": "a"}, {"t": "b"}])
>>> col.search([1, 0.1, 0], k=1)[0].id
1
"""

from __future__ import annotations

import atexit
from typing import TYPE_CHECKING, Any

from ferrovec._document import Document
from ferrovec._native import (
    Collection,
    Database,
    Hit,
    Record,
    SnapshotInfo,
    SparseVector,
    __version__,
    _shutdown,
    backup_status,
    bm25,
    check,
    cleanup_backups,
    get_num_threads,
    get_slow_op_ms,
    list_backups,
    open,
    repair,
    restore_backup,
    restore_snapshot,
    set_num_threads,
    set_slow_op_ms,
    verify_backup,
    verify_snapshot,
)
from ferrovec.errors import (
    ClosedError,
    CollectionExistsError,
    CollectionNotFoundError,
    CorruptionError,
    FerrovecError,
    InternalError,
    InvalidInputError,
    LogFailedError,
    MemoryLimitError,
    PointNotFoundError,
    ReadOnlyError,
    StorageError,
    StoreLockedError,
    UnsupportedError,
    UnsupportedVersionError,
)

# Close the stores still open when the interpreter exits (each checkpoints and stops its
# optimizer thread while Python can still take its log lines).
atexit.register(_shutdown)

if TYPE_CHECKING:
    from ferrovec.qdrant import AsyncQdrantClient, QdrantClient


def __getattr__(name: str) -> Any:
    # The Qdrant-compatible client imports qdrant-client (when installed), which takes a while:
    # only on first use, so `import ferrovec` stays fast.
    if name in ("QdrantClient", "AsyncQdrantClient"):
        from ferrovec import qdrant

        return getattr(qdrant, name)
    raise AttributeError(f"module 'ferrovec' has no attribute {name!r}")


__all__ = [
    "AsyncQdrantClient",
    "ClosedError",
    "Collection",
    "CollectionExistsError",
    "CollectionNotFoundError",
    "CorruptionError",
    "Database",
    "Document",
    "FerrovecError",
    "Hit",
    "InternalError",
    "InvalidInputError",
    "LogFailedError",
    "MemoryLimitError",
    "PointNotFoundError",
    "QdrantClient",
    "ReadOnlyError",
    "Record",
    "SnapshotInfo",
    "SparseVector",
    "StorageError",
    "StoreLockedError",
    "UnsupportedError",
    "UnsupportedVersionError",
    "__version__",
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
    "verify_backup",
    "verify_snapshot",
]
