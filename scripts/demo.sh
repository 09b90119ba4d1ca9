#!/usr/bin/env bash
# Build ferrovec into a virtualenv and run the demo: create a store, ingest 100,000 384-d
# vectors with payloads, search, close, reopen, check the data survived, with timings.
# Usage: bash scripts/demo.sh [--points N] [--path DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "maturin>=1.7,<2" "numpy>=1.21"
maturin develop --release --locked -q
ferrovec demo "$@"
