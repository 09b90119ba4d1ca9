"""The RAG service over HTTP: in process (FastAPI's TestClient) for the API's behaviour, and as a
real uvicorn server on 127.0.0.1 for start-up, auth and persistence across a restart."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from fastapi.testclient import TestClient

from ferrovec.rag import HashEmbedder, Settings
from ferrovec.rag.app import create_app

DOCS = [
    {"name": "cats.md", "text": "Cats purr when content.\n\nA cat sleeps most of the day."},
    {"name": "dogs.md", "text": "Dogs bark at strangers.\n\nA dog wags its tail when happy."},
    {"name": "moon.md", "text": "The Moon orbits the Earth.\n\nIts craters come from impacts."},
]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(path=str(tmp_path / "db"), api_key="k3y", chunk_size=60, chunk_overlap=10)
    with TestClient(create_app(settings, embedder=lambda: HashEmbedder(128))) as c:
        c.headers["Authorization"] = "Bearer k3y"
        assert c.get("/ready").status_code in (200, 503)
        for _ in range(100):
            if c.get("/ready").status_code == 200:
                break
            time.sleep(0.05)
        yield c


def test_ingest_query_delete_and_idempotence(client: TestClient) -> None:
    r = client.post("/ingest?wait=true", json={"texts": DOCS})
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["documents"] == 3 and first["chunks_written"] >= 3
    again = client.post("/ingest?wait=true", json={"texts": DOCS}).json()
    assert again["unchanged"] == 3 and again["chunks_written"] == 0

    hits = client.post("/query", json={"query": "why do cats purr", "top_k": 2}).json()["results"]
    assert hits[0]["source"] == "cats.md" and "purr" in hits[0]["text"]
    assert hits[0]["score"] >= hits[1]["score"]
    flt = {"must": [{"key": "source", "match": {"value": "moon.md"}}]}
    only = client.post("/query", json={"query": "cats", "filter": flt}).json()["results"]
    assert {h["source"] for h in only} == {"moon.md"}

    # Files uploaded as multipart form data.
    files = {"file": ("notes.txt", b"Owls hunt at night in silence.", "text/plain")}
    up = client.post("/ingest?wait=true", files=files)
    assert up.status_code == 200 and up.json()["sources"] == ["notes.txt"]
    assert client.post("/query", json={"query": "owls night"}).json()["results"][0]["source"] == (
        "notes.txt"
    )

    gone = client.delete("/documents/dogs.md")
    assert gone.status_code == 200 and gone.json()["deleted_chunks"] >= 1
    assert client.delete("/documents/dogs.md").status_code == 404
    names = {c["name"]: c for c in client.get("/collections").json()["collections"]}
    assert names["rag_collection"]["points"] >= 3


def test_bad_requests_get_clear_errors(client: TestClient) -> None:
    assert client.post("/query", json={"query": ""}).status_code == 422
    assert client.post("/query", json={"query": "x", "top_k": 0}).status_code == 422
    bad_filter = client.post("/query", json={"query": "x", "filter": {"must": [{"nope": 1}]}})
    assert bad_filter.status_code == 400 and bad_filter.json()["detail"]
    assert client.post("/ingest?wait=true", json={"texts": []}).status_code == 422
    weird = {"file": ("a.exe", b"MZ", "application/octet-stream")}
    assert client.post("/ingest?wait=true", files=weird).status_code == 400


def test_every_route_but_health_and_ready_needs_the_key(client: TestClient) -> None:
    del client.headers["Authorization"]
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200
    assert client.post("/query", json={"query": "x"}).status_code == 401
    assert client.get("/collections").status_code == 401
    assert client.get("/collections", headers={"api-key": "wrong"}).status_code == 401
    assert client.get("/collections", headers={"api-key": "k3y"}).status_code == 200
    assert client.get("/collections", headers={"Authorization": "Bearer k3y"}).status_code == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(
    tmp_path: Path,
    port: int,
    log: IO[bytes],
    api_key: str | None = "k3y",
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """uvicorn in a child process, its stderr into `log`."""
    env = {**os.environ, "FERROVEC_PATH": str(tmp_path / "served"), "EMBEDDING_MODEL": "hash:128"}
    env.update(extra_env or {})
    env.pop("API_KEY", None)
    if api_key is not None:
        env["API_KEY"] = api_key
    args = ["-m", "uvicorn", "--factory", "ferrovec.rag.app:create_app", "--host", "127.0.0.1"]
    return subprocess.Popen(
        [sys.executable, *args, "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(base + "/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the server did not become ready: {log.read_text()}")


def test_a_real_server_keeps_documents_across_a_restart(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": "Bearer k3y"}
    log_path = tmp_path / "server.log"
    with log_path.open("ab") as log:
        proc = _serve(tmp_path, port, log)
        try:
            _wait_ready(base, proc, log_path)
            assert httpx.post(base + "/query", json={"query": "x"}).status_code == 401
            r = httpx.post(
                base + "/ingest?wait=true", json={"texts": DOCS}, headers=auth, timeout=30
            )
            assert r.status_code == 200, r.text
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        proc = _serve(tmp_path, port, log)
        try:
            _wait_ready(base, proc, log_path)
            hits = httpx.post(
                base + "/query",
                json={"query": "moon craters", "top_k": 1},
                headers=auth,
                timeout=30,
            ).json()["results"]
            assert hits[0]["source"] == "moon.md"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_chat_with_history_streaming_and_sessions(client: TestClient) -> None:
    client.post("/ingest?wait=true", json={"texts": DOCS})
    r = client.post("/chat", json={"session_id": "s1", "message": "why do cats purr?"})
    assert r.status_code == 200, r.text
    first = r.json()
    # No LLM configured: an extractive answer that says so and quotes the best passage.
    assert first["generated"] is False and "No LLM is configured" in first["answer"]
    assert first["sources"][0]["source"] == "cats.md" and "purr" in first["answer"]
    # A follow-up: the earlier question helps find the passages.
    follow = client.post("/chat", json={"session_id": "s1", "message": "anything else?"})
    assert follow.json()["sources"][0]["source"] == "cats.md"
    # Streamed as server-sent events: token events, then done with the sources.
    with client.stream(
        "POST", "/chat", json={"session_id": "s2", "message": "moon craters", "stream": True}
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        body = "".join(stream.iter_text())
    events = [e for e in body.split("\n\n") if e.strip()]
    assert events[0].startswith("event: token") and events[-1].startswith("event: done")
    done = json.loads(events[-1].split("data: ", 1)[1])
    tokens = "".join(json.loads(e.split("data: ", 1)[1]) for e in events[:-1])
    assert tokens == done["answer"] and done["sources"][0]["source"] == "moon.md"
    # History per session, oldest first, both turns of each exchange.
    turns = client.get("/sessions/s1").json()["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[0]["text"] == "why do cats purr?" and turns[1]["text"] == first["answer"]
    assert len(client.get("/sessions/s2").json()["turns"]) == 2
    assert client.get("/sessions/nobody").json()["turns"] == []


def test_metrics_and_snapshots(client: TestClient) -> None:
    client.post("/ingest?wait=true", json={"texts": DOCS})
    client.post("/query", json={"query": "cats"})
    text = client.get("/metrics").text
    assert 'ferrovec_rag_request_seconds_count{method="POST",route="/query",status="200"} 1' in text
    assert "ferrovec_rag_search_seconds_count 1" in text
    assert "ferrovec_rag_ingested_documents_total 3" in text
    assert 'ferrovec_points{collection="rag_collection"}' in text
    assert 'ferrovec_log_bytes{collection="rag_collection"}' in text
    # The store's own metrics: the retrieval above was one core call (a hybrid query), timed.
    served = re.search(
        r'ferrovec_operations_total\{collection="rag_collection",op="query"\} (\S+)', text
    )
    assert served and float(served.group(1)) >= 1, text
    assert 'ferrovec_operation_duration_seconds_bucket{collection="rag_collection"' in text

    snap = client.post("/admin/snapshots", json={"collection": "rag_collection"})
    assert snap.status_code == 200, snap.text
    name = snap.json()["name"]
    assert name in [s["name"] for s in client.get("/admin/snapshots").json()["snapshots"]]
    client.delete("/documents/cats.md")
    assert client.post("/query", json={"query": "purr"}).json()["results"][0]["source"] != (
        "cats.md"
    )
    restored = client.post(f"/admin/snapshots/{name}/restore")
    assert restored.status_code == 200, restored.text
    assert client.post("/query", json={"query": "purr"}).json()["results"][0]["source"] == (
        "cats.md"
    )
    assert client.post("/admin/snapshots/nope/restore").status_code == 404


def test_upload_limit_and_cors(tmp_path: Path) -> None:
    settings = Settings(
        path=str(tmp_path / "db"), max_upload_bytes=1000, cors_origins=("http://app.test",)
    )
    with TestClient(create_app(settings, embedder=lambda: HashEmbedder(64))) as c:
        for _ in range(100):
            if c.get("/ready").status_code == 200:
                break
            time.sleep(0.05)
        big = {"file": ("big.txt", b"word " * 400, "text/plain")}
        assert c.post("/ingest?wait=true", files=big).status_code == 413
        assert c.post(
            "/ingest?wait=true", json={"texts": [{"name": "a", "text": "x" * 2000}]}
        ).status_code == (413)
        assert c.get("/collections").json()["collections"][0]["points"] == 0  # nothing written
        small = {"file": ("small.txt", b"a small file", "text/plain")}
        assert c.post("/ingest?wait=true", files=small).status_code == 200
        pre = c.options(
            "/query",
            headers={"Origin": "http://app.test", "Access-Control-Request-Method": "POST"},
        )
        assert pre.headers["access-control-allow-origin"] == "http://app.test"
        other = c.options(
            "/query",
            headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in other.headers


def test_concurrent_chats_in_one_session_keep_every_turn(client: TestClient) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client.post("/ingest?wait=true", json={"texts": DOCS})

    def ask(i: int) -> int:
        r = client.post("/chat", json={"session_id": "busy", "message": f"question {i} cats"})
        return r.status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(ask, range(16))) == {200}
    turns = client.get("/sessions/busy").json()["turns"]
    assert [t["turn"] for t in turns] == list(range(32))
    assert sorted(t["text"] for t in turns if t["role"] == "user") == sorted(
        f"question {i} cats" for i in range(16)
    )
