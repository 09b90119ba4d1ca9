"""A process that exits without closing its store: atexit closes it (checkpoint, optimizer
stopped) while Python still runs, so nothing panics and everything written is there after."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ferrovec


def test_exit_without_close_is_clean(tmp_path: Path) -> None:
    code = f"""
import numpy as np, ferrovec
db = ferrovec.open({str(tmp_path / "db")!r}, durability="interval")
mem = ferrovec.open(":memory:")
for d in (db, mem):
    col = d.create_collection("c", 16, optimizer={{"indexing_threshold": 1000, "idle_ms": 0}})
    rng = np.random.default_rng(0)
    for i in range(0, 6000, 500):
        col.upsert(np.arange(i, i + 500), rng.standard_normal((500, 16), dtype=np.float32))
# no close: the optimizer is likely still indexing when the interpreter exits
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "panicked" not in out.stderr and "Traceback" not in out.stderr, out.stderr
    with ferrovec.open(tmp_path / "db") as db:
        assert len(db.collection("c")) == 6000
