"""`ferrovec-rag serve --workers 2`: two uvicorn worker processes on one store. Documents ingested
through either worker are found by queries that the other one answers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from tests.rag.test_app import _free_port, _wait_ready

AUTH = {"Authorization": "Bearer k3y"}


def _fresh(base: str) -> httpx.Client:
    # A new connection per request, so the kernel hands requests to either worker.
    return httpx.Client(base_url=base, headers={**AUTH, "Connection": "close"}, timeout=60)


def test_two_workers_ingest_and_answer_from_one_store(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "FERROVEC_PATH": str(tmp_path / "served"),
        "EMBEDDING_MODEL": "hash:128",
        "API_KEY": "k3y",
    }
    exe = shutil.which("ferrovec-rag", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "ferrovec.rag.cli"]
    log_path = tmp_path / "server.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [*cmd, "serve", "--workers", "2", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            _wait_ready(base, proc, log_path)
            ingested_by: dict[str, str] = {}
            for k in range(200):
                with _fresh(base) as c:
                    r = c.post(
                        "/ingest?wait=true",
                        json={"texts": [{"name": f"doc{k}.txt", "text": f"zebra{k} stripes {k}"}]},
                    )
                assert r.status_code == 200, r.text
                ingested_by[f"doc{k}.txt"] = r.headers["X-Ferrovec-Worker"]
                workers = set(ingested_by.values())
                if len(workers) == 2 and k >= 9:
                    break
            assert len(set(ingested_by.values())) == 2, "one worker took every ingest"
            answered_by: set[str] = set()
            crossed = 0
            for _ in range(3):
                for doc, writer in ingested_by.items():
                    k = doc.removeprefix("doc").removesuffix(".txt")
                    with _fresh(base) as c:
                        r = c.post("/query", json={"query": f"zebra{k} stripes {k}", "top_k": 1})
                    assert r.status_code == 200, r.text
                    assert r.json()["results"][0]["source"] == doc
                    reader = r.headers["X-Ferrovec-Worker"]
                    answered_by.add(reader)
                    crossed += reader != writer
            assert len(answered_by) == 2, "one worker answered every query"
            assert crossed > 0, "no query was answered by the worker that did not ingest"
            with _fresh(base) as c:
                cols = {x["name"]: x for x in c.get("/collections").json()["collections"]}
            assert cols["rag_collection"]["points"] == len(ingested_by)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    assert proc.returncode == 0, log_path.read_text()
