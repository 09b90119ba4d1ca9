#!/usr/bin/env bash
# The long tier of the reliability suite (docs/RELIABILITY.md): every crash point in every
# way a disk may keep it, every fault at every call site, the multi-process SIGKILL soak, the
# property test, the concurrency stress (also under ASan), damaged files, and fuzzing.
# Prints the figures the table in docs/RELIABILITY.md reports. Needs the .venv of
# scripts/test.sh (or scripts/rag.sh). About 50 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== simulated power loss: every operation, three disk images each"
FERROVEC_CRASH_POINTS=all cargo test --release -p ferrovec-core --locked --test it power_loss \
  -- --nocapture 2>&1 | grep -E "power loss:|test result"

echo "== I/O faults: ENOSPC, EIO and a short write at every call site"
FERROVEC_FAULT_POINTS=all cargo test --release -p ferrovec-core --locked --test it injected \
  -- --nocapture 2>&1 | grep -E "faults:|test result"

echo "== several processes: SIGKILL of writers, 200 cycles, a live reader throughout"
FERROVEC_MP_CYCLES=200 .venv/bin/python -m pytest -q -p no:cacheprovider --timeout 1800 \
  tests/multiprocess/test_sigkill_shared.py

echo "== property test: a hypothesis state machine against a dict-and-numpy model"
FERROVEC_PROPERTY_EXAMPLES=500 FERROVEC_PROPERTY_STEPS=60 .venv/bin/python -m pytest -q -s \
  -p no:cacheprovider --timeout 1800 tests/core/test_state_machine.py | grep -E "property test|passed|failed"

echo "== concurrency: threads mixing every operation with the optimizer and snapshots, 2 minutes"
FERROVEC_STRESS_SECS=120 cargo test --release -p ferrovec-core --locked --test it stress \
  -- --nocapture 2>&1 | grep -E "stress:|test result"

echo "== damaged files: random mutations of every kind of file, opened and used"
FERROVEC_MUTATIONS=20000 cargo test --release -p ferrovec-fuzz --locked --test corpus mutated \
  -- --nocapture 2>&1 | grep -E "mutations:|test result"

echo "== AddressSanitizer and LeakSanitizer: the core's tests, the concurrency stress for 60 s"
FERROVEC_STRESS_SECS=60 bash scripts/asan.sh --nocapture 2>&1 | grep -E "stress:|test result"

echo "== coverage-guided fuzzing: 5 minutes a target without a sanitizer (CI runs them with ASan)"
FUZZ_SANITIZER=none bash scripts/fuzz.sh 300 | grep -E "^fuzz:"
