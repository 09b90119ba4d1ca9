"""How far an optimization has got: `optimize(progress=...)` (a callable, or a bar on stderr)
and `stats()["optimizer"]["progress"]`, on real builds of real stores."""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path

import numpy as np
import pytest

import ferrovec
from ferrovec._progress import Bar
from ferrovec.errors import InvalidInputError

DIM = 48


def filled(path: Path, n: int = 30_000) -> ferrovec.Collection:
    db = ferrovec.open(path)
    col = db.create_collection("c", dim=DIM, hnsw={"full_scan_threshold": 1_000})
    v = np.random.default_rng(0).standard_normal((n, DIM)).astype(np.float32)
    col.upsert(np.arange(n, dtype=np.uint64), v)
    return col


def test_a_callable_hears_every_insertion_counted(tmp_path: Path) -> None:
    col = filled(tmp_path / "s")
    calls: list[tuple[int, int]] = []
    col.optimize(progress=lambda done, total: calls.append((done, total)))
    assert col.info()["indexed_points"] == 30_000
    assert 10 <= len(calls) <= 110, len(calls)  # about every 1%
    totals = {t for _, t in calls}
    assert totals == {30_000}
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == 30_000
    # Nothing left to do: no insertion, no call.
    calls.clear()
    col.optimize(progress=lambda done, total: calls.append((done, total)))
    assert calls == []


def test_extending_a_graph_counts_the_kept_nodes_as_done(tmp_path: Path) -> None:
    col = filled(tmp_path / "s")
    col.optimize()
    more = np.random.default_rng(1).standard_normal((10_000, DIM)).astype(np.float32)
    col.upsert(np.arange(30_000, 40_000, dtype=np.uint64), more)
    calls: list[tuple[int, int]] = []
    col.optimize(progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (40_000, 40_000)
    assert calls[0][0] >= 30_000  # the kept graph's nodes first, at once


def test_stats_show_an_optimization_under_way(tmp_path: Path) -> None:
    col = filled(tmp_path / "s", 60_000)
    assert col.stats()["optimizer"]["progress"] is None
    seen: list[dict] = []
    running = threading.Event()

    def watch() -> None:
        running.wait()
        while running.is_set():
            p = col.stats()["optimizer"]["progress"]
            if p is not None:
                seen.append(p)

    t = threading.Thread(target=watch)
    t.start()
    try:
        col.optimize(progress=lambda done, total: running.set())
    finally:
        running.clear()
        t.join()
    assert seen, "the watcher ran while the build did"
    for p in seen:
        assert p["total"] == 60_000 and 0 <= p["done"] <= p["total"]
        assert p["elapsed_s"] >= 0
        assert p["eta_s"] is None or p["eta_s"] >= 0
    assert col.stats()["optimizer"]["progress"] is None


def test_progress_true_draws_a_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    col = filled(tmp_path / "s")
    col.optimize(progress=True)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    # Not a terminal: a line at each tenth, the last one complete.
    assert 2 <= len(lines) <= 11, err
    assert lines[-1].startswith("optimize [########################] 100% 30,000/30,000")
    shape = re.compile(r"optimize \[[#.]{24}\] +\d+% [\d,]+/30,000 insertions, ")
    assert all(shape.match(x) for x in lines)
    assert any(" left" in x for x in lines[:-1])


def test_the_bar_on_a_terminal_redraws_one_line() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    bar = Bar("optimize", "insertions", out)
    bar(50, 200)
    bar(200, 200)
    bar.finish()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert " 25% 50/200 insertions" in text and "left" in text


def test_bad_progress_arguments(tmp_path: Path) -> None:
    col = filled(tmp_path / "s", 2_000)
    with pytest.raises(TypeError, match="progress must be"):
        col.optimize(progress="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="wait=True"):
        col.optimize(wait=False, progress=True)
    assert col.info()["indexed_points"] == 0  # nothing was started
    col.optimize(progress=False)
    assert col.info()["indexed_points"] == 2_000
