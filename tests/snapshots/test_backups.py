"""Backups: the drill through a full and an incremental backup (each restores exactly the
store as it was), incremental backups copy only new files, verify catches bit rot, cleanup
keeps what kept backups need, status figures, the command line, and point-in-time restores
(SIGKILL during backups is in test_snapshot_sigkill.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

import ferrovec
from tests.conftest import unit_rows
from tests.snapshots.test_snapshots import DIM, index_types, searches, state


def restored_view(dest: Path, target: Path, backup_id: str | None, queries) -> tuple:
    ferrovec.restore_backup(dest, target, backup_id=backup_id)
    with ferrovec.open(target) as db:
        col = db.collection("c")
        view = (state(col), searches(col, queries), index_types(col))
        del col
    return view


def test_full_and_incremental_drill(tmp_path: Path):
    store, dest = tmp_path / "s", tmp_path / "backups"
    rng = np.random.default_rng(3)
    queries = unit_rows(rng, 6, DIM)
    seen: list[tuple[str, tuple]] = []
    with ferrovec.open(store) as db:
        col = db.create_collection("c", dim=DIM, hnsw={"full_scan_threshold": 300})
        col.create_payload_index("tag", "keyword")
        col.upsert(
            list(range(1000)),
            unit_rows(rng, 1000, DIM),
            [{"tag": f"t{i % 7}"} for i in range(1000)],
        )
        col.optimize()
        calls: list[tuple[int, int]] = []
        full = db.backup(dest, progress=lambda d, t: calls.append((d, t)))
        assert full["kind"] == "full" and full["parent"] is None
        assert full["added_bytes"] == full["total_bytes"] > 0
        assert calls and calls[-1][0] == calls[-1][1] == full["total_bytes"]
        seen.append((full["id"], (state(col), searches(col, queries), index_types(col))))

        # More writes: the big graph segment stays, new small segments appear.
        col.upsert(list(range(1000, 1200)), unit_rows(rng, 200, DIM), [{"tag": "new"}] * 200)
        col.delete([5, 6, 7])
        inc = db.backup(dest, incremental=True)
        assert inc["kind"] == "incremental" and inc["parent"] == full["id"]
        assert 0 < inc["added_bytes"] < inc["total_bytes"] / 2
        seen.append((inc["id"], (state(col), searches(col, queries), index_types(col))))
        assert inc["collections"]["c"]["sequence"] > full["collections"]["c"]["sequence"]
        db.drop_collection("c")
        del col

    assert [b["id"] for b in ferrovec.list_backups(dest)] == [full["id"], inc["id"]]
    for i, (bid, want) in enumerate(seen):
        assert restored_view(dest, tmp_path / f"r{i}", bid, queries) == want
    # Default: the newest; into the original store (where the collection was dropped).
    assert restored_view(dest, store, None, queries) == seen[-1][1]
    assert ferrovec.verify_backup(dest)["id"] == inc["id"]


def test_verify_catches_bit_rot_and_restore_refuses(tmp_path: Path):
    store, dest = tmp_path / "s", tmp_path / "b"
    with ferrovec.open(store) as db:
        col = db.create_collection("c", dim=4)
        col.upsert([1, 2], [[1, 0, 0, 0], [0, 1, 0, 0]])
        b = db.backup(dest)
        del col
    vec = next((dest / b["id"] / "files").rglob("*.vec"))
    data = bytearray(vec.read_bytes())
    data[-1] ^= 0x40
    vec.write_bytes(bytes(data))
    with pytest.raises(ferrovec.CorruptionError, match="SHA-256"):
        ferrovec.verify_backup(dest)
    with ferrovec.open(store) as db:
        db.collection("c").upsert([3], [[0, 0, 1, 0]])
    with pytest.raises(ferrovec.CorruptionError, match="SHA-256"):
        ferrovec.restore_backup(dest, store, replace=True)
    with ferrovec.open(store) as db:
        assert db.collection("c").count() == 3  # untouched
    with pytest.raises(ferrovec.CorruptionError):
        ferrovec.restore_backup(dest, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def test_cleanup_keeps_what_kept_backups_need_and_status(tmp_path: Path):
    store, dest = tmp_path / "s", tmp_path / "b"
    with ferrovec.open(store) as db:
        col = db.create_collection("c", dim=4)
        ids = []
        for i in range(4):
            col.upsert([i], [[1, i, 0, 0]])
            ids.append(db.backup(dest, incremental=i > 0)["id"])
        del col
    st = ferrovec.backup_status(dest)
    assert st["backups"] == 4 and st["newest_id"] == ids[-1]
    assert st["newest_age_s"] is not None and 0 <= st["newest_age_s"] < 600
    assert st["size_change_bytes"] is not None and st["size_change_bytes"] > 0
    assert st["last_verified_at"] is None
    ferrovec.verify_backup(dest)
    assert ferrovec.backup_status(dest)["last_verified_age_s"] is not None
    # Keep the newest only: the incrementals it builds on must stay, the rest may go.
    removed = ferrovec.cleanup_backups(dest, keep_last=1)
    left = [b["id"] for b in ferrovec.list_backups(dest)]
    assert ids[-1] in left and set(removed) | set(left) == set(ids)
    manifest = json.loads((dest / ids[-1] / "BACKUP.json").read_text())
    needed = {f["stored_in"] for f in manifest["collections"]["c"]["files"]}
    assert needed <= set(left)
    ferrovec.verify_backup(dest)  # the newest still restores
    assert ferrovec.restore_backup(dest, tmp_path / "r") == ["c"]
    with pytest.raises(ferrovec.InvalidInputError, match="keep_last or max_age_days"):
        ferrovec.cleanup_backups(dest)
    with pytest.raises(ferrovec.InvalidInputError, match="take a full one first"):
        with ferrovec.open(store) as db:
            db.backup(tmp_path / "empty", incremental=True)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ferrovec.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_backup_and_snapshot_command_line(tmp_path: Path):
    store, dest = tmp_path / "s", tmp_path / "b"
    with ferrovec.open(store) as db:
        col = db.create_collection("c", dim=4)
        col.upsert(list(range(100)), unit_rows(np.random.default_rng(0), 100, 4))
        del col
    r = run_cli("backup", "create", str(store), str(dest))
    assert r.returncode == 0, r.stderr
    assert "full" in r.stdout and "copying" in r.stderr  # a progress bar on stderr
    r = run_cli("backup", "create", str(store), str(dest), "--incremental")
    assert r.returncode == 0 and "incremental" in r.stdout, r.stderr
    r = run_cli("backup", "list", str(dest))
    assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 2
    r = run_cli("backup", "verify", str(dest))
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
    r = run_cli("backup", "restore", str(dest), str(tmp_path / "r"))
    assert r.returncode == 0 and "restored c" in r.stdout, r.stderr
    r = run_cli("backup", "status", str(dest))
    assert r.returncode == 0 and "last verified" in r.stdout and "never" not in r.stdout
    r = run_cli("backup", "cleanup", str(dest), "--keep-last", "1")
    assert r.returncode == 0, r.stderr
    r = run_cli("snapshot", "create", str(store), "--collection", "c")
    assert r.returncode == 0, r.stderr
    archive = r.stdout.split()[0]
    assert run_cli("snapshot", "verify", archive).returncode == 0
    r = run_cli("snapshot", "restore", archive, str(tmp_path / "r2"))
    assert r.returncode == 0, r.stderr
    with ferrovec.open(tmp_path / "r2") as db:
        assert db.collection("c").count() == 100
    r = run_cli("backup", "restore", str(tmp_path / "nothing"), str(tmp_path / "r3"))
    assert r.returncode == 1 and "no backups" in r.stderr


def test_point_in_time_restore_lands_exactly_on_the_sequence(tmp_path: Path):
    """One upsert batch is one log record: batch b has sequence b + 1. A full backup at 10
    batches, then 30 more batches with the log archived (sealed by checkpoints at irregular
    points); restoring to sequence N gives exactly the first N batches."""
    store, dest, archive = tmp_path / "s", tmp_path / "b", tmp_path / "wal-archive"
    batch = 20
    rng = np.random.default_rng(8)
    with ferrovec.open(store, log_archive=archive, archive_interval_s=3600) as db:
        col = db.create_collection("c", dim=8)
        for b in range(10):
            col.upsert(list(range(b * batch, (b + 1) * batch)), unit_rows(rng, batch, 8))
        full = db.backup(dest)
        assert full["collections"]["c"]["sequence"] == 10
        times = {}  # batches written -> a time after them and before the next one
        for b in range(10, 40):
            col.upsert(list(range(b * batch, (b + 1) * batch)), unit_rows(rng, batch, 8))
            if b in (13, 14, 27):
                col.flush()  # a checkpoint seals the log file, which goes to the archive
            if b in (12, 24, 33):
                time.sleep(0.01)
                times[b + 1] = datetime.now(timezone.utc).isoformat()
                time.sleep(0.01)
        col.flush()
        del col
    assert sorted(p.name for p in (archive / "c").iterdir())  # archived files exist
    for n in (10, 11, 14, 15, 23, 28, 40):
        target = tmp_path / f"r{n}"
        got = ferrovec.restore_backup(
            dest, target, collection="c", to_sequence=n, log_archive=archive
        )
        assert got == ["c"]
        with ferrovec.open(target) as db:
            ids = {r.id for r in db.collection("c").scroll(limit=10**6)[0]}
        assert ids == set(range(n * batch)), n
    # To a time: every batch acknowledged before it, none after.
    for n, at in times.items():
        target = tmp_path / f"t{n}"
        ferrovec.restore_backup(dest, target, collection="c", to_time=at, log_archive=archive)
        with ferrovec.open(target) as db:
            ids = {r.id for r in db.collection("c").scroll(limit=10**6)[0]}
        assert ids == set(range(n * batch)), (n, at)
    # Past the end of the archive: as far as it goes.
    ferrovec.restore_backup(
        dest, tmp_path / "tend", collection="c", to_time="2999-01-01T00:00:00Z", log_archive=archive
    )
    with ferrovec.open(tmp_path / "tend") as db:
        assert db.collection("c").count() == 40 * batch
    with pytest.raises(ferrovec.InvalidInputError, match="no backup"):
        ferrovec.restore_backup(
            dest,
            tmp_path / "t0",
            collection="c",
            to_time="2001-01-01T00:00:00Z",
            log_archive=archive,
        )
    with pytest.raises(ferrovec.InvalidInputError, match="RFC 3339"):
        ferrovec.restore_backup(
            dest, tmp_path / "tx", collection="c", to_time="yesterday", log_archive=archive
        )
    with pytest.raises(ferrovec.InvalidInputError, match="only up to 40"):
        ferrovec.restore_backup(
            dest, tmp_path / "r41", collection="c", to_sequence=41, log_archive=archive
        )
    with pytest.raises(ferrovec.InvalidInputError, match="at or before sequence 5"):
        ferrovec.restore_backup(
            dest, tmp_path / "r5", collection="c", to_sequence=5, log_archive=archive
        )
    # A missing archived file in the middle is a gap, refused rather than skipped.
    holed = tmp_path / "holed"
    shutil.copytree(archive, holed)
    middle = sorted((holed / "c").iterdir())[2]
    middle.unlink()
    with pytest.raises(ferrovec.CorruptionError, match="gap"):
        ferrovec.restore_backup(
            dest, tmp_path / "r30", collection="c", to_sequence=30, log_archive=holed
        )
    assert not (tmp_path / "r30").exists()
    with pytest.raises(ferrovec.InvalidInputError, match="needs the collection"):
        ferrovec.restore_backup(dest, tmp_path / "rx", to_sequence=12, log_archive=archive)


def test_log_archive_lags_by_at_most_the_interval(tmp_path: Path):
    """With a short interval the background optimizer seals the open log file, so writes reach
    the archive without any checkpoint."""
    archive = tmp_path / "a"
    with ferrovec.open(tmp_path / "s", log_archive=archive, archive_interval_s=0.2) as db:
        col = db.create_collection("c", dim=4)
        col.upsert([1], [[1, 0, 0, 0]])
        deadline = time.monotonic() + 30
        while not list((archive / "c").glob("*.wal")):
            assert time.monotonic() < deadline, "the log file never reached the archive"
            time.sleep(0.05)
        del col
