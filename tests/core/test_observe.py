"""Seeing inside the store: metrics in Prometheus' text format, the slow-operation profiler,
explain (with analyze), stats, logging under ferrovec.*, and `ferrovec check` on healthy and
damaged stores (real files, a real child process that dies without closing)."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import ferrovec
from tests.conftest import child, unit_rows
from tests.durability.test_torn_log import log_file, record_spans

SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? (\S+)$")


def samples(text: str) -> dict[tuple[str, str], float]:
    """Every sample line of Prometheus' text format: (name, labels) -> value."""
    out: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def value(text: str, name: str, **labels: str) -> float:
    want = "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    return samples(text)[(name, want)]


@pytest.fixture
def profiler() -> Iterator[None]:
    yield
    ferrovec.set_slow_op_ms(None)


@pytest.fixture
def indexed(db: ferrovec.Database) -> ferrovec.Collection:
    """3,000 points in one indexed segment with a keyword index, plus a few unsealed ones."""
    col = db.create_collection(
        "docs",
        dim=16,
        hnsw={"full_scan_threshold": 500},
        optimizer={"indexing_threshold": 500},
    )
    rng = np.random.default_rng(3)
    col.upsert(
        list(range(3000)),
        unit_rows(rng, 3000, 16),
        [{"group": f"g{i % 10}", "n": i} for i in range(3000)],
    )
    col.create_payload_index("group", "keyword")
    col.optimize()
    col.upsert([5000, 5001], unit_rows(rng, 2, 16), [{"group": "g1"}, {"group": "g2"}])
    return col


def test_metrics_count_calls_errors_and_state(
    db: ferrovec.Database, indexed: ferrovec.Collection
) -> None:
    before = db.metrics()
    q = np.ones(16, dtype=np.float32)
    for _ in range(3):
        indexed.search(q, k=5)
    with pytest.raises(ferrovec.InvalidInputError):
        indexed.search(np.ones(3, dtype=np.float32))
    after = db.metrics()
    ops = "ferrovec_operations_total"
    assert value(after, ops, collection="docs", op="search") == (
        value(before, ops, collection="docs", op="search") + 4
    )
    assert value(after, "ferrovec_operation_errors_total", collection="docs", op="search") == 1
    # A batch is one call of its own kind, and nothing else the caller did not ask for.
    indexed.search_batch(np.ones((3, 16), dtype=np.float32), k=5)
    batch = db.metrics()
    assert value(batch, ops, collection="docs", op="search_batch") == (
        value(after, ops, collection="docs", op="search_batch") + 1
    )
    assert value(batch, ops, collection="docs", op="count") == value(
        after, ops, collection="docs", op="count"
    )
    # The latency histogram: cumulative buckets ending in +Inf, equal to the count.
    count = value(
        after, "ferrovec_operation_duration_seconds_count", collection="docs", op="search"
    )
    inf = value(
        after,
        "ferrovec_operation_duration_seconds_bucket",
        collection="docs",
        op="search",
        le="+Inf",
    )
    assert count == inf == 4
    assert value(after, "ferrovec_points", collection="docs") == 3002
    assert value(after, "ferrovec_points_indexed", collection="docs") == 3000
    assert value(after, "ferrovec_points_unindexed", collection="docs") == 2
    assert value(after, "ferrovec_log_appends_total", collection="docs") >= 2
    assert value(after, "ferrovec_log_fsyncs_total", collection="docs") >= 1
    assert value(after, "ferrovec_checkpoints_total", collection="docs") >= 1
    assert value(after, "ferrovec_optimizer_merges_total", collection="docs") >= 1
    assert value(after, "ferrovec_processes_attached", collection="docs") == 1
    # The graph and codes were searched, so their files are mapped and partly resident.
    assert value(after, "ferrovec_mapped_bytes", collection="docs", part="graphs") > 0
    assert value(after, "ferrovec_resident_bytes", collection="docs", part="codes") > 0


def test_metrics_names_filter_and_unknown_names_refused(
    db: ferrovec.Database, indexed: ferrovec.Collection
) -> None:
    only = db.metrics(["ferrovec_points", "ferrovec_operations_total"])
    names = {n for n, _ in samples(only)}
    assert names == {"ferrovec_points", "ferrovec_operations_total"}
    with pytest.raises(ferrovec.InvalidInputError, match='unknown metric "ferrovec_nope"'):
        db.metrics(["ferrovec_points", "ferrovec_nope"])
    with pytest.raises(ferrovec.CollectionNotFoundError):
        db.metrics(collection="nope")


def test_slow_ops_are_recorded_with_plan_and_phases_and_logged(
    store_path: Path, profiler: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ferrovec.slow")
    with ferrovec.open(store_path, slow_op_ms=0) as db:
        assert ferrovec.get_slow_op_ms() == 0
        col = db.create_collection("c", dim=8)
        rng = np.random.default_rng(1)
        col.upsert(list(range(100)), unit_rows(rng, 100, 8), [{"k": i} for i in range(100)])
        col.search(
            unit_rows(rng, 1, 8)[0], k=3, filter={"must": [{"key": "k", "range": {"lt": 50}}]}
        )
        ops = db.slow_ops(10)
        assert [o["op"] for o in ops[:2]] == ["search", "upsert"]  # newest first
        search, upsert = ops[0], ops[1]
        assert search["collection"] == "c" and search["duration_ms"] >= 0
        # Parameters without vectors or payload values: the filter shows its keys only.
        assert search["params"]["filter"] == {"keys": ["k"], "conditions": 1}
        assert search["params"]["k"] == 3
        assert "50" not in json.dumps(search["params"])
        assert search["plan"] and search["plan"][0]["method"] == "exact over matching rows"
        assert search["counts"]["exact_distances"] == 50
        assert search["counts"]["filter_checks"] == 100  # no payload index: every row checked
        assert {"filter", "exact_scan", "other"} <= set(search["time_ms"])
        assert {"log_append", "fsync", "apply"} <= set(upsert["time_ms"])
        assert upsert["params"] == {"points": 100, "allow_zero": False}
        assert db.slow_ops(1, collection="other") == []
        # The same records reached Python's logging.
        logged = [r for r in caplog.records if r.name == "ferrovec.slow"]
        assert any("slow search on c" in r.getMessage() for r in logged)
        slow = value(db.metrics(), "ferrovec_slow_operations_total", collection="c", op="search")
        assert slow == 1

    # A threshold no call reaches records nothing.
    ferrovec.set_slow_op_ms(10**9)
    with ferrovec.open(store_path) as db:
        before = len(db.slow_ops(1000))
        db.collection("c").count()
        assert len(db.slow_ops(1000)) == before


def test_slow_op_ms_bad_values_are_refused(store_path: Path, profiler: None) -> None:
    with pytest.raises(ferrovec.InvalidInputError, match="slow_op_ms"):
        ferrovec.open(store_path, slow_op_ms=-1)
    assert ferrovec.get_slow_op_ms() is None
    env_case = """
import os, sys, ferrovec
try:
    ferrovec.open(sys.argv[1])
except ferrovec.InvalidInputError as e:
    print("refused:", e)
"""
    p = subprocess.run(
        [sys.executable, "-c", env_case, str(store_path)],
        env={**__import__("os").environ, "FERROVEC_SLOW_OP_MS": "soon"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 'refused: FERROVEC_SLOW_OP_MS="soon"' in p.stdout, p.stderr
    on = "import sys, ferrovec; ferrovec.open(sys.argv[1]); print(ferrovec.get_slow_op_ms())"
    p = subprocess.run(
        [sys.executable, "-c", on, str(store_path)],
        env={**__import__("os").environ, "FERROVEC_SLOW_OP_MS": "25"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.stdout.strip() == "25", p.stderr


def test_explain_plans_as_the_search_runs(
    db: ferrovec.Database, indexed: ferrovec.Collection
) -> None:
    q = np.ones(16, dtype=np.float32)
    searches = value(db.metrics(), "ferrovec_operations_total", collection="docs", op="search")
    plan = indexed.explain(q, k=5)
    by_method = {s["source"]: s["method"] for s in plan["sources"]}
    assert by_method["appendable rows"] == "exact"
    graph = [s for s in plan["sources"] if s["method"].startswith("graph")]
    assert len(graph) == 1 and graph[0]["live"] == 3000 and graph[0]["rescore"] == 20
    assert plan["ef"] == 100  # ef_construct
    # Planning ran no search.
    again = value(db.metrics(), "ferrovec_operations_total", collection="docs", op="search")
    assert again == searches
    # exact=True changes the plan and says why.
    exact = indexed.explain(q, k=5, exact=True)
    assert {s["method"] for s in exact["sources"]} == {"exact"}
    assert "exact search was asked for" in exact["sources"][0]["why"]

    # analyze runs it: the graph walk's counts, and the same hits as search.
    run = indexed.explain(q, k=5, ef=64, analyze=True)
    a = run["analyze"]
    assert a["results"] == 5
    assert a["counts"]["nodes_visited"] > 0 and a["counts"]["graph_distances"] > 0
    assert a["counts"]["rescored"] == 20
    assert a["counts"]["exact_distances"] == 2  # the two appendable rows
    assert {"graph", "rescore"} <= set(a["time_ms"])
    assert [s["method"] for s in a["steps"]] == ["exact", "graph on int8 codes"]


def test_explain_filtered_shows_index_strategy_and_selectivity(
    indexed: ferrovec.Collection,
) -> None:
    q = np.ones(16, dtype=np.float32)
    flt = {"must": [{"key": "group", "match": {"value": "g3"}}]}
    plan = indexed.explain(q, k=5, filter=flt, analyze=True)
    seg = plan["sources"][0]
    assert seg["filter"]["matching"] == 300
    assert seg["filter"]["selectivity"] == pytest.approx(0.1)
    assert 'payload index on ["group"]' in seg["filter"]["strategy"]
    assert seg["method"] == "exact over matching rows"
    assert "cost less to score" in seg["why"]
    assert plan["analyze"]["counts"]["exact_distances"] == 300
    assert plan["params"]["filter"] == {"keys": ["group"], "conditions": 1}
    # A filter on a key without an index checks payloads one by one, and says so.
    # (With ef 8 a walk costs less than scoring 2,000 of 3,000 rows.)
    plan = indexed.explain(q, k=5, ef=8, filter={"must": [{"key": "n", "range": {"lt": 2000}}]})
    seg = plan["sources"][0]
    assert seg["filter"]["matching"] == 2000
    assert seg["method"].startswith("graph")
    assert seg["filter"]["applied"].startswith("during the walk")
    assert "no payload index" in seg["filter"]["strategy"]


def test_explain_refuses_what_search_refuses(indexed: ferrovec.Collection) -> None:
    with pytest.raises(ferrovec.InvalidInputError, match="dimension"):
        indexed.explain(np.ones(3, dtype=np.float32))
    with pytest.raises(ferrovec.InvalidInputError, match="k must be at least 1"):
        indexed.explain(np.ones(16, dtype=np.float32), k=0)
    with pytest.raises(ferrovec.InvalidInputError):
        indexed.explain(np.ones(16, dtype=np.float32), filter={"must": [{"nonsense": 1}]})
    with pytest.raises(ferrovec.InvalidInputError):
        indexed.explain_query({"query": {"fusion": "nope"}, "prefetch": []})


def test_explain_query_shows_the_stage_tree(indexed: ferrovec.Collection) -> None:
    q = [1.0] * 16
    req = {
        "prefetch": [
            {
                "query": q,
                "limit": 20,
                "filter": {"must": [{"key": "group", "match": {"value": "g1"}}]},
            },
            {"query": q, "limit": 20},
        ],
        "query": {"fusion": "rrf"},
        "limit": 5,
    }
    plan = indexed.explain_query(req, analyze=True)
    stage = plan["stage"]
    assert stage["query"] == "rrf" and len(stage["prefetch"]) == 2
    first, second = stage["prefetch"]
    assert first["query"] == "nearest" and first["filter"]["keys"] == ["group"]
    assert first["sources"][0]["filter"]["matching"] == 300
    assert any(s["method"].startswith("graph") for s in second["sources"])
    assert plan["analyze"]["results"] == 5
    assert len(plan["analyze"]["steps"]) >= 3


def test_stats(db: ferrovec.Database, indexed: ferrovec.Collection) -> None:
    indexed.delete(list(range(100)))
    s = indexed.stats()
    assert s["points"] == 2902
    sealed = [seg for seg in s["segments"] if seg.get("id") is not None]
    assert len(sealed) == 1 and sealed[0]["indexed"] and sealed[0]["codes"] == "int8"
    assert sealed[0]["deleted_share"] == pytest.approx(100 / 3000)
    assert sealed[0]["self_check_recall"] > 0.8
    assert sealed[0]["disk_bytes"] > 3000 * 16 * 4
    (pidx,) = s["payload_indexes"]
    assert (pidx["key"], pidx["kind"], pidx["distinct_values"]) == ("group", "keyword", 10)
    assert s["log"]["bytes"] > 0 and s["log"]["files"] >= 1
    assert 0 <= s["log"]["oldest_record_age_s"] < 600
    assert {"vectors", "codes", "graphs", "ids", "payloads"} <= set(s["disk_bytes"])
    assert s["optimizer"]["last"]["kind"] == "merge"
    assert s["optimizer"]["checkpoints"] >= 1
    cap = s["capacity"]
    assert cap["disk_bytes_per_point"] > 16 * 4
    assert 0 < cap["serving_bytes_per_point"] < cap["disk_bytes_per_point"]
    assert db.stats()[0]["name"] == "docs"


def test_core_events_reach_python_logging_under_ferrovec(
    db: ferrovec.Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ferrovec")
    col = db.create_collection("c", dim=4)
    col.upsert([1], np.ones((1, 4), dtype=np.float32))
    col.flush()
    names = {r.name for r in caplog.records}
    assert "ferrovec.collection.optimize.seal" in names, names
    assert all(not n.startswith("ferrovec_core") for n in names)
    # A level set on the logger applies at once (levels are not cached).
    caplog.clear()
    logging.getLogger("ferrovec").setLevel(logging.ERROR)
    try:
        col.upsert([2], np.ones((1, 4), dtype=np.float32))
        col.flush()
        assert not [r for r in caplog.records if r.name.startswith("ferrovec.collection")]
    finally:
        logging.getLogger("ferrovec").setLevel(logging.NOTSET)


WRITE_AND_DIE = """
import os, sys, numpy as np, ferrovec
db = ferrovec.open(sys.argv[1])
col = db.create_collection("c", dim=8, distance="dot")
for b in range(4):
    col.upsert(list(range(b * 10, b * 10 + 10)), np.full((10, 8), b, dtype=np.float32))
os._exit(0)  # no close: the records stay in the log, as after a crash
"""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ferrovec", *args], capture_output=True, text=True, timeout=120
    )


def test_check_healthy_torn_and_damaged(tmp_path: Path) -> None:
    store = tmp_path / "store"
    p = child(WRITE_AND_DIE, str(store))
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    (found,) = ferrovec.check(store)
    assert found["problems"] == [] and found["log_records"] == 4
    ok = run_cli("check", str(store))
    assert ok.returncode == 0 and "c: ok (4 log records" in ok.stdout, ok.stdout + ok.stderr

    # A torn tail (the last record cut short) loses nothing acknowledged: a note, exit 0.
    torn = tmp_path / "torn"
    shutil.copytree(store, torn)
    wal = log_file(torn)
    data = wal.read_bytes()
    wal.write_bytes(data[: record_spans(data)[-1][1] - 3])
    out = run_cli("check", str(torn))
    assert out.returncode == 0 and "torn tail" in out.stdout, out.stdout
    assert ferrovec.check(torn)[0]["log_records"] == 3
    assert wal.stat().st_size == len(data) - 3  # check writes nothing

    # A damaged record with intact ones after it: a problem, exit 1.
    bad = tmp_path / "bad"
    shutil.copytree(store, bad)
    wal = log_file(bad)
    data = bytearray(wal.read_bytes())
    start, end = record_spans(bytes(data))[1]
    data[(start + end) // 2] ^= 0xFF
    wal.write_bytes(bytes(data))
    out = run_cli("check", str(bad))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "record 2" in out.stdout and "intact records follow it" in out.stdout


def test_cli_stats_metrics_optimize(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with ferrovec.open(store) as db:
        col = db.create_collection("c", dim=8, hnsw={"full_scan_threshold": 100})
        rng = np.random.default_rng(2)
        for b in range(3):
            col.upsert(list(range(b * 200, b * 200 + 200)), unit_rows(rng, 200, 8))
            col.flush()
    opt = run_cli("optimize", str(store))
    assert opt.returncode == 0, opt.stderr
    assert "c: 3 -> 1 segment(s), 600 of 600 points indexed" in opt.stdout
    stats = run_cli("stats", str(store), "--json")
    assert stats.returncode == 0, stats.stderr
    (s,) = json.loads(stats.stdout)
    assert s["points"] == 600 and s["indexed_points"] == 600
    text = run_cli("stats", str(store)).stdout
    assert "c: 600 points" in text and "per point" in text
    m = run_cli("metrics", str(store), "--name", "ferrovec_points")
    assert m.returncode == 0 and 'ferrovec_points{collection="c"} 600' in m.stdout
    bad = run_cli("metrics", str(store), "--name", "nope")
    assert bad.returncode == 1 and "unknown metric" in bad.stderr


HOLD_OPEN = """
import sys, ferrovec
db = ferrovec.open(sys.argv[1])
db.collection("c").count()
print("open", flush=True)
sys.stdin.read()  # until the parent closes it, or kills this process
"""


def test_processes_attached_counts_live_processes(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with ferrovec.open(store) as db:
        db.create_collection("c", dim=4).upsert([1], np.ones((1, 4), dtype=np.float32))

        def attached() -> float:
            return value(db.metrics(), "ferrovec_processes_attached", collection="c")

        assert attached() == 1
        p = child(HOLD_OPEN, str(store), stdin=subprocess.PIPE)
        try:
            assert p.stdout is not None and p.stdout.readline().strip() == "open"
            assert attached() == 2
            assert db.collection("c").stats()["processes"] == 2
        finally:
            p.kill()  # SIGKILL: the kernel releases its locks, nothing else does
            p.communicate(timeout=60)
        assert attached() == 1


DROP_WHILE_LOGGING = """
import sys, time, numpy as np, ferrovec
x = np.random.default_rng(0).standard_normal((20000, 64), dtype=np.float32)
for i in range(int(sys.argv[2])):
    db = ferrovec.open(sys.argv[1])
    opt = {"indexing_threshold": 1000, "idle_ms": 0}
    col = db.create_collection(f"c{i}", dim=64, optimizer=opt)
    col.upsert(list(range(20000)), x)
    # The optimizer seals these rows within 200 ms and logs the checkpoint (a log line needs
    # the GIL); drop the last handles at moments spread over that time.
    time.sleep(0.0075 * (i % 40))
    del col, db
print("done", flush=True)
"""


def test_dropping_the_last_handle_while_the_optimizer_logs_does_not_hang(tmp_path: Path) -> None:
    # The last handle's drop joins the optimizer thread; it once did so holding the GIL, which
    # that thread waited for to log a line: a deadlock (this hung within 40 rounds before).
    p = child(DROP_WHILE_LOGGING, str(tmp_path / "store"), "40")
    try:
        out, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise AssertionError(
            "hung: a handle's drop waited for the optimizer, which waited for the GIL"
        ) from None
    assert p.returncode == 0 and out.strip() == "done", err
