"""Retention: points whose datetime field is older than the maximum age are deleted by the
optimizer, judged by an injected clock (`Collection._set_clock`). The expected survivors come
from a plain-Python evaluation of the same rule over the same payloads."""

from __future__ import annotations

import signal
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

import ferrovec
from tests.conftest import child, unit_rows

T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
MAX_AGE = 3600


def payloads(n: int, t0: datetime = T0) -> list[dict]:
    """Point i was created i minutes before t0, written in assorted RFC 3339 spellings; every
    tenth point has no timestamp, every 25th an unparseable one, every 7th two timestamps."""
    out: list[dict] = []
    for i in range(n):
        t = t0 - timedelta(minutes=i)
        if i % 10 == 3:
            out.append({"i": i})
        elif i % 25 == 4:
            out.append({"i": i, "created_at": "not a date"})
        elif i % 7 == 0:
            out.append(
                {"i": i, "created_at": [t.isoformat(), (t + timedelta(hours=5)).isoformat()]}
            )
        elif i % 2:
            out.append(
                {"i": i, "created_at": t.astimezone(timezone(timedelta(hours=2))).isoformat()}
            )
        else:
            out.append({"i": i, "created_at": t.strftime("%Y-%m-%dT%H:%M:%SZ")})
    return out


def expired(p: dict, now: datetime) -> bool:
    """The reference rule: any parseable timestamp older than now - MAX_AGE."""
    v = p.get("created_at")
    values = v if isinstance(v, list) else [v]
    cutoff = now - timedelta(seconds=MAX_AGE)
    for s in values:
        if not isinstance(s, str):
            continue
        try:
            t = datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            continue
        if t < cutoff:
            return True
    return False


def survivors(pays: list[dict], now: datetime) -> set[int]:
    return {p["i"] for p in pays if not expired(p, now)}


def ids_of(col) -> set[int]:
    recs, _ = col.scroll(limit=100_000)
    return {r.id for r in recs}


def wait_for(pred, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_retention_by_optimizer_with_injected_clock(store_path):
    n = 400
    pays = payloads(n)
    vecs = unit_rows(np.random.default_rng(1), n, 8)
    with ferrovec.open(store_path) as db:
        col = db.create_collection(
            "docs",
            dim=8,
            retention={"key": "created_at", "max_age_seconds": MAX_AGE},
            hnsw={"full_scan_threshold": 100},
            optimizer={"indexing_threshold": 100, "idle_ms": 10},
        )
        assert col.retention == {"key": "created_at", "max_age_seconds": MAX_AGE}
        # The retention key got a datetime index.
        assert [i["type"] for i in col.info()["payload_indexes"]] == ["datetime"]
        col.upsert(list(range(300)), vecs[:300], pays[:300])
        col.optimize()  # sealed and indexed; the real clock is years past T0, so ...
        assert ids_of(col) == survivors(pays[:300], datetime.now(timezone.utc))
        # ... write the rest under a clock that reads T0.
        col._set_clock(T0.timestamp())
        col.upsert(list(range(n)), vecs, pays)  # 0..299 again (replacing), 300..399 new
        col.optimize()
        want = survivors(pays, T0)
        assert ids_of(col) == want
        assert len(want) < n  # the test deletes something ...
        assert len(want) > 60  # ... and keeps something

        # Two hours later the background optimizer expires more, without being asked.
        later = T0 + timedelta(hours=2)
        col._set_clock(later.timestamp())
        want = survivors(pays, later)
        wait_for(lambda: col.count() == len(want), "the optimizer to expire points")
        assert ids_of(col) == want
        # Search never returns an expired point.
        hits = col.search(vecs[0], k=n)
        assert {h.id for h in hits} <= want

    # The rule and the deletions persist.
    with ferrovec.open(store_path) as db:
        col = db.collection("docs")
        assert col.info()["retention"] == {"key": "created_at", "max_age_seconds": MAX_AGE}
        assert ids_of(col) == want
        # Turned off, nothing more expires, however late it gets.
        col.set_retention(None)
        assert col.retention is None
        col._set_clock((T0 + timedelta(days=30)).timestamp())
        assert col.expire() == 0
        col.optimize()
        assert ids_of(col) == want


def test_expire_counts_and_keeps_unparseable():
    # In memory: no background optimizer, so only these expire() calls delete (and count).
    db = ferrovec.open(":memory:")
    col = db.create_collection("c", dim=4)
    pays = payloads(120)
    col.upsert(list(range(120)), unit_rows(np.random.default_rng(2), 120, 4), pays)
    col._set_clock(T0.timestamp())  # before the rule, or the real clock would expire all
    col.set_retention("created_at", max_age_seconds=MAX_AGE)
    want = survivors(pays, T0)
    assert col.expire() == 120 - len(want)
    assert ids_of(col) == want
    assert col.expire() == 0
    # Points without a usable timestamp are never expired.
    kept = {p["i"] for p in pays if p.get("created_at") in (None, "not a date")}
    col._set_clock((T0 + timedelta(days=365)).timestamp())
    col.expire()
    assert ids_of(col) == kept


def test_bad_retention_is_rejected(db):
    col = db.create_collection("c", dim=4)
    col.create_payload_index("source", "keyword")
    with pytest.raises(ferrovec.InvalidInputError, match="datetime"):
        col.set_retention("source", max_age_seconds=60)
    with pytest.raises(ferrovec.InvalidInputError, match="at least 1 second"):
        col.set_retention("created_at", max_age_seconds=0)
    with pytest.raises(ferrovec.InvalidInputError, match="max_age_seconds"):
        col.set_retention("created_at")
    with pytest.raises(ferrovec.InvalidInputError, match="key"):
        col.set_retention("a[", max_age_seconds=60)
    with pytest.raises(ferrovec.InvalidInputError, match="retention"):
        db.create_collection("d", dim=4, retention={"key": "t", "max_age": 5})
    assert col.retention is None
    assert "d" not in db.list_collections()


# The background optimizer expires too, once woken by the new clock: whichever call deletes
# the points, they are gone once `expire()` returns (it waits for the writer lock), and durable
# once `flush()` returns.
EXPIRE_THEN_DIE = """
import os, signal, sys, ferrovec
db = ferrovec.open(sys.argv[1], durability="fsync")
col = db.collection("c")
col._set_clock(float(sys.argv[2]))
col.expire()
print(col.count(), flush=True)
col.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_expiry_survives_sigkill(store_path):
    # Timestamps a century ahead: the child's background optimizer starts on the real clock
    # before the child sets its own, and must find nothing old then (with T0, already past,
    # it expired every timestamped point first).
    t0 = T0 + timedelta(days=36_500)
    pays = payloads(150, t0)
    with ferrovec.open(store_path) as db:
        col = db.create_collection("c", dim=4)
        col.upsert(list(range(150)), unit_rows(np.random.default_rng(3), 150, 4), pays)
        col._set_clock((t0 - timedelta(days=1)).timestamp())  # nothing is old yet
        col.set_retention("created_at", max_age_seconds=MAX_AGE)
        assert col.count() == 150
    del col  # the last handle: the store closes and releases its lock for the child
    p = child(EXPIRE_THEN_DIE, str(store_path), str(t0.timestamp()))
    out, err = p.communicate(timeout=120)
    assert p.returncode == -signal.SIGKILL, err
    want = survivors(pays, t0)
    assert 0 < len(want) < 150
    assert int(out) == len(want)
    with ferrovec.open(store_path) as db:
        assert ids_of(db.collection("c")) == want
