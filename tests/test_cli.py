"""The `ferrovec` command line: info, verify and the demo."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import ferrovec


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ferrovec", *args], capture_output=True, text=True, timeout=300
    )


def test_info_and_verify(store_path):
    with ferrovec.open(store_path) as db:
        a = db.create_collection("alpha", dim=8, distance="dot")
        a.upsert(list(range(100)), np.ones((100, 8), dtype=np.float32))
        a.flush()
        a.upsert([100], np.ones((1, 8), dtype=np.float32))
        db.create_collection("beta", dim=3, distance="euclid")
        del a
    out = run("info", str(store_path))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    alpha = next(line for line in lines if line.startswith("alpha"))
    assert alpha.split()[:4] == ["alpha", "8", "dot", "101"]
    beta = next(line for line in lines if line.startswith("beta"))
    assert beta.split()[:4] == ["beta", "3", "euclid", "0"]
    out = run("verify", str(store_path))
    assert out.returncode == 0 and "alpha: ok" in out.stdout


def test_info_reports_a_locked_store_clearly(store_path):
    db = ferrovec.open(store_path)
    out = run("info", str(store_path))
    assert out.returncode == 1
    assert "locked by another process" in out.stderr
    db.close()


def test_demo_runs_end_to_end(tmp_path):
    out = run("demo", "--points", "3000", "--path", str(tmp_path / "demo"))
    assert out.returncode == 0, out.stderr
    assert "same top-10 as before close: True" in out.stdout
    assert "-> OK" in out.stdout
