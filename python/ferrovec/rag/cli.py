"""The ``ferrovec-rag`` command: ``ingest PATH...``, ``serve``, ``ask "question"``, ``reembed``.

Settings come from the environment and ``.env`` (see ``ferrovec.rag.settings``).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ferrovec.errors import FerrovecError
from ferrovec.rag.settings import CONFIG_ENV, Settings


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
    """An ingest's progress on stderr: chunks embedded and written of the total, the rate, the
    time left, and the file at work; redrawn in place on a terminal, a line every few seconds
    otherwise (a log)."""

    def __init__(self, status: Any) -> None:
        self.status = status
        self.tty = sys.stderr.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ferrovec-rag-bar", daemon=True)

    def __enter__(self) -> _Bar:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._draw(final=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2 if self.tty else 5.0):
            self._draw()

    def _draw(self, final: bool = False) -> None:
        snap = self.status.snapshot()
        total = snap["total_chunks"]
        if not total:
            return
        done = snap["written_chunks"]
        embedded = snap["embedded_chunks"]
        rate = snap["chunks_per_second"]
        eta = snap["eta_seconds"]
        left = f"ETA {int(eta) // 60}:{int(eta) % 60:02d}" if eta is not None else ""
        working = [f["source"] for f in snap["files"] if f["state"] == "embedding"]
        line = (
            f"  {done:,}/{total:,} chunks written ({embedded:,} embedded) "
            f"{100 * done / total:3.0f}%  {rate:,.1f} chunks/s  {left}"
        )
        if working and not final:
            line += f"  {working[0][:40]}"
        if self.tty:
            print(f"\r{line:<120}", end="\n" if final else "", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ferrovec.rag.ingest import IngestStatus

    db, lib = _library(settings)
    status = IngestStatus()
    try:
        with _Bar(status):
            report = lib.ingest_paths(args.paths, status=status)
    finally:
        db.close()
    for f in report.failed:
        print(f"  not ingested: {f['error']}", file=sys.stderr)
    print(
        f"{report.documents} document(s): {report.unchanged} unchanged, "
        f"{report.chunks_written} chunk(s) written ({report.chunks_embedded} embedded), "
        f"{report.chunks_removed} removed, {len(report.failed)} failed, "
        f"in {report.seconds:.1f} s"
    )
    return 1 if report.failed else 0


def cmd_reembed(args: argparse.Namespace, settings: Settings) -> int:
    """Embed every stored chunk again with EMBEDDING_MODEL's model."""
    import ferrovec
    from ferrovec.rag.embed import make_embedder
    from ferrovec.rag.library import Library

    db = ferrovec.open(settings.path)
    try:
        emb = make_embedder(
            settings.embedding_model, settings.embedding_base_url, settings.embedding_api_key
        )
        lib = Library(db, settings, emb)
        done = [0]
        started = time.perf_counter()

        def progress(n: int) -> None:
            done[0] += n
            rate = done[0] / max(time.perf_counter() - started, 1e-9)
            print(f"\r  {done[0]:,} chunks embedded  {rate:,.1f}/s", end="", file=sys.stderr)

        n = lib.reembed(progress)
        if done[0]:
            print(file=sys.stderr)
    finally:
        db.close()
    print(f"{n} chunk(s) embedded again with {emb.name}" if n else "nothing to do")
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
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        help="a TOML settings file (see ferrovec.example.toml); the environment wins over it",
    )
    ap = argparse.ArgumentParser(prog="ferrovec-rag", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser(
        "ingest", parents=[common], help="ingest files and folders (text, Markdown, HTML, PDF)"
    )
    p.add_argument("paths", nargs="+")
    p.set_defaults(func=cmd_ingest)
    p = sub.add_parser(
        "reembed",
        parents=[common],
        help="embed every stored chunk again with EMBEDDING_MODEL (after a change)",
    )
    p.set_defaults(func=cmd_reembed)
    p = sub.add_parser("serve", parents=[common], help="run the HTTP service")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--workers", type=int, default=1, help="worker processes, all serving the one store"
    )
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("ask", parents=[common], help="print the passages that answer a question")
    p.add_argument("question")
    p.add_argument("--top-k", type=int, default=None)
    p.set_defaults(func=cmd_ask)
    args = ap.parse_args(argv)
    try:
        if args.config is not None:
            # Worker processes (serve --workers) build their settings from the environment.
            os.environ[CONFIG_ENV] = str(Path(args.config).resolve())
        settings = Settings.from_env()
        return int(args.func(args, settings))
    except FerrovecError as e:
        print(f"ferrovec-rag: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
