"""Snapshots of single collections, in the store's ``snapshots/`` folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ferrovec._native as native
from ferrovec.errors import (
    InvalidInputError,
    UnsupportedError,
)
from ferrovec.qdrant import convert as cv
from ferrovec.qdrant._base import _Base

out = cv.out


class _Snapshots(_Base):
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
