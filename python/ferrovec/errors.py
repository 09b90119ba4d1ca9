"""The exception hierarchy of ferrovec.

Every error ferrovec raises is a :class:`FerrovecError`. Some also derive from the built-in
exception a Python caller would expect, so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class FerrovecError(Exception):
    """Base class of every ferrovec error."""


class InvalidInputError(FerrovecError, ValueError):
    """The arguments were rejected. Nothing was changed: a rejected batch is rejected whole."""


class CollectionNotFoundError(FerrovecError, KeyError, ValueError):
    """The named collection does not exist (or was dropped). Also a ``ValueError``, which is what
    qdrant-client's local mode raises."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CollectionExistsError(FerrovecError, ValueError):
    """A collection of that name exists already (pass ``exist_ok=True`` to reuse it)."""


class StoreLockedError(FerrovecError):
    """A process that cannot share the store holds it exclusively (an older ferrovec).
    Processes of this version share a store freely. ``path`` and ``pid`` say which store and
    process."""

    path: str | None = None
    pid: int | str | None = None


class CorruptionError(FerrovecError):
    """A file is damaged, truncated or foreign.

    ``path`` names the file."""

    path: str | None = None


class UnsupportedVersionError(FerrovecError):
    """A file of a format version this build does not read: written by a newer ferrovec
    (upgrade ferrovec), or older than any version this build can upgrade from. Nothing was read
    from it.

    ``path`` names the file, ``version`` is its format version, ``reads`` the one this build
    reads."""

    path: str | None = None
    version: int | None = None
    reads: int | None = None


class StorageError(FerrovecError, OSError):
    """An operating-system I/O call failed (disk full, permission, I/O error).

    ``path`` names the file."""

    path: str | None = None


class LogFailedError(StorageError):
    """An earlier write or fsync of the write-ahead log failed; the store refuses further writes
    until it is reopened (which replays what is durable). Never retry an fsync as if it had
    succeeded."""


class ClosedError(FerrovecError):
    """The handle was closed."""


class ReadOnlyError(FerrovecError, PermissionError):
    """A write through a store opened with ``read_only=True``. Nothing was changed."""


class PointNotFoundError(FerrovecError, KeyError):
    """A point named by id does not exist (the Qdrant client's payload and vector updates,
    which update the points that do exist first, as a Qdrant server does)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MemoryLimitError(FerrovecError):
    """Serving the store would keep more resident than its ``memory_limit_mb`` allows: raised
    when opening a collection or writing new points past it. Nothing was changed."""


class UnsupportedError(FerrovecError, NotImplementedError):
    """The request asks for something ferrovec does not do (yet), and ignoring it would change
    the results: for example sparse vectors or hybrid queries through the Qdrant client."""


class InternalError(FerrovecError):
    """A bug in ferrovec: the Rust core panicked or found itself in a state it should never
    reach, and the call failed. The process goes on and
    the store's files are checked as they are read; to be sure the in-memory state agrees with
    them, close and reopen the store. Please report the message."""


__all__ = [
    "ClosedError",
    "CollectionExistsError",
    "CollectionNotFoundError",
    "CorruptionError",
    "FerrovecError",
    "InternalError",
    "InvalidInputError",
    "LogFailedError",
    "MemoryLimitError",
    "PointNotFoundError",
    "ReadOnlyError",
    "StorageError",
    "StoreLockedError",
    "UnsupportedError",
    "UnsupportedVersionError",
]
