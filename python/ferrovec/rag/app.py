"""The FastAPI service of the RAG backend: `create_app(settings)`.

Start-up is instant: the store is opened and the embedding model loaded on a background thread;
`/health` answers at once, `/ready` once both are there (other routes wait for them). With an
API key set, every route but `/health` and `/ready` needs it (`Authorization: Bearer <key>` or
an `api-key` header), compared in constant time.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

import ferrovec
from ferrovec.errors import FerrovecError, InvalidInputError, UnsupportedError
from ferrovec.rag import loaders
from ferrovec.rag.chat import Answer, Chat
from ferrovec.rag.embed import Embedder, make_embedder
from ferrovec.rag.ingest import IngestReport, IngestStatus
from ferrovec.rag.jobs import Jobs
from ferrovec.rag.library import Library
from ferrovec.rag.metrics import Metrics
from ferrovec.rag.settings import Settings


class QueryRequest(BaseModel):
    query: str = Field(min_length=1)
    top_k: int | None = Field(default=None, ge=1, le=1000)
    filter: dict[str, Any] | None = None
    # "hybrid", "dense" or "sparse"; default: the RETRIEVAL_MODE setting.
    mode: Literal["hybrid", "dense", "sparse"] | None = None


class TextIn(BaseModel):
    name: str = Field(min_length=1)
    text: str


class IngestRequest(BaseModel):
    texts: list[TextIn] = Field(min_length=1)


class ChatRequest(BaseModel):
    session_id: str = Field(min_length=1, max_length=256)
    message: str = Field(min_length=1)
    stream: bool = False
    top_k: int | None = Field(default=None, ge=1, le=100)


class SnapshotRequest(BaseModel):
    collection: str | None = None


class Backend:
    """The store and the model, made ready on a background thread."""

    def __init__(self, settings: Settings, embedder: Callable[[], Embedder] | None) -> None:
        self.settings = settings
        self._make_embedder = embedder or (
            lambda: make_embedder(
                settings.embedding_model, settings.embedding_base_url, settings.embedding_api_key
            )
        )
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self.db: ferrovec.Database | None = None
        self.library: Library | None = None
        self.chat: Chat | None = None
        self.jobs: Jobs | None = None
        self.lock = threading.Lock()  # ingestion and deletion: one at a time

    def start(self) -> None:
        threading.Thread(target=self._load, name="ferrovec-rag-load", daemon=True).start()

    def _load(self) -> None:
        try:
            self.db = ferrovec.open(self.settings.path, slow_op_ms=self.settings.slow_op_ms)
            self.library = Library(self.db, self.settings, self._make_embedder())
            _ = self.library.collection
            self.chat = Chat(self.library, self.settings)
            self.jobs = Jobs(self.db, self.settings.jobs_collection)
        except BaseException as e:
            self.error = e
        finally:
            self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.error is None

    def failure(self) -> str:
        """What start-up failed on ("" if nothing did), with the error's kind."""
        e = self.error
        if e is None:
            return ""
        hint = ""
        if isinstance(e, (ferrovec.CorruptionError, ferrovec.UnsupportedVersionError)):
            hint = f" (check it with `ferrovec check {self.settings.path}`)"
        return f"{type(e).__name__}: {e}{hint}"

    def store_state(self) -> str:
        if not self._ready.is_set():
            return "starting"
        if self.db is None:
            return "failed to open"
        return "open" if self.error is None else "open (the model failed to load)"

    def store_figures(self) -> dict[str, Any]:
        """The store's path and, per collection, its points and optimizer state."""
        assert self.db is not None
        return {
            "path": self.settings.path,
            "collections": {
                i["name"]: {
                    "points": i["points"],
                    "unindexed_points": i["unindexed_points"],
                    "optimizer": i["optimizer_status"],
                    "log_bytes": i["log_bytes"],
                }
                for i in self.db.info()
            },
        }

    def get(self, timeout: float = 300.0) -> Library:
        """The library, waiting for start-up to finish."""
        if not self._ready.wait(timeout):
            raise HTTPException(503, "still starting: the model is loading")
        if self.error is not None or self.library is None:
            raise HTTPException(503, f"start-up failed: {self.error}")
        return self.library

    def close(self) -> None:
        self._ready.wait(300.0)
        if self.db is not None:
            self.db.close()


def create_app(
    settings: Settings | None = None, embedder: Callable[[], Embedder] | None = None
) -> FastAPI:
    """The service for `settings` (default: from the environment and `.env`); `embedder`
    makes the embedder (default: the one EMBEDDING_MODEL names)."""
    settings = settings or Settings.from_env()
    backend = Backend(settings, embedder)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        backend.start()
        yield
        backend.close()

    app = FastAPI(title="ferrovec RAG", lifespan=lifespan)
    app.state.backend = backend
    metrics = Metrics()

    worker = str(os.getpid())

    @app.middleware("http")
    async def timed(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        # Which of several workers (`ferrovec-rag serve --workers N`) answered.
        response.headers["X-Ferrovec-Worker"] = worker
        route = getattr(request.scope.get("route"), "path", "unmatched")
        metrics.requests.observe(
            time.perf_counter() - started, request.method, route, str(response.status_code)
        )
        return response

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
        )

    def authorized(request: Request) -> None:
        key = settings.api_key
        if not key:
            return
        given = request.headers.get("api-key")
        auth = request.headers.get("authorization", "")
        if given is None and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if given is None or not hmac.compare_digest(given.encode(), key.encode()):
            raise HTTPException(
                401, "an API key is required", headers={"WWW-Authenticate": "Bearer"}
            )

    guarded = [Depends(authorized)]

    @app.exception_handler(FerrovecError)
    async def ferrovec_error(request: Request, exc: FerrovecError) -> JSONResponse:
        status = 400 if isinstance(exc, (InvalidInputError, UnsupportedError)) else 500
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        """The web page: documents, search and chat in one file (no build step, no CDN)."""
        return (Path(__file__).parent / "static" / "index.html").read_text(encoding="utf-8")

    @app.get("/health")
    def health() -> dict[str, str]:
        """Alive (always 200), and the store's state: starting, open, or failed and why."""
        return {"status": "ok", "store": backend.store_state()}

    @app.get("/ready")
    def ready() -> JSONResponse:
        """200 once the store is open and the model loaded, with the store's figures; 503 while
        starting, or with what failed (a store that does not open says why)."""
        if backend.ready:
            return JSONResponse({"status": "ready", "store": backend.store_figures()})
        state = "failed" if backend.error is not None else "starting"
        return JSONResponse(
            {"status": state, "store": backend.store_state(), "detail": backend.failure()}, 503
        )

    routes = (app, backend, settings, metrics, guarded)
    _retrieval_routes(*routes)
    _document_routes(*routes)
    _admin_routes(*routes)

    return app


def _retrieval_routes(
    app: FastAPI, backend: Backend, settings: Settings, metrics: Metrics, guarded: list[Any]
) -> None:
    """Search, chat and chat sessions."""

    @app.post("/query", dependencies=guarded)
    def query(req: QueryRequest) -> dict[str, Any]:
        lib = backend.get()
        started = time.perf_counter()
        results = lib.query(req.query, req.top_k, req.filter, req.mode)
        metrics.search.observe(time.perf_counter() - started)
        return {"results": results}

    @app.post("/chat", dependencies=guarded, response_model=None)
    def chat(req: ChatRequest) -> dict[str, Any] | StreamingResponse:
        """An answer from the documents and the session's earlier turns; with `stream`, as
        server-sent events: `token` events with pieces of text, then `done` with the sources."""
        backend.get()
        assert backend.chat is not None
        chat = backend.chat
        if not req.stream:
            answer = chat.ask(req.session_id, req.message, req.top_k)
            return _answer(req.session_id, answer)

        def events() -> Iterator[str]:
            try:
                for part in chat.stream(req.session_id, req.message, req.top_k):
                    if isinstance(part, Answer):
                        body = json.dumps(_answer(req.session_id, part))
                        yield f"event: done\ndata: {body}\n\n"
                    else:
                        yield f"event: token\ndata: {json.dumps(part)}\n\n"
            except Exception as e:  # the status line is sent: the error goes in the stream
                yield f"event: error\ndata: {json.dumps(f'{type(e).__name__}: {e}')}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/sessions", dependencies=guarded)
    def sessions() -> dict[str, Any]:
        backend.get()
        assert backend.chat is not None
        return {"sessions": backend.chat.sessions()}

    @app.get("/sessions/{session_id}", dependencies=guarded)
    def session(session_id: str) -> dict[str, Any]:
        backend.get()
        assert backend.chat is not None
        return {"session_id": session_id, "turns": backend.chat.history(session_id)}


def _document_routes(
    app: FastAPI, backend: Backend, settings: Settings, metrics: Metrics, guarded: list[Any]
) -> None:
    """Ingestion (and its jobs) and the documents."""

    @app.post("/ingest", dependencies=guarded, response_model=None)
    async def ingest(request: Request, wait: bool = False) -> Any:
        """JSON `{"texts": [{"name", "text"}]}`, or files uploaded as multipart form data (every
        file of every field). Answers 202 with a job to poll (`GET /ingest/jobs/{id}`), or with
        `?wait=true` the report once done. A file that cannot be read is reported in `failed`
        and the others are ingested; an upload where no file can be read is refused (413 when
        they are all too large, else 400)."""
        # Waiting (for start-up, for another ingest) happens off the event loop.
        lib = await run_in_threadpool(backend.get)
        jobs = backend.jobs
        assert jobs is not None
        length = int(request.headers.get("content-length") or 0)
        if length > settings.max_request_bytes:
            raise HTTPException(413, f"request larger than {settings.max_request_bytes} bytes")
        if request.headers.get("content-type", "").startswith("multipart/"):
            docs = await _uploaded(request, settings)
        else:
            try:
                body = IngestRequest.model_validate(await request.json())
            except ValidationError as e:
                raise RequestValidationError(e.errors()) from None
            except ValueError:
                raise HTTPException(400, 'expected JSON {"texts": [...]} or files') from None
            limit = settings.max_upload_bytes
            docs = [
                loaders.Document(t.name, t.name, t.text)
                if len(t.text.encode("utf-8")) <= limit
                else loaders.Unreadable(t.name, f"{t.name}: larger than the {limit}-byte limit")
                for t in body.texts
            ]
        _refuse_if_nothing_readable(docs)

        def run(items: Any, status: IngestStatus) -> IngestReport:
            with backend.lock:
                report = lib.ingest(items, status=status)
            metrics.documents.inc(report.documents)
            metrics.chunks.inc(report.chunks_written)
            metrics.embedded.inc(report.chunks_embedded)
            return report

        if wait:
            return (await run_in_threadpool(run, docs, IngestStatus())).as_dict()
        job_id = await run_in_threadpool(jobs.start, docs, run)
        return JSONResponse(
            {"job_id": job_id, "status_url": f"/ingest/jobs/{job_id}"}, status_code=202
        )

    @app.get("/ingest/jobs", dependencies=guarded)
    def ingest_jobs() -> dict[str, Any]:
        backend.get()
        assert backend.jobs is not None
        return {"jobs": backend.jobs.recent()}

    @app.get("/ingest/jobs/{job_id}", dependencies=guarded)
    def ingest_job(job_id: str) -> dict[str, Any]:
        backend.get()
        assert backend.jobs is not None
        job = backend.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no ingest job {job_id!r}")
        return job

    @app.get("/documents", dependencies=guarded)
    def documents() -> dict[str, Any]:
        return {"documents": backend.get().documents()}

    @app.delete("/documents/{source:path}", dependencies=guarded)
    def delete_document(source: str) -> dict[str, Any]:
        lib = backend.get()
        with backend.lock:
            deleted = lib.delete_source(source)
        if deleted == 0:
            raise HTTPException(404, f"no document {source!r}")
        return {"source": source, "deleted_chunks": deleted}


def _admin_routes(
    app: FastAPI, backend: Backend, settings: Settings, metrics: Metrics, guarded: list[Any]
) -> None:
    """The status, collections, metrics and snapshots."""

    @app.get("/status", dependencies=guarded)
    def status() -> dict[str, Any]:
        """What the page's status bar shows: the collection, the model, the store, the last
        snapshot."""
        lib = backend.get()
        info = lib.collection.info()
        snaps = lib.db.list_snapshots()
        last = max(snaps, key=lambda s: s.created_at) if snaps else None
        return {
            "collection": settings.collection,
            "points": info["points"],
            "documents": len(lib.sources()),
            "model": lib.embedder.name,
            "dim": lib.embedder.dim,
            "retrieval_mode": settings.retrieval_mode,
            "fusion": settings.fusion if settings.retrieval_mode == "hybrid" else None,
            "hybrid": lib.hybrid,
            "store": {
                "path": settings.path,
                # It opened and its background optimizer has not failed.
                "healthy": not str(info["optimizer_status"]).startswith("failed"),
                "optimizer": info["optimizer_status"],
                "segments": info.get("segments"),
                "disk_bytes": info.get("disk_bytes"),
                "log_bytes": info.get("log_bytes"),
            },
            "last_snapshot": _snapshot(last) if last else None,
            "llm": settings.llm_model if settings.llm_base_url and settings.llm_model else None,
            "auth": bool(settings.api_key),
        }

    @app.get("/collections", dependencies=guarded)
    def collections() -> dict[str, Any]:
        lib = backend.get()
        out = []
        for info in lib.db.info():
            out.append({"name": info["name"], "points": info["points"], "dim": info["dim"]})
        return {"collections": out}

    @app.get("/metrics", dependencies=guarded, response_class=PlainTextResponse)
    def prometheus() -> str:
        lines = [
            *metrics.requests.render(),
            *metrics.search.render(),
            *metrics.documents.render(),
            *metrics.chunks.render(),
            *metrics.embedded.render(),
        ]
        text = "\n".join(lines) + "\n"
        if backend.ready and backend.db is not None:
            # The store's own metrics (every ferrovec_* family of docs/OPERATIONS.md).
            text += backend.db.metrics()
        return text

    @app.post("/admin/snapshots", dependencies=guarded)
    def create_snapshot(req: SnapshotRequest | None = None) -> dict[str, Any]:
        backend.get()
        assert backend.db is not None
        return _snapshot(backend.db.create_snapshot(req.collection if req else None))

    @app.get("/admin/snapshots", dependencies=guarded)
    def list_snapshots() -> dict[str, Any]:
        backend.get()
        assert backend.db is not None
        return {"snapshots": [_snapshot(s) for s in backend.db.list_snapshots()]}

    @app.post("/admin/snapshots/{name}/restore", dependencies=guarded)
    def restore_snapshot(name: str) -> dict[str, Any]:
        """Replace the collections a snapshot holds with their state in it."""
        lib = backend.get()
        assert backend.db is not None
        found = [s for s in backend.db.list_snapshots() if s.name == name]
        if not found:
            raise HTTPException(404, f"no snapshot {name!r}")
        with backend.lock:
            restored = ferrovec.restore_snapshot(str(found[0].path), settings.path, replace=True)
            lib.reopen()
            if backend.chat is not None:
                backend.chat.reopen()
        return {"snapshot": name, "restored": restored}


async def _uploaded(request: Request, settings: Settings) -> list[Any]:
    """Every file of a multipart upload, as a document or as the reason it cannot be one."""
    out: list[loaders.Document | loaders.Unreadable] = []
    limit = settings.max_upload_bytes
    # Every item of every field: `<input type="file" multiple>` sends one field many times.
    async with request.form(max_files=10_000) as form:  # closes the uploaded files' buffers
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile) and v.filename]
        if not files:
            raise HTTPException(400, "no files in the upload")
        for item in files:
            name = PurePosixPath(str(item.filename)).name
            raw = await item.read(limit + 1)
            if len(raw) > limit:
                out.append(loaders.Unreadable(name, f"{name}: larger than the {limit}-byte limit"))
            elif not raw:
                out.append(loaders.Unreadable(name, f"{name}: an empty file"))
            else:
                out.append(await run_in_threadpool(_read, raw, name))
    return out


def _read(raw: bytes, name: str) -> loaders.Document | loaders.Unreadable:
    try:
        return loaders.from_bytes(raw, name, PurePosixPath(name).suffix)
    except FerrovecError as e:
        return loaders.Unreadable(name, str(e))


def _refuse_if_nothing_readable(docs: list[Any]) -> None:
    bad = [d for d in docs if isinstance(d, loaders.Unreadable)]
    if docs and len(bad) == len(docs):
        too_large = all("-byte limit" in d.error for d in bad)
        detail = {
            "detail": "; ".join(d.error for d in bad),
            "failed": [{"source": d.source, "error": d.error} for d in bad],
        }
        raise HTTPException(413 if too_large else 400, detail)


def _answer(session_id: str, answer: Answer) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "answer": answer.text,
        "generated": answer.generated,
        "sources": [
            {k: s.get(k) for k in ("source", "title", "chunk", "score", "text")}
            for s in answer.sources
        ],
    }


def _snapshot(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "created_at": info.created_at,
        "size_bytes": info.size_bytes,
        "sha256": info.sha256,
        "collections": dict(info.collections),
    }
