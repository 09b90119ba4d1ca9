"""The fast tier of the long benchmarks: `benches/bench_scale.py` at 20,000 points, ferrovec
alone (the peers are installed only in the benches' own environment), so the script that makes
the 1M-10M figures cannot rot unnoticed. It asserts what the run produced, never a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_bench_scale_runs_end_to_end(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        SCALE_CACHE=str(tmp_path / "cache"),
        SCALE_RESULTS=str(tmp_path / "results"),
        SCALE_TMP=str(tmp_path),
    )
    n, kinds = 20_000, ["int8", "binary"]
    cmd = [sys.executable, str(REPO / "benches" / "bench_scale.py"), "--n", str(n)]
    # Given unsorted and repeated, the sweep's ef values are run once each, in order.
    cmd += ["--efs", "64,16,512,64"]
    p = subprocess.run(
        [*cmd, "--kinds", ",".join(kinds), "--systems", "", "--memory-limit-mb", "512"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    results = json.loads((tmp_path / "results" / f"scale-{n}-384.json").read_text())
    assert sorted(results) == [f"ferrovec-{k}" for k in sorted(kinds)]
    for name, r in results.items():
        b, q, c = r["build"], r["query"], r["cold"]
        assert "error" not in b and "error" not in q and "error" not in c, (name, r)
        # Indexed: one segment with a graph whose self-check was recorded.
        assert b["segments"] >= 1 and all(x is not None for x in b["self_check"])
        assert b["peak_rss_mib"] > 0 and b["disk_mib"] > n * 384 * 4 / 2**20
        assert [row["ef"] for row in q["sweep"]] == [16, 64, 512]
        assert q["memory_limit_mb"] == 512
        assert q["capacity"]["resident_need_bytes"] < 512 * 2**20
        # Rescored results on this small, easy collection are near exact at the top of the sweep.
        assert q["sweep"][-1]["recall"] >= 0.95, (name, q["sweep"])
        assert q["filtered"]["1%"]["recall"] >= 0.95 and q["filtered"]["10%"]["recall"] >= 0.9
        for fig in (q["open_s"], q["first_query_s"], c["open_s"], c["first_query_s"]):
            assert fig > 0
    # Binary codes are seven times smaller than int8's, and so is what serving must hold.
    need = {k: results[f"ferrovec-{k}"]["query"]["capacity"]["resident_need_bytes"] for k in kinds}
    assert need["binary"] < need["int8"]
    text = (tmp_path / "results" / f"scale-{n}-384.md").read_text()
    assert "open + first query ms (warm)" in text
    assert all(f"| ferrovec-{k} |" in text for k in kinds)
    # The ground truth and data were cached where asked, not in the repository.
    assert (tmp_path / "cache" / f"scale-{n}-384.f32").stat().st_size == n * 384 * 4
