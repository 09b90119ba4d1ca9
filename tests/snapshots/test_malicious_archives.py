"""Restore refuses every hostile or damaged archive with a clear error and leaves the target
store as it was. Each case starts from a real snapshot, unpacked with Python's tarfile and
zstandard and repacked with one thing changed (the attacks of CVE-2024-3829 and CVE-2024-3078
on Qdrant's snapshot restore among them)."""

from __future__ import annotations

import copy
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zstandard

import ferrovec
from tests.conftest import unit_rows

Member = tuple[tarfile.TarInfo, bytes | None]


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> list[Member]:
    """The members of a real one-collection snapshot."""
    path = tmp_path_factory.mktemp("orig") / "s"
    with ferrovec.open(path) as db:
        col = db.create_collection("c", dim=8)
        col.upsert(list(range(50)), unit_rows(np.random.default_rng(0), 50, 8), [{"i": 1}] * 50)
        snap = db.create_snapshot("c")
        del col
    with snap.path.open("rb") as f:
        raw = zstandard.ZstdDecompressor().stream_reader(f).read()
    members: list[Member] = []
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for m in tar.getmembers():
            f = tar.extractfile(m)
            members.append((m, f.read() if f else None))
    assert members[0][0].name == "SNAPSHOT.json"
    index = json.loads(members[0][1] or b"")
    assert index["configs"]["c"]["vectors"][0]["dim"] == 8  # configs travel in the index too
    assert {f["path"] for f in index["files"]} == {m.name for m, _ in members[1:]}
    return members


def pack(members: list[Member], path: Path) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    path.write_bytes(zstandard.ZstdCompressor().compress(buf.getvalue()))
    return path


def index_of(members: list[Member]) -> dict:
    return json.loads(members[0][1] or b"")


def with_index(members: list[Member], index: dict) -> list[Member]:
    body = json.dumps(index).encode()
    info = copy.copy(members[0][0])
    info.size = len(body)
    return [(info, body), *members[1:]]


def add(members: list[Member], name: str, kind: bytes, data: bytes = b"", link: str = "") -> list:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return [*members, (info, data if kind == tarfile.REGTYPE else None)]


def listed(members: list[Member], name: str, data: bytes) -> list[Member]:
    """`members` plus a regular file `name` that the index lists with the right checksum."""
    import hashlib

    idx = index_of(members)
    idx["files"].append(
        {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    )
    return add(with_index(members, idx), name, tarfile.REGTYPE, data)


def first_data(members: list[Member]) -> int:
    return next(i for i, (m, _) in enumerate(members) if m.name.endswith(".vec"))


def flip_byte(members: list[Member]) -> list[Member]:
    i = first_data(members)
    m, d = members[i]
    assert d is not None
    bad = bytearray(d)
    bad[-1] ^= 1
    out = list(members)
    out[i] = (m, bytes(bad))
    return out


def resize(members: list[Member], field: str, value) -> list[Member]:
    idx = index_of(members)
    idx[field] = value
    return with_index(members, idx)


def absurd_size(members: list[Member]) -> list[Member]:
    idx = index_of(members)
    idx["files"][-1]["size"] = 1 << 50
    return with_index(members, idx)


def truncated(members: list[Member]) -> list[Member]:
    i = first_data(members)
    m, d = members[i]
    assert d is not None
    m2 = copy.copy(m)
    m2.size = len(d) // 2
    out = list(members)
    out[i] = (m2, d[: len(d) // 2])
    return out


def missing_file(members: list[Member]) -> list[Member]:
    i = first_data(members)
    return members[:i] + members[i + 1 :]


def duplicate(members: list[Member]) -> list[Member]:
    i = first_data(members)
    return [*members, members[i]]


CASES: dict[str, tuple[Callable[[list[Member]], list[Member]], str]] = {
    "absolute path": (
        lambda ms: listed(ms, "/tmp/ferrovec-pwned", b"x"),
        "absolute path|not a file",
    ),
    "dot-dot escape": (
        lambda ms: listed(ms, "collections/c/segments/../../../../evil", b"x"),
        r"escapes the target",
    ),
    "escape through a collection name": (
        lambda ms: listed(ms, "collections/../MANIFEST", b"x"),
        r"escapes the target",
    ),
    "symlink": (
        lambda ms: add(ms, "collections/c/segments/link", tarfile.SYMTYPE, link="/etc/passwd"),
        "not a regular file",
    ),
    "hard link": (
        lambda ms: add(ms, "collections/c/segments/hard", tarfile.LNKTYPE, link="/etc/passwd"),
        "not a regular file",
    ),
    "character device": (
        lambda ms: add(ms, "collections/c/segments/dev", tarfile.CHRTYPE),
        "not a regular file",
    ),
    "fifo": (lambda ms: add(ms, "collections/c/segments/fifo", tarfile.FIFOTYPE), "not a regular"),
    "checksum mismatch": (flip_byte, "SHA-256"),
    "not a snapshot": (lambda ms: resize(ms, "format", "tarball"), "not a ferrovec snapshot"),
    "absurd size": (absurd_size, "claim|bytes in the archive"),
    "truncated file": (truncated, "bytes in the archive|truncated"),
    "missing file": (missing_file, "missing"),
    "duplicate file": (duplicate, "twice"),
    "unlisted file": (
        lambda ms: add(ms, "collections/c/segments/extra.vec", tarfile.REGTYPE, b"zz"),
        "not listed",
    ),
    "index not first": (lambda ms: [*ms[1:], ms[0]], "first entry must be SNAPSHOT.json"),
}


# Another format version is not damage: it gets an error of its own, naming the version.
VERSION_CASES = {
    "unknown snapshot version": (
        lambda ms: resize(ms, "version", 99),
        "snapshot has format version 99",
    ),
    "unknown store format": (
        lambda ms: resize(ms, "store_format", 1),
        "store has format version 1",
    ),
}


def store_fingerprint(path: Path) -> tuple:
    with ferrovec.open(path) as db:
        names = db.list_collections()
        counts = {n: db.collection(n).count() for n in names}
    entries = sorted(p.name for p in (path / "collections").iterdir())
    return names, counts, entries


@pytest.mark.parametrize("case", list(CASES) + list(VERSION_CASES))
def test_hostile_archive_is_refused_and_changes_nothing(tmp_path, original, case):
    error = ferrovec.CorruptionError if case in CASES else ferrovec.UnsupportedVersionError
    make, message = CASES.get(case) or VERSION_CASES[case]
    archive = pack(make(original), tmp_path / "bad.fvsnap")
    target = tmp_path / "store"
    with ferrovec.open(target) as db:
        col = db.create_collection("c", dim=8)
        col.upsert([7], [[1, 0, 0, 0, 0, 0, 0, 0]], [{"keep": True}])
        del col
    before = store_fingerprint(target)
    with pytest.raises(error, match=message):
        ferrovec.restore_snapshot(str(archive), target, replace=True)
    assert store_fingerprint(target) == before
    assert not Path("/tmp/ferrovec-pwned").exists()
    assert not (tmp_path / "evil").exists()
    with pytest.raises(error):
        ferrovec.verify_snapshot(str(archive))


def test_repacked_original_restores(tmp_path, original):
    """The control: the unmodified members, repacked the same way, restore fine."""
    archive = pack(original, tmp_path / "ok.fvsnap")
    assert ferrovec.restore_snapshot(str(archive), tmp_path / "store") == ["c"]
    with ferrovec.open(tmp_path / "store") as db:
        assert db.collection("c").count() == 50


def test_garbage_files_are_refused(tmp_path):
    for name, data in {
        "empty": b"",
        "not zstd": b"hello world" * 100,
        "zstd of junk": zstandard.ZstdCompressor().compress(b"\x01" * 5000),
    }.items():
        p = tmp_path / f"{name}.fvsnap"
        p.write_bytes(data)
        with pytest.raises(ferrovec.CorruptionError):
            ferrovec.restore_snapshot(str(p), tmp_path / "store")
    # A failed restore into a path that did not exist leaves nothing behind.
    assert not (tmp_path / "store").exists()
