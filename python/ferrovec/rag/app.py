"""The FastAPI service of the RAG backend: `create_app(settings)`.

Start-up is instant: the store is opened and the embedding model loaded on a background thread;
`/health` answers at once, `/ready` once both are there (other routes wait for them). With an
API key set, every route but `/health` and `/ready` needs it (`Authorization: Bearer <key>` or
an `api-key` header), compared in constant time.
"""

from __future__ import annotations

import hmac
import threading
from pathlib import PurePosixPath
from typing import Any, Callable

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

import ferrovec
from ferrovec.errors import FerrovecError, InvalidInputError, UnsupportedError
from ferrovec.rag import loaders
from ferrovec.rag.embed import Embedder, make_embedder
from ferrovec.rag.library import Library
from ferrovec.rag.settings import Settings


class QueryRequest(BaseModel):
    query: str = Field(min_length=1)
    top_k: int | None = Field(default=None, ge=1, le=1000)
    filter: dict[str, Any] | None = None


class TextIn(BaseModel):
    name: str = Field(min_length=1)
    text: str


class IngestRequest(BaseModel):
    texts: list[TextIn] = Field(min_length=1)


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
        self.lock = threading.Lock()  # ingestion and deletion: one at a time

    def start(self) -> None:
        threading.Thread(target=self._load, name="ferrovec-rag-load", daemon=True).start()

    def _load(self) -> None:
        try:
            self.db = ferrovec.open(self.settings.path)
            self.library = Library(self.db, self.settings, self._make_embedder())
            _ = self.library.collection
        except BaseException as e:
            self.error = e
        finally:
            self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.error is None

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

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        backend.start()
        yield
        backend.close()

    app = FastAPI(title="ferrovec RAG", lifespan=lifespan)
    app.state.backend = backend
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

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    def ready() -> JSONResponse:
        if backend.ready:
            return JSONResponse({"status": "ready"})
        state = "failed" if backend.error is not None else "starting"
        return JSONResponse({"status": state, "detail": str(backend.error or "")}, 503)

    @app.post("/query", dependencies=guarded)
    def query(req: QueryRequest) -> dict[str, Any]:
        lib = backend.get()
        return {"results": lib.query(req.query, req.top_k, req.filter)}

    @app.post("/ingest", dependencies=guarded)
    async def ingest(request: Request) -> dict[str, Any]:
        """JSON `{"texts": [{"name", "text"}]}`, or files uploaded as multipart form data."""
        lib = backend.get()
        length = int(request.headers.get("content-length") or 0)
        if length > settings.max_upload_bytes:
            raise HTTPException(413, f"upload larger than {settings.max_upload_bytes} bytes")
        if request.headers.get("content-type", "").startswith("multipart/"):
            docs = []
            async with request.form() as form:  # closes the uploaded files' buffers
                for item in form.values():
                    if not isinstance(item, UploadFile) or not item.filename:
                        continue
                    raw = await item.read(settings.max_upload_bytes + 1)
                    if len(raw) > settings.max_upload_bytes:
                        raise HTTPException(
                            413, f"upload larger than {settings.max_upload_bytes} bytes"
                        )
                    name = PurePosixPath(item.filename).name
                    docs.append(loaders.from_bytes(raw, name, PurePosixPath(name).suffix))
            if not docs:
                raise HTTPException(400, "no files in the upload")
        else:
            try:
                body = IngestRequest.model_validate(await request.json())
            except ValidationError as e:
                raise RequestValidationError(e.errors()) from None
            except ValueError:
                raise HTTPException(400, 'expected JSON {"texts": [...]} or files') from None
            docs = [loaders.Document(t.name, t.name, t.text) for t in body.texts]
        with backend.lock:
            report = lib.ingest(docs)
        return report.as_dict()

    @app.delete("/documents/{source:path}", dependencies=guarded)
    def delete_document(source: str) -> dict[str, Any]:
        lib = backend.get()
        with backend.lock:
            deleted = lib.delete_source(source)
        if deleted == 0:
            raise HTTPException(404, f"no document {source!r}")
        return {"source": source, "deleted_chunks": deleted}

    @app.get("/collections", dependencies=guarded)
    def collections() -> dict[str, Any]:
        lib = backend.get()
        out = []
        for info in lib.db.info():
            out.append({"name": info["name"], "points": info["points"], "dim": info["dim"]})
        return {"collections": out}

    return app
