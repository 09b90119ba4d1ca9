"""A hypothesis state machine drives the Python API (upserts, deletes by id and by filter,
payload operations, flush, optimize, close and reopen, snapshot and restore) against a plain
dict-and-numpy model, and checks after every step that the store and the model agree: count,
every point with its vector and payload, filtered counts, and exact search.

FERROVEC_PROPERTY_EXAMPLES and FERROVEC_PROPERTY_STEPS raise the effort (the long run in
docs/RELIABILITY.md uses 500 and 60)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import ferrovec

DIM = 4
IDS = st.integers(min_value=0, max_value=40)
ID_LISTS = st.lists(IDS, min_size=1, max_size=8, unique=True)
FLOATS = st.floats(min_value=-8, max_value=8, allow_nan=False, width=32)
GROUPS = st.integers(min_value=0, max_value=3)


def payload_for(i: int, g: int, tag: str) -> dict:
    return {"g": g, "tag": tag, "id": i}


class StoreMachine(RuleBasedStateMachine):
    # Steps checked against the model, over every example run (scripts/reliability.sh prints it).
    checked = 0

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="fv-sm-"))
        self.path = self.tmp / "store"
        self.db = ferrovec.open(self.path)
        self.col = self.db.create_collection(
            "c",
            dim=DIM,
            distance="euclid",
            hnsw={"m": 8, "ef_construct": 32, "full_scan_threshold": 20},
            optimizer={"indexing_threshold": 10**9},
        )
        self.model: dict[int, tuple[np.ndarray, dict]] = {}
        self.snapshots = 0
        self.reopened = 0

    def teardown(self) -> None:
        del self.col  # the store closes with its last handle
        self.db.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ----- writes ---------------------------------------------------------------------------

    @rule(
        ids=ID_LISTS,
        data=st.data(),
        g=GROUPS,
        tag=st.text(alphabet="abc", max_size=3),
    )
    def upsert(self, ids: list[int], data: st.DataObject, g: int, tag: str) -> None:
        rows = data.draw(
            st.lists(
                st.lists(FLOATS, min_size=DIM, max_size=DIM), min_size=len(ids), max_size=len(ids)
            )
        )
        vectors = np.array(rows, dtype=np.float32)
        payloads = [payload_for(i, g, tag) for i in ids]
        self.col.upsert(ids, vectors, payloads)
        for i, v, p in zip(ids, vectors, payloads, strict=True):
            self.model[i] = (v.copy(), dict(p))

    @rule(ids=ID_LISTS)
    def delete(self, ids: list[int]) -> None:
        gone = self.col.delete(ids)
        assert gone == sum(i in self.model for i in ids)
        for i in ids:
            self.model.pop(i, None)

    @rule(g=GROUPS)
    def delete_by_filter(self, g: int) -> None:
        gone = self.col.delete(filter={"must": [{"key": "g", "match": {"value": g}}]})
        doomed = [i for i, (_, p) in self.model.items() if p.get("g") == g]
        assert gone == len(doomed)
        for i in doomed:
            del self.model[i]

    @rule(ids=ID_LISTS, x=st.integers(min_value=-5, max_value=5))
    def set_payload(self, ids: list[int], x: int) -> None:
        self.col.set_payload({"x": x}, ids)
        for i in ids:
            if i in self.model:
                self.model[i][1]["x"] = x

    @rule(ids=ID_LISTS, g=GROUPS)
    def overwrite_payload(self, ids: list[int], g: int) -> None:
        self.col.overwrite_payload({"g": g}, ids)
        for i in ids:
            if i in self.model:
                self.model[i] = (self.model[i][0], {"g": g})

    @rule(ids=ID_LISTS)
    def delete_payload_key(self, ids: list[int]) -> None:
        self.col.delete_payload(["tag"], ids)
        for i in ids:
            if i in self.model:
                self.model[i][1].pop("tag", None)

    @rule(ids=ID_LISTS)
    def clear_payload(self, ids: list[int]) -> None:
        self.col.clear_payload(ids)
        for i in ids:
            if i in self.model:
                self.model[i] = (self.model[i][0], {})

    # ----- structure ------------------------------------------------------------------------

    @rule()
    def flush(self) -> None:
        self.col.flush()

    @rule()
    def optimize(self) -> None:
        self.col.optimize()

    @rule()
    def close_and_reopen(self) -> None:
        del self.col  # the store closes with its last handle
        self.db.close()
        self.db = ferrovec.open(self.path)
        self.col = self.db.collection("c")
        self.reopened += 1

    @rule()
    def snapshot_and_restore(self) -> None:
        snap = self.db.create_snapshot("c", dest=self.tmp / "snaps")
        self.snapshots += 1
        other = self.tmp / f"restored-{self.snapshots}"
        ferrovec.restore_snapshot(str(snap.path), other)
        with ferrovec.open(other) as db:
            self.check(db.collection("c"))
        shutil.rmtree(other)

    # ----- the check ------------------------------------------------------------------------

    def check(self, col: ferrovec.Collection) -> None:
        assert col.count() == len(self.model)
        recs, nxt = col.scroll(limit=1000, with_payload=True, with_vectors=True)
        assert nxt is None
        got = {r.id: r for r in recs}
        assert set(got) == set(self.model)
        for i, (v, p) in self.model.items():
            np.testing.assert_array_equal(np.asarray(got[i].vector), v)
            assert got[i].payload == p, (i, got[i].payload, p)
        for g in range(4):
            want = sum(1 for _, p in self.model.values() if p.get("g") == g)
            assert col.count(filter={"must": [{"key": "g", "match": {"value": g}}]}) == want
        if self.model:
            q = np.linspace(-1, 1, DIM, dtype=np.float32)
            hits = col.search(q, k=5, exact=True)
            dist = sorted(float(np.sum((v - q) ** 2)) for v, _ in self.model.values())[:5]
            # Euclidean scores are distances; ties may order differently, distances may not.
            np.testing.assert_allclose([h.score for h in hits], np.sqrt(dist), rtol=1e-4, atol=1e-5)

    @invariant()
    def agrees_with_the_model(self) -> None:
        self.check(self.col)
        StoreMachine.checked += 1


StoreMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("FERROVEC_PROPERTY_EXAMPLES", "60")),
    stateful_step_count=int(os.environ.get("FERROVEC_PROPERTY_STEPS", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestStoreMachine = StoreMachine.TestCase


def test_report_steps() -> None:
    """Runs after the machine (pytest keeps file order); with -s it prints the effort."""
    print(f"\nproperty test: {StoreMachine.checked} steps checked against the model")
    assert StoreMachine.checked > 0
