"""The ``ferrovec-rag`` command: ``ingest PATH...``, ``serve``, ``ask "question"``.

Settings come from the environment and ``.env`` (see ``ferrovec.rag.settings``).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ferrovec.errors import FerrovecError
from ferrovec.rag.settings import Settings


def _library(settings: Settings) -> Any:
    import ferrovec
    from ferrovec.rag.embed import make_embedder
    from ferrovec.rag.library import Library

    db = ferrovec.open(settings.path)
    emb = make_embedder(
        settings.embedding_model, settings.embedding_base_url, settings.embedding_api_key
    )
    return db, Library(db, settings, emb)


class _Bar:
    """Chunks written so far and chunks/s, on one line of stderr."""

    def __init__(self) -> None:
        self.done = 0
        self.started = time.perf_counter()

    def __call__(self, n: int) -> None:
        self.done += n
        rate = self.done / max(time.perf_counter() - self.started, 1e-9)
        print(f"\r  {self.done:,} chunks  {rate:,.1f} chunks/s", end="", file=sys.stderr)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    db, lib = _library(settings)
    try:
        bar = _Bar()
        report = lib.ingest_paths(args.paths, progress=bar)
        if bar.done:
            print(file=sys.stderr)
    finally:
        db.close()
    print(
        f"{report.documents} document(s): {report.unchanged} unchanged, "
        f"{report.chunks_written} chunk(s) written ({report.chunks_embedded} embedded), "
        f"{report.chunks_removed} removed, in {report.seconds:.1f} s"
    )
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    db, lib = _library(settings)
    try:
        for i, hit in enumerate(lib.query(args.question, args.top_k), 1):
            text = " ".join(str(hit.get("text", "")).split())
            print(
                f"{i}. [{hit.get('source')} #{hit.get('chunk')}] {hit['score']:.3f}  {text[:200]}"
            )
    finally:
        db.close()
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from ferrovec.rag.app import create_app

    host = args.host
    if not settings.api_key and host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"API_KEY is not set: serving on 127.0.0.1 only, not {host} (set API_KEY to serve "
            "other hosts)",
            file=sys.stderr,
        )
        host = "127.0.0.1"
    elif not settings.api_key:
        print("API_KEY is not set: serving on 127.0.0.1 only, without auth", file=sys.stderr)
    if args.workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    print(
        f"ferrovec RAG on http://{host}:{args.port}"
        + (f" ({args.workers} worker processes on one store)" if args.workers > 1 else ""),
        flush=True,
    )
    if args.workers == 1:
        uvicorn.run(create_app(settings), host=host, port=args.port, log_level="warning")
    else:
        # Each worker process builds the app from the same environment and opens the same
        # store: ferrovec lets processes share it (docs/MULTIPROCESS.md).
        uvicorn.run(
            "ferrovec.rag.app:create_app",
            factory=True,
            workers=args.workers,
            host=host,
            port=args.port,
            log_level="warning",
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ferrovec-rag", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ingest", help="ingest files and folders (text, Markdown, HTML, PDF)")
    p.add_argument("paths", nargs="+")
    p.set_defaults(func=cmd_ingest)
    p = sub.add_parser("serve", help="run the HTTP service")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--workers", type=int, default=1, help="worker processes, all serving the one store"
    )
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("ask", help="print the passages that answer a question")
    p.add_argument("question")
    p.add_argument("--top-k", type=int, default=None)
    p.set_defaults(func=cmd_ask)
    args = ap.parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.func(args, settings))
    except FerrovecError as e:
        print(f"ferrovec-rag: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
