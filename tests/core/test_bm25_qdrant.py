"""The core's BM25 (``Document(text, model="qdrant/bm25")``, ``ferrovec.bm25``) against Qdrant's
own, as Qdrant Edge ships it (``qdrant_edge.Bm25``, the same Rust code a Qdrant server runs for
inference): the same token ids and the same weights, for documents and for queries, on the
repository's docs and sources and on random Unicode text."""

from __future__ import annotations

import random
from pathlib import Path

import qdrant_edge

import ferrovec

REPO = Path(__file__).resolve().parents[2]


def texts() -> list[str]:
    out = []
    for f in sorted(REPO.glob("docs/*.md")) + sorted(REPO.glob("python/ferrovec/**/*.py")):
        words = f.read_text(encoding="utf-8").split()
        out += [" ".join(words[i : i + 120]) for i in range(0, len(words), 120)]
    rng = random.Random(19)
    alphabet = "abcdefghijklmnopqrstuvwxyzÄÖÜßéèçñ日本語 ,.;:!?'-_/()0123456789\n\t"
    out += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400))) for _ in range(300)]
    return out


def as_pairs(v: object) -> list[tuple[int, float]]:
    return sorted(zip(v.indices, v.values))  # type: ignore[attr-defined]


def test_documents_and_queries_match_qdrant() -> None:
    corpus = texts()
    assert len(corpus) > 500
    theirs = qdrant_edge.Bm25()
    for query in (False, True):
        ours = ferrovec.bm25(corpus, query=query)
        for text, mine in zip(corpus, ours):
            ref = theirs.embed_query(text) if query else theirs.embed_document(text)
            want = as_pairs(ref)
            got = list(zip(mine.indices, mine.values))
            assert [i for i, _ in got] == [i for i, _ in want], text[:80]
            assert all(abs(a[1] - b[1]) <= 1e-6 for a, b in zip(got, want)), text[:80]


def test_options_match_qdrant() -> None:
    text = "Stemming reduces runners running and ran; the quick brown foxes jumped."
    for k, b, avg in ((0.9, 0.4, 100.0), (2.0, 1.0, 10.0)):
        ref = qdrant_edge.Bm25(qdrant_edge.Bm25Config(k=k, b=b, avg_len=avg)).embed_document(text)
        (mine,) = ferrovec.bm25([text], options={"k": k, "b": b, "avg_len": avg})
        assert [i for i, _ in as_pairs(ref)] == mine.indices
        assert all(abs(x - y) <= 1e-6 for (_, x), y in zip(as_pairs(ref), mine.values))
