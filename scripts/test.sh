#!/usr/bin/env bash
# Set up a virtualenv with the test tools, build ferrovec, and run every check and test:
# Rust format + clippy + tests, Python lint + types + stub check + pytest.
# Usage: bash scripts/test.sh        (the same script CI runs, via .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "set up: system packages, .venv and the test tools"
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate

step "rust: format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo tree -p ferrovec-core -e normal --locked | grep -qE '^.*(pyo3|numpy) v'; then
  echo "ferrovec-core must not depend on pyo3 or numpy" >&2
  exit 1
fi

step "build the python package (release)"
maturin develop --release --locked -q

step "python: lint, types, stubs"
ruff check python tests benches scripts
ruff format --check python tests benches scripts
mypy
python -m mypy.stubtest ferrovec._native

step "rust tests"
cargo test -p ferrovec-core --locked

step "fuzzing: the corpora replayed and store files mutated (cargo test), then libFuzzer, 10 s a target"
cargo test -p ferrovec-fuzz --locked
bash scripts/fuzz.sh 10

step "rust tests under AddressSanitizer and LeakSanitizer"
bash scripts/asan.sh

step "python tests"
python -m pytest tests
