"""Torn log tails: cutting the log at any offset, or damaging its last record, keeps the intact
prefix; damage to an earlier record raises CorruptionError instead of dropping data silently.
The log is parsed here from the layout in docs/FORMAT.md."""

from __future__ import annotations

import random
import shutil
import struct
from pathlib import Path

import pytest

import ferrovec
from tests.conftest import child

WRITE_AND_CRASH = """
import os, sys, numpy as np, ferrovec
db = ferrovec.open(sys.argv[1])
col = db.create_collection("c", dim=8, distance="dot")
for b in range(int(sys.argv[2])):
    col.upsert(list(range(b * 10, b * 10 + 10)), np.full((10, 8), b, dtype=np.float32),
               [{"batch": b}] * 10)
os._exit(0)  # no close: everything stays in the log, as after a crash
"""

BATCHES = 8


@pytest.fixture(scope="module")
def crashed_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("torn") / "store"
    p = child(WRITE_AND_CRASH, str(path), str(BATCHES))
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    return path


def log_file(store: Path) -> Path:
    files = sorted((store / "collections" / "c" / "wal").glob("*.wal"))
    assert len(files) == 1
    return files[0]


def record_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each record: 64-byte file header, then len u32 | crc u32 | seq u64 | body."""
    assert data[:8] == b"FVWALOG\x1a"
    spans, pos = [], 64
    while pos < len(data):
        (length,) = struct.unpack_from("<I", data, pos)
        spans.append((pos, pos + 16 + length))
        pos += 16 + length
    return spans


def reopen_count(store: Path) -> int:
    with ferrovec.open(store) as db:
        col = db.collection("c")
        n = col.count()
        batches = {r.payload["batch"] for r in col.scroll(limit=10_000)[0]}
        assert batches == set(range(n // 10)), "not a prefix of the batches"
        del col
    return n


def copy_of(store: Path, tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copytree(store, dest)
    return dest


def test_truncation_at_random_offsets_keeps_the_prefix(crashed_store, tmp_path):
    data = log_file(crashed_store).read_bytes()
    spans = record_spans(data)
    assert len(spans) == BATCHES + 0  # one record per upsert
    rnd = random.Random(7)
    cuts = [rnd.randrange(64, len(data)) for _ in range(25)] + [s for s, _ in spans] + [len(data)]
    for i, cut in enumerate(cuts):
        store = copy_of(crashed_store, tmp_path, f"cut{i}")
        log_file(store).write_bytes(data[:cut])
        intact = sum(1 for _, end in spans if end <= cut)
        assert reopen_count(store) == intact * 10, f"cut at {cut}"


def test_damaged_last_record_is_dropped(crashed_store, tmp_path):
    data = log_file(crashed_store).read_bytes()
    start, end = record_spans(data)[-1]
    rnd = random.Random(8)
    for i in range(10):
        at = rnd.randrange(start, end)
        store = copy_of(crashed_store, tmp_path, f"flip{i}")
        bad = bytearray(data)
        bad[at] ^= 0xFF
        log_file(store).write_bytes(bytes(bad))
        assert reopen_count(store) == (BATCHES - 1) * 10, f"flip at {at}"


def test_damage_before_the_tail_is_corruption(crashed_store, tmp_path):
    data = log_file(crashed_store).read_bytes()
    spans = record_spans(data)
    rnd = random.Random(9)
    for i, (start, end) in enumerate(spans[:-1]):
        at = rnd.randrange(start, end)
        store = copy_of(crashed_store, tmp_path, f"mid{i}")
        bad = bytearray(data)
        bad[at] ^= 0x01
        log_file(store).write_bytes(bytes(bad))
        with pytest.raises(ferrovec.CorruptionError, match="intact records follow") as info:
            ferrovec.open(store).collection("c")
        assert info.value.path is not None
        # The damaged store was not "repaired" by the failed open: the file is as we left it.
        assert log_file(store).read_bytes() == bytes(bad)
