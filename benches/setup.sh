#!/usr/bin/env bash
# Build the benchmark environment .venv-bench: ferrovec (release) plus every peer that installs.
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-bench
. .venv-bench/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "maturin>=1.7,<2" numpy matplotlib
maturin develop --release --locked -q
while read -r pkg; do
  case "$pkg" in ""|\#*|numpy|matplotlib) continue ;; esac
  if ! python -m pip install -q "$pkg"; then
    echo "benches/setup.sh: could not install $pkg; bench_ann.py will skip it" >&2
  fi
done < benches/requirements.txt
python -m pip list 2>/dev/null | grep -iE "ferrovec|hnswlib|faiss|usearch|qdrant|chromadb|lancedb|milvus|numpy"
